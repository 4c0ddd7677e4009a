"""Host ops of 90_entry.js: a request's Response (or error) handed back to the host, and the chunks
of a response body that is a JS ReadableStream, pulled one at a time (JsBodyStream)."""

from __future__ import annotations

import asyncio
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from runtime.http import Headers, Response
from runtime.js.host_streams import close_stream
from runtime.workers.base import WorkerError

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def respond(ctx: JsHost, text: str) -> None:
    """A text op (see respond in 90_entry.js): lines rid, status, kind, status text, the number of
    headers, each header's name and value, then `data`. `kind` says what `data` is: 0 no body, 1 text
    (a JSON string), 2 bytes as latin-1 (a JSON string), 3 the id of a JS stream (pulled as a
    JsBodyStream), 4 the id of a host stream passed through untouched, 5 text as it is (JSON.stringify's
    output, which holds no NUL and no lone surrogate: the binding can pass it)."""
    rid_s, status, kind_s, status_text, n_s, rest = text.split("\n", 5)
    n = int(n_s)
    if n:
        parts = rest.split("\n", 2 * n)
        data = parts.pop()
        pairs = list(zip(parts[::2], parts[1::2], strict=True))
    else:
        data, pairs = rest, []
    kind = int(kind_s)
    fut = ctx.requests.get(int(rid_s))
    if fut is None or fut.done():
        if kind == 3:
            ctx.enter(ctx.js_cancel, int(data))
        elif kind == 4:
            close_stream(ctx, int(data))
        return
    body: Any
    if kind == 0:
        body = None
    elif kind == 1:
        body = scanstring(data, 1)[0].encode("utf-8", "surrogatepass")
    elif kind == 5:
        body = data.encode("utf-8")
    elif kind == 2:
        body = scanstring(data, 1)[0].encode("latin-1")
    elif kind == 3:
        body = JsBodyStream(ctx, int(data))
    else:
        body = ctx.host_streams.pop(int(data))
    headers = Headers.__new__(Headers)
    headers._items = pairs
    resp = Response.__new__(Response)
    resp.status, resp.statusText, resp.headers, resp._body = int(status), status_text, headers, body
    fut.set_result(resp)


def respond_websocket(ctx: JsHost, op: list[Any]) -> None:
    """A 101 answer with a webSocket (85_websocket.js): `ws` is the id of the pair's end the server
    bridges to the client."""
    _, rid, status, status_text, pairs, ws = op
    fut = ctx.requests.get(rid)
    end = ctx.sockets.pop(ws, None)
    if fut is None or fut.done():
        if end is not None:  # the request went away: its socket has nobody to talk to
            ctx.loop.create_task(end.close(1001, "the request went away"))
        return
    headers = Headers.__new__(Headers)
    headers._items = [(k, v) for k, v in pairs]
    resp = Response.__new__(Response)
    resp.status, resp.statusText, resp.headers, resp._body = status, status_text, headers, None
    resp.webSocket = end
    fut.set_result(resp)


def fail(ctx: JsHost, op: list[Any]) -> None:
    _, rid, headline, stack = op
    fut = ctx.requests.get(rid)
    err = WorkerError(headline, f"{headline}\n{ctx.map_stack(stack)}".rstrip())
    if fut is not None and not fut.done():
        fut.set_exception(err)
    else:
        ctx.log(f"{ctx.prefixes.get(rid, '')} Uncaught {err.stack}")


def chunk(ctx: JsHost, op: list[Any]) -> None:
    """JS read more of a JsBodyStream (and maybe its end): take it. Ops are handled once the job
    queue ran empty, so this takes every chunk the stream produced meanwhile, as one."""
    sid = op[1]
    text = ctx.call_js(ctx.js_take_chunks, sid)
    hooks = ctx.hooks
    if hooks is not None and isinstance(text, str) and len(text) == 1:
        data = hooks.take_bytes()  # 90_entry.js's FAST_BYTES: the flag here, the bytes in JS
    else:
        data = scanstring(text, 2)[0].encode("latin-1") if isinstance(text, str) else None
    stream = ctx.body_streams.get(sid)
    if stream is None or data is None or not isinstance(text, str):
        return
    stream.feed(data, text[0] == "1")


def chunk_error(ctx: JsHost, op: list[Any]) -> None:
    _, sid, headline, stack = op
    stream = ctx.body_streams.get(sid)
    if stream is not None:
        stream.fail(WorkerError(headline, f"{headline}\n{ctx.map_stack(stack)}".rstrip()))


class JsBodyStream:
    """A JS ReadableStream response body. JS reads it ahead by up to a batch (90_entry.js); the server
    takes what was read so far, and asks for more when it has taken everything (backpressure)."""

    def __init__(self, ctx: JsHost, sid: int) -> None:
        self.ctx = ctx
        self.sid = sid
        self.done = False  # nothing more will come from JS
        self.closed = False  # nothing more will be returned
        self.buffer: list[bytes] = []
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        ctx.body_streams[sid] = self

    def feed(self, data: bytes, end: bool) -> None:
        if data:
            self.buffer.append(data)
        if end:
            self.done = True
            self.ctx.body_streams.pop(self.sid, None)
        self._wake()

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True
        self.ctx.body_streams.pop(self.sid, None)
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __aiter__(self) -> JsBodyStream:
        return self

    async def __anext__(self) -> bytes:
        while not self.closed:
            if self.buffer:
                data = self.buffer[0] if len(self.buffer) == 1 else b"".join(self.buffer)
                self.buffer = []
                return data
            if self.error is not None:
                self.closed = True
                raise self.error
            if self.done:
                break
            ctx = self.ctx
            if ctx.dead:
                self.closed = True
                raise WorkerError("Error: the worker's JS context was reset while streaming")
            self.waiter = ctx.loop.create_future()
            ctx.enter(ctx.js_pull, self.sid)
            try:
                await self.waiter
            except BaseException:
                self.closed = True
                ctx.body_streams.pop(self.sid, None)
                raise
            finally:
                self.waiter = None
        self.closed = True
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            if not self.done:
                self.done = True
                self.ctx.body_streams.pop(self.sid, None)
                self.ctx.enter(self.ctx.js_cancel, self.sid)


HOST_OPS = {
    "respond": respond,
    "respondWebSocket": respond_websocket,
    "fail": fail,
    "chunk": chunk,
    "chunkError": chunk_error,
}
