"""Background processes, recorded on disk inside the container so they outlive the agent and the host.

Layout: STATE_DIR/procs/<id>/{meta.json, log, exit.json[, kill]}.
A process is run by a *runner*: a double-forked copy of the agent (no interpreter start-up, so
startProcess returns in a few ms) that re-parents to PID 1, starts `bash -c command` in a new process
group, appends its merged stdout+stderr to `log` and writes `exit.json` when it ends. Neither a
`ploy dev` restart nor an agent restart disturbs it. The log is capped (config processLogLimit, default
64 MiB): output past the cap is drained and dropped, and one marker line says so.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import signal
import subprocess
import time
import uuid
from typing import Any

from common import (
    BOOT,
    CONFIG,
    STATE_DIR,
    AgentError,
    alive,
    iso_now,
    kill_tree,
    read_json,
    rmtree,
    spawn_failed,
    tree,
    write_json_atomic,
)
from conn import Conn
from error_codes import INVALID_ARGUMENT, NOT_FOUND

PROCS = os.path.join(STATE_DIR, "procs")
KILL_GRACE_S = 3.0
FOLLOW_POLL_S = 0.004


def _dir(pid_id: str) -> str:
    if not isinstance(pid_id, str) or not pid_id or "/" in pid_id or pid_id.startswith("."):
        raise AgentError(INVALID_ARGUMENT, "process id must be a non-empty string")
    return os.path.join(PROCS, pid_id)


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Orphans of the command (`setsid server &` once its parent exited, a fork bomb's processes)
    re-parent to the runner instead of PID 1, so they stay in its tree: kills and timeouts reach them."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # then the runner's session still reaches all but what left it and was orphaned


def _reap(main: int) -> tuple[int | None, bool]:
    """Collect every child that ended (the command, and orphans re-parented here): (the command's
    wait status if it was among them, whether children are left)."""
    status = None
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status, False
        if pid == 0:
            return status, True
        if pid == main:
            status = st


def _runner(
    d: str, command: str, cwd: str, env: dict[str, str], timeout: float | None, log_limit: int
) -> None:
    """Runs in the forked runner process: plain blocking code, no asyncio.

    The runner leads the session and process group (its pid is the `pid` of the record), the command
    runs in them, and orphans re-parent to the runner: so signalling its tree reaches everything the
    command started. The runner itself shrugs off SIGTERM and is spared by the kills it sends, so it
    can still write the exit record; it stays until the last process of its tree is gone (so a timeout
    still reaches what the command left running)."""
    signal.signal(signal.SIGTERM, lambda *_: None)  # a handler, not SIG_IGN: exec resets it for the command
    _become_subreaper()
    log = os.open(os.path.join(d, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    r, w = os.pipe()
    try:
        child = subprocess.Popen(
            ["/bin/bash", "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=w,
            stderr=w,
            close_fds=True,
        )
    except OSError as exc:
        error = spawn_failed(exc).args[0] if exc.errno == errno.EAGAIN else str(exc)
        write_json_atomic(
            os.path.join(d, "exit.json"),
            {"exitCode": 127, "status": "failed", "endedAt": iso_now(), "error": error},
        )
        return
    os.close(w)
    written, truncated, timed_out = 0, False, False
    deadline = None if timeout is None else time.monotonic() + timeout
    exit_code: int | None = None
    exited_at: float | None = None
    eof = recorded = False
    while True:
        ready: list[int] = []
        if eof:
            time.sleep(0.25)
        else:
            ready, _, _ = select.select([r], [], [], 0.25)
        if ready:
            chunk = os.read(r, 65536)
            if not chunk:
                eof = True
            elif not recorded:  # after the record, what a left-behind child prints is drained and dropped
                keep = chunk[: max(log_limit - written, 0)]
                if keep:
                    os.write(log, keep)
                    written += len(keep)
                if len(keep) < len(chunk) and not truncated:
                    truncated = True
                    os.write(
                        log,
                        f"\n[ploy: log truncated at {log_limit} bytes; later output discarded]\n".encode(),
                    )
        status, children_left = _reap(child.pid)
        if status is not None:
            rc = child.returncode = os.waitstatus_to_exitcode(status)
            exit_code = rc if rc >= 0 else 128 - rc
        if deadline is not None and not timed_out and time.monotonic() > deadline:
            timed_out = True
            kill_tree(os.getpid(), signal.SIGTERM, include_self=False)
            deadline = time.monotonic() + KILL_GRACE_S
            # after the grace period the SIGKILL below fires
        elif timed_out and deadline is not None and time.monotonic() > deadline:
            kill_tree(os.getpid(), signal.SIGKILL, include_self=False)
            deadline = None
        if exit_code is not None and not recorded:
            # the command ended but a child it left behind may hold the pipe: give it a moment, then stop
            exited_at = exited_at or time.monotonic()
            if eof or (not ready and time.monotonic() - exited_at > 0.5):
                os.close(log)
                _record(d, exit_code, timed_out, truncated)
                recorded = True
        # A child the command left in the background keeps the runner here: reading (and dropping)
        # what it prints, or its next write would kill it with SIGPIPE (`server &` died at once), and
        # reaping what it leaves, so kills and the timeout still reach it.
        if recorded and eof and not children_left:
            return


def _record(d: str, exit_code: int, timed_out: bool, truncated: bool) -> None:
    record: dict[str, Any] = {
        "exitCode": exit_code,
        "status": "completed" if exit_code == 0 else "failed",
        "endedAt": iso_now(),
    }
    if timed_out:
        record["timedOut"] = True
    if os.path.exists(os.path.join(d, "kill")):
        record["killed"] = True
        record["status"] = "failed"
    if truncated:
        record["logTruncated"] = True
    write_json_atomic(os.path.join(d, "exit.json"), record)


def start(
    req: dict[str, Any],
    command: str,
    cwd: str,
    env: dict[str, str],
    timeout: float | None,
    session: str | None = None,
    shown: str | None = None,
) -> dict[str, Any]:
    """`shown` is the command as the caller gave it, when `command` wraps it (a session's state)."""
    os.makedirs(PROCS, exist_ok=True)
    pid_id = "proc_" + uuid.uuid4().hex[:16]
    d = _dir(pid_id)
    os.mkdir(d)
    meta: dict[str, Any] = {
        "id": pid_id,
        "pid": None,
        "command": shown or command,
        "startedAt": iso_now(),
        "cwd": cwd,
        "boot": BOOT,
        "session": session,
    }
    open(os.path.join(d, "log"), "wb").close()
    log_limit = CONFIG.log_limit
    # One fork, no waiting for the command to be exec'd: startProcess answers in ~2 ms. The runner is
    # our child; reap_runners() collects it (or PID 1 does, if this agent is gone by then).
    try:
        pid = os.fork()
    except OSError:
        rmtree(d)  # no runner (the pids limit reached): leave no record without a process
        raise
    if pid == 0:
        try:
            os.setsid()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _close_other_fds()
            _runner(d, command, cwd, env, timeout, log_limit)
        finally:
            os._exit(0)
    RUNNERS.add(pid)
    meta["runnerPid"] = meta["pid"] = pid
    write_json_atomic(os.path.join(d, "meta.json"), meta)
    return info(pid_id)


RUNNERS: set[int] = set()


def reap_runners() -> None:
    for pid in list(RUNNERS):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            RUNNERS.discard(pid)


def _close_other_fds() -> None:
    for fd in os.listdir("/proc/self/fd"):
        n = int(fd)
        if n > 2:
            try:
                os.close(n)
            except OSError:
                pass


def info(pid_id: str) -> dict[str, Any]:
    d = _dir(pid_id)
    try:
        meta = read_json(os.path.join(d, "meta.json"))
    except FileNotFoundError:
        raise AgentError(NOT_FOUND, f"no process with id {pid_id}", id=pid_id) from None
    out: dict[str, Any] = {k: meta.get(k) for k in ("id", "pid", "command", "startedAt")}
    end = _exit_record(d, meta)
    if end is None:
        out.update(status="running", exitCode=None)
    else:
        out.update(status=end["status"], exitCode=end["exitCode"], endedAt=end.get("endedAt"))
        for k in ("timedOut", "killed", "logTruncated", "error"):
            if k in end:
                out[k] = end[k]
    if meta.get("session"):
        out["sessionId"] = meta["session"]
    return out


def _exit_record(d: str, meta: dict[str, Any]) -> dict[str, Any] | None:
    path = os.path.join(d, "exit.json")
    try:
        return read_json(path)
    except (FileNotFoundError, ValueError):
        pass
    if meta.get("boot") != BOOT:
        reason = "the sandbox was stopped while the process ran"
    elif meta.get("runnerPid") and alive(meta["runnerPid"]):
        return None
    else:
        try:
            return read_json(path)  # it may have finished just now
        except (FileNotFoundError, ValueError):
            reason = "the process's runner disappeared"
    record = {"exitCode": 137, "status": "failed", "endedAt": iso_now(), "error": reason}
    write_json_atomic(path, record)
    return record


def list_all() -> list[dict[str, Any]]:
    try:
        ids = os.listdir(PROCS)
    except FileNotFoundError:
        return []
    out = []
    for pid_id in ids:
        try:
            out.append(info(pid_id))
        except AgentError:
            continue
    out.sort(key=lambda p: p.get("startedAt") or "")
    return out


def running_count() -> int:
    """Processes of this container start that are still running (they keep the sandbox awake)."""
    try:
        ids = os.listdir(PROCS)
    except FileNotFoundError:
        return 0
    n = 0
    for pid_id in ids:
        d = os.path.join(PROCS, pid_id)
        if os.path.exists(os.path.join(d, "exit.json")):
            continue
        try:
            meta = read_json(os.path.join(d, "meta.json"))
        except (OSError, ValueError):
            continue
        if meta.get("boot") == BOOT and _exit_record(d, meta) is None:
            n += 1
    return n


async def kill(pid_id: str, grace: float = KILL_GRACE_S) -> dict[str, Any]:
    """SIGTERM to everything the process started, SIGKILL after `grace`. Also when the command itself
    has ended: what it left running (a `server &`, a fork bomb's processes) is still its tree."""
    current = info(pid_id)
    d = _dir(pid_id)
    pid = int(current["pid"])
    meta = read_json(os.path.join(d, "meta.json"))
    if current["status"] == "running":
        open(os.path.join(d, "kill"), "w").close()
    elif meta.get("boot") != BOOT or not alive(pid) or not tree(pid):
        return current
    kill_tree(pid, signal.SIGTERM, include_self=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        if os.path.exists(os.path.join(d, "exit.json")) and not tree(pid):
            return info(pid_id)
        await asyncio.sleep(0.02)
    kill_tree(pid, signal.SIGKILL, include_self=False)
    for _ in range(200):
        if os.path.exists(os.path.join(d, "exit.json")):
            break
        await asyncio.sleep(0.01)
    return info(pid_id)


def read_logs(pid_id: str) -> bytes:
    info(pid_id)  # NOT_FOUND for an unknown id
    with open(os.path.join(_dir(pid_id), "log"), "rb") as f:
        return f.read()


async def stream_logs(conn: Conn, pid_id: str) -> None:
    """Replay from the start, follow live output, end once the process has ended and the log is drained."""
    info(pid_id)
    d = _dir(pid_id)
    closed = asyncio.ensure_future(conn.wait_closed_by_peer())
    try:
        with open(os.path.join(d, "log"), "rb") as f:
            while True:
                chunk = f.read(256 * 1024)
                if chunk:
                    await conn.send(b"D", chunk)
                    continue
                await conn.writer.drain()
                if info(pid_id)["status"] != "running":
                    rest = f.read()
                    if rest:
                        await conn.send_data(b"D", rest)
                    break
                if closed.done():
                    raise ConnectionResetError("host closed the stream")
                await asyncio.sleep(FOLLOW_POLL_S)
    finally:
        await conn.stop_watching(closed)
    await conn.reply(info(pid_id))
