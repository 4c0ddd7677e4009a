"""Everything a throwaway PLOY_HOME made on this machine, removed: its containers, its snapshot images,
its network policy's networks and firewall rules, and its sandboxes' mounted disks.

For tests and benchmarks, which make a home in a temporary folder and delete it afterwards. A user's
home is pruned by `ploy sandbox prune` instead, which keeps what is still in use.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bindings import podman
from bindings.sandbox.containers import home_label
from bindings.sandbox.disks import release_under
from bindings.sandbox.network import sweep


async def remove_leftovers(home: Path | None, label: str | None = None) -> None:
    """`label` is the home's `ploy.home` label (home_label(home) when not given). Disks are released
    only when `home` is given: they are the mounts below it, which a later rmtree would empty while
    their loop devices stay attached."""
    if label is None and home is not None:
        label = home_label(home)
    if label:
        res = await podman.run("ps", "-aq", "--filter", f"label=ploy.home={label}", check=False)
        ids = res.stdout.decode().split()
        if ids:
            await podman.run("rm", "-f", "-t", "0", *ids, check=False)
    if home is not None:
        await asyncio.to_thread(release_under, home)
    if not label:
        return
    # one label filter, the other checked here: podman ORs two label filters of `images`, which would
    # remove every snapshot image on the machine (another test run's included)
    res = await podman.run("images", "--format", "json", "--filter", f"label=ploy.home={label}", check=False)
    try:
        images = json.loads(res.stdout or b"[]")
    except ValueError:
        images = []
    snapshots = [i["Id"] for i in images if (i.get("Labels") or {}).get("ploy.snapshot") == "1"]
    if snapshots:
        await podman.run("rmi", "-f", *snapshots, check=False)
    await sweep({"ploy.home": label})


def remove_leftovers_sync(home: Path | None, label: str | None = None) -> None:
    """`remove_leftovers` for code without an event loop (test fixtures)."""
    asyncio.run(remove_leftovers(home, label))
