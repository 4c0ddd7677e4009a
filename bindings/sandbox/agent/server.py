"""The in-container agent: serves the host over a unix socket in the bind-mounted run dir.

Stdlib only, and nothing of ploy's runtime: it runs inside the sandbox image with the image's python3.
It also keeps the idle clock: when nothing has happened for `sleepAfter` and no background process or
session command is running, it exits with IDLE_EXIT and PID 1 stops the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shlex
import sys
import time
import traceback
import warnings
from typing import TYPE_CHECKING, Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import args  # noqa: E402
import backups  # noqa: E402
import execs  # noqa: E402
import files  # noqa: E402
import interpreter  # noqa: E402
import metrics  # noqa: E402
import ports  # noqa: E402
import procs  # noqa: E402
import proto  # noqa: E402
import sessions  # noqa: E402
import terminal  # noqa: E402
import watch  # noqa: E402
import wire  # noqa: E402
from common import (  # noqa: E402
    BOOT,
    RUN_DIR,
    STATE_DIR,
    WORKDIR,
    AgentError,
    Settings,
    command_env,
    iso_now,
    resolve,
    sandbox_vars,
    sandbox_vars_path,
    spawn_failed,
    write_json_atomic,
)
from conn import Conn  # noqa: E402
from error_codes import ALREADY_EXISTS, GIT_ERROR, INTERNAL, INVALID_ARGUMENT, NOT_FOUND, TIMEOUT  # noqa: E402
from execs import Capped  # noqa: E402

IDLE_EXIT = 75
SERVER: list[asyncio.AbstractServer] = []  # the one listening server, once main() started it
GIT_PROTOCOLS = "http:https:git:ssh:file"
SOCKET = os.path.join(RUN_DIR, "a.sock")
# A sandbox on another machine (bindings/sandbox/hosts/remote.py) is reached over TCP on this port,
# published on that host's address; a connection is served only after it sent the per-sandbox secret.
# Taken out of the environment at import (in PID 1, before any fork), so no command the sandbox runs
# inherits it.
TCP_PORT = int(os.environ.pop("PLOY_AGENT_PORT", "0") or 0)
TCP_SECRET = os.environ.pop("PLOY_AGENT_SECRET", "").encode()
SECRET_TIMEOUT_S = 5.0


class Activity:
    def __init__(self) -> None:
        self.active = 0
        self.last = time.monotonic()


ACTIVITY = Activity()
SETTINGS = Settings()
STATE_FILE = os.path.join(RUN_DIR, "state.json")  # what getState reads on the host while we are stopped


async def session_command(conn: Conn, s: sessions.Session, req: dict[str, Any], stream: bool) -> None:
    if req.get("timeoutMs") is None and s.command_timeout_ms is not None:
        req = {**req, "timeoutMs": s.command_timeout_ms}  # the session's default (createSession)
    split = stream and bool(req.get("split"))
    # the same checks as a plain exec's (execs.prepare): one function per argument kind
    command = args.command(req.get("command"))
    env = args.env(req.get("env")) or {}
    timeout = execs.timeout_s(req)
    limit = execs.output_limit(req)
    prefix = ""
    if req.get("cwd"):
        prefix += f"cd {shlex.quote(resolve(req['cwd'], s.cwd, 'cwd'))} || return 1\n"
    for k, v in env.items():
        # per-command env applies to this command only: exported inside a subshell-free wrapper
        prefix += f"export {k}={shlex.quote(v)}\n" if v is not None else f"unset {k}\n"
    if prefix and (req.get("cwd") or req.get("env")):
        # run in a subshell so the per-command cwd/env do not stick to the session
        command = "(\n" + prefix + command + "\n)"
    out, err = Capped(limit), Capped(limit)
    code = -1
    stdin = execs.stdin_bytes(req)
    async with s.lock:
        gen = s.run(command, timeout, limit, merge=stream and not split, stdin=stdin)
        try:
            async for kind, data in gen:
                if kind == b"R":
                    code = int(data)
                elif stream:
                    await conn.send(kind if split else b"O", data)
                else:
                    (out if kind == b"O" else err).add(data)
        finally:
            await gen.aclose()
    if stream:
        await conn.reply({"exitCode": code, "success": code == 0})
        return
    await execs.send_output(conn, out, err)
    await conn.reply(execs.exec_result(code, out, err))


async def set_env_vars(req: dict[str, Any], s: sessions.Session | None) -> dict[str, Any]:
    vars_ = args.env(req.get("vars"), "vars", required=True) or {}
    if s is not None:
        script = "\n".join(
            f"export {k}={shlex.quote(v)}" if v is not None else f"unset {k}" for k, v in vars_.items()
        )
        async with s.lock:
            async for _ in s.run(script or ":", None, 1024):
                pass
        s.env.update({k: v for k, v in vars_.items() if v is not None})
        return {"ok": True}
    current = sandbox_vars()
    for k, v in vars_.items():
        if v is None:
            current.pop(k, None)
        else:
            current[k] = v
    os.makedirs(STATE_DIR, exist_ok=True)
    write_json_atomic(sandbox_vars_path(), current)
    return {"ok": True}


async def git_checkout(req: dict[str, Any], cwd: str, env_base: dict[str, str]) -> dict[str, Any]:
    url = args.repo_url(req.get("repoUrl"))
    branch, depth, target = req.get("branch"), req.get("depth"), req.get("targetDir")
    if target is None:
        target = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        target = target[:-4] if target.endswith(".git") else target
    target_abs = resolve(target, cwd, "targetDir")
    argv = ["git", "clone", "--quiet"]
    if branch:
        argv += ["--branch", args.branch(branch), "--single-branch"]
    if depth is not None:
        argv += ["--depth", str(args.integer(depth, "depth", 1, 2**31 - 1))]
    argv += ["--", url, target_abs]
    # Only transports that fetch a repository; never ext:: or fd:: (they run a command or use a
    # descriptor), for the repository and its submodules alike.
    env = command_env({"GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS}, env_base)
    timeout = execs.timeout_s(req) or 300.0
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd if os.path.isdir(cwd) else WORKDIR,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        from common import kill_tree

        kill_tree(proc.pid)
        raise AgentError(TIMEOUT, f"git clone timed out after {int(timeout * 1000)} ms") from None
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()
        code = ALREADY_EXISTS if "already exists" in message else GIT_ERROR
        raise AgentError(code, message or "git clone failed", repoUrl=url, exitCode=proc.returncode)
    rev = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        target_abs,
        "rev-parse",
        "HEAD",
        "--abbrev-ref",
        "HEAD",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    out, _ = await rev.communicate()
    lines = out.decode().split()
    return {
        "success": True,
        "repoUrl": url,
        "targetDir": target_abs,
        "commit": lines[0] if lines else None,
        "branch": lines[1] if len(lines) > 1 else branch,
    }


if TYPE_CHECKING:  # not at run time: custom images may have python 3.9, which cannot evaluate `X | None`
    from collections.abc import Awaitable, Callable

    # One handler per op of wire.OPS: (connection, request, its session or None, the cwd it runs in).
    Handler = Callable[[Conn, dict[str, Any], sessions.Session | None, str], Awaitable[None]]


async def ping(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply({"version": proto.VERSION, "boot": BOOT, "startedAt": os.environ.get("PLOY_STARTED")})


async def exec_(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    if s is not None:
        await session_command(conn, s, req, stream=False)
    else:
        await execs.run_exec(conn, req)


async def exec_stream(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    if s is not None:
        await session_command(conn, s, req, stream=True)
    else:
        await execs.run_stream(conn, req)


async def write_file(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await files.write_file(conn, req, cwd)


async def read_file(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await files.read_file(conn, req, cwd)


async def delete_file(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(await files.delete_file(req, cwd))


async def mkdir(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(files.mkdir(req, cwd))


async def list_files(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(files.list_files(req, cwd))


async def git_checkout_op(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    base = command_env(s.env) if s is not None else None
    await conn.reply(await git_checkout(req, cwd, base or command_env(None)))


async def set_env_vars_op(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(await set_env_vars(req, s))


async def start_process(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    if req.get("timeoutMs") is None and s is not None and s.command_timeout_ms is not None:
        req = {**req, "timeoutMs": s.command_timeout_ms}
    base = command_env(s.env) if s is not None else None
    command, pcwd, env = execs.prepare(req, cwd, base)
    shown = command
    if s is not None and os.path.exists(s.env_file):
        # the session's exported state first, then this command's own env on top of it
        own = "".join(
            f"export {k}={shlex.quote(v)}\n"
            for k, v in (args.env(req.get("env")) or {}).items()
            if v is not None
        )
        command = f". {shlex.quote(s.env_file)} 2>/dev/null; cd {shlex.quote(pcwd)}\n{own}{command}"
    # checked before anything starts: text to feed, or true/false (writeStdin later)
    data = execs.stdin_bytes(req) if isinstance(req.get("stdin"), str) else None
    record = procs.start(req, command, pcwd, env, execs.timeout_s(req), s.id if s else None, shown)
    if data is not None:
        _feed_process(record["id"], data)
    await conn.reply(record)


_FEEDING: set[asyncio.Future[Any]] = set()


def _feed_process(pid_id: str, data: bytes) -> None:
    """startProcess(cmd, {stdin: "text"}): the text, then end-of-file, written in the background (a
    command that reads slowly must not hold startProcess)."""

    async def one() -> Any:
        yield data

    async def feed() -> None:
        try:
            await procs.write_stdin(pid_id, one())
            procs.close_stdin(pid_id)
        except (AgentError, OSError):
            pass  # the command ended or closed its stdin first

    task = asyncio.ensure_future(feed())
    _FEEDING.add(task)
    task.add_done_callback(_FEEDING.discard)


async def list_processes(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(procs.list_all(s.id if s is not None else None))


async def get_process(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    try:
        await conn.reply(procs.info(req.get("id")))
    except AgentError as exc:
        if exc.code not in (NOT_FOUND, INVALID_ARGUMENT):
            raise
        await conn.reply(None)  # unknown or missing id (e.g. a query parameter that was not given)


async def get_process_logs(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    log, out, err = procs.read_logs(req.get("id"))
    await conn.send_data(b"D", log)
    await conn.send_data(b"O", out)
    await conn.send_data(b"E", err)
    await conn.reply({"size": len(log), "stdout": len(out), "stderr": len(err)})


async def stream_process_logs(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await procs.stream_logs(conn, req.get("id"))


def _kill_args(req: dict[str, Any]) -> tuple[float | None, int | None]:
    grace = args.grace_ms(req.get("graceMs"))
    sig = req.get("signal")
    return (None if grace is None else grace / 1000), (None if sig is None else args.signal_number(sig))


async def kill_process(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    grace, sig = _kill_args(req)
    await conn.reply(await procs.kill(req.get("id"), grace, sig))


async def create_session(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(sessions.describe(sessions.create(req.get("options") or {})))


async def get_session(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(sessions.describe(sessions.get(req.get("sessionId"))))


# ---- added for parity with Cloudflare's Sandbox SDK (issue 13) ----


async def exists(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(files.exists(req, cwd))


async def rename_file(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(files.rename_file(req, cwd))


async def move_file(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(files.move_file(req, cwd))


async def read_file_stream(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await files.read_file(conn, req, cwd)


async def kill_all_processes(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    grace, sig = _kill_args(req)
    await conn.reply({"count": await procs.kill_all(grace, sig, s.id if s is not None else None)})


async def cleanup_completed_processes(
    conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str
) -> None:
    await conn.reply({"count": procs.cleanup_completed(s.id if s is not None else None)})


async def write_stdin(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    chunks = conn.upload_chunks()
    try:
        size = await procs.write_stdin(req.get("id"), chunks)
    except AgentError:
        async for _ in chunks:  # the rest of the upload, so the connection stays in sync
            pass
        raise
    await conn.reply({"size": size})


async def close_stdin(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(procs.close_stdin(req.get("id")))


async def delete_session(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    gone = sessions.delete(req.get("sessionId"))
    killed = await procs.kill_all(None, None, gone.id)  # their records stay (listProcesses, logs)
    await conn.reply({"sessionId": gone.id, "deleted": True, "killed": killed})


async def set_sleep_after(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    seconds = req.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise AgentError(INVALID_ARGUMENT, "sleepAfter must be a duration (0: never)")
    ACTIVITY.last = time.monotonic()  # the new delay counts from now
    await conn.reply(SETTINGS.update(sleepAfterS=seconds))


async def set_keep_alive(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    keep = req.get("keepAlive")
    if not isinstance(keep, bool):
        raise AgentError(INVALID_ARGUMENT, "keepAlive must be true or false")
    ACTIVITY.last = time.monotonic()
    await conn.reply(SETTINGS.update(keepAlive=keep))


async def get_metrics(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(metrics.collect())


async def wait_for_port(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(await ports.wait_for_port(req))


async def wait_for_exit(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply(await ports.wait_for_exit(req))


async def terminal_op(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await terminal.run(conn, req, s, cwd)


# ---- faults on demand (issue 11): `ploy sandbox fault --drop-connections`, `ploy sandbox sleep` ----

CONNS: set[Conn] = set()  # the host's open connections
_STOPPING: list[asyncio.Future[Any]] = []


async def drop_connections(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    """As if the network between host and agent failed: every other connection is cut (a command
    streaming on one is killed, as when its client goes away)."""
    others = [c for c in CONNS if c is not conn]
    for c in others:
        c.writer.transport.abort()
    await conn.reply({"dropped": len(others)})


async def sleep_now(conn: Conn, req: dict[str, Any], s: sessions.Session | None, cwd: str) -> None:
    await conn.reply({"sleeping": True})
    # after the answer has left: the stop closes the socket and ends this process
    _STOPPING.append(asyncio.ensure_future(_stop("asked to sleep now (ploy sandbox sleep)", forced=True)))


HANDLERS: dict[str, Handler] = wire.table(
    {
        wire.PING: ping,
        wire.EXEC: exec_,
        wire.EXEC_STREAM: exec_stream,
        wire.WRITE_FILE: write_file,
        wire.READ_FILE: read_file,
        wire.DELETE_FILE: delete_file,
        wire.MKDIR: mkdir,
        wire.LIST_FILES: list_files,
        wire.GIT_CHECKOUT: git_checkout_op,
        wire.SET_ENV_VARS: set_env_vars_op,
        wire.START_PROCESS: start_process,
        wire.LIST_PROCESSES: list_processes,
        wire.GET_PROCESS: get_process,
        wire.GET_PROCESS_LOGS: get_process_logs,
        wire.STREAM_PROCESS_LOGS: stream_process_logs,
        wire.KILL_PROCESS: kill_process,
        wire.CREATE_SESSION: create_session,
        wire.GET_SESSION: get_session,
        wire.EXISTS: exists,
        wire.RENAME_FILE: rename_file,
        wire.MOVE_FILE: move_file,
        wire.READ_FILE_STREAM: read_file_stream,
        wire.KILL_ALL_PROCESSES: kill_all_processes,
        wire.CLEANUP_COMPLETED_PROCESSES: cleanup_completed_processes,
        wire.WRITE_STDIN: write_stdin,
        wire.CLOSE_STDIN: close_stdin,
        wire.DELETE_SESSION: delete_session,
        wire.SET_SLEEP_AFTER: set_sleep_after,
        wire.SET_KEEP_ALIVE: set_keep_alive,
        wire.METRICS: get_metrics,
        wire.WAIT_FOR_PORT: wait_for_port,
        wire.WAIT_FOR_EXIT: wait_for_exit,
        wire.TERMINAL: terminal_op,
        wire.DROP_CONNECTIONS: drop_connections,
        wire.SLEEP: sleep_now,
        wire.ARCHIVE_DIR: backups.archive_dir,
        wire.EXTRACT_ARCHIVE: backups.extract_archive,
        wire.WATCH: watch.watch,
        wire.CHECK_CHANGES: watch.check_changes,
        wire.CREATE_CODE_CONTEXT: interpreter.create_code_context,
        wire.RUN_CODE: interpreter.run_code,
        wire.RUN_CODE_STREAM: interpreter.run_code_stream,
        wire.LIST_CODE_CONTEXTS: interpreter.list_code_contexts,
        wire.DELETE_CODE_CONTEXT: interpreter.delete_code_context,
    }
)
# Ops that are no use of the sandbox: they neither keep it awake nor restart its idle clock (a
# dashboard polling getMetrics, or ploy's health check, must not keep a sandbox from sleeping).
PASSIVE = {wire.PING.name, wire.METRICS.name, wire.DROP_CONNECTIONS.name, wire.SLEEP.name}


async def dispatch(conn: Conn, req: dict[str, Any]) -> None:
    op = req.get("op")
    # the session first: a request naming an unknown session fails with NOT_FOUND, whatever its op
    s = sessions.get(req["session"]) if req.get("session") else None
    handler = HANDLERS.get(op) if isinstance(op, str) else None  # an op sent as a list is unhashable
    if handler is None:
        raise AgentError(INVALID_ARGUMENT, f"unknown operation {op!r}")
    await handler(conn, req, s, s.cwd if s is not None else WORKDIR)


async def tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A connection from a host on another machine: the secret first, then the same frames as the socket."""
    import hmac

    try:
        sent = await asyncio.wait_for(reader.readexactly(len(TCP_SECRET)), SECRET_TIMEOUT_S)
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
        writer.close()
        return
    if not hmac.compare_digest(sent, TCP_SECRET):
        writer.close()
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        import socket

        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await client(reader, writer)


async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    conn = Conn(reader, writer)
    CONNS.add(conn)
    try:
        while True:
            try:
                req = await conn.read_request()
            except (ValueError, RecursionError):  # not a request (or JSON nested past the stack)
                break
            if req is None:
                break
            passive = req.get("op") in PASSIVE
            if not passive:
                ACTIVITY.active += 1
            try:
                await dispatch(conn, req)
            except AgentError as exc:
                await conn.fail(exc.to_json())
            except args.Invalid as exc:
                await conn.fail({"code": INVALID_ARGUMENT, "message": str(exc), "argument": exc.argument})
            except BlockingIOError as exc:  # EAGAIN from fork: the pids limit, not a bug
                await conn.fail(spawn_failed(exc).to_json())
            except (ConnectionError, asyncio.IncompleteReadError):
                break
            except Exception as exc:
                if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
                    # a thread counts against the pids limit too
                    await conn.fail(spawn_failed(OSError(errno.EAGAIN, str(exc))).to_json())
                    continue
                traceback.print_exc()
                await conn.fail({"code": INTERNAL, "message": f"{type(exc).__name__}: {exc}"})
            finally:
                if not passive:
                    ACTIVITY.active -= 1
                    ACTIVITY.last = time.monotonic()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        CONNS.discard(conn)
        writer.close()


async def idle_watch() -> None:
    while True:
        sleep_after = SETTINGS.sleep_after
        await asyncio.sleep(min(max(sleep_after / 4, 0.2), 1.0) if sleep_after > 0 else 1.0)
        metrics.sample()
        procs.reap_runners()
        sleep_after = SETTINGS.sleep_after  # setSleepAfter/setKeepAlive may have changed it meanwhile
        if sleep_after <= 0:
            continue
        now = time.monotonic()
        if ACTIVITY.active or sessions.busy() or procs.running_count():
            ACTIVITY.last = now
            continue
        if now - ACTIVITY.last >= sleep_after:
            await _stop(f"idle for {sleep_after:.0f}s")


async def _stop(reason: str, forced: bool = False) -> None:
    """The idle stop: the agent exits with IDLE_EXIT, so PID 1 exits and the container stops."""
    # stop accepting first, so a host connecting now sees a refused connection, not a cut one
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET)
    for listening in SERVER:
        listening.close()
    await asyncio.sleep(0.05)
    if forced or ACTIVITY.active == 0:
        print(f"ploy-agent: {reason}, stopping the sandbox", file=sys.stderr, flush=True)
        _write_state("sleeping")
        os._exit(IDLE_EXIT)
    os._exit(1)  # a request raced the idle stop: let PID 1 restart the agent on a fresh socket


def _write_state(status: str) -> None:
    """For the host's getState while the sandbox does not answer: how it stopped, and when."""
    try:
        write_json_atomic(STATE_FILE, {"status": status, "since": iso_now()})
    except OSError:
        pass


async def main() -> None:
    if sys.version_info < (3, 12):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # a pidfd watcher needs no helper threads, so forking a runner from this process is safe
            asyncio.set_child_watcher(asyncio.PidfdChildWatcher())  # type: ignore[attr-defined,unused-ignore]
            asyncio.get_child_watcher().attach_loop(asyncio.get_running_loop())  # type: ignore[attr-defined,unused-ignore]
    for d in (RUN_DIR, STATE_DIR, WORKDIR):
        os.makedirs(d, exist_ok=True)
    backups.reset_if_forked()
    tmp = f"{SOCKET}.{os.getpid()}"
    if os.path.exists(tmp):
        os.unlink(tmp)
    server = await asyncio.start_unix_server(client, path=tmp, limit=1 << 20, backlog=256)
    SERVER.append(server)
    _write_state("running")
    os.replace(tmp, SOCKET)  # the socket appears only once it listens
    if TCP_PORT and TCP_SECRET:
        SERVER.append(
            await asyncio.start_server(tcp_client, host="0.0.0.0", port=TCP_PORT, limit=1 << 20, backlog=256)
        )
    # start_unix_server is already serving; idle_watch runs until the idle stop ends the process
    await idle_watch()


def run() -> None:
    asyncio.run(main())


if __name__ == "__main__":
    run()
