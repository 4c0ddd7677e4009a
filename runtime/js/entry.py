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
    from runtime.workers.js_context import JsContext


def respond(ctx: JsContext, text: str) -> None:
    """A text op (see respond in 90_entry.js): lines rid, status, kind, status text, the number of
    headers, each header's name and value, then `data`. `kind` says what `data` is: 0 no body, 1 text
    (a JSON string), 2 bytes as latin-1 (a JSON string), 3 the id of a JS stream (pulled as a
    JsBodyStream), 4 the id of a host stream passed through untouched."""
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


def fail(ctx: JsContext, op: list[Any]) -> None:
    _, rid, headline, stack = op
    fut = ctx.requests.get(rid)
    err = WorkerError(headline, f"{headline}\n{ctx.map_stack(stack)}".rstrip())
    if fut is not None and not fut.done():
        fut.set_exception(err)
    else:
        ctx.log(f"{ctx.prefixes.get(rid, '')} Uncaught {err.stack}")


def chunk(ctx: JsContext, op: list[Any]) -> None:
    """The next chunk of a JsBodyStream (None: the end)."""
    _, sid, data, is_text = op
    w = ctx.stream_waiters.pop(sid, None)
    if w is not None and not w.done():
        w.set_result(None if data is None else data.encode("utf-8" if is_text else "latin-1"))


def chunk_error(ctx: JsContext, op: list[Any]) -> None:
    _, sid, headline, stack = op
    w = ctx.stream_waiters.pop(sid, None)
    if w is not None and not w.done():
        w.set_exception(WorkerError(headline, f"{headline}\n{ctx.map_stack(stack)}".rstrip()))


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
