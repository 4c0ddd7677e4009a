"""Whole-sandbox snapshots: the container's writable layer (files, installed packages, env vars set with
setEnvVars, session state) committed as a local image new sandboxes start from.

A snapshot is the image `localhost/ploy-snapshot:<id>` made by `podman commit --pause` (the container is
frozen for the commit so the layer is consistent), labelled ploy.snapshot=1, ploy.project, ploy.home
and the snapshot's own id, name, source and time: Podman keeps everything there is to know, so snapshots
outlive `ploy dev`, the sandbox they were taken of, and `destroy`. Memory is not part of it: CRIU
checkpointing does not work on the kernels ploy is built on, so running processes and code contexts of
the source are not in the snapshot (their records are dropped at the fork's first start; see
agent/backups.py reset_if_forked).

The image sets PLOY_SNAPSHOT=<id> in the environment, which is how a sandbox knows it started from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from typing import Any

from bindings import podman
from bindings.context import BindingContext
from bindings.error_codes import INVALID_ARGUMENT, SNAPSHOT_NOT_FOUND
from bindings.errors import PloyError
from bindings.sandbox import disks

REPO = "localhost/ploy-snapshot"
ID_RE = re.compile(r"^snap-[0-9a-f]{16}$")
MAX_NAME = 256


def snapshot_id(value: Any) -> str:
    """An id from a string or from the object snapshot() returned ({id, ...})."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not ID_RE.match(value):
        raise PloyError(
            f"{value!r} is not a snapshot id (snapshot() returns ids like snap-{secrets.token_hex(8)})",
            code=INVALID_ARGUMENT,
        )
    return value


def image_of(sid: str) -> str:
    return f"{REPO}:{sid}"


def _label_text(value: str | None) -> str | None:
    """A label's text as snapshot() gave it. Labels are set with `--change LABEL k="<JSON string>"`, and
    Podman keeps the JSON escapes as written (only the quotes go): undone here, so a sandbox id or a
    name with non-ASCII letters, quotes, backslashes or tabs comes back as it was."""
    if value is None:
        return None
    try:
        text = json.loads(f'"{value}"')
    except ValueError:
        return value
    return text if isinstance(text, str) else value


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class SnapshotStore:
    def __init__(self, ctx: BindingContext, home_label: str) -> None:
        self.ctx = ctx
        self.home_label = home_label
        # snapshots this process made or checked: a fork of one skips `podman image inspect` (~40 ms,
        # and a second podman process competing with `podman run` for the CPU)
        self.known: set[str] = set()

    def _labels(self) -> dict[str, str]:
        return {"ploy.snapshot": "1", "ploy.project": self.ctx.project_key, "ploy.home": self.home_label}

    async def take(self, container: str, source: str, options: dict[str, Any]) -> dict[str, Any]:
        name = options.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME or "\n" in name):
            raise PloyError(
                f"name must be a one-line string of at most {MAX_NAME} characters", code=INVALID_ARGUMENT
            )
        sid = f"snap-{secrets.token_hex(8)}"
        now = time.time()
        labels = {
            **self._labels(),
            "ploy.snapshot.id": sid,
            "ploy.snapshot.source": source,
            "ploy.snapshot.created": _iso(now),
            "ploy.snapshot.name": name or "",
        }
        changes = [f"ENV PLOY_SNAPSHOT={sid}"]
        changes += [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
        args = ["commit", "--pause", "-q"]
        for c in changes:
            args += ["--change", c]
        await podman.run(*args, container, image_of(sid))
        await self._unshift(image_of(sid))
        self.known.add(sid)
        return await self.info(sid)

    @staticmethod
    async def _unshift(image: str) -> None:
        """Podman 4.3 commits a container that runs in a user namespace with the host's ids (root as
        2000000000, disks.py), which a fork, mapped the same way, would see as unmapped (`nobody`): its
        root could not write what it installed. The new top layer's files get their ids back."""
        res = await podman.run("image", "inspect", "--format", "{{.GraphDriver.Data.UpperDir}}", image)
        upper = res.text
        if upper and os.path.isdir(upper):
            await asyncio.to_thread(disks.unshift_tree, upper)

    async def info(self, value: Any) -> dict[str, Any]:
        sid = snapshot_id(value)
        res = await podman.run("image", "inspect", image_of(sid), check=False)
        data = json.loads(res.stdout or b"[]") if res.returncode == 0 else []
        labels = (data[0].get("Labels") or {}) if data else {}
        if (
            not data
            or labels.get("ploy.project") != self.ctx.project_key
            or labels.get("ploy.home") != self.home_label
        ):
            self.known.discard(sid)
            raise PloyError(f"no snapshot {sid} in this project", code=SNAPSHOT_NOT_FOUND, snapshotId=sid)
        self.known.add(sid)
        return self._public(sid, labels, data[0].get("Size"))

    @staticmethod
    def _public(sid: str, labels: dict[str, str], size: Any) -> dict[str, Any]:
        return {
            "id": sid,
            "name": _label_text(labels.get("ploy.snapshot.name")) or None,
            "sourceId": _label_text(labels.get("ploy.snapshot.source")),
            "createdAt": labels.get("ploy.snapshot.created"),
            "size": size,
            "image": image_of(sid),
        }

    async def _images(self, *filters: str) -> list[dict[str, Any]]:
        """This project's snapshot images (and this home's). One label filter goes to podman, the rest
        are checked here: podman ORs several label filters of `images` (it ANDs them for `ps`), which
        listed every project's snapshots as this one's."""
        mine = self._labels()
        res = await podman.run(
            "images", "--format", "json", "--filter", f"label=ploy.project={mine['ploy.project']}", *filters
        )
        found = json.loads(res.stdout or b"[]") or []
        return [
            img
            for img in found
            if isinstance(img, dict) and all((img.get("Labels") or {}).get(k) == v for k, v in mine.items())
        ]

    async def live(self) -> list[dict[str, Any]]:
        out = []
        for img in await self._images():
            labels = img.get("Labels") or {}
            sid = labels.get("ploy.snapshot.id", "")
            if ID_RE.match(sid) and image_of(sid) in (img.get("Names") or []):
                out.append(self._public(sid, labels, img.get("Size")))
        out.sort(key=lambda s: s["createdAt"] or "")
        return out

    async def delete(self, value: Any) -> dict[str, Any]:
        """Removes the snapshot's name at once; the image itself goes as soon as no sandbox started from it
        still uses it (`ploy sandbox prune` and later deletes remove such leftovers)."""
        sid = (await self.info(value))["id"]
        self.known.discard(sid)
        res = await podman.run("rmi", image_of(sid), check=False)
        if res.returncode != 0:
            await podman.run("untag", image_of(sid))
        await self.prune()
        return {"id": sid, "deleted": True}

    async def prune(self) -> None:
        """Snapshot images of this project that lost their name and that no container uses any more
        (`podman rmi` without --force refuses one a container still uses)."""
        gone = [img["Id"] for img in await self._images("--filter", "dangling=true") if not img.get("Names")]
        if gone:
            await podman.run("rmi", *gone, check=False)
