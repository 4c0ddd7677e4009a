"""An interactive shell on a pseudo-terminal, its bytes carried both ways on one host connection.

The host writes D frames (keystrokes, as the browser sent them) and J frames ({"resize": [cols, rows]});
the agent sends the terminal's output as O frames, and when the shell exits a J reply {exitCode}. The
host closing the connection ends the shell (SIGHUP to its session, then SIGKILL to what is left).
A session's terminal starts in the session's cwd with its exported variables and functions.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shlex
import signal
import struct
import termios
from typing import Any

import proto
from common import WORKDIR, AgentError, command_env
from conn import Conn
from error_codes import INVALID_ARGUMENT

HANGUP_GRACE_S = 0.5


def _size(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise AgentError(INVALID_ARGUMENT, f"{name} must be an integer from 1 to 1000, got {value!r}")
    return value


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _spawn(argv: list[str], cwd: str, env: dict[str, str], cols: int, rows: int) -> tuple[int, int]:
    master, slave = os.openpty()
    _set_size(slave, cols, rows)
    pid = os.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the PTY
        try:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.closerange(3, 65536)
            # python ignores SIGPIPE; a shell must not pass that on (`yes | head` would never end)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_DFL)
            try:
                os.chdir(cwd)
            except OSError:
                os.chdir(WORKDIR if os.path.isdir(WORKDIR) else "/")
            os.execvpe(argv[0], argv, env)
        except BaseException:
            pass
        os._exit(127)
    os.close(slave)
    os.set_blocking(master, False)
    return pid, master


async def run(conn: Conn, req: dict[str, Any], session: Any, cwd: str) -> None:
    cols = _size(req.get("cols"), "cols", 80)
    rows = _size(req.get("rows"), "rows", 24)
    shell = req.get("shell") or "/bin/bash"
    if not isinstance(shell, str) or not shell.strip():
        raise AgentError(INVALID_ARGUMENT, "shell must be a non-empty command")
    argv = shlex.split(shell)
    env = command_env(
        {"TERM": "xterm-256color", "COLORTERM": "truecolor"}, command_env(session.env) if session else None
    )
    if session is not None and os.path.basename(argv[0]) == "bash" and len(argv) == 1:
        rc = os.path.join(session.dir, "terminal.rc")
        with open(rc, "w") as f:
            f.write(
                "[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc\n[ -f ~/.bashrc ] && . ~/.bashrc\n"
                f"[ -f {shlex.quote(session.env_file)} ] && . {shlex.quote(session.env_file)} 2>/dev/null\n"
                f"cd {shlex.quote(cwd)} 2>/dev/null\n"
            )
        argv = [argv[0], "--rcfile", rc, "-i"]
    elif os.path.basename(argv[0]) in ("bash", "sh", "dash", "zsh") and len(argv) == 1:
        argv = [argv[0], "-i"]
    if not os.path.isabs(argv[0]) and not any(
        os.access(os.path.join(d, argv[0]), os.X_OK) for d in env.get("PATH", "").split(":")
    ):
        raise AgentError(INVALID_ARGUMENT, f"shell not found: {argv[0]}")
    if os.path.isabs(argv[0]) and not os.access(argv[0], os.X_OK):
        raise AgentError(INVALID_ARGUMENT, f"shell not found: {argv[0]}")
    pid, master = _spawn(argv, cwd, env, cols, rows)
    conn.writer.write(proto.frame(b"O", b""))  # started: the host answers the upgrade now
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()
    pidfd = os.pidfd_open(pid)

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        _, status = os.waitpid(pid, 0)
        if not exited.done():
            exited.set_result(os.waitstatus_to_exitcode(status))

    loop.add_reader(pidfd, on_exit)

    async def output() -> None:
        readable: asyncio.Future[None] | None = None

        def wake() -> None:
            if readable is not None and not readable.done():
                readable.set_result(None)

        loop.add_reader(master, wake)
        try:
            while True:
                try:
                    data = os.read(master, 65536)
                except BlockingIOError:
                    readable = loop.create_future()
                    await readable
                    continue
                except OSError:  # EIO: every holder of the terminal's other side is gone
                    return
                if not data:
                    return
                conn.writer.write(proto.frame(b"O", data))
                await conn.writer.drain()  # a host that does not read stops the reading here
        finally:
            loop.remove_reader(master)

    async def write_all(data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(master, view)
                view = view[n:]
            except BlockingIOError:
                done: asyncio.Future[None] = loop.create_future()
                loop.add_writer(master, _settle, done)
                try:
                    await done
                finally:
                    loop.remove_writer(master)

    async def input_() -> None:
        while True:
            try:
                kind, payload = await proto.read_frame(conn.reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the host went away: the terminal ends
            if kind == b"D":
                await write_all(payload)
            elif kind == b"J":
                try:
                    control = json.loads(payload)
                    c, r = control["resize"]
                    _set_size(master, _size(c, "cols", 80), _size(r, "rows", 24))
                except (ValueError, KeyError, TypeError, AgentError, OSError):
                    pass  # a bad control message is dropped, the terminal goes on

    out_task = asyncio.ensure_future(output())
    in_task = asyncio.ensure_future(input_())
    try:
        waits: set[asyncio.Future[Any]] = {exited, in_task}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            # what the shell printed last is still in the terminal: send it before the reply
            try:
                await asyncio.wait_for(asyncio.shield(out_task), 0.2)
            except asyncio.TimeoutError:
                pass
    finally:
        in_task.cancel()
        if not exited.done():  # the host went away: hang up, as a closed terminal window does
            _signal_group(pid, signal.SIGHUP)
            try:
                await asyncio.wait_for(asyncio.shield(exited), HANGUP_GRACE_S)
            except asyncio.TimeoutError:
                _kill_session(pid)
                await exited
        _kill_session(pid)  # jobs the shell left behind (in their own groups) would hold the terminal open
        out_task.cancel()
        loop.remove_reader(pidfd)
        os.close(pidfd)
        os.close(master)
    code = exited.result()
    try:
        await conn.reply({"exitCode": code if code >= 0 else 128 - code})
    except (ConnectionError, OSError):
        pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        pass


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the terminal's session: the shell and each job it put in a group of its own."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
