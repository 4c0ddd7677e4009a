"""Sessions: one persistent bash per session, so `cd`, `export`, functions and variables carry over.

Each command is written to a file and sourced by the session's shell (so a syntax error cannot break
the framing), with stdin from /dev/null. After it, the shell prints a random sentinel on stdout and on
stderr and reports `<exit code> <cwd>` on fd 3; the agent reads each stream up to its sentinel. The
exported environment and the shell functions are snapshotted after every command (`export -p`,
`declare -f`), so a session whose shell died (`exit`, a timeout in a shell builtin, a container
restart) comes back with its cwd, environment and functions.
Commands of one session run one at a time, in order (a FIFO lock); sessions run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from common import STATE_DIR, WORKDIR, AgentError, command_env, kill_tree, read_json, write_json_atomic
from error_codes import ALREADY_EXISTS, INVALID_ARGUMENT, NOT_FOUND, TIMEOUT

SESSIONS_DIR = os.path.join(STATE_DIR, "sessions")
_sessions: dict[str, Session] = {}
# Live shells kept at once. Each holds four of the agent's file descriptors (nofile is 1024), and the
# docs' example makes a session per request: without a cap the 200th session broke the whole sandbox.
# The least recently used idle shell beyond it is stopped; it comes back from its snapshot (cwd,
# exported variables and functions; unexported variables are lost) on its next command.
MAX_SHELLS = 32


class Session:
    def __init__(
        self,
        sid: str,
        cwd: str,
        env: dict[str, str],
        command_timeout_ms: float | None = None,
        name: str | None = None,
    ) -> None:
        self.id = sid
        self.cwd = cwd
        self.env = env  # the environment the session was created with (snapshot wins when present)
        self.command_timeout_ms = command_timeout_ms  # exec/execStream's timeoutMs when they give none
        self.name = name
        self.deleted = False
        self.dir = os.path.join(SESSIONS_DIR, sid)
        self.lock = asyncio.Lock()
        self.proc: asyncio.subprocess.Process | None = None
        self.ctl: asyncio.StreamReader | None = None
        self.nonce = uuid.uuid4().hex
        self.sentinel = f"\0__ploy_end_{self.nonce}\0".encode()
        self.busy = False
        self.used = time.monotonic()
        self._discard: list[asyncio.Future[None]] = []

    @property
    def env_file(self) -> str:
        return os.path.join(self.dir, "env.sh")

    def save(self) -> None:
        if self.deleted:
            return
        write_json_atomic(
            os.path.join(self.dir, "meta.json"),
            {
                "id": self.id,
                "cwd": self.cwd,
                "env": self.env,
                "commandTimeoutMs": self.command_timeout_ms,
                "name": self.name,
            },
        )

    async def _ensure_shell(self) -> asyncio.subprocess.Process:
        if self.proc is not None and self.proc.returncode is None:
            return self.proc
        _stop_idle_shells(keep=self)
        r, w = os.pipe()
        cwd = self.cwd if os.path.isdir(self.cwd) else WORKDIR
        self.proc = await asyncio.create_subprocess_exec(
            "/bin/bash",
            "--noprofile",
            "--norc",
            cwd=cwd,
            env=command_env(self.env),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=(w,),
            start_new_session=True,
        )
        os.close(w)
        loop = asyncio.get_running_loop()
        ctl = self.ctl = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(ctl), os.fdopen(r, "rb", 0))
        assert self.proc.stdin is not None
        boot = f"exec 3>&{w} {w}>&-\n" if w != 3 else ""
        if os.path.exists(self.env_file):
            boot += f". {shlex.quote(self.env_file)} 2>/dev/null\n"
        self.proc.stdin.write(boot.encode())
        return self.proc

    async def run(
        self,
        command: str,
        timeout: float | None,
        limit: int,
        merge: bool = False,
        stdin: bytes | None = None,
    ) -> AsyncIterator[tuple[bytes, bytes]]:
        """Yield (kind, data) with kind b"O"/b"E", then (b"R", b"<exit code>") once the command is done.

        merge=True sends the command's stderr into its stdout pipe, so a stream keeps their order.
        `stdin`: what the command reads on stdin (through a file), /dev/null without it."""
        if self.deleted:  # a command that waited for the lock while deleteSession ran
            raise AgentError(NOT_FOUND, f"session {self.id} was deleted", sessionId=self.id)
        self.used = time.monotonic()
        proc = await self._ensure_shell()
        await self._stop_discarding()
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None and self.ctl
        cmd_file = os.path.join(self.dir, "cmd.sh")
        with open(cmd_file, "w") as f:
            f.write(command + "\n")
        stdin_file = "/dev/null"
        if stdin is not None:
            stdin_file = os.path.join(self.dir, "stdin")
            with open(stdin_file, "wb") as stdin_f:
                stdin_f.write(stdin)
        s = "\\000__ploy_end_" + self.nonce + "\\000"
        line = (
            f". {shlex.quote(cmd_file)} <{shlex.quote(stdin_file)}{' 2>&1' if merge else ''}; __ploy_rc=$?; {{ export -p; declare -f; }} > {shlex.quote(self.env_file)}; "
            f"printf '{s}'; printf '{s}' >&2; printf '%s %s\\n' \"$__ploy_rc\" \"$PWD\" >&3\n"
        )
        proc.stdin.write(line.encode())
        self.busy = True
        queue: asyncio.Queue[tuple[bytes, bytes] | None] = asyncio.Queue()

        async def pump(stream: asyncio.StreamReader, kind: bytes) -> None:
            pending = b""
            keep = len(self.sentinel) - 1
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    if pending:
                        await queue.put((kind, pending))
                    return
                data = pending + chunk
                i = data.find(self.sentinel)
                if i >= 0:
                    if i:
                        await queue.put((kind, data[:i]))
                    return  # anything after the sentinel belongs to a later command; dropped
                pending = data[-keep:]
                if len(data) > keep:
                    await queue.put((kind, data[:-keep]))

        async def pumps() -> None:
            await asyncio.gather(pump(proc.stdout, b"O"), pump(proc.stderr, b"E"))  # type: ignore[arg-type]
            await queue.put(None)

        task = asyncio.ensure_future(pumps())
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        timed_out = False
        status_read = False
        try:
            while True:
                wait = None if deadline is None else max(deadline - loop.time(), 0)
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    timed_out = True
                    await self._interrupt(task)
                    deadline = None
                    continue
                if item is None:
                    break
                yield item
            status = await self._status()
            status_read = True
            if timed_out:
                raise AgentError(
                    TIMEOUT,
                    f"command timed out after {int((timeout or 0) * 1000)} ms and was killed",
                    timeoutMs=int((timeout or 0) * 1000),
                )
            yield b"R", str(status).encode()
        finally:
            self.busy = False
            if not status_read:
                # the reader went away mid-command: stop the command, then resync the shell (or drop it)
                if not task.done():
                    await self._interrupt(task)
                try:
                    await asyncio.wait_for(asyncio.shield(task), 2)
                    await asyncio.wait_for(self._status(), 2)
                except (TimeoutError, ValueError):
                    task.cancel()
                    self._kill_shell()
                    self.proc = None
            self.save()
            self._start_discarding()

    def _start_discarding(self) -> None:
        """Between commands, read and drop what a child left in the background prints, so it does not
        show up as the next command's output."""
        proc = self.proc
        if proc is None or proc.returncode is not None or proc.stdout is None or proc.stderr is None:
            return

        async def drop(stream: asyncio.StreamReader) -> None:
            while await stream.read(65536):
                pass

        self._discard = [asyncio.ensure_future(drop(proc.stdout)), asyncio.ensure_future(drop(proc.stderr))]

    async def _stop_discarding(self) -> None:
        for task in self._discard:
            task.cancel()
        for task in self._discard:
            with contextlib.suppress(BaseException):
                await task
        self._discard = []

    async def _status(self) -> int:
        assert self.ctl is not None
        line = await self.ctl.readline()
        if not line:  # the shell itself exited (`exit 3` in the command): report its status, restart later
            assert self.proc is not None
            code = await self.proc.wait()
            self.proc = None
            return code if code >= 0 else 128 - code
        rc, _, cwd = line.decode(errors="replace").rstrip("\n").partition(" ")
        if cwd:
            self.cwd = cwd
        return int(rc) if rc.lstrip("-").isdigit() else -1

    async def _interrupt(self, pumps: asyncio.Future[None]) -> None:
        """Kill what the command started; if the shell itself is stuck (a builtin loop), kill the shell."""
        if self.proc is None:
            return
        kill_tree(self.proc.pid, include_self=False)
        try:
            await asyncio.wait_for(asyncio.shield(pumps), 0.5)
        except TimeoutError:
            self._kill_shell()

    def _kill_shell(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            kill_tree(self.proc.pid)

    def stop_shell(self) -> None:
        """Stop an idle shell and let go of its pipes; the next command starts it again from the snapshot."""
        self._kill_shell()
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc = None
        self.ctl = None


def _stop_idle_shells(keep: Session) -> None:
    live = [
        s for s in _sessions.values() if s is not keep and s.proc is not None and s.proc.returncode is None
    ]
    idle = sorted((s for s in live if not s.busy and not s.lock.locked()), key=lambda s: s.used)
    for s in idle[: max(len(live) - MAX_SHELLS + 1, 0)]:
        s.stop_shell()


def _command_timeout(options: dict[str, Any]) -> float | None:
    ms = options.get("commandTimeoutMs")
    if ms is None:
        return None
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms <= 0:
        raise AgentError(INVALID_ARGUMENT, "commandTimeoutMs must be a positive number")
    return ms


def create(options: dict[str, Any], sandbox_cwd: str = WORKDIR) -> Session:
    cwd = options.get("cwd") or sandbox_cwd
    if not isinstance(cwd, str):
        raise AgentError(INVALID_ARGUMENT, "cwd must be a string")
    cwd = os.path.normpath(os.path.join(sandbox_cwd, cwd))
    os.makedirs(cwd, exist_ok=True)
    env = options.get("env") or {}
    if not isinstance(env, dict):
        raise AgentError(INVALID_ARGUMENT, "env must be an object of strings")
    sid = options.get("id") or "session_" + uuid.uuid4().hex[:16]
    if not isinstance(sid, str) or not sid.replace("-", "").replace("_", "").isalnum() or len(sid) > 64:
        raise AgentError(INVALID_ARGUMENT, "session id: 1-64 letters, digits, '-' or '_'")
    if sid in _sessions or os.path.exists(os.path.join(SESSIONS_DIR, sid)):
        raise AgentError(ALREADY_EXISTS, f"session {sid} already exists", sessionId=sid)
    name = options.get("name")
    if name is not None and not isinstance(name, str):
        raise AgentError(INVALID_ARGUMENT, "name must be a string")
    s = Session(sid, cwd, {str(k): str(v) for k, v in env.items()}, _command_timeout(options), name)
    os.makedirs(s.dir, exist_ok=True)
    s.save()
    _sessions[sid] = s
    return s


def get(sid: Any) -> Session:
    if not isinstance(sid, str) or not sid or "/" in sid or sid.startswith("."):
        raise AgentError(INVALID_ARGUMENT, "sessionId must be a non-empty string")
    s = _sessions.get(sid)
    if s is not None:
        return s
    try:
        meta = read_json(os.path.join(SESSIONS_DIR, sid, "meta.json"))
    except (OSError, ValueError):
        raise AgentError(NOT_FOUND, f"no session with id {sid}", sessionId=sid) from None
    s = _sessions[sid] = Session(
        sid, meta.get("cwd") or WORKDIR, meta.get("env") or {}, meta.get("commandTimeoutMs"), meta.get("name")
    )
    return s


def delete(sid: Any) -> Session:
    """Forget a session: its shell (and whatever its command started) is killed and its folder removed.
    The caller kills the session's background processes."""
    s = get(sid)
    _sessions.pop(s.id, None)
    s.deleted = True
    # a command running now ends with the shell (its run() reports the exit status and saves nothing)
    s._kill_shell()
    if not s.busy:
        s.stop_shell()
    shutil.rmtree(s.dir, ignore_errors=True)
    return s


def busy() -> bool:
    return any(s.busy for s in _sessions.values())


def describe(s: Session) -> dict[str, Any]:
    out: dict[str, Any] = {"sessionId": s.id, "cwd": s.cwd}
    if s.name is not None:
        out["name"] = s.name
    if s.command_timeout_ms is not None:
        out["commandTimeoutMs"] = s.command_timeout_ms
    return out
