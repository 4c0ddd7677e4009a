"""exec and execStream outside sessions: one `bash -c` per command, in its own process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from common import CONFIG, WORKDIR, AgentError, command_env, kill_tree, resolve
from conn import Conn

# After the command exits, how long its output pipes may stay open (held by a child it left running in
# the background) before we stop waiting for them.
PIPE_GRACE_S = 0.2


class Capped:
    """Output kept up to a limit; the rest is drained and dropped so the command never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data += chunk


async def _pump(stream: asyncio.StreamReader, sink: Capped) -> None:
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return
        sink.add(chunk)


def timeout_s(req: dict[str, Any]) -> float | None:
    ms = req.get("timeoutMs")
    if ms is None:
        return None
    if not isinstance(ms, (int, float)) or ms <= 0:
        raise AgentError("INVALID_ARGUMENT", "timeoutMs must be a positive number")
    return ms / 1000


def prepare(req: dict[str, Any], cwd_default: str = WORKDIR, env_base: dict[str, str] | None = None) -> tuple[str, str, dict[str, str]]:
    command = req.get("command")
    if not isinstance(command, str) or not command.strip():
        raise AgentError("INVALID_ARGUMENT", "command must be a non-empty string")
    cwd = resolve(req.get("cwd") or cwd_default, cwd_default)
    if not os.path.isdir(cwd):
        raise AgentError("NOT_FOUND", f"working directory does not exist: {cwd}", path=cwd)
    env = req.get("env")
    if env is not None and not isinstance(env, dict):
        raise AgentError("INVALID_ARGUMENT", "env must be an object of strings")
    return command, cwd, command_env(env, env_base)


async def run_exec(conn: Conn, req: dict[str, Any]) -> None:
    command, cwd, env = prepare(req)
    timeout = timeout_s(req)
    limit = int(req.get("outputLimit") or CONFIG.output_limit)
    proc = await asyncio.create_subprocess_exec(
        "/bin/bash", "-c", command, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Capped(limit), Capped(limit)
    pumps = asyncio.gather(_pump(proc.stdout, out), _pump(proc.stderr, err))
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        timed_out = True
        kill_tree(proc.pid)
        await proc.wait()
    except BaseException:
        kill_tree(proc.pid)
        raise
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(pumps), PIPE_GRACE_S)
    pumps.cancel()
    with contextlib.suppress(BaseException):
        await pumps
    stdout = out.data.decode("utf-8", errors="replace")
    stderr = err.data.decode("utf-8", errors="replace")
    if timed_out:
        raise AgentError(
            "TIMEOUT", f"command timed out after {req.get('timeoutMs')} ms and was killed",
            stdout=stdout, stderr=stderr, timeoutMs=req.get("timeoutMs"),
        )
    code = proc.returncode if proc.returncode is not None else -1
    exit_code = code if code >= 0 else 128 - code
    result: dict[str, Any] = {"stdout": stdout, "stderr": stderr, "exitCode": exit_code, "success": exit_code == 0}
    if out.truncated or err.truncated:
        result["truncated"] = True
    await conn.reply(result)


async def run_stream(conn: Conn, req: dict[str, Any]) -> None:
    """Merged stdout+stderr as O frames while the command runs; the final reply carries the exit code."""
    command, cwd, env = prepare(req)
    timeout = timeout_s(req)
    proc = await asyncio.create_subprocess_exec(
        "/bin/bash", "-c", command, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    assert proc.stdout is not None
    await stream_output(conn, proc.pid, proc.stdout, timeout, req)
    await proc.wait()
    code = proc.returncode if proc.returncode is not None else -1
    exit_code = code if code >= 0 else 128 - code
    await conn.reply({"exitCode": exit_code, "success": exit_code == 0})


async def stream_output(conn: Conn, pid: int, stdout: asyncio.StreamReader, timeout: float | None, req: dict[str, Any]) -> None:
    """Forward output until EOF; kill the tree on timeout or when the host goes away."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    closed = asyncio.ensure_future(conn.wait_closed_by_peer())
    try:
        while True:
            read = asyncio.ensure_future(stdout.read(256 * 1024))
            wait_for = None if deadline is None else max(deadline - loop.time(), 0)
            done, _ = await asyncio.wait({read, closed}, timeout=wait_for, return_when=asyncio.FIRST_COMPLETED)
            if read not in done:
                read.cancel()
                kill_tree(pid)
                if closed in done:
                    raise ConnectionResetError("host closed the stream")
                raise AgentError("TIMEOUT", f"command timed out after {req.get('timeoutMs')} ms and was killed",
                                 timeoutMs=req.get("timeoutMs"))
            chunk = read.result()
            if not chunk:
                return
            try:
                await conn.send(b"O", chunk)
            except ConnectionError:
                kill_tree(pid)
                raise
    finally:
        closed.cancel()
