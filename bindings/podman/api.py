"""Podman's REST API on this machine, for the one call where the CLI's own start-up shows: starting a
container that exists. A sandbox with a disk limit is made with `podman create`, its layer moved onto
its disk, then started (sandbox/disks.py); through the CLI that second command costs a whole podman
process start (~40-80 ms here, measured by bench/sandbox_bench.py --isolation), through the API an
HTTP request to a process that is already up. Waking a stopped sandbox gains the same.

One `podman system service` per machine, shared by every ploy process: started on first use under a
lock, listening on SOCKET, and gone by itself after IDLE_S without a request (the next use starts it
again). When it cannot be reached or started, `start` falls back to the CLI: the API is a shortcut,
never a new way to fail. Creating stays with the CLI, whose arguments are the one description of a
sandbox's container (hosts/local.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bindings.podman import PODMAN, PodmanError, run

SOCKET = Path(os.environ.get("PLOY_PODMAN_API_SOCKET", "/run/ploy-sandbox/podman-api.sock"))
IDLE_S = 300
SERVICE_START_S = 10.0
PREFIX = "/v4.0.0/libpod"
START_TIMEOUT_S = 300.0
# host-local IPAM's words for an address still reserved under this container's id
LEAKED_ADDRESS = "duplicate allocation is not allowed"


async def start(name: str) -> None:
    """`podman start NAME`, through the API when the service answers (else the CLI).

    Once more when the container's network address was never released: Podman 4.3 (CNI) forgets a
    stopped container's network even when its teardown stopped early, and host-local IPAM keeps the
    address reserved under the container's id, so the next start fails "duplicate allocation" (seen
    in CI on a sandbox restarted just after `podman kill`, while Podman's cleanup of it still ran).
    That failed start's own teardown releases the reservation: the second start gets an address."""
    await once_more_if_address_leaked(lambda: _start(name))


async def once_more_if_address_leaked(start: Callable[[], Awaitable[None]]) -> None:
    """Run `start` (a container start, here or on a remote host), and once more if it failed because
    the container's address was never released (see `start`)."""
    try:
        await start()
    except PodmanError as e:
        if LEAKED_ADDRESS not in str(e):
            raise
        await start()


async def _start(name: str) -> None:
    try:
        status, body = await _post(f"/containers/{name}/start")
    except OSError:
        try:
            await asyncio.to_thread(ensure_service)
            status, body = await _post(f"/containers/{name}/start")
        except OSError:
            await run("start", name)
            return
    if status in (204, 304):  # started; already running
        return
    raise PodmanError(f"podman start failed: {_message(body) or f'HTTP {status}'}", args=["start", name])


async def _post(path: str) -> tuple[int, bytes]:
    """One request on its own connection, in a worker thread as the CLI's calls are. Not asyncio's
    unix streams: under uvloop nothing but the awaiting task holds them, so a Python worker's request
    task (which only the loop holds) became garbage while podman started the container, and was
    answered "the worker will never respond" (runtime/workers/python_worker.py)."""
    return await asyncio.to_thread(_post_blocking, path)


def _post_blocking(path: str) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2.0)
        s.connect(str(SOCKET))
        s.settimeout(START_TIMEOUT_S)  # a start under load takes seconds, never minutes
        s.sendall(
            f"POST {PREFIX}{path} HTTP/1.1\r\nHost: podman\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise ConnectionResetError("podman service: no HTTP answer") from None
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body


def _unchunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()
    if isinstance(data, dict):
        return str(data.get("message") or data.get("cause") or "")
    return ""


def _answers() -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(SOCKET))
        except OSError:
            return False
    return True


def ensure_service() -> None:
    """Start the machine's service unless one answers (blocking: run it in a thread). Raises OSError
    when it does not come up."""
    SOCKET.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(SOCKET.parent / "podman-api.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers():
            return  # another process started it meanwhile
        with contextlib.suppress(FileNotFoundError):
            SOCKET.unlink()  # a dead service's socket
        # setsid -f: not ploy's child (no zombie when it exits idle, not killed with `ploy dev`'s
        # session); the containers it starts outlive it as those the CLI starts do (conmon). From /:
        # it serves every project on the machine, and runc cannot start a container from a working
        # directory that was deleted (the folder of the `ploy dev` that happened to start it)
        try:
            subprocess.run(
                ["setsid", "-f", PODMAN, "system", "service", f"--time={IDLE_S}", f"unix://{SOCKET}"],
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                check=True,
            )
        except subprocess.CalledProcessError as e:
            raise ConnectionRefusedError(f"podman system service did not start ({e})") from None
        deadline = time.monotonic() + SERVICE_START_S
        while not _answers():
            if time.monotonic() > deadline:
                raise ConnectionRefusedError(f"podman system service did not answer on {SOCKET}")
            time.sleep(0.02)
