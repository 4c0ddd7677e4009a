"""Which host a new sandbox goes to, and which host holds an id ploy has no local record of.

The rule (bindings/sandbox/README.md, "Hosts"): among the hosts that answer, the one with the fewest
running ploy sandboxes (counted from the hosts' container labels, plus the ones this process is
starting there right now), ties to the most free memory; a host with less free memory than one
sandbox's limit takes none while another can. The hosts' labels are the source of truth for where an id
lives: ploy's local record (meta.json's host) only saves the search.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from bindings.error_codes import SANDBOX_UNAVAILABLE
from bindings.errors import PloyError
from bindings.sandbox.hosts.config import load_hosts
from bindings.sandbox.hosts.remote import RemoteHost

INFO_TTL_S = 10.0


def configured_hosts() -> dict[str, RemoteHost]:
    return {
        name: RemoteHost(name, str(h["url"]), identity=h.get("identity"), address=h.get("address"))
        for name, h in load_hosts().items()
    }


def mark_host(d: Path, host: RemoteHost) -> None:
    """Record in a token's meta.json which host its container is on (and that host's URL, so it is
    reached even after `ploy hosts remove`)."""
    path = d / "meta.json"
    meta = json.loads(path.read_text())
    meta["host"], meta["hostUrl"] = host.name, host.url
    path.write_text(json.dumps(meta))


class Placement:
    def __init__(self, hosts: dict[str, RemoteHost], log: logging.Logger | Any = None) -> None:
        self.hosts = hosts
        self.starting: dict[str, int] = {}
        self.memory: dict[str, tuple[float, int]] = {}
        self.refreshing: dict[str, asyncio.Future[int]] = {}
        self.log = log

    async def _free_memory(self, host: RemoteHost) -> int:
        """The host's free memory, from `podman info` (~250 ms, so at most every INFO_TTL_S per host:
        a stale figure is used while a fresh one is fetched; only the first placement waits)."""
        cached = self.memory.get(host.name)
        if cached is not None and time.monotonic() - cached[0] < INFO_TTL_S:
            return cached[1]
        task = self.refreshing.get(host.name)
        if task is None or task.done():
            task = self.refreshing[host.name] = asyncio.ensure_future(self._fetch_memory(host))
        if cached is not None:
            return cached[1]
        return await asyncio.shield(task)

    async def _fetch_memory(self, host: RemoteHost) -> int:
        info = await host.info()
        free = int((info.get("host") or {}).get("memFree") or 0)
        self.memory[host.name] = (time.monotonic(), free)
        return free

    async def _load(self, host: RemoteHost) -> tuple[int, int]:
        rows, free = await asyncio.gather(host.ps({"ploy.sandbox": "1"}), self._free_memory(host))
        running = sum(1 for r in rows if r.get("State") == "running")
        return running, free

    async def choose(self, memory: int) -> RemoteHost:
        hosts = list(self.hosts.values())
        loads = await asyncio.gather(*(self._load(h) for h in hosts), return_exceptions=True)
        ranked = []
        down = []
        for h, load in zip(hosts, loads, strict=True):
            if isinstance(load, BaseException):
                down.append(f"{h.name}: {load}")
                continue
            running, free = load
            ranked.append((free < memory, running + self.starting.get(h.name, 0), -free, h.name, h))
        if not ranked:
            raise PloyError(
                "no sandbox host is reachable (" + "; ".join(down) + ")", code=SANDBOX_UNAVAILABLE
            )
        ranked.sort(key=lambda r: r[:4])
        return ranked[0][4]

    async def find(self, labels: dict[str, str]) -> tuple[RemoteHost, str] | None:
        """(host, container name) of the container carrying `labels` (an id's), searching every host
        that answers."""
        hosts = list(self.hosts.values())
        found = await asyncio.gather(*(h.ps(labels) for h in hosts), return_exceptions=True)
        for h, rows in zip(hosts, found, strict=True):
            if isinstance(rows, BaseException):
                continue
            for r in rows:
                names = r.get("Names") or []
                if names:
                    return h, str(names[0])
        return None
