"""Host ops of 80_host_streams.js: byte streams that live in Python (a fetch response body, a sandbox
execStream), read by JS one chunk per `read` op.

The streams are in `ctx.host_streams` under the id JS knows them by (see JsHost.register_stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.js.host import JsHost


class HostStream:
    """An AsyncIterator[bytes] JS reads through `read` ops; aclose() runs on cancel or teardown."""

    def __init__(self, source: AsyncIterator[bytes], on_close: Callable[[], Any] | None = None) -> None:
        self._it = aiter(source)
        self._source = source
        self._on_close = on_close
        self.closed = False

    def __aiter__(self) -> HostStream:
        return self

    async def __anext__(self) -> bytes:
        if self.closed:
            raise StopAsyncIteration
        try:
            chunk = await anext(self._it)
        except StopAsyncIteration:
            await self.aclose()
            raise
        return chunk.encode() if isinstance(chunk, str) else bytes(chunk)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        close = getattr(self._source, "aclose", None)
        try:
            if close is not None:
                await close()
        finally:
            if self._on_close is not None:
                result = self._on_close()
                if hasattr(result, "__await__"):
                    await result


def read(ctx: JsHost, op: list[Any]) -> None:
    """The next chunk, settled as bytes (null at the end)."""
    _, op_id, sid = op
    ctx.start(op_id, _read(ctx, sid), "bytes")


async def _read(ctx: JsHost, sid: int) -> bytes | None:
    stream = ctx.host_streams.get(sid)
    if stream is None:
        return None
    try:
        return await anext(stream)
    except StopAsyncIteration:
        ctx.host_streams.pop(sid, None)
        return None
    except Exception:
        close_stream(ctx, sid)  # JS sees the error; the source is done either way
        raise


def cancel_stream(ctx: JsHost, op: list[Any]) -> None:
    """JS cancelled the stream, or collected it unread."""
    close_stream(ctx, op[1])


def close_stream(ctx: JsHost, sid: int) -> None:
    """Closes the source in the background (entry.respond too: a body whose request is gone)."""
    stream = ctx.host_streams.pop(sid, None)
    if stream is not None:
        task = ctx.loop.create_task(stream.aclose())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


HOST_OPS = {"read": read, "cancelStream": cancel_stream}
