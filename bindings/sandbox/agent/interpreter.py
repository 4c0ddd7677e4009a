"""Code contexts: long-lived Python or Node processes in the sandbox that keep their state between runs.

Each context is its own process (ctx_python.py / ctx_node.js beside this file), so contexts are isolated
from each other and run in parallel; runs of one context take turns (a lock). The agent talks to a
context over a unix socket under STATE_DIR/ctx/ with JSON lines, and keeps a record per context there,
so a restarted agent finds its contexts again. A context lives as long as its process: a `ploy dev`
restart or an agent restart keeps it, a sandbox stop (idle suspension, destroy) ends it, and then
every call naming it says so (CONTEXT_NOT_FOUND with `lost: true`).

A timeout interrupts the run (SIGINT: KeyboardInterrupt in Python, an interrupted script in node) and
the context keeps its state; if the process does not come back within INTERRUPT_GRACE_S it is killed and
the context is lost. After the first context of a language, one spare process of that language is kept
started, so creating the next one costs a message instead of an interpreter start (node takes ~150 ms;
from the image's startup snapshot of ctx_node.js, ~90 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from common import BOOT, STATE_DIR, WORKDIR, AgentError, alive, command_env, iso_now, resolve
from conn import Conn
from error_codes import CONTEXT_NOT_FOUND, INTERNAL, INVALID_ARGUMENT, JAVASCRIPT_NOT_AVAILABLE, NOT_FOUND

HERE = os.path.dirname(os.path.abspath(__file__))
CTX_DIR = os.path.join(STATE_DIR, "ctx")
LANGUAGES = ("python", "javascript")
DEFAULT_TIMEOUT_S = 60.0  # Cloudflare's runCode default
INTERRUPT_GRACE_S = 2.0
START_TIMEOUT_S = 20.0
LINE_LIMIT = 64 * 1024 * 1024  # one message may carry a large PNG


class Context:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.lock = asyncio.Lock()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.proc: Any = None  # the asyncio Process when this agent started it
        self.leash: int | None = None  # a spare's leash (write end); closing it ends an unclaimed spare
        self.lost = False

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def pid(self) -> int:
        return int(self.record["pid"])

    def describe(self) -> dict[str, Any]:
        r = self.record
        return {
            "id": r["id"],
            "language": r["language"],
            "cwd": r["cwd"],
            "createdAt": r["createdAt"],
            "lastUsed": r.get("lastUsed") or r["createdAt"],
        }

    def save(self) -> None:
        os.makedirs(CTX_DIR, exist_ok=True)
        path = os.path.join(CTX_DIR, f"{self.id}.json")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.record, f)
        os.replace(tmp, path)

    def alive(self) -> bool:
        if self.lost:
            return False
        if self.proc is not None:
            return self.proc.returncode is None
        return self.record.get("boot") == BOOT and alive(self.pid)

    async def connect(self) -> None:
        if self.writer is not None and not self.writer.is_closing():
            return
        try:
            self.reader, self.writer = await asyncio.open_unix_connection(
                self.record["socket"], limit=LINE_LIMIT
            )
        except OSError:
            self.mark_lost()
            raise self.lost_error() from None

    def mark_lost(self) -> None:
        self.lost = True
        if self.writer is not None:
            self.writer.close()
        self.writer = self.reader = None

    def lost_error(self) -> AgentError:
        return AgentError(
            CONTEXT_NOT_FOUND,
            f"code context {self.id} is gone: its {self.record['language']} process ended (the sandbox was "
            "stopped or restarted, or a run could not be interrupted), so its variables are lost; "
            "create a new context",
            contextId=self.id,
            lost=True,
        )

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.mark_lost()

    async def send(self, msg: dict[str, Any]) -> None:
        await self.connect()
        assert self.writer is not None
        self.writer.write((json.dumps(msg) + "\n").encode())
        await self.writer.drain()

    async def next_message(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message, or None at EOF (the process died). asyncio.TimeoutError after `timeout`."""
        assert self.reader is not None
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            return None
        msg: dict[str, Any] = json.loads(line)
        return msg

    async def run(self, code: str, timeout: float | None) -> AsyncIterator[dict[str, Any]]:
        """The run's messages up to its `done`; hold self.lock around it. A timeout or a closed iterator
        (the host went away) interrupts the code and reads on to its `done`, so the next run starts clean."""
        await self.send({"op": "run", "code": code})
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interrupted = False
        finished = False
        try:
            while True:
                left = None if deadline is None else max(deadline - loop.time(), 0.0)
                try:
                    msg = await self.next_message(left)
                except asyncio.TimeoutError:
                    if interrupted:
                        self.kill()
                        finished = True
                        yield _error(
                            "TimeoutError",
                            f"the code ran longer than {timeout_ms(timeout)} ms and did not stop when interrupted: "
                            "its process was killed and the context's state is lost",
                        )
                        yield {"type": "done", "executionCount": None}
                        return
                    interrupted = True
                    self.interrupt()
                    deadline = loop.time() + INTERRUPT_GRACE_S
                    continue
                if msg is None:
                    code_ = self.proc.returncode if self.proc is not None else None
                    self.mark_lost()
                    finished = True
                    yield _error(
                        "ContextLost",
                        f"the context's {self.record['language']} process exited during the run"
                        + (f" (exit status {code_})" if code_ is not None else "")
                        + ": its state is lost",
                    )
                    yield {"type": "done", "executionCount": None}
                    return
                if interrupted and msg.get("type") == "error":
                    msg = _error(
                        "TimeoutError",
                        f"the code ran longer than {timeout_ms(timeout)} ms and was interrupted; "
                        "the context keeps its state",
                        msg.get("traceback") or [],
                    )
                if msg.get("type") == "done":
                    finished = True
                yield msg
                if finished:
                    self.record["lastUsed"] = iso_now()
                    return
        finally:
            if not finished and not self.lost:
                # closed early: stop the code and consume the rest of its reply
                self.interrupt()
                try:
                    while True:
                        msg = await self.next_message(INTERRUPT_GRACE_S)
                        if msg is None or msg.get("type") == "done":
                            break
                except (asyncio.TimeoutError, ValueError, OSError):
                    self.kill()

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGINT)


def timeout_ms(timeout: float | None) -> int:
    return int((timeout or 0) * 1000)


def _error(name: str, value: str, traceback: list[str] | None = None) -> dict[str, Any]:
    return {"type": "error", "name": name, "value": value, "traceback": traceback or []}


_contexts: dict[str, Context] = {}
_lost: set[str] = set()
_spares: dict[str, asyncio.Future[Context]] = {}
_loaded = False
_create_lock: asyncio.Lock | None = None


def _load() -> None:
    """Contexts recorded by an earlier agent: still there if their process is (same boot), else lost."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        names = os.listdir(CTX_DIR)
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(CTX_DIR, name)) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        ctx = Context(record)
        if ctx.alive():
            _contexts[ctx.id] = ctx
        else:
            _lost.add(ctx.id)
            _remove_files(record)


def _remove_files(record: dict[str, Any]) -> None:
    for path in (
        os.path.join(CTX_DIR, f"{record.get('id')}.json"),
        record.get("socket"),
        record.get("log"),
    ):
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _runner(language: str, env: dict[str, str]) -> list[str]:
    path = env.get("PATH", os.defpath)
    if language == "python":
        exe = shutil.which("python3", path=path)
        if exe is None:
            raise AgentError(INTERNAL, "python3 is not on the sandbox's PATH")
        return [exe, os.path.join(HERE, "ctx_python.py")]
    exe = shutil.which("node", path=path)
    if exe is None:
        raise AgentError(
            JAVASCRIPT_NOT_AVAILABLE,
            "a javascript context needs node, and the sandbox image has none on its PATH",
            language=language,
        )
    # --expose-internals reaches node's own acorn, which the REPL-style rewrite of cells parses with
    return [exe, "--expose-internals", os.path.join(HERE, "ctx_node.js")]


SNAPSHOT_BLOB = os.path.join(os.path.dirname(HERE), "ctx_node.blob")  # made by the image (image.py)


def _snapshot_runner(args: list[str]) -> list[str] | None:
    """`args` (a node runner) started from the image's startup snapshot of ctx_node.js, if there is one
    made by this very node: ~40% sooner than a bare start on a node without a built-in snapshot."""
    try:
        with open(SNAPSHOT_BLOB + ".node") as f:
            maker = f.read().strip()
    except OSError:
        return None
    if not maker or os.path.realpath(args[0]) != maker or not os.path.isfile(SNAPSHOT_BLOB):
        return None
    return [*args[:-1], "--snapshot-blob", SNAPSHOT_BLOB]


async def _spawn(language: str, cwd: str, env: dict[str, str], spare: bool) -> Context:
    os.makedirs(CTX_DIR, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    sock = os.path.join(CTX_DIR, f"{token}.sock")
    log = os.path.join(CTX_DIR, f"{token}.log")
    args = plain = _runner(language, env)
    snapshot = _snapshot_runner(args) if language == "javascript" else None
    if snapshot is not None:
        args = snapshot
    for attempt in range(3):
        ready_r, ready_w = os.pipe()
        fds = [ready_w]
        leash_r = leash_w = None
        extra = [sock, str(ready_w)]
        if spare:
            leash_r, leash_w = os.pipe()
            fds.append(leash_r)
            extra.append(str(leash_r))
        with open(log, "wb") as log_f:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args,
                    *extra,
                    cwd=cwd,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log_f,
                    pass_fds=fds,
                    start_new_session=True,
                )
            finally:
                for fd in fds:
                    os.close(fd)
        ready = await _read_all(ready_r)
        if ready.startswith(b"ready"):
            break
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 2)
        if leash_w is not None:
            os.close(leash_w)
        with open(log, "rb") as f:
            tail = f.read()[-1500:].decode(errors="replace")
        if args is snapshot:  # the snapshot did not start (a node changed since): without it
            args = plain
            continue
        if attempt < 2 and "--expose-internals" in args and "expose-internals" in tail:
            args = [a for a in args if a != "--expose-internals"]  # a node without the flag
            continue
        with contextlib.suppress(OSError):
            os.unlink(log)
        raise AgentError(INTERNAL, f"the {language} context did not start: {tail.strip() or 'no output'}")
    record = {
        "id": "",
        "language": language,
        "cwd": cwd,
        "pid": proc.pid,
        "boot": BOOT,
        "socket": sock,
        "log": log,
        "createdAt": iso_now(),
    }
    ctx = Context(record)
    ctx.proc = proc
    ctx.leash = leash_w
    asyncio.ensure_future(_watch_exit(ctx))
    return ctx


async def _watch_exit(ctx: Context) -> None:
    await ctx.proc.wait()
    ctx.mark_lost()
    if ctx.leash is not None:
        with contextlib.suppress(OSError):
            os.close(ctx.leash)
        ctx.leash = None


async def _read_all(fd: int) -> bytes:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
    )
    try:
        return await asyncio.wait_for(reader.read(), START_TIMEOUT_S)
    except asyncio.TimeoutError:
        return b""
    finally:
        transport.close()


def _spare_ok(env_opts: dict[str, Any]) -> bool:
    # a variable the interpreter reads at start-up cannot be applied to a process already started
    return not any(k.startswith(("PYTHON", "NODE_")) or k == "PATH" for k in env_opts)


def _refill(language: str) -> None:
    fut = _spares.get(language)
    if fut is not None and not fut.done():
        return
    if fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None:
        if fut.result().alive():
            return
    _spares[language] = asyncio.ensure_future(_spawn(language, WORKDIR, command_env(None), spare=True))
    _spares[language].add_done_callback(lambda f: f.cancelled() or f.exception())


async def _claim_spare(language: str, cwd: str, env: dict[str, str]) -> Context | None:
    fut = _spares.pop(language, None)
    if fut is None or not fut.done() or fut.cancelled() or fut.exception() is not None:
        if fut is not None and not fut.done():
            _spares[language] = fut  # still starting: leave it for the next one
        return None
    ctx = fut.result()
    if not ctx.alive():
        return None
    try:
        await ctx.send({"op": "init", "cwd": cwd, "env": env})
        msg = await ctx.next_message(5.0)
    except (AgentError, OSError, asyncio.TimeoutError, ValueError):
        ctx.kill()
        return None
    if msg is None or msg.get("type") != "done":
        ctx.kill()
        return None
    if ctx.leash is not None:
        os.close(ctx.leash)  # claimed: the leash no longer matters
        ctx.leash = None
    ctx.record["cwd"] = cwd
    return ctx


def _options(opts: Any) -> tuple[str, str, dict[str, Any]]:
    if opts is None:
        opts = {}
    if not isinstance(opts, dict):
        raise AgentError(INVALID_ARGUMENT, "createCodeContext options must be an object")
    language = opts.get("language") or "python"
    if language not in LANGUAGES:
        raise AgentError(
            INVALID_ARGUMENT,
            f"language must be one of {', '.join(LANGUAGES)}, got {language!r}",
            language=language,
        )
    cwd = resolve(opts.get("cwd") or WORKDIR)
    if not os.path.isdir(cwd):
        raise AgentError(NOT_FOUND, f"working directory does not exist: {cwd}", path=cwd)
    env = opts.get("env") if opts.get("env") is not None else opts.get("envVars")
    if env is not None and not isinstance(env, dict):
        raise AgentError(INVALID_ARGUMENT, "env must be an object of strings")
    return language, cwd, {k: v for k, v in (env or {}).items() if v is not None}


async def create(opts: Any, context_id: str | None = None) -> Context:
    _load()
    language, cwd, env_opts = _options(opts)
    env = command_env(env_opts)
    ctx = await _claim_spare(language, cwd, env) if _spare_ok(env_opts) else None
    if ctx is None:
        ctx = await _spawn(language, cwd, env, spare=False)
    ctx.record["id"] = context_id or f"ctx-{uuid.uuid4().hex[:16]}"
    ctx.save()
    _contexts[ctx.id] = ctx
    _lost.discard(ctx.id)
    _refill(language)
    return ctx


def get(context_id: Any) -> Context:
    _load()
    if not isinstance(context_id, str) or not context_id:
        raise AgentError(
            INVALID_ARGUMENT, "context must be a context id (or the object createCodeContext returned)"
        )
    ctx = _contexts.get(context_id)
    if ctx is not None and ctx.alive():
        return ctx
    if ctx is not None or context_id in _lost:
        lost = ctx if ctx is not None else Context({"id": context_id, "language": "code", "pid": 0})
        _forget(context_id)
        _lost.add(context_id)
        raise lost.lost_error()
    raise AgentError(CONTEXT_NOT_FOUND, f"no code context {context_id!r}", contextId=context_id)


def _forget(context_id: str) -> None:
    ctx = _contexts.pop(context_id, None)
    if ctx is not None:
        _remove_files(ctx.record)


async def _target(req: dict[str, Any]) -> tuple[Context, str | None]:
    """The context a run goes to, and a note when an implicit default context had to be made anew."""
    if req.get("context"):
        return get(req["context"]), None
    language = req.get("language") or "python"
    if language not in LANGUAGES:
        raise AgentError(
            INVALID_ARGUMENT, f"language must be one of {', '.join(LANGUAGES)}, got {language!r}"
        )
    default_id = f"default-{language}"
    global _create_lock
    if _create_lock is None:
        _create_lock = asyncio.Lock()
    async with _create_lock:
        _load()
        ctx = _contexts.get(default_id)
        if ctx is not None and ctx.alive():
            return ctx, None
        note = None
        if ctx is not None or default_id in _lost:
            _forget(default_id)
            note = (
                f"[ploy] the default {language} context was lost (the sandbox stopped or restarted since its "
                "last run); this run started a new one, without the earlier variables\n"
            )
        return await create({"language": language}, default_id), note


def _timeout(req: dict[str, Any]) -> float | None:
    ms = req.get("timeoutMs")
    if ms is None:
        return DEFAULT_TIMEOUT_S
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
        raise AgentError(INVALID_ARGUMENT, "timeoutMs must be a number of milliseconds (0: no limit)")
    return None if ms == 0 else ms / 1000


def _code(req: dict[str, Any]) -> str:
    code = req.get("code")
    if not isinstance(code, str):
        raise AgentError(INVALID_ARGUMENT, "code must be a string")
    return code


async def run_code(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = WORKDIR) -> None:
    code, timeout = _code(req), _timeout(req)
    ctx, note = await _target(req)
    execution: dict[str, Any] = {"code": code, "logs": {"stdout": [], "stderr": []}, "results": []}
    if note:
        execution["logs"]["stderr"].append(note)
    async with ctx.lock:
        async for msg in ctx.run(code, timeout):
            kind = msg.pop("type", None)
            if kind in ("stdout", "stderr"):
                execution["logs"][kind].append(msg.get("text", ""))
            elif kind == "result":
                execution["results"].append(msg)
            elif kind == "error":
                execution["error"] = _error_shape(msg)
            elif kind == "done":
                execution["executionCount"] = msg.get("executionCount")
    await conn.reply(execution)


def _error_shape(msg: dict[str, Any]) -> dict[str, Any]:
    traceback = [line for chunk in msg.get("traceback") or [] for line in str(chunk).split("\n")]
    name, value = str(msg.get("name") or "Error"), str(msg.get("value") or "")
    return {"name": name, "value": value, "message": value, "traceback": traceback}


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def run_code_stream(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = WORKDIR) -> None:
    """Server-sent events as Cloudflare's runCodeStream sends them: stdout, stderr, result, error, then
    execution_complete. Closing the stream interrupts the code; the context stays."""
    code, timeout = _code(req), _timeout(req)
    ctx, note = await _target(req)
    count = None
    closed = asyncio.ensure_future(conn.wait_closed_by_peer())
    try:
        if note:
            await conn.send(b"D", _sse({"type": "stderr", "text": note, "timestamp": time.time() * 1000}))
        async with ctx.lock:
            messages = ctx.run(code, timeout)
            try:
                while True:
                    nxt = asyncio.ensure_future(messages.__anext__())
                    done, _ = await asyncio.wait({nxt, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if nxt not in done:
                        nxt.cancel()
                        with contextlib.suppress(BaseException):
                            await nxt
                        raise ConnectionResetError("host closed the stream")
                    try:
                        msg = nxt.result()
                    except StopAsyncIteration:
                        break
                    kind = msg.get("type")
                    if kind == "done":
                        count = msg.get("executionCount")
                        await conn.send(b"D", _sse({"type": "execution_complete", "executionCount": count}))
                    elif kind == "error":
                        err = _error_shape(msg)
                        # ename/evalue too: the names Cloudflare's stream parser reads
                        await conn.send(
                            b"D", _sse({"type": "error", **err, "ename": err["name"], "evalue": err["value"]})
                        )
                    else:
                        await conn.send(b"D", _sse(msg))
            finally:
                await messages.aclose()  # type: ignore[attr-defined]
    finally:
        await conn.stop_watching(closed)
    await conn.reply({"executionCount": count})


async def create_code_context(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = WORKDIR) -> None:
    ctx = await create(req.get("options"))
    await conn.reply(ctx.describe())


async def list_code_contexts(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = WORKDIR) -> None:
    _load()
    out = []
    for ctx in list(_contexts.values()):
        if ctx.alive():
            out.append(ctx.describe())
        else:
            _forget(ctx.id)
            _lost.add(ctx.id)
    out.sort(key=lambda c: c["createdAt"])
    await conn.reply(out)


async def delete_code_context(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = WORKDIR) -> None:
    context_id = req.get("contextId")
    _load()
    ctx = _contexts.get(context_id) if isinstance(context_id, str) else None
    if ctx is None:
        if isinstance(context_id, str) and context_id in _lost:
            _lost.discard(context_id)
            await conn.reply({"id": context_id, "deleted": True})
            return
        raise AgentError(CONTEXT_NOT_FOUND, f"no code context {context_id!r}", contextId=context_id)
    ctx.kill()
    _forget(ctx.id)
    await conn.reply({"id": ctx.id, "deleted": True})
