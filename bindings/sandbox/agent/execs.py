"""exec and execStream outside sessions: one `bash -c` per command, in its own process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from common import CONFIG, WORKDIR, AgentError, command_env, kill_tree, resolve, write_all
from conn import Conn
from error_codes import INVALID_ARGUMENT, NOT_FOUND, TIMEOUT

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


# Pipes still being drained after their command returned (a background child holds them open).
_DRAINING: set[asyncio.Future[Any]] = set()


def _drain_later(pumps: asyncio.Future[Any], *sinks: Capped) -> None:
    """Keep reading what a background child prints, and drop it, so it never blocks or gets SIGPIPE."""
    for sink in sinks:
        sink.limit = 0
    if not pumps.done():
        _DRAINING.add(pumps)
        pumps.add_done_callback(_DRAINING.discard)


async def _reader(fd: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=1 << 20)
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), open(fd, "rb", 0)
    )
    return reader


async def _spawn(
    command: str, cwd: str, env: dict[str, str], merged: bool, stdin: bytes | None = None
) -> tuple[Any, list[asyncio.StreamReader]]:
    """`bash -c command` in its own process group, its output on plain pipes we read ourselves.

    Not asyncio's PIPE: with it, Process.wait() waits until every writer has closed the pipe, so a
    command that leaves a child in the background (`server &`) would hold exec() for that child's life.
    `stdin`: what the command reads on stdin (then end-of-file); /dev/null without it."""
    fds = [os.pipe() for _ in range(1 if merged else 2)]
    stdin_fds = os.pipe() if stdin is not None else None
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/bash",
            "-c",
            command,
            cwd=cwd,
            env=env,
            stdin=stdin_fds[0] if stdin_fds else asyncio.subprocess.DEVNULL,
            stdout=fds[0][1],
            stderr=fds[-1][1],
            start_new_session=True,
        )
    except BaseException:
        for r, _ in fds:
            os.close(r)
        if stdin_fds:
            os.close(stdin_fds[1])
        raise
    finally:
        for _, w in fds:
            os.close(w)
        if stdin_fds:
            os.close(stdin_fds[0])
    if stdin_fds is not None:
        _feed(stdin_fds[1], stdin or b"")
    return proc, [await _reader(r) for r, _ in fds]


_FEEDING: set[asyncio.Future[Any]] = set()


def _feed(fd: int, data: bytes) -> None:
    """Write `data` to the command's stdin in the background, then close it (end-of-file). A command
    that exits without reading all of it ends the write (EPIPE), not the call."""
    os.set_blocking(fd, False)

    async def feed() -> None:
        try:
            await write_all(fd, data)
        except OSError:
            pass
        finally:
            os.close(fd)

    task = asyncio.ensure_future(feed())
    _FEEDING.add(task)
    task.add_done_callback(_FEEDING.discard)


def stdin_bytes(req: dict[str, Any]) -> bytes | None:
    data = req.get("stdin")
    if data is None:
        return None
    if not isinstance(data, str):
        raise AgentError(INVALID_ARGUMENT, "stdin must be a string")
    return data.encode("utf-8", "surrogateescape")


def timeout_s(req: dict[str, Any]) -> float | None:
    ms = req.get("timeoutMs")
    if ms is None:
        return None
    if not isinstance(ms, (int, float)) or ms <= 0:
        raise AgentError(INVALID_ARGUMENT, "timeoutMs must be a positive number")
    return ms / 1000


def prepare(
    req: dict[str, Any], cwd_default: str = WORKDIR, env_base: dict[str, str] | None = None
) -> tuple[str, str, dict[str, str]]:
    command = req.get("command")
    if not isinstance(command, str) or not command.strip():
        raise AgentError(INVALID_ARGUMENT, "command must be a non-empty string")
    cwd = resolve(req.get("cwd") or cwd_default, cwd_default)
    if not os.path.isdir(cwd):
        raise AgentError(NOT_FOUND, f"working directory does not exist: {cwd}", path=cwd)
    env = req.get("env")
    if env is not None and not isinstance(env, dict):
        raise AgentError(INVALID_ARGUMENT, "env must be an object of strings")
    return command, cwd, command_env(env, env_base)


async def run_exec(conn: Conn, req: dict[str, Any]) -> None:
    command, cwd, env = prepare(req)
    timeout = timeout_s(req)
    limit = int(req.get("outputLimit") or CONFIG.output_limit)
    proc, (out_pipe, err_pipe) = await _spawn(command, cwd, env, merged=False, stdin=stdin_bytes(req))
    out, err = Capped(limit), Capped(limit)
    pumps = asyncio.gather(_pump(out_pipe, out), _pump(err_pipe, err))
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
    _drain_later(pumps, out, err)
    stdout = out.data.decode("utf-8", errors="replace")
    stderr = err.data.decode("utf-8", errors="replace")
    if timed_out:
        raise AgentError(
            TIMEOUT,
            f"command timed out after {req.get('timeoutMs')} ms and was killed",
            stdout=stdout,
            stderr=stderr,
            timeoutMs=req.get("timeoutMs"),
        )
    code = proc.returncode if proc.returncode is not None else -1
    exit_code = code if code >= 0 else 128 - code
    result: dict[str, Any] = {
        "stdout": stdout,
        "stderr": stderr,
        "exitCode": exit_code,
        "success": exit_code == 0,
    }
    if out.truncated or err.truncated:
        result["truncated"] = True
    await conn.reply(result)


async def run_stream(conn: Conn, req: dict[str, Any]) -> None:
    """Merged stdout+stderr as O frames while the command runs (with `split`: stdout as O frames,
    stderr as E frames); the final reply carries the exit code."""
    command, cwd, env = prepare(req)
    timeout = timeout_s(req)
    split = bool(req.get("split"))
    proc, pipes = await _spawn(command, cwd, env, merged=not split, stdin=stdin_bytes(req))
    exited = asyncio.ensure_future(proc.wait())
    if split:
        # one pump per pipe into a queue, so stream_output forwards both in the order they arrive
        merged = _Merged(pipes)
        try:
            await stream_output(conn, proc.pid, merged, timeout, req, exited=exited)  # type: ignore[arg-type]
        finally:
            merged.drop_rest()
    else:
        await stream_output(conn, proc.pid, pipes[0], timeout, req, exited=exited)
    await proc.wait()
    code = proc.returncode if proc.returncode is not None else -1
    exit_code = code if code >= 0 else 128 - code
    await conn.reply({"exitCode": exit_code, "success": exit_code == 0})


class _Merged:
    """stdout and stderr pipes read as one stream of (b"O" | b"E", bytes), in arrival order, with the
    StreamReader.read interface stream_output uses (b"" once both have ended)."""

    def __init__(self, pipes: list[asyncio.StreamReader]) -> None:
        self.queue: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue(maxsize=4)
        self.open = len(pipes)
        self.dropping = False
        for pipe, kind in zip(pipes, (b"O", b"E")):
            task = asyncio.ensure_future(self._pump(pipe, kind))
            _DRAINING.add(task)
            task.add_done_callback(_DRAINING.discard)

    async def _pump(self, pipe: asyncio.StreamReader, kind: bytes) -> None:
        while True:
            chunk = await pipe.read(256 * 1024)
            if not self.dropping:
                await self.queue.put((kind, chunk))
            if not chunk:
                return

    async def read(self, n: int = -1) -> Any:
        while self.open:
            kind, chunk = await self.queue.get()
            if chunk:
                return kind, chunk
            self.open -= 1
        return b""

    def drop_rest(self) -> None:
        """The stream is over: what a background child still prints is read and dropped."""
        self.dropping = True
        while not self.queue.empty():
            self.queue.get_nowait()  # frees a pump waiting to put


async def stream_output(
    conn: Conn,
    pid: int,
    stdout: asyncio.StreamReader,
    timeout: float | None,
    req: dict[str, Any],
    exited: asyncio.Future[Any] | None = None,
) -> None:
    """Forward output until EOF; kill the tree on timeout or when the host goes away.

    With `exited`, the stream also ends PIPE_GRACE_S after the command exits, even if a child it left
    in the background still holds the pipe (that child's later output is drained and dropped)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    grace_end: float | None = None
    closed = asyncio.ensure_future(conn.wait_closed_by_peer())
    try:
        while True:
            if grace_end is None and exited is not None and exited.done():
                grace_end = loop.time() + PIPE_GRACE_S
            if grace_end is not None and loop.time() >= grace_end:
                if isinstance(stdout, _Merged):
                    stdout.drop_rest()
                else:
                    _drain_later(asyncio.ensure_future(_pump(stdout, Capped(0))))
                return
            # once the command has exited, its timeout no longer applies: only the grace period does
            end = grace_end if grace_end is not None else deadline
            watch: set[asyncio.Future[Any]] = {closed}
            if exited is not None and grace_end is None:
                watch.add(exited)
            read = asyncio.ensure_future(stdout.read(256 * 1024))
            done, _ = await asyncio.wait(
                {read, *watch},
                timeout=None if end is None else max(end - loop.time(), 0),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if read not in done:
                read.cancel()
                if closed in done:
                    kill_tree(pid)
                    raise ConnectionResetError("host closed the stream")
                if grace_end is not None or (exited is not None and exited in done):
                    continue  # the command has exited: the top of the loop handles the grace period
                kill_tree(pid)
                raise AgentError(
                    TIMEOUT,
                    f"command timed out after {req.get('timeoutMs')} ms and was killed",
                    timeoutMs=req.get("timeoutMs"),
                )
            chunk = read.result()
            if not chunk:
                return
            kind = b"O"
            if isinstance(chunk, tuple):  # from _Merged: (frame type, bytes)
                kind, chunk = chunk
            try:
                await conn.send(kind, chunk)
            except ConnectionError:
                kill_tree(pid)
                raise
    finally:
        await conn.stop_watching(closed)
