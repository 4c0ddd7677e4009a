"""Readiness: waiting, inside the sandbox, until a port answers or a background process has ended.

Checked from inside the container (127.0.0.1, then ::1), so a server that listens only on localhost is
ready too. Each attempt is a connect that a closed port refuses at once, so polling every 10 ms costs
next to nothing and a port is seen within ~10 ms of listening.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import procs
from common import AgentError
from error_codes import INVALID_ARGUMENT, PROCESS_EXITED_BEFORE_READY, TIMEOUT

DEFAULT_INTERVAL_S = 0.01
ATTEMPT_TIMEOUT_S = 2.0


def check_port(value: Any, name: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise AgentError(INVALID_ARGUMENT, f"{name} must be an integer from 1 to 65535, got {value!r}")
    return value


def _timeout(req: dict[str, Any]) -> float | None:
    ms = req.get("timeoutMs")
    if ms is None:
        return None
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
        raise AgentError(INVALID_ARGUMENT, f"timeoutMs must be a non-negative number, got {ms!r}")
    return ms / 1000


def _status_range(status: Any) -> tuple[int, int]:
    if status is None:
        return 200, 399
    if isinstance(status, int) and not isinstance(status, bool):
        return status, status
    if isinstance(status, dict) and isinstance(status.get("min"), int) and isinstance(status.get("max"), int):
        return status["min"], status["max"]
    raise AgentError(INVALID_ARGUMENT, f"status must be a number or {{min, max}}, got {status!r}")


async def _attempt(port: int, mode: str, path: str) -> int | None:
    """The HTTP status (http mode) or 0 (tcp mode) when the port answered; None when it did not."""
    for host in ("127.0.0.1", "::1"):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), ATTEMPT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            continue
        try:
            if mode == "tcp":
                return 0
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUser-Agent: ploy-waitForPort\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            line = await asyncio.wait_for(reader.readline(), ATTEMPT_TIMEOUT_S)
            parts = line.split()
            if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
                return int(parts[1])
            return None
        except (OSError, asyncio.TimeoutError):
            return None
        finally:
            writer.close()
    return None


async def wait_for_port(req: dict[str, Any]) -> dict[str, Any]:
    port = check_port(req.get("port"))
    mode = req.get("mode") or "http"
    if mode not in ("http", "tcp"):
        raise AgentError(INVALID_ARGUMENT, f"mode must be 'http' or 'tcp', got {mode!r}")
    path = req.get("path") or "/"
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in "\r\n "):
        raise AgentError(INVALID_ARGUMENT, f"path must start with '/' and have no spaces, got {path!r}")
    low, high = _status_range(req.get("status"))
    timeout = _timeout(req)
    interval = req.get("intervalMs")
    interval_s = DEFAULT_INTERVAL_S if interval is None else max(float(interval), 1.0) / 1000
    proc_id = req.get("processId")
    if proc_id is not None:
        procs.info(proc_id)  # NOT_FOUND for an unknown process
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    last = None
    while True:
        status = await _attempt(port, mode, path)
        if status is not None:
            if mode == "tcp":
                return {"port": port}
            if low <= status <= high:
                return {"port": port, "status": status}
            last = status
        if proc_id is not None:
            record = procs.info(proc_id)
            if record["status"] != "running":
                raise AgentError(
                    PROCESS_EXITED_BEFORE_READY,
                    f"process {proc_id} exited ({record['exitCode']}) before port {port} was ready",
                    exitCode=record["exitCode"],
                    port=port,
                )
        if deadline is not None and loop.time() >= deadline:
            said = f" (last answer: HTTP {last})" if last is not None else ""
            raise AgentError(
                TIMEOUT,
                f"port {port} was not ready after {int((timeout or 0) * 1000)} ms{said}",
                port=port,
                timeoutMs=int((timeout or 0) * 1000),
            )
        await asyncio.sleep(interval_s)


async def wait_for_exit(req: dict[str, Any]) -> dict[str, Any]:
    proc_id = req.get("id")
    timeout = _timeout(req)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    exit_file = os.path.join(procs._dir(proc_id), "exit.json")
    while True:
        record = procs.info(proc_id)  # also writes the record of a runner that disappeared
        if record["status"] != "running":
            return record
        if deadline is not None and loop.time() >= deadline:
            raise AgentError(
                TIMEOUT,
                f"process {proc_id} was still running after {int((timeout or 0) * 1000)} ms",
                id=proc_id,
                timeoutMs=int((timeout or 0) * 1000),
            )
        # the record appears when the runner writes it; a stat per 10 ms is the whole cost
        for _ in range(10):
            await asyncio.sleep(0.01)
            if os.path.exists(exit_file) or (deadline is not None and loop.time() >= deadline):
                break
