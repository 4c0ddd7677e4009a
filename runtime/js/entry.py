"""Host ops of 90_entry.js: a request's Response (or error) handed back to the host, and the chunks
of a response body that is a JS ReadableStream, pulled one at a time (JsBodyStream)."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from runtime.http import Headers, Response
from runtime.js.host_streams import close_stream
from runtime.workers.base import WorkerError

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def respond(ctx: JsHost, op: list[Any]) -> None:
    """`kind` says what `data` is: 0 no body, 1 text, 2 bytes as latin-1, 3 the id of a JS stream
    (pulled as a JsBodyStream), 4 the id of a host stream passed through untouched."""
    _, rid, status, status_text, pairs, kind, data = op
    fut = ctx.requests.get(rid)
    if fut is None or fut.done():
        if kind == 3:
            ctx.enter(ctx.js_cancel, data)
        elif kind == 4:
            close_stream(ctx, data)
        return
    body: Any
    if kind == 0:
        body = None
    elif kind == 1:
        body = data.encode("utf-8", "surrogatepass")
    elif kind == 2:
        body = data.encode("latin-1")
    elif kind == 3:
        body = JsBodyStream(ctx, data)
    else:
        body = ctx.host_streams.pop(data)
    headers = Headers()
    headers._items = [(k, v) for k, v in pairs]
    resp = Response.__new__(Response)
    resp.status, resp.statusText, resp.headers, resp._body = status, status_text, headers, body
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
    """The next chunk of a JsBodyStream (None: the end). `kind`: 0 bytes as latin-1, 1 text, 2 bytes
    left in JS to be taken, as base64 (a big chunk, which JSON would only slow down)."""
    _, sid, data, kind = op
    payload: bytes | None
    if kind == 2:
        payload = base64.b64decode(ctx.call_js(ctx.js_take_chunk, sid) or "")
    else:
        payload = None if data is None else data.encode("utf-8" if kind == 1 else "latin-1")
    w = ctx.stream_waiters.pop(sid, None)
    if w is not None and not w.done():
        w.set_result(payload)


def chunk_error(ctx: JsHost, op: list[Any]) -> None:
    _, sid, headline, stack = op
    w = ctx.stream_waiters.pop(sid, None)
    if w is not None and not w.done():
        w.set_exception(WorkerError(headline, f"{headline}\n{ctx.map_stack(stack)}".rstrip()))


class JsBodyStream:
    """A JS ReadableStream response body, pulled one chunk at a time as the server asks (backpressure)."""

    def __init__(self, ctx: JsHost, sid: int) -> None:
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
            ctx.enter(ctx.js_pull, self.sid)
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
            self.ctx.enter(self.ctx.js_cancel, self.sid)


HOST_OPS = {"respond": respond, "fail": fail, "chunk": chunk, "chunkError": chunk_error}
