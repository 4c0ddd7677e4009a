"""Sandboxes on Podman hosts reached through the Podman API (issue 15). Prints one `name value unit`
line per figure. Needs root: three API services in network namespaces (tests/multihost/rig.py).

    python bench/multihost.py

Targets: exec p50 on a remote (namespace) host <= 5 ms with the channel warm; first exec of a new
remote sandbox <= 400 ms; 30 sandboxes spread within one of even across three hosts; losing a host
answers in <= 2 s with the typed error. Also: create+start of a container on this machine through the
CLI and through the REST API (a local `podman system service` on a unix socket), side by side, which is
what chose the CLI for the local default (bindings/sandbox/hosts/local.py).
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.sandbox_bench import emit, pct  # noqa: E402
from bindings.context import BindingContext, project_key  # noqa: E402
from bindings.errors import PloyError  # noqa: E402
from bindings.sandbox import SandboxBinding  # noqa: E402
from bindings.sandbox import image as images  # noqa: E402
from bindings.sandbox.hosts.config import add_host  # noqa: E402
from bindings.sandbox.hosts.remote import RemoteHost  # noqa: E402
from bindings.sandbox.options import SandboxOptions  # noqa: E402
from tests.multihost.rig import Rig, available  # noqa: E402


def binding(tmp: Path, name: str) -> SandboxBinding:
    root = tmp / name
    root.mkdir()
    ctx = BindingContext(
        project_root=root, project_name=name, project_key=project_key(root), state_dir=tmp / "home"
    )
    return SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", pool=0, memory="256m"))


async def remote(rig: Rig, image: str, tmp: Path) -> None:
    t = time.monotonic()
    await RemoteHost("h0", rig.hosts[0].url).ensure_image(image)
    emit("remote_image_transfer_s", time.monotonic() - t, "s")  # podman save | API load, one host
    await asyncio.gather(*(RemoteHost(f"h{i}", h.url).ensure_image(image) for i, h in enumerate(rig.hosts)))
    b = binding(tmp, "bench")
    firsts = []
    for i in range(7):
        sb = b.get(f"first{i}")
        t = time.monotonic()
        await sb.exec("true")
        firsts.append(time.monotonic() - t)
    emit("remote_first_exec_new_sandbox_p50_ms", statistics.median(firsts) * 1000, "ms")
    sb = b.get("first0")
    for _ in range(50):
        await sb.exec("true")
    times = []
    for _ in range(500):
        t = time.monotonic()
        await sb.exec("echo hi")
        times.append(time.monotonic() - t)
    emit("remote_exec_p50_ms", pct(times, 50) * 1000, "ms")
    emit("remote_exec_p95_ms", pct(times, 95) * 1000, "ms")
    spread = [b.get(f"spread{i}") for i in range(30 - 7)]
    await asyncio.gather(*(s.exec("true") for s in spread))
    every = [*spread, *(b.get(f"first{i}") for i in range(7))]
    counts = collections.Counter(s._mgr.entries[s.id].host.name for s in every)
    emit("spread_30_max_minus_min", max(counts.values()) - min(counts.values()), "sandboxes")
    # a host that goes away: the first call to one of its sandboxes answers SANDBOX_UNAVAILABLE
    lost = next(s for s in spread if s._mgr.entries[s.id].host.name == "h1")
    await lost.exec("true")
    rig.hosts[1].go_away()
    try:
        t = time.monotonic()
        try:
            await lost.exec("echo hi")
            code = "none"
        except PloyError as exc:
            code = exc.code
        emit("host_lost_first_call_s", time.monotonic() - t, "s")
        t = time.monotonic()
        try:
            await lost.exec("echo hi")
        except PloyError:
            pass
        emit("host_lost_second_call_s", time.monotonic() - t, "s")
        print(f"# host lost: the call answered {code}", flush=True)
    finally:
        rig.hosts[1].come_back()
    t = time.monotonic()
    await lost.exec("true")
    emit("host_back_first_call_ms", (time.monotonic() - t) * 1000, "ms")
    await b.close()


def local_cli_vs_api(image: str) -> None:
    """create+start of one container on this machine: `podman run -d` against the REST API."""
    sock_dir = tempfile.mkdtemp(prefix="ploy-api-")
    sock = f"{sock_dir}/podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        while not os.path.exists(sock):
            time.sleep(0.02)
        host = RemoteHost("local-api", f"unix://{sock}")
        cli, api = [], []
        for i in range(5):
            name = f"ploy-bench-cli-{os.getpid()}-{i}"
            t = time.monotonic()
            subprocess.run(
                ["podman", "run", "-d", "--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit",
                 "nproc=32768:32768", "--name", name, image, "sleep", "60"], check=True, capture_output=True,
            )  # fmt: skip
            cli.append(time.monotonic() - t)
            subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)
            name = f"ploy-bench-api-{os.getpid()}-{i}"

            def create_start(n: str = name) -> None:
                c = host.client().containers.create(
                    image, ["sleep", "60"], name=n, runtime="runc",
                    ulimits=[{"Name": "nofile", "Soft": 1024, "Hard": 1024},
                             {"Name": "nproc", "Soft": 32768, "Hard": 32768}],
                )  # fmt: skip
                c.start()

            t = time.monotonic()
            create_start()
            api.append(time.monotonic() - t)
            subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)
        emit("local_create_start_cli_p50_ms", statistics.median(cli) * 1000, "ms")
        emit("local_create_start_api_p50_ms", statistics.median(api) * 1000, "ms")
    finally:
        os.killpg(service.pid, 15)
        service.wait(10)
        shutil.rmtree(sock_dir, ignore_errors=True)


def main() -> int:
    why = available()
    if why:
        print(f"bench/multihost.py: {why}", file=sys.stderr)
        return 2
    os.environ.setdefault("PLOY_IMAGE_PRUNE", "0")
    image = asyncio.run(images.ensure_image())
    local_cli_vs_api(image)
    image = asyncio.run(images.ensure_image())  # (again: another checkout's prune may have removed it)
    tmp = Path(tempfile.mkdtemp(prefix="ploy-mh-bench-"))
    rig = Rig(3)
    try:
        rig.start()
        os.environ["PLOY_HOSTS_FILE"] = str(tmp / "hosts.json")
        for i, h in enumerate(rig.hosts):
            add_host(f"h{i}", h.url)
        asyncio.run(remote(rig, image, tmp))
    finally:
        rig.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
