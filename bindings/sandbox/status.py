"""getState and getMetrics: a sandbox looked at without waking or creating it.

State, fastest answer first: the agent answers a ping (running; a ping is no activity, so it does not
keep the sandbox awake); else run/state.json, which the agent writes when it stops the sandbox for
idleness (sleeping); else Podman's record (stopped, and since when), the only slow path (~100 ms).
Metrics come from the agent (the container's cgroup and network counters, read from files) plus the
size of the container's writable layer on the host, which is walked in a thread at most every
DISK_REFRESH_S and answered from the last walk meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from bindings.sandbox.agent import wire
from bindings.sandbox.agent_client import AgentInterrupted, AgentUnavailable
from bindings.sandbox.containers import Entry, SandboxContainers
from bindings.sandbox.state import SandboxState

DISK_REFRESH_S = 10.0
NEVER = "0001-01-01T00:00:00Z"  # podman's "no such time"


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _podman_time(value: Any) -> str | None:
    """Podman's RFC 3339 time with nanoseconds, as ISO 8601 with milliseconds (as the agent writes)."""
    if not isinstance(value, str) or not value or value.startswith(NEVER[:4]):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    return f"{head}.{(frac + '000')[:3]}Z"


def disk_used(root: str) -> int:
    """Bytes allocated under `root` (what `du` counts: blocks, each hard-linked file once)."""
    total, seen = 0, set()
    todo = [root]
    while todo:
        try:
            with os.scandir(todo.pop()) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if st.st_nlink > 1:
                        if st.st_ino in seen:
                            continue
                        seen.add(st.st_ino)
                    total += st.st_blocks * 512
                    if e.is_dir(follow_symlinks=False):
                        todo.append(e.path)
        except OSError:
            continue
    return total


@dataclass
class _Disk:
    upper: str | None
    used: int = 0
    measured: float = 0.0  # monotonic
    measured_at: str | None = None
    task: asyncio.Task[None] | None = None


class SandboxStatus:
    def __init__(self, state: SandboxState, containers: SandboxContainers) -> None:
        self.disk_state = state
        self.containers = containers
        self._disks: dict[str, _Disk] = {}  # token -> its writable layer's last measurement

    async def _ping(self, e: Entry) -> dict[str, Any] | None:
        try:
            result, _ = await e.agent.call({"op": wire.PING.name})
        except (AgentUnavailable, AgentInterrupted):
            return None
        return result if isinstance(result, dict) else {}

    async def state(self, sandbox_id: str, e: Entry | None) -> dict[str, Any]:
        """{id, status: running | sleeping | stopped, since (ISO 8601, null when unknown)}."""
        if e is None:
            return {"id": sandbox_id, "status": "stopped", "since": None}  # never started (or destroyed)
        ping = await self._ping(e)
        if ping is not None:
            started = ping.get("startedAt")
            try:
                since = iso(float(started)) if started else None
            except ValueError:
                since = None
            return {"id": sandbox_id, "status": "running", "since": since}
        recorded = self.disk_state.recorded_state(e.token)
        if recorded is not None and recorded["status"] == "sleeping":
            return {"id": sandbox_id, **recorded}
        info = await self.containers.inspect(e.token)
        if info is None:  # removed behind ploy's back: the next call makes a new one under this id
            return {"id": sandbox_id, "status": "stopped", "since": None}
        st = info.get("State") or {}
        if st.get("Status") in ("running", "stopping"):
            # the container runs but its agent does not answer (restarting): it is up
            return {"id": sandbox_id, "status": "running", "since": _podman_time(st.get("StartedAt"))}
        out: dict[str, Any] = {
            "id": sandbox_id,
            "status": "stopped",
            "since": _podman_time(st.get("FinishedAt")) or _podman_time(st.get("StartedAt")),
        }
        if isinstance(st.get("ExitCode"), int):
            out["exitCode"] = st["ExitCode"]
        return out

    async def metrics(self, sandbox_id: str, e: Entry | None) -> dict[str, Any]:
        """The agent's figures (zeros when the sandbox does not run: it is not started to measure it)
        and the writable layer's size."""
        status = "stopped"
        figures: dict[str, Any] | None = None
        if e is not None:
            try:
                figures, _ = await e.agent.call({"op": wire.METRICS.name})
                status = "running"
            except (AgentUnavailable, AgentInterrupted):
                recorded = self.disk_state.recorded_state(e.token)
                status = (
                    "sleeping" if recorded is not None and recorded["status"] == "sleeping" else "stopped"
                )
        if not isinstance(figures, dict):
            figures = {
                "cpu": {"percent": 0.0, "cores": None, "totalSeconds": 0.0},
                "memory": {"used": 0, "limit": None},
                "pids": {"current": 0, "limit": None},
                "network": {"rxBytes": 0, "txBytes": 0},
            }
        disk = await self._disk(e.token) if e is not None else None
        return {
            "id": sandbox_id,
            "status": status,
            "timestamp": iso(time.time()),
            **figures,
            "disk": {
                "used": disk.used if disk is not None else 0,
                "measuredAt": disk.measured_at if disk is not None else None,
            },
        }

    async def _disk(self, token: str) -> _Disk | None:
        d = self._disks.get(token)
        if d is None or (d.upper is not None and not os.path.isdir(d.upper)):
            info = await self.containers.inspect(token)
            upper = (((info or {}).get("GraphDriver") or {}).get("Data") or {}).get("UpperDir")
            if not isinstance(upper, str) or not os.path.isdir(upper):
                return None
            d = self._disks[token] = _Disk(upper)
        if d.measured == 0.0:
            await self._measure(d)  # the first answer waits for one walk
        elif time.monotonic() - d.measured > DISK_REFRESH_S and (d.task is None or d.task.done()):
            d.task = asyncio.get_running_loop().create_task(self._measure(d))
        return d

    @staticmethod
    async def _measure(d: _Disk) -> None:
        assert d.upper is not None
        d.used = await asyncio.to_thread(disk_used, d.upper)
        d.measured, d.measured_at = time.monotonic(), iso(time.time())

    def forget(self, token: str) -> None:
        d = self._disks.pop(token, None)
        if d is not None and d.task is not None:
            d.task.cancel()
