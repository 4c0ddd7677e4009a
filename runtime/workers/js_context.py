"""One QuickJS context driven from the asyncio event loop: entries, job-queue drains, the outbox.

Every entry into JS (a request, a settled host op, a timer, a stream pull) is followed by draining
QuickJS's job queue and taking the outbox (JSON that JS leaves in a global, see 00_bridge.js); the ops
found there start asyncio work whose results come back as later entries. Many requests are in flight
at once, interleaved.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import os
import zlib
from collections import OrderedDict
from collections.abc import Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import quickjs

from bindings.spec import REGISTRY, spec_of
from runtime.http import Headers, Request, Response
from runtime.workers.base import Limits, WorkerError
from runtime.workers.js_host import (
    Codec,
    HostStream,
    check_arity,
    error_info,
    outbound_fetch,
    spec_methods,
    zlib_step,
)

logger = logging.getLogger("ploy.js")
JS_ERRORS: tuple[type[BaseException], ...] = (quickjs.JSException, quickjs.StackOverflow)
ENTROPY_BYTES = 65536
COLLECT_AFTER_S = 1.0
TIMERS_PER_WAKE = 256  # then yield to the loop so a timer storm cannot starve requests


class LoadError(Exception):
    def __init__(self, message: str, stack: str = "") -> None:
        super().__init__(message)
        self.stack = stack


class _Failed:
    """What a sync binding call left behind when it raised: later calls on the handle reject with it."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class JsContext:
    def __init__(
        self,
        source: str,
        env: dict[str, Any],
        limits: Limits,
        log: Callable[[str], None],
        map_stack: Callable[[str], str],
    ) -> None:
        self.limits = limits
        self.log = log
        self.map_stack = map_stack
        self.loop = asyncio.get_running_loop()
        self.dead = False
        self._entered = False  # set whenever Python calls into JS (see _drain)
        self.requests: dict[int, asyncio.Future[Response]] = {}
        self.prefixes: OrderedDict[int, str] = OrderedDict()
        self.stream_waiters: dict[int, asyncio.Future[bytes | None]] = {}
        self.objects: dict[int, Any] = {}
        self.host_streams: dict[int, HostStream] = {}
        self.tasks: dict[int, asyncio.Task[Any]] = {}
        self.zlibs: dict[int, Any] = {}  # CompressionStream/DecompressionStream id -> zlib (de)compressor
        self.next_rid = 1
        self.next_handle = 1
        self.timer: asyncio.TimerHandle | None = None
        self.collector: asyncio.TimerHandle | None = None
        self.client: httpx.AsyncClient | None = None
        self.codec = Codec(self._register_object, self._register_stream)

        ctx = self.ctx = quickjs.Context()
        ctx.set_memory_limit(limits.memory_mb * 1024 * 1024)
        ctx.set("__ploy_seed", os.urandom(ENTROPY_BYTES).decode("latin-1"))
        ctx.set_time_limit(limits.cpu_ms / 1000)
        try:
            promise = ctx.module(source)
            watch = ctx.eval(
                "(p) => { p.then(() => {}, (e) => { globalThis.__ploy_loadError = "
                "JSON.stringify([e instanceof Error ? `${e.name}: ${e.message}` : String(e), String(e && e.stack || '')]) }) }"
            )
            watch(promise)
            self._jobs()
        except JS_ERRORS as e:
            raise LoadError(*self._load_problem(*self._split_exception(e))) from None
        load_error = ctx.get("__ploy_loadError")
        if isinstance(load_error, str):
            headline, stack = json.loads(load_error)
            raise LoadError(*self._load_problem(headline, map_stack(stack)))
        get = ctx.get
        self._request, self._pull, self._cancel = (
            get("__ploy_request"),
            get("__ploy_pull"),
            get("__ploy_cancel"),
        )
        self._settle, self._settle_bytes = get("__ploy_settle"), get("__ploy_settleBytes")
        self._fire_timer, self._set_props = get("__ploy_fireTimer"), get("__ploy_setProps")
        self._take_all = get("__ploy_take")
        self._feed_entropy, self._rid = get("__ploy_feedEntropy"), get("__ploy_rid")

        env_desc: dict[str, Any] = {}
        for name, value in env.items():
            spec = spec_of(value)
            env_desc[name] = {"__ploy_obj": self.codec.describe(value, spec)} if spec is not None else value
        specs = [[s.name, spec_methods(s)] for s in REGISTRY.values()]
        self.codec.sent_specs.update(REGISTRY)
        problem = self._call(get("__ploy_init"), json.dumps({"env": env_desc, "specs": specs}, default=str))
        if problem:
            raise LoadError(str(problem))
        self._drain()

    def _load_problem(self, head: str, stack: str) -> tuple[str, str]:
        if "interrupted" in head:
            head = f"Error: the worker's top-level code exceeded its CPU time limit ({self.limits.cpu_ms} ms)"
        return head, stack

    # ------------------------------------------------------------------ entries and draining
    @staticmethod
    def _split_exception(e: BaseException) -> tuple[str, str]:
        text = str(e)
        head, _, rest = text.partition("\n")
        return head, rest

    def _call(self, fn: Any, *args: Any) -> Any:
        self._entered = True
        try:
            return fn(*args)
        except JS_ERRORS as e:
            self._crashed(e)
            return None

    def _jobs(self) -> None:
        ctx = self.ctx
        while True:
            try:
                while ctx.execute_pending_job():
                    pass
                return
            except JS_ERRORS as e:
                if not hasattr(self, "_rid"):
                    raise
                self._crashed(e)
                if self.dead:
                    return

    def _drain(self) -> None:
        """Run microtasks, then act on the outbox, until both are empty."""
        while not self.dead:
            self._jobs()
            if self.dead:
                return
            out = self._take()
            if not out:
                return
            self._entered = False
            for op in json.loads(f"[{out}]"):
                try:
                    self._dispatch(op)
                except Exception:  # a bug in ploy must not take the worker down
                    logger.exception("ploy: JS host op %s failed", op[0])
            if not self._entered:
                # Only JS queues jobs and fills the outbox: if no op ran JS, both are empty, and another
                # round (a job-queue poll, a call into JS, and a read of the outbox) would find nothing.
                return

    def _take(self) -> str:
        """The ops JS queued since the last take, comma-separated JSON (see 00_bridge.js): usually one,
        read from a global without a call into JS."""
        out = self.ctx.get("__ploy_out")
        if out == "":
            return ""
        if isinstance(out, str):
            self.ctx.set("__ploy_out", "")
            return out
        return self._call(self._take_all) or ""

    def _enter(self, fn: Any, *args: Any) -> None:
        if self.dead:
            return
        self._call(fn, *args)
        self._drain()

    def _crashed(self, e: BaseException) -> None:
        """JS was interrupted (CPU limit), ran out of memory, or overflowed the stack."""
        head, stack = self._split_exception(e)
        try:
            rid = int(self._rid())
        except JS_ERRORS:
            rid = 0
            self.dead = True
        if "interrupted" in head:
            head = f"Error: Worker exceeded its CPU time limit ({self.limits.cpu_ms} ms)"
        elif head in ("null", "") or "out of memory" in head:
            head = f"Error: Worker exceeded its memory limit ({self.limits.memory_mb} MB)"
            self.dead = self.dead or not self._healthy()
        fut = self.requests.get(rid)
        err = WorkerError(head, f"{head}\n{self.map_stack(stack)}".rstrip())
        if fut is not None and not fut.done():
            fut.set_exception(err)
        else:
            self.log(f"{self.prefixes.get(rid, '')} {head}".strip())
        if self.dead:
            self._fail_all(f"Error: the worker's JS context was reset after: {head}")
        elif self.timer is None:
            # an interrupted timer callback never reached the code that reports the next deadline:
            # wake soon so JS reports it
            self.timer = self.loop.call_soon(self._on_timer)  # type: ignore[assignment]

    def _healthy(self) -> bool:
        try:
            self.ctx.gc()
            return self.ctx.eval("1 + 1") == 2
        except JS_ERRORS:
            return False

    # ------------------------------------------------------------------ requests
    async def fetch(self, request: Request, log_prefix: str) -> Response:
        rid = self.next_rid
        self.next_rid += 1
        fut: asyncio.Future[Response] = self.loop.create_future()
        self.requests[rid] = fut
        self.prefixes[rid] = log_prefix
        if len(self.prefixes) > 4096:
            self.prefixes.popitem(last=False)
        try:
            body: str | None = None
            if request.method not in ("GET", "HEAD") or request._body:
                data = await request.arrayBuffer()
                body = data.decode("latin-1") if data or request.method not in ("GET", "HEAD") else None
            headers = "\n".join(f"{k}\n{v}" for k, v in request.headers.items())
            self._enter(self._request, rid, request.method, request.url, headers, body)
            if self.dead and not fut.done():
                raise WorkerError("Error: the worker's JS context is unusable")
            return await fut
        finally:
            self.requests.pop(rid, None)

    def _respond(
        self, rid: int, status: int, status_text: str, pairs: list[list[str]], kind: int, data: Any
    ) -> None:
        fut = self.requests.get(rid)
        if fut is None or fut.done():
            if kind == 3:
                self._enter(self._cancel, data)
            elif kind == 4:
                self._close_stream(data)
            return
        body: Any
        if kind == 0:
            body = None
        elif kind == 1:
            body = data.encode("utf-8", "surrogatepass")
        elif kind == 2:
            body = data.encode("latin-1")
        elif kind == 3:
            body = JsBodyStream(self, data)
        else:
            body = self.host_streams.pop(data)
        headers = Headers()
        headers._items = [(k, v) for k, v in pairs]
        resp = Response.__new__(Response)
        resp.status, resp.statusText, resp.headers, resp._body = status, status_text, headers, body
        fut.set_result(resp)

    def _fail(self, rid: int, headline: str, stack: str) -> None:
        fut = self.requests.get(rid)
        err = WorkerError(headline, f"{headline}\n{self.map_stack(stack)}".rstrip())
        if fut is not None and not fut.done():
            fut.set_exception(err)
        else:
            self.log(f"{self.prefixes.get(rid, '')} Uncaught {err.stack}")

    def _fail_all(self, message: str) -> None:
        for fut in self.requests.values():
            if not fut.done():
                fut.set_exception(WorkerError(message))
        for w in self.stream_waiters.values():
            if not w.done():
                w.set_exception(WorkerError(message))

    # ------------------------------------------------------------------ the outbox
    def _dispatch(self, op: list[Any]) -> None:
        kind = op[0]
        if kind == "log":
            _, rid, _level, text = op
            if "<input>:" in text:  # a logged Error's stack
                text = self.map_stack(text)
            prefix = self.prefixes.get(rid, "")
            self.log(f"{prefix} {text}" if prefix else text)
        elif kind == "respond":
            self._respond(*op[1:])
        elif kind == "fail":
            self._fail(*op[1:])
        elif kind == "timer":
            self._schedule_timer(op[1])
        elif kind == "chunk":
            _, sid, data, is_text = op
            w = self.stream_waiters.pop(sid, None)
            if w is not None and not w.done():
                w.set_result(None if data is None else data.encode("utf-8" if is_text else "latin-1"))
        elif kind == "chunkError":
            _, sid, headline, stack = op
            w = self.stream_waiters.pop(sid, None)
            if w is not None and not w.done():
                w.set_exception(WorkerError(headline, f"{headline}\n{self.map_stack(stack)}".rstrip()))
        elif kind == "call":
            _, op_id, handle, method, args = op
            self._start(op_id, self._binding_call(handle, method, args))
        elif kind == "callSync":
            self._binding_call_sync(*op[1:])
        elif kind == "release":
            self.objects.pop(op[1], None)
        elif kind == "read":
            _, op_id, sid = op
            self._start(op_id, self._read(sid), raw=True)
        elif kind == "cancelStream":
            self._close_stream(op[1])
        elif kind == "fetch":
            _, op_id, req = op
            self._start(op_id, self._fetch(req))
        elif kind == "abortOp":
            task = self.tasks.pop(op[1], None)
            if task is not None:
                task.cancel()
        elif kind == "digest":
            _, op_id, alg, data = op
            digest = hashlib.new(alg, data.encode("latin-1")).digest()
            self._call(self._settle, op_id, True, *self.codec.encode(digest))
        elif kind == "hmac":
            _, op_id, alg, key, data = op
            mac = hmac.new(key.encode("latin-1"), data.encode("latin-1"), alg).digest()
            self._call(self._settle, op_id, True, *self.codec.encode(mac))
        elif kind == "zlib":
            self._zlib(*op[1:])
        elif kind == "zlibFree":
            self.zlibs.pop(op[1], None)
        elif kind == "entropy":
            self._call(self._feed_entropy, os.urandom(ENTROPY_BYTES).decode("latin-1"))
        else:
            logger.error("ploy: unknown JS host op %r", kind)

    def _zlib(self, op_id: int, zid: int, mode: str, fmt: str, data: str, final: bool) -> None:
        """One chunk through a CompressionStream/DecompressionStream; the chunks out settle the op now."""
        try:
            chunks = zlib_step(self.zlibs, zid, mode, fmt, data.encode("latin-1"), final)
        except (zlib.error, ValueError) as e:
            self.zlibs.pop(zid, None)
            what = "compress" if mode == "compress" else "decompress"
            info = {"name": "TypeError", "message": f"{what} ({fmt}) failed: {e}"}
            self._call(self._settle, op_id, False, json.dumps(info), False)
            return
        self._call(self._settle, op_id, True, *self.codec.encode(chunks))

    def _start(self, op_id: int, coro: Any, raw: bool = False) -> None:
        task = self.loop.create_task(coro)
        self.tasks[op_id] = task
        task.add_done_callback(lambda t: self._finished(op_id, t, raw))

    def _finished(self, op_id: int, task: asyncio.Task[Any], raw: bool) -> None:
        self.tasks.pop(op_id, None)
        if task.cancelled() or self.dead:
            return
        exc = task.exception()
        if exc is not None:
            if not isinstance(exc, WorkerError) and type(exc).__module__.split(".")[0] not in ("bindings",):
                logger.debug("host op failed", exc_info=exc)
            self._enter(self._settle, op_id, False, json.dumps(error_info(exc)), False)
        elif raw:
            chunk = task.result()
            self._enter(self._settle_bytes, op_id, None if chunk is None else chunk.decode("latin-1"))
        else:
            try:
                payload, special = self.codec.encode(task.result())
            except (TypeError, ValueError) as e:
                self._enter(self._settle, op_id, False, json.dumps(error_info(e)), False)
                return
            self._enter(self._settle, op_id, True, payload, special)

    # ------------------------------------------------------------------ timers
    def _schedule_timer(self, delay_ms: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if delay_ms >= 0:
            self.timer = self.loop.call_later(delay_ms / 1000, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        for _ in range(TIMERS_PER_WAKE):
            if self.dead:
                return
            fired = self._call(self._fire_timer)
            self._drain()
            if not fired:
                return
        # more are due: come back after other callbacks had a turn
        if self.timer is None:
            self.timer = self.loop.call_soon(self._on_timer)  # type: ignore[assignment]

    # ------------------------------------------------------------------ bindings
    def _register_object(self, obj: Any) -> int:
        handle = self.next_handle
        self.next_handle += 1
        self.objects[handle] = obj
        return handle

    def _register_stream(self, stream: HostStream) -> int:
        sid = self.next_handle
        self.next_handle += 1
        self.host_streams[sid] = stream
        if self.collector is None:
            self.collector = self.loop.call_later(COLLECT_AFTER_S, self._collect)
        return sid

    def _collect(self) -> None:
        """JS objects in cycles (a stream and its controller) are only freed by QuickJS's cycle
        collector; run it while host streams are open so unread bodies release their connections.
        (~2 ms per run, so only then, and at most once per COLLECT_AFTER_S.)"""
        self.collector = None
        if self.dead:
            return
        self.ctx.gc()
        self._drain()
        if self.host_streams:
            self.collector = self.loop.call_later(COLLECT_AFTER_S, self._collect)

    def _lookup(self, handle: int) -> Any:
        obj = self.objects.get(handle)
        if obj is None:
            raise WorkerError(f"binding object #{handle} is gone")
        if isinstance(obj, _Failed):
            raise obj.exc
        return obj

    def _binding_call(self, handle: int, method: str, args_json: str) -> Any:
        """Resolves the target and arguments now (a temporary proxy may be released right after the
        call), and returns the coroutine that runs the method."""
        try:
            obj = self._lookup(handle)
            spec = spec_of(obj)
            if spec is None or method not in spec.method_names:
                raise TypeError(f"{type(obj).__name__} has no method {method}")
            args = self.codec.decode_args(args_json, self._lookup)
        except Exception as e:
            return _raise(e)
        return self._run_method(obj, spec.method(method).kind, getattr(obj, method), args)

    @staticmethod
    async def _run_method(obj: Any, kind: str, fn: Callable[..., Any], args: list[Any]) -> Any:
        check_arity(fn, args)
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
        if kind == "stream" and result is not None and not isinstance(result, HostStream):
            result = HostStream(result)
        return result

    def _binding_call_sync(self, handle: int, target: int, method: str, args_json: str) -> None:
        try:
            obj = self._lookup(target)
            fn = getattr(obj, method)
            args = self.codec.decode_args(args_json, self._lookup)
            check_arity(fn, args)
            result = fn(*args)
        except Exception as e:
            self.objects[handle] = _Failed(e)
            return
        self.objects[handle] = result
        spec = spec_of(result)
        if spec is not None and spec.props:
            props = {p: getattr(result, p, None) for p in spec.props}
            self._call(self._set_props, handle, json.dumps(props, default=str))

    # ------------------------------------------------------------------ host streams and fetch
    async def _read(self, sid: int) -> bytes | None:
        stream = self.host_streams.get(sid)
        if stream is None:
            return None
        try:
            return await anext(stream)
        except StopAsyncIteration:
            self.host_streams.pop(sid, None)
            return None
        except Exception:
            self._close_stream(sid)  # JS sees the error; the source is done either way
            raise

    def _close_stream(self, sid: int) -> None:
        stream = self.host_streams.pop(sid, None)
        if stream is not None:
            task = self.loop.create_task(stream.aclose())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _fetch(self, req_json: str) -> Any:
        req = json.loads(req_json, object_hook=_bytes_hook)
        if self.client is None:
            # fetch() in a worker has no cookie jar: a Set-Cookie from one call must never ride
            # along on later calls (of other requests, other users).
            no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            self.client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=30.0), cookies=no_cookies)
        meta, stream = await outbound_fetch(self.client, req)
        if stream is not None:
            meta["stream"] = self._register_stream(stream)
        return meta

    # ------------------------------------------------------------------ teardown
    async def close(self) -> None:
        self.dead = True
        for handle in (self.timer, self.collector):
            if handle is not None:
                handle.cancel()
        for task in list(self.tasks.values()):
            task.cancel()
        self._fail_all("Error: the worker was unloaded")
        for sid in list(self.host_streams):
            stream = self.host_streams.pop(sid)
            try:
                await stream.aclose()
            except Exception:
                pass
        if self.client is not None:
            await self.client.aclose()


async def _raise(exc: BaseException) -> Any:
    raise exc


def _bytes_hook(d: dict[str, Any]) -> Any:
    if "__ploy_bytes" in d and len(d) == 1:
        return d["__ploy_bytes"].encode("latin-1")
    return d


class JsBodyStream:
    """A JS ReadableStream response body, pulled one chunk at a time as the server asks (backpressure)."""

    def __init__(self, ctx: JsContext, sid: int) -> None:
        self.ctx = ctx
        self.sid = sid
        self.done = False

    def __aiter__(self) -> JsBodyStream:
        return self

    async def __anext__(self) -> bytes:
        while not self.done:
            ctx = self.ctx
            if ctx.dead:
                self.done = True
                raise WorkerError("Error: the worker's JS context was reset while streaming")
            fut: asyncio.Future[bytes | None] = ctx.loop.create_future()
            ctx.stream_waiters[self.sid] = fut
            ctx._enter(ctx._pull, self.sid)
            try:
                chunk = await fut
            except BaseException:
                self.done = True
                ctx.stream_waiters.pop(self.sid, None)
                raise
            if chunk is None:
                self.done = True
                break
            if chunk:
                return chunk
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self.done:
            self.done = True
            self.ctx.stream_waiters.pop(self.sid, None)
            self.ctx._enter(self.ctx._cancel, self.sid)
