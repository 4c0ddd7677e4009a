"""Shared pieces of the agent: typed errors, paths, configuration, environment, killing process trees."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import time
from typing import Any

import args
from error_codes import (
    ALREADY_EXISTS,
    DIRECTORY_NOT_EMPTY,
    INVALID_ARGUMENT,
    IO_ERROR,
    IS_DIRECTORY,
    NO_SPACE,
    NOT_A_DIRECTORY,
    NOT_FOUND,
    PERMISSION_DENIED,
    SPAWN_FAILED,
)

RUN_DIR = os.environ.get("PLOY_RUN_DIR", "/run/ploy")  # the bind-mounted host folder (socket, config)
STATE_DIR = os.environ.get("PLOY_STATE_DIR", "/var/lib/ploy")  # records that live with the container
WORKDIR = "/workspace"
BOOT = os.environ.get("PLOY_BOOT", "")
AGENT_VARS = ("PLOY_BOOT", "PLOY_STARTED", "PLOY_RUN_DIR", "PLOY_STATE_DIR")


class AgentError(Exception):
    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self), **self.details}


_ERRNO_CODES = {
    errno.ENOENT: NOT_FOUND,
    errno.EISDIR: IS_DIRECTORY,
    errno.ENOTDIR: NOT_A_DIRECTORY,
    errno.EEXIST: ALREADY_EXISTS,
    errno.ENOTEMPTY: DIRECTORY_NOT_EMPTY,
    errno.EACCES: PERMISSION_DENIED,
    errno.EPERM: PERMISSION_DENIED,
    errno.ENOSPC: NO_SPACE,
    errno.ENAMETOOLONG: INVALID_ARGUMENT,
}


def os_error(exc: OSError, path: str) -> AgentError:
    code = _ERRNO_CODES.get(exc.errno or 0, IO_ERROR)
    return AgentError(code, f"{exc.strerror or exc}: {path}", path=path)


class Config:
    """config.json in the run dir, written by the host; re-read when it changes."""

    def __init__(self) -> None:
        self.path = os.path.join(RUN_DIR, "config.json")
        self.mtime = -1.0
        # A sandbox on a remote host has no host folder: its config comes in its environment (taken
        # out before any command runs), and a config.json, when there is one, wins.
        try:
            self.data: dict[str, Any] = json.loads(os.environ.pop("PLOY_AGENT_CONFIG", "") or "{}")
        except ValueError:
            self.data = {}

    def get(self) -> dict[str, Any]:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            return self.data
        if mtime != self.mtime:
            try:
                with open(self.path) as f:
                    self.data = json.load(f)
                self.mtime = mtime
            except (OSError, ValueError):
                pass
        return self.data

    @property
    def sleep_after(self) -> float:
        return float(self.get().get("sleepAfterS", 600))

    @property
    def output_limit(self) -> int:
        return int(self.get().get("outputLimit", 10 * 1024 * 1024))

    @property
    def log_limit(self) -> int:
        return int(self.get().get("processLogLimit", 64 * 1024 * 1024))


CONFIG = Config()


class Settings:
    """What setSleepAfter/setKeepAlive changed for this sandbox, kept in the container (STATE_DIR) so it
    holds across agent restarts, host restarts and idle stops; config.json's sleepAfterS is the default."""

    def __init__(self) -> None:
        self.path = os.path.join(STATE_DIR, "settings.json")
        try:
            self.data: dict[str, Any] = read_json(self.path)
        except (OSError, ValueError):
            self.data = {}

    @property
    def sleep_after(self) -> float:
        """Seconds of idleness before the sandbox stops; 0 never (keepAlive)."""
        if self.data.get("keepAlive"):
            return 0.0
        own = self.data.get("sleepAfterS")
        return float(own) if own is not None else CONFIG.sleep_after

    def update(self, **values: Any) -> dict[str, Any]:
        self.data.update(values)
        os.makedirs(STATE_DIR, exist_ok=True)
        write_json_atomic(self.path, self.data)
        return self.describe()

    def describe(self) -> dict[str, Any]:
        own = self.data.get("sleepAfterS")
        return {
            "sleepAfter": float(own) if own is not None else CONFIG.sleep_after,
            "keepAlive": bool(self.data.get("keepAlive")),
        }


def write_json_atomic(path: str, obj: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def sandbox_vars_path() -> str:
    return os.path.join(STATE_DIR, "env.json")


def sandbox_vars() -> dict[str, str]:
    try:
        data = read_json(sandbox_vars_path())
        return {str(k): str(v) for k, v in data.items() if _usable(k, v)}
    except (OSError, ValueError, AttributeError):
        return {}


def _usable(name: Any, value: Any) -> bool:
    """A stored variable that can reach execve: one an older agent accepted (a NUL in its value) would
    otherwise make every later command fail."""
    try:
        args.env_name(name, "name")
        return args.env_value(value, "value") is not None
    except args.Invalid:
        return False


def base_env() -> dict[str, str]:
    """Image env, then the project's injected vars, then setEnvVars (each later one wins)."""
    env = {k: v for k, v in os.environ.items() if k not in AGENT_VARS}
    env.setdefault("HOME", "/root")
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update({str(k): str(v) for k, v in (CONFIG.get().get("sandboxEnv") or {}).items()})
    env.update(sandbox_vars())
    return env


def command_env(extra: dict[str, Any] | None, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(base if base is not None else base_env())
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(str(k), None)
        else:
            env[str(k)] = str(v)
    return env


def resolve(path: Any, cwd: str = WORKDIR, name: str = "path") -> str:
    try:
        args.path(path, name)
    except args.Invalid as exc:
        raise AgentError(INVALID_ARGUMENT, str(exc), argument=exc.argument) from None
    return os.path.normpath(os.path.join(cwd, path))


def makedirs(path: str) -> None:
    """os.makedirs(path, exist_ok=True) for an absolute path, without its recursion (a path of ~2,000
    levels is valid) and in linear time: each level is made relative to its parent's descriptor."""
    if os.path.isdir(path):
        return
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in path.split("/"):
            if not part:
                continue
            try:
                os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)  # ENOTDIR if a file is in the way
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def rmtree(path: str) -> None:
    """shutil.rmtree without its recursion, never following links: folders found are emptied deepest
    first, with an explicit stack."""
    stack = [(path, False)]
    while stack:
        d, emptied = stack.pop()
        if emptied:
            os.rmdir(d)
            continue
        stack.append((d, True))
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append((e.path, False))
                else:
                    os.unlink(e.path)


class _Proc:
    __slots__ = ("pid", "ppid", "pgrp", "sid", "state")

    def __init__(self, pid: int, fields: list[bytes]) -> None:
        # /proc/PID/stat after the command name: state ppid pgrp session ...
        self.pid = pid
        self.state = fields[0]
        self.ppid, self.pgrp, self.sid = int(fields[1]), int(fields[2]), int(fields[3])


def _processes() -> list[_Proc]:
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields start after the last ')'
        out.append(_Proc(int(name), stat[stat.rfind(b")") + 2 :].split()))
    return out


def tree(pid: int) -> list[_Proc]:
    """The live processes `pid` started: its descendants, and whatever is in its process group or its
    session (a fork bomb's processes are orphaned as fast as they fork, but keep the session)."""
    procs = _processes()
    children: dict[int, list[_Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found = {p.pid: p for p in procs if p.pid != pid and (p.pgrp == pid or p.sid == pid)}
    todo = list(children.get(pid, []))
    seen: set[int] = set()
    while todo:
        p = todo.pop()
        if p.pid in seen:
            continue
        seen.add(p.pid)
        found[p.pid] = p
        todo.extend(children.get(p.pid, []))
    return [p for p in found.values() if p.state not in (b"Z", b"X")]


def descendants(pid: int) -> list[int]:
    return [p.pid for p in tree(pid)]


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(pid: int, sig: int = signal.SIGKILL, include_self: bool = True) -> None:
    """Signal a process and everything it started (tree(): descendants, its group and its session).

    SIGKILL is repeated until nothing is left: first every process found is stopped (a stopped process
    cannot fork), again until a pass finds none still running, then all are killed; one pass of kills
    loses against a fork bomb. Another signal (SIGTERM) is one pass: it may be handled.
    With include_self=False the process itself is spared (a session shell, or a process runner that
    leads the group of the command it watches)."""
    if sig != signal.SIGKILL:
        victims = tree(pid)  # found first: once `pid` is gone, its children are no longer its children
        if include_self:
            _signal(pid, sig)
        for p in victims:
            _signal(p.pid, sig)
        return
    if include_self:
        _signal(pid, signal.SIGSTOP)  # stopped, it neither exits (orphaning its children) nor forks
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        running = [p for p in tree(pid) if p.state not in (b"T", b"t")]
        if not running:
            break
        for p in running:
            _signal(p.pid, signal.SIGSTOP)
    while time.monotonic() < deadline:
        victims = tree(pid)
        if not victims:
            break
        for p in victims:
            _signal(p.pid, signal.SIGKILL)
        time.sleep(0.001)
    if include_self:
        _signal(pid, signal.SIGKILL)


def pids_limit() -> str:
    """The sandbox's pids limit, for messages ("?" when the cgroup does not say)."""
    for path in ("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            continue
    return "?"


def spawn_failed(exc: OSError) -> AgentError:
    return AgentError(
        SPAWN_FAILED,
        f"the sandbox cannot start another process ({exc.strerror or exc}): it has reached its pids "
        f"limit ({pids_limit()}); end some processes (killProcess) and try again",
    )


async def write_all(fd: int, data: bytes) -> None:
    """Write to a non-blocking pipe or FIFO, waiting (not spinning) while it is full."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_writer(fd)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


def iso_now() -> str:
    return iso_time(time.time())


def iso_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
