"""Shared pieces of the agent: typed errors, paths, configuration, environment, killing process trees."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import time
from typing import Any

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
        self.data: dict[str, Any] = {}

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
        return {str(k): str(v) for k, v in data.items()}
    except (OSError, ValueError):
        return {}


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


def resolve(path: str, cwd: str = WORKDIR) -> str:
    if not isinstance(path, str) or not path:
        raise AgentError(INVALID_ARGUMENT, "path must be a non-empty string")
    if "\0" in path:
        raise AgentError(INVALID_ARGUMENT, "path must not contain NUL")
    return os.path.normpath(os.path.join(cwd, path))


def _children_map(groups: dict[int, list[int]] | None = None) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(name))
        if groups is not None:
            groups.setdefault(int(fields[2]), []).append(int(name))
    return children


def descendants(pid: int, groups: dict[int, list[int]] | None = None) -> list[int]:
    children = _children_map(groups)
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def kill_tree(pid: int, sig: int = signal.SIGKILL, include_self: bool = True) -> None:
    """Signal a process, its process group and every descendant (also those that left the group).

    With include_self=False the process itself is spared (a session shell, or a process runner that
    leads the group of the command it watches) but the rest of its group and tree is not."""
    groups: dict[int, list[int]] = {}
    victims = set(descendants(pid, groups)) | set(groups.get(pid, []))
    if include_self:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        victims.add(pid)
    else:
        victims.discard(pid)
    for p in victims:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


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
