"""One QuickJS context driven from the asyncio event loop: entries, job-queue drains, the outbox.

Every entry into JS (a request, a settled host op, a timer, a stream pull) is followed by draining
QuickJS's job queue and taking the outbox (JSON that JS leaves in a global, see 00_bridge.js); each op
found there goes to its handler in runtime/js/ (the module beside the JS file that sends it), which
may start asyncio work whose result settles the op as a later entry. Many requests are in flight at
once, interleaved.

The context holds the state the handlers share (requests, binding objects, host streams, tasks); the
handlers use call_js/enter to run JS, start to run host work for an op, and the js_* entry points.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from itertools import chain
from typing import Any

import httpx
import quickjs

from bindings.spec import REGISTRY, spec_of
from bindings.web import WebResponse
from runtime.http import Request, Response
from runtime.js import host_ops
from runtime.js.binding_proxies import BindingObjects, spec_methods
from runtime.js.bridge import Codec, error_info
from runtime.js.crypto import fresh_entropy
from runtime.js.entry import JsBodyStream
from runtime.js.host import Settle
from runtime.js.host_streams import HostStream
from runtime.js.websocket import close_all as close_sockets
from runtime.watchdog import guard
from runtime.workers import quickjs_hooks
from runtime.workers.base import Limits, WorkerError

logger = logging.getLogger("ploy.js")
JS_ERRORS: tuple[type[BaseException], ...] = (quickjs.JSException, quickjs.StackOverflow)
COLLECT_AFTER_S = 1.0
NEVER = "the worker will never respond"
TIMERS_PER_WAKE = 256  # then yield to the loop so a timer storm cannot starve requests


class LoadError(Exception):
    def __init__(self, message: str, stack: str = "") -> None:
        super().__init__(message)
        self.stack = stack


class JsContext:
    @guard("js")
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
        self.body_streams: dict[int, JsBodyStream] = {}  # JS ReadableStreams being sent as response bodies
        self.objects = BindingObjects()
        self.host_streams: dict[int, HostStream] = {}
        self.tasks: dict[int, asyncio.Task[Any]] = {}
        self.zlibs: dict[int, Any] = {}  # CompressionStream/DecompressionStream id -> zlib (de)compressor
        self.sockets: dict[int, Any] = {}  # WebSocket id -> its Python end (runtime/js/websocket.py)
        self.socket_tasks: dict[int, asyncio.Task[Any]] = {}
        self.next_rid = 1
        self.next_handle = 1
        self.timer: asyncio.TimerHandle | None = None
        self.collector: asyncio.TimerHandle | None = None
        self.client: httpx.AsyncClient | None = None
        self.codec = Codec(self.register_object, self.register_stream, self.register_socket)
        self._ops = host_ops()

        ctx = self.ctx = quickjs.Context()
        ctx.set_memory_limit(limits.memory_mb * 1024 * 1024)
        ctx.set("__ploy_seed", fresh_entropy())
        self.hooks = quickjs_hooks.attach(ctx, limits.cpu_ms / 1000)
        if self.hooks is None:  # not the binding layout expected: its own limit, no rejection tracking
            logger.warning(
                "ploy: the quickjs binding is not the one expected; unhandled rejections are not reported"
            )
            ctx.set_time_limit(limits.cpu_ms / 1000)
        else:
            ctx.set("__ploy_fastBytes", True)  # stream bytes leave JS through hooks.take_bytes
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
        # JS's entry points (90_entry.js exposes them), called through call_js or enter
        get = ctx.get
        self.js_request, self.js_pull, self.js_cancel = (
            get("__ploy_request"),
            get("__ploy_pull"),
            get("__ploy_cancel"),
        )
        self.js_take_chunks = get("__ploy_takeChunks")
        self.js_settle, self.js_settle_bytes = get("__ploy_settle"), get("__ploy_settleBytes")
        self.js_settle_response = get("__ploy_settleResponse")
        self.js_fire_timer, self.js_set_props = get("__ploy_fireTimer"), get("__ploy_setProps")
        self.js_take = get("__ploy_take")
        self.js_feed_entropy, self.js_rid = get("__ploy_feedEntropy"), get("__ploy_rid")
        self.js_ws_event = get("__ploy_wsEvent")
        self.js_report_rejections = get("__ploy_reportRejections")

        env_desc: dict[str, Any] = {}
        for name, value in env.items():
            spec = spec_of(value)
            env_desc[name] = {"__ploy_obj": self.codec.describe(value, spec)} if spec is not None else value
        specs = [[s.name, spec_methods(s)] for s in REGISTRY.values()]
        self.codec.sent_specs.update(REGISTRY)
        problem = self.call_js(get("__ploy_init"), json.dumps({"env": env_desc, "specs": specs}, default=str))
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

    @guard("js")
    def call_js(self, fn: Any, *args: Any) -> Any:
        """Calls into JS without draining: for handlers, which run inside a drain."""
        self._entered = True
        if self.hooks is not None:
            self.hooks.run += 1  # a new run: the CPU limit counts afresh
        try:
            return fn(*args)
        except JS_ERRORS as e:
            self._crashed(e)
            return None

    def _jobs(self) -> None:
        ctx = self.ctx
        hooks = self.hooks
        while True:
            try:
                if hooks is None:
                    while ctx.execute_pending_job():
                        pass
                    return
                hooks.run += 1
                while ctx.execute_pending_job():
                    hooks.run += 1
                return
            except JS_ERRORS as e:
                if not hasattr(self, "js_rid"):
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
            try:
                out = self.ctx.get("__ploy_out")
            except TypeError:  # a rope string (a long text op, see hostSendText): take() flattens it
                out = 1
            if out == "":
                return
            self._entered = False
            if isinstance(out, str):  # the usual case: one op, read without a call into JS
                self.ctx.set("__ploy_out", "")
                ops: list[Any] = [out]
            else:
                ops = json.loads(f"[{self.call_js(self.js_take) or ''}]")
            for op in ops:
                try:
                    self._dispatch(op)
                except Exception:  # a bug in ploy must not take the worker down
                    logger.exception("ploy: JS host op %s failed", str(op)[:40])
            if not self._entered:
                # Only JS queues jobs and fills the outbox: if no op ran JS, both are empty, and another
                # round (a job-queue poll, a call into JS, and a read of the outbox) would find nothing.
                return

    def enter(self, fn: Any, *args: Any) -> None:
        """Calls into JS and drains: for callbacks from the event loop."""
        if self.dead:
            return
        self.call_js(fn, *args)
        self._drain()
        self._never_settling()

    def _never_settling(self) -> None:
        """No host op, timer or stream read pending: nothing can run JS again, so a request still waiting
        for its response would wait for ever. workerd answers those ("The script will never generate a
        response"); so does ploy."""
        if (
            self.tasks
            or self.timer is not None
            or self.body_streams
            or self.sockets
            or self.socket_tasks
            or not self.requests
        ):
            return
        for rid, fut in list(self.requests.items()):
            if not fut.done():
                prefix = self.prefixes.get(rid, "")
                fut.set_exception(
                    WorkerError(
                        f"Error: {NEVER}",
                        f"Error: {NEVER}: its fetch() awaits a promise that nothing pending (no timer, no "
                        "I/O) can resolve",
                        log_line=f"{prefix} {NEVER}: its fetch() awaits a promise nothing pending can resolve",
                    )
                )

    def _crashed(self, e: BaseException) -> None:
        """JS was interrupted (CPU limit), ran out of memory, or overflowed the stack."""
        head, stack = self._split_exception(e)
        if self.hooks is not None:
            self.hooks.run += 1  # the calls below are runs of their own
        try:
            rid = int(self.js_rid())
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
            self.timer = self.loop.call_soon(self.fire_timers)  # type: ignore[assignment]

    def _healthy(self) -> bool:
        if self.hooks is not None:
            self.hooks.run += 1
        try:
            self.ctx.gc()
            return self.ctx.eval("1 + 1") == 2
        except JS_ERRORS:
            return False

    # ------------------------------------------------------------------ requests
    @guard("js")
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
            text = False
            if request.method not in ("GET", "HEAD") or request._body:
                data = await request.arrayBuffer()
                if data or request.method not in ("GET", "HEAD"):
                    # UTF-8 (JSON, forms, text) is decoded here, ~20x faster than in QuickJS; other
                    # bytes cross as latin-1, one character per byte
                    try:
                        body, text = data.decode("utf-8"), True
                    except UnicodeDecodeError:
                        body = data.decode("latin-1")
            headers = "\n".join(chain.from_iterable(request.headers._items))
            self.enter(self.js_request, rid, request.method, request.url, headers, body, text)
            if self.dead and not fut.done():
                raise WorkerError("Error: the worker's JS context is unusable")
            return await fut
        finally:
            self.requests.pop(rid, None)

    def _fail_all(self, message: str) -> None:
        for fut in self.requests.values():
            if not fut.done():
                fut.set_exception(WorkerError(message))
        for stream in list(self.body_streams.values()):
            stream.fail(WorkerError(message))

    # ------------------------------------------------------------------ the outbox
    def _dispatch(self, op: list[Any] | str) -> None:
        """`op` is a JSON op (its text, or parsed: [name, *args]) or a text op (hostSendText): its
        name, a line break, and the text its handler parses."""
        if type(op) is str:
            if op[0] == "[":
                op = json.loads(op)
            else:
                name, _, text = op.partition("\n")
                handler = self._ops.get(name)
                if handler is None:
                    logger.error("ploy: unknown JS host op %r", name)
                    return
                handler(self, text)
                return
        handler = self._ops.get(op[0])
        if handler is None:
            logger.error("ploy: unknown JS host op %r", op[0])
            return
        handler(self, op)

    def resolve(self, op_id: int, value: Any) -> None:
        """Settles a hostCall now, from its handler."""
        self.call_js(self.js_settle, op_id, True, *self.codec.encode(value))

    def start(self, op_id: int, coro: Any, settle: Settle = "value") -> None:
        """Runs a handler's host work; its result settles the hostCall (see Settle)."""
        task = self.loop.create_task(coro)
        self.tasks[op_id] = task
        task.add_done_callback(lambda t: self._finished(op_id, t, settle))

    def _finished(self, op_id: int, task: asyncio.Task[Any], settle: Settle) -> None:
        self.tasks.pop(op_id, None)
        if task.cancelled() or self.dead:
            return
        exc = task.exception()
        if exc is not None:
            if not isinstance(exc, WorkerError) and type(exc).__module__.split(".")[0] not in ("bindings",):
                logger.debug("host op failed", exc_info=exc)
            self.enter(self.js_settle, op_id, False, json.dumps(error_info(exc)), False)
        elif settle == "bytes":
            chunk = task.result()
            if chunk is not None and self.hooks is not None and self.hooks.put_bytes(chunk):
                self.enter(self.js_settle_bytes, op_id, 0)  # 0: the bytes are in __ploy_bytesIn
            else:
                self.enter(self.js_settle_bytes, op_id, None if chunk is None else chunk.decode("latin-1"))
        elif settle == "response" and getattr(task.result(), "webSocket", None) is None:
            self._settle_response(op_id, task.result())
        else:  # "value", and a 101 with a socket (rare: the codec registers the socket)
            try:
                payload, special = self.codec.encode(task.result())
            except (TypeError, ValueError) as e:
                self.enter(self.js_settle, op_id, False, json.dumps(error_info(e)), False)
                return
            self.enter(self.js_settle, op_id, True, payload, special)

    def _settle_response(self, op_id: int, web: WebResponse | None) -> None:
        if web is None:
            self.enter(self.js_settle_response, op_id, 0, "", "", None, None)
            return
        bin_, sid = self.codec.response_body(web)
        flat = "\n".join(chain.from_iterable((k.lower(), v) for k, v in web.headers))
        self.enter(self.js_settle_response, op_id, web.status, web.statusText, flat, bin_, sid)

    # ------------------------------------------------------------------ timers
    def fire_timers(self) -> None:
        """The wake-up runtime/js/timers.py scheduled: runs the due timers, earliest first."""
        self.timer = None
        for _ in range(TIMERS_PER_WAKE):
            if self.dead:
                return
            fired = self.call_js(self.js_fire_timer)
            self._drain()
            if not fired:
                self._never_settling()
                return
        # more are due: come back after other callbacks had a turn
        if self.timer is None:
            self.timer = self.loop.call_soon(self.fire_timers)  # type: ignore[assignment]

    # ------------------------------------------------------------------ handles
    def register_object(self, obj: Any) -> int:
        handle = self.next_handle
        self.next_handle += 1
        self.objects[handle] = obj
        return handle

    def register_stream(self, stream: HostStream) -> int:
        sid = self.next_handle
        self.next_handle += 1
        self.host_streams[sid] = stream
        if self.collector is None:
            self.collector = self.loop.call_later(COLLECT_AFTER_S, self._collect)
        return sid

    def register_socket(self, end: Any) -> int:
        sid = self.next_handle
        self.next_handle += 1
        self.sockets[sid] = end
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

    # ------------------------------------------------------------------ teardown
    async def close(self) -> None:
        self.dead = True
        if self.hooks is not None:
            self.hooks.detach()
        for handle in (self.timer, self.collector):
            if handle is not None:
                handle.cancel()
        for task in list(self.tasks.values()):
            task.cancel()
        self._fail_all("Error: the worker was unloaded")
        await close_sockets(self)
        for sid in list(self.host_streams):
            stream = self.host_streams.pop(sid)
            try:
                await stream.aclose()
            except Exception:
                pass
        if self.client is not None:
            await self.client.aclose()
