"""Background processes, recorded on disk inside the container so they outlive the agent and the host.

Layout: STATE_DIR/procs/<id>/{meta.json, log, log.idx, exit.json[, kill][, stdin, ctl, stdin.closed]}.
A process is run by a *runner*: a double-forked copy of the agent (no interpreter start-up, so
startProcess returns in a few ms) that re-parents to PID 1, starts `bash -c command` in a new process
group, appends its stdout and stderr to `log` in the order it reads them and writes `exit.json` when
it ends. `log.idx` says which stream each piece of `log` came from (5-byte records: O, E, or M for
ploy's own marker line, and a length), so getProcessLogs can give stdout and stderr apart. (Two pipes
cannot tell which of two writes made within the same instant came first: `log` has them in the order
read.) Neither a `ploy dev` restart nor an agent restart disturbs it. The log is capped (config
processLogLimit, default 64 MiB): output past the cap is drained and dropped, and one marker line says so.

With `stdin: true` the command's stdin is the FIFO `stdin`: writeStdin writes into it, and the runner
holds a write end open (so the command does not read end-of-file between writes) until closeStdin
asks it, through the FIFO `ctl`, to let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import select
import shutil
import signal
import struct
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
    write_all,
    write_json_atomic,
)
from conn import Conn
from error_codes import ALREADY_EXISTS, INVALID_ARGUMENT, NOT_FOUND

PROCS = os.path.join(STATE_DIR, "procs")
KILL_GRACE_S = 3.0
FOLLOW_POLL_S = 0.004
# How long killProcess(id, signal) waits for the process to end before answering with its record.
SIGNAL_SETTLE_S = 0.1
IDX = struct.Struct(">cI")  # a log.idx record: stream (O, E, M) and length
PROCESS_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _dir(pid_id: str) -> str:
    if not isinstance(pid_id, str) or not pid_id or "/" in pid_id or pid_id.startswith("."):
        raise AgentError(INVALID_ARGUMENT, "process id must be a non-empty string")
    return os.path.join(PROCS, pid_id)


def _runner(
    d: str,
    command: str,
    cwd: str,
    env: dict[str, str],
    timeout: float | None,
    log_limit: int,
    stdin: tuple[int, int, int] | None,
) -> None:
    """Runs in the forked runner process: plain blocking code, no asyncio.

    The runner leads the process group (its pid is the `pid` of the record) and the command runs in
    that group, so signalling the group reaches the whole tree; the runner itself shrugs off SIGTERM
    and is spared by the kills it sends, so it can still write the exit record. `stdin`: the FIFO's
    read end (the command's stdin), the write end the runner holds, and the control FIFO."""
    signal.signal(signal.SIGTERM, lambda *_: None)  # a handler, not SIG_IGN: exec resets it for the command
    log = os.open(os.path.join(d, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    idx = os.open(os.path.join(d, "log.idx"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        child = subprocess.Popen(
            ["/bin/bash", "-c", command],
            cwd=cwd,
            env=env,
            stdin=stdin[0] if stdin else subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            close_fds=True,
        )
    except OSError as exc:
        write_json_atomic(
            os.path.join(d, "exit.json"),
            {"exitCode": 127, "status": "failed", "endedAt": iso_now(), "error": str(exc)},
        )
        return
    os.close(out_w)
    os.close(err_w)
    open(os.path.join(d, "spawned"), "w").close()  # kill() waits for it: a signal sent sooner reaches no one
    keep: int | None = None
    ctl: int | None = None
    if stdin is not None:
        os.close(stdin[0])
        keep, ctl = stdin[1], stdin[2]
    written, truncated, timed_out = 0, False, False

    def record(kind: bytes, data: bytes) -> None:
        os.write(log, data)
        os.write(idx, IDX.pack(kind, len(data)))

    deadline = None if timeout is None else time.monotonic() + timeout
    exited_at: float | None = None
    streams = {out_r: b"O", err_r: b"E"}
    while streams:
        watch = list(streams) + ([ctl] if ctl is not None else [])
        ready, _, _ = select.select(watch, [], [], 0.25)
        if ctl is not None and ctl in ready:
            # closeStdin: let go of our write end, so the command reads end-of-file
            os.read(ctl, 64)
            if keep is not None:
                os.close(keep)
                keep = None
            ready.remove(ctl)
        for fd in ready:  # stdout before stderr when both have something (see the module docstring)
            chunk = os.read(fd, 65536)
            if not chunk:
                os.close(fd)
                del streams[fd]
                continue
            kept = chunk[: max(log_limit - written, 0)]
            if kept:
                record(streams[fd], kept)
                written += len(kept)
            if len(kept) < len(chunk) and not truncated:
                truncated = True
                record(
                    b"M", f"\n[ploy: log truncated at {log_limit} bytes; later output discarded]\n".encode()
                )
        if deadline is not None and not timed_out and time.monotonic() > deadline:
            timed_out = True
            kill_tree(os.getpid(), signal.SIGTERM, include_self=False)
            deadline = time.monotonic() + KILL_GRACE_S
            # after the grace period the SIGKILL below fires
        elif timed_out and deadline is not None and time.monotonic() > deadline:
            kill_tree(os.getpid(), signal.SIGKILL, include_self=False)
            deadline = None
        if child.poll() is not None:
            # the command ended but a child it left behind may hold the pipes: give it a moment, then stop
            exited_at = exited_at or time.monotonic()
            if not ready and time.monotonic() - exited_at > 0.5:
                break
    rc = child.wait()
    if keep is not None:
        os.close(keep)
    exit_code = rc if rc >= 0 else 128 - rc
    end: dict[str, Any] = {
        "exitCode": exit_code,
        "status": "completed" if exit_code == 0 else "failed",
        "endedAt": iso_now(),
    }
    if timed_out:
        end["timedOut"] = True
    if os.path.exists(os.path.join(d, "kill")):
        end["killed"] = True
        end["status"] = "failed"
    if truncated:
        end["logTruncated"] = True
    os.close(log)
    os.close(idx)
    write_json_atomic(os.path.join(d, "exit.json"), end)
    # A child the command left in the background still holds the pipes: keep reading (and dropping) what
    # it prints until it closes, or its next write would kill it with SIGPIPE (`server &` died at once).
    while streams:
        try:
            ready, _, _ = select.select(list(streams), [], [])
        except InterruptedError:
            continue
        for fd in ready:
            if not os.read(fd, 65536):
                os.close(fd)
                del streams[fd]


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
    pid_id = req.get("processId")
    if pid_id is None:
        pid_id = "proc_" + uuid.uuid4().hex[:16]
    elif not isinstance(pid_id, str) or not PROCESS_ID.match(pid_id):
        raise AgentError(
            INVALID_ARGUMENT,
            "processId: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    stdin = req.get("stdin")
    if stdin is not None and not isinstance(stdin, (bool, str)):
        raise AgentError(INVALID_ARGUMENT, "stdin must be true (writeStdin/closeStdin) or a string")
    d = _dir(pid_id)
    try:
        os.mkdir(d)
    except FileExistsError:
        raise AgentError(ALREADY_EXISTS, f"a process with id {pid_id} exists", id=pid_id) from None
    meta: dict[str, Any] = {
        "id": pid_id,
        "pid": None,
        "command": shown or command,
        "startedAt": iso_now(),
        "cwd": cwd,
        "boot": BOOT,
        "session": session,
        "stdin": stdin is not None and stdin is not False,
    }
    open(os.path.join(d, "log"), "wb").close()
    log_limit = CONFIG.log_limit
    fds = _stdin_fifos(d) if meta["stdin"] else None
    # One fork, no waiting for the command to be exec'd: startProcess answers in ~2 ms. The runner is
    # our child; reap_runners() collects it (or PID 1 does, if this agent is gone by then).
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _close_other_fds(keep=fds or ())
            _runner(d, command, cwd, env, timeout, log_limit, fds)
        finally:
            os._exit(0)
    for fd in fds or ():
        os.close(fd)
    RUNNERS.add(pid)
    meta["runnerPid"] = meta["pid"] = pid
    write_json_atomic(os.path.join(d, "meta.json"), meta)
    return info(pid_id)


def _stdin_fifos(d: str) -> tuple[int, int, int]:
    """The command's stdin FIFO (read end; the write end the runner holds) and the control FIFO,
    opened before the fork: from the moment startProcess answers, writeStdin and closeStdin find a
    reader there, even if the runner has not been scheduled yet."""
    path, ctl_path = os.path.join(d, "stdin"), os.path.join(d, "ctl")
    os.mkfifo(path, 0o600)
    os.mkfifo(ctl_path, 0o600)
    read_end = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # does not wait for a writer
    os.set_blocking(read_end, True)  # the command reads it blocking
    keep = os.open(path, os.O_WRONLY)
    ctl = os.open(ctl_path, os.O_RDWR)  # O_RDWR: never end-of-file when a closeStdin writer goes
    return read_end, keep, ctl


RUNNERS: set[int] = set()


def reap_runners() -> None:
    for pid in list(RUNNERS):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            RUNNERS.discard(pid)


def _close_other_fds(keep: tuple[int, ...] = ()) -> None:
    for fd in os.listdir("/proc/self/fd"):
        n = int(fd)
        if n > 2 and n not in keep:
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


def list_all(session: str | None = None) -> list[dict[str, Any]]:
    """Every process, or only those started from `session`."""
    try:
        ids = os.listdir(PROCS)
    except FileNotFoundError:
        return []
    out = []
    for pid_id in ids:
        try:
            p = info(pid_id)
        except AgentError:
            continue
        if session is None or p.get("sessionId") == session:
            out.append(p)
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


def parse_signal(value: Any) -> int:
    """A signal by name (SIGTERM, TERM, sigint) or number."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 < value < signal.NSIG:
            return value
    elif isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in signal.Signals.__members__ and not name.startswith("SIG_"):
            return int(signal.Signals[name])
    raise AgentError(INVALID_ARGUMENT, f"signal: unknown signal {value!r} (e.g. SIGTERM, SIGKILL, SIGINT, 9)")


async def kill(pid_id: str, grace: float | None = None, sig: int | None = None) -> dict[str, Any]:
    """Without `sig`: SIGTERM to the tree, SIGKILL after `grace`. With `sig`: that signal, then the
    record once the process has ended or `grace` (default SIGNAL_SETTLE_S) has passed; a process that
    outlives it (it handles the signal) is not marked killed."""
    current = info(pid_id)
    if current["status"] != "running":
        return current
    d = _dir(pid_id)
    marker = os.path.join(d, "kill")
    pid = int(current["pid"])
    loop = asyncio.get_running_loop()
    # Just started: its runner may not have started the command yet, and a signal sent now would reach
    # only the runner (which ignores it). Wait for the command to exist (or end).
    spawned = loop.time() + 2.0
    while not os.path.exists(os.path.join(d, "spawned")) and loop.time() < spawned:
        if os.path.exists(os.path.join(d, "exit.json")):
            return info(pid_id)
        await asyncio.sleep(0.005)
    if sig is not None:
        open(marker, "w").close()
        kill_tree(pid, sig, include_self=False)
        deadline = loop.time() + (SIGNAL_SETTLE_S if grace is None else grace)
        while loop.time() < deadline and not os.path.exists(os.path.join(d, "exit.json")):
            await asyncio.sleep(0.01)
        if info(pid_id)["status"] == "running":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
        return info(pid_id)
    grace = KILL_GRACE_S if grace is None else grace
    open(marker, "w").close()
    kill_tree(pid, signal.SIGTERM, include_self=False)
    deadline = loop.time() + grace
    while loop.time() < deadline:
        if os.path.exists(os.path.join(d, "exit.json")):
            return info(pid_id)
        await asyncio.sleep(0.02)
    kill_tree(pid, signal.SIGKILL, include_self=False)
    for _ in range(200):
        if os.path.exists(os.path.join(d, "exit.json")):
            break
        await asyncio.sleep(0.01)
    return info(pid_id)


async def kill_all(grace: float | None, sig: int | None, session: str | None) -> int:
    """Stop every running process (of `session`, if given) at once; how many were running."""
    running = [p["id"] for p in list_all(session) if p["status"] == "running"]
    await asyncio.gather(*(kill(pid_id, grace, sig) for pid_id in running))
    return len(running)


def cleanup_completed(session: str | None) -> int:
    """Remove the records and logs of finished processes (of `session`, if given)."""
    n = 0
    for p in list_all(session):
        if p["status"] != "running":
            shutil.rmtree(_dir(p["id"]), ignore_errors=True)
            n += 1
    return n


def read_logs(pid_id: str) -> tuple[bytes, bytes, bytes]:
    """(combined log, stdout, stderr) so far. A record from an agent without log.idx: all stdout."""
    info(pid_id)  # NOT_FOUND for an unknown id
    d = _dir(pid_id)
    with open(os.path.join(d, "log"), "rb") as f:
        log = f.read()
    try:
        with open(os.path.join(d, "log.idx"), "rb") as f:
            idx = f.read()
    except FileNotFoundError:
        return log, log, b""
    parts: dict[bytes, list[bytes]] = {b"O": [], b"E": []}
    at = 0
    # only the records of what `log` holds: the runner may be between writing a piece and its record
    for i in range(0, len(idx) - len(idx) % IDX.size, IDX.size):
        kind, size = IDX.unpack_from(idx, i)
        if kind in parts:
            parts[kind].append(log[at : at + size])
        at += size
    return log, b"".join(parts[b"O"]), b"".join(parts[b"E"])


def _stdin_of(pid_id: str) -> tuple[str, dict[str, Any]]:
    current = info(pid_id)
    d = _dir(pid_id)
    meta = read_json(os.path.join(d, "meta.json"))
    if not meta.get("stdin"):
        raise AgentError(INVALID_ARGUMENT, f"process {pid_id} was not started with stdin: true", id=pid_id)
    if current["status"] != "running" or os.path.exists(os.path.join(d, "stdin.closed")):
        raise AgentError(INVALID_ARGUMENT, f"the stdin of process {pid_id} is closed", id=pid_id)
    return d, current


async def write_stdin(pid_id: str, chunks: Any) -> int:
    """Write the upload's chunks into the process's stdin FIFO, waiting while it is full (a command
    that does not read holds the writer, not the agent's memory)."""
    d, _ = _stdin_of(pid_id)
    try:
        fd = os.open(os.path.join(d, "stdin"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader left: the command closed its stdin or ended
            raise AgentError(
                INVALID_ARGUMENT, f"the stdin of process {pid_id} is closed", id=pid_id
            ) from None
        raise
    size = 0
    try:
        async for chunk in chunks:
            try:
                await write_all(fd, chunk)
            except BrokenPipeError:
                raise AgentError(
                    INVALID_ARGUMENT, f"the stdin of process {pid_id} is closed", id=pid_id
                ) from None
            size += len(chunk)
    finally:
        os.close(fd)
    return size


def close_stdin(pid_id: str) -> dict[str, Any]:
    d, current = _stdin_of(pid_id)
    open(os.path.join(d, "stdin.closed"), "w").close()
    try:
        ctl = os.open(os.path.join(d, "ctl"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return info(pid_id)  # the runner is gone: nothing holds the stdin open any more
    try:
        os.write(ctl, b"c")
    finally:
        os.close(ctl)
    return info(pid_id)


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
