"""Host ops of 85_websocket.js: the Python ends (bindings/web.py) behind JS WebSockets.

`ctx.sockets` maps the id JS knows a socket by to its Python end: ends of a WebSocketPair JS made
(negative ids), or sockets a binding or an outgoing fetch made (positive ids, given by the codec). An
accepted socket's messages are delivered into JS by one task each. JS's send() cannot wait, so a
peer that leaves MAX_BUFFERED bytes unread gets the socket closed with 1009 instead of memory growing.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any

from bindings.http_proxy import UpstreamError, connect_websocket
from bindings.web import MAX_BUFFERED, Message, WebSocket, WebSocketClosed, WebSocketPair, _PairEnd

if TYPE_CHECKING:
    from runtime.js.host import JsHost

TOO_SLOW = 1009


def ws_pair(ctx: JsHost, op: list[Any]) -> None:
    _, a, b = op
    ctx.sockets[a], ctx.sockets[b] = WebSocketPair()


def ws_accept(ctx: JsHost, op: list[Any]) -> None:
    sid = op[1]
    end = ctx.sockets.get(sid)
    if end is None:
        return
    if not end.accepted:
        end.accept()
    ctx.socket_tasks[sid] = ctx.loop.create_task(_deliver(ctx, sid, end))


async def _deliver(ctx: JsHost, sid: int, end: WebSocket) -> None:
    try:
        async for message in end:
            if ctx.dead:
                return
            if isinstance(message, str):
                ctx.enter(ctx.js_ws_event, sid, "t", message, 0)
            else:
                ctx.enter(ctx.js_ws_event, sid, "b", bytes(message).decode("latin-1"), 0)
    finally:
        ctx.socket_tasks.pop(sid, None)
        ctx.sockets.pop(sid, None)
    if not ctx.dead:
        ctx.enter(ctx.js_ws_event, sid, "c", end.close_reason, end.close_code or 1005)


class _Outbox:
    """Messages for a socket whose send waits (a server's, a terminal's), sent in order by one task."""

    def __init__(self) -> None:
        self.queue: collections.deque[Message | tuple[int, str]] = collections.deque()
        self.size = 0
        self.task: asyncio.Task[None] | None = None


def ws_send(ctx: JsHost, op: list[Any]) -> None:
    _, sid, data, is_text = op
    end = ctx.sockets.get(sid)
    if end is None:
        return
    payload: Message = data if is_text else data.encode("latin-1")
    if isinstance(end, _PairEnd):
        try:
            end.send_nowait(payload)
        except WebSocketClosed:
            return
        if end.peer_unread > MAX_BUFFERED:
            _too_slow(ctx, sid, end)
        return
    box = _outbox(ctx, sid, end)
    box.queue.append(payload)
    box.size += len(payload)
    if box.size > MAX_BUFFERED:
        box.queue.clear()
        _too_slow(ctx, sid, end)


def ws_close(ctx: JsHost, op: list[Any]) -> None:
    _, sid, code, reason = op
    end = ctx.sockets.get(sid)
    if end is None:
        return
    if isinstance(end, _PairEnd):
        end.close_nowait(code, reason)
        return
    _outbox(ctx, sid, end).queue.append((code, reason))


def _outbox(ctx: JsHost, sid: int, end: WebSocket) -> _Outbox:
    box: _Outbox | None = getattr(end, "_js_outbox", None)
    if box is None:
        box = _Outbox()
        end._js_outbox = box  # type: ignore[attr-defined]
    if box.task is None or box.task.done():
        box.task = ctx.loop.create_task(_flush(box, end))
    return box


async def _flush(box: _Outbox, end: WebSocket) -> None:
    try:
        while box.queue:
            item = box.queue.popleft()
            if isinstance(item, tuple):
                await end.close(*item)
                return
            box.size -= len(item)
            await end.send(item)
    except WebSocketClosed:
        box.queue.clear()


def _too_slow(ctx: JsHost, sid: int, end: WebSocket) -> None:
    ctx.log(
        f"a WebSocket was closed with {TOO_SLOW}: its peer left {MAX_BUFFERED >> 20} MiB of messages unread"
    )
    reason = "the peer is not reading"
    if isinstance(end, _PairEnd):
        end.close_nowait(TOO_SLOW, reason)
        end.peer.close_nowait(TOO_SLOW, reason)
    else:
        task = ctx.loop.create_task(end.close(TOO_SLOW, reason))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def ws_connect_url(ctx: JsHost, op: list[Any]) -> None:
    """fetch(url, {headers: {Upgrade: "websocket"}}): settles with a Response (101 with webSocket)."""
    _, op_id, url, pairs = op
    ctx.start(op_id, _connect(url, pairs))


_HANDSHAKE = {"upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
              "sec-websocket-protocol", "host", "origin", "content-length"}  # fmt: skip


async def _connect(url: str, pairs: list[list[str]]) -> Any:
    headers = [(k, v) for k, v in pairs if k.lower() not in _HANDSHAKE]
    protocols = [
        p.strip()
        for k, v in pairs
        if k.lower() == "sec-websocket-protocol"
        for p in v.split(",")
        if p.strip()
    ]
    origin = next((v for k, v in pairs if k.lower() == "origin"), None)
    try:
        return await connect_websocket(url, headers, protocols, origin)
    except UpstreamError as e:
        from runtime.js.fetch import _network_error

        raise _network_error(f"fetch failed: {e}") from None


async def close_all(ctx: JsHost) -> None:
    """The context is going away: close every socket JS still held."""
    for task in list(ctx.socket_tasks.values()):
        task.cancel()
    for end in list(ctx.sockets.values()):
        try:
            await end.close(1001, "the worker was unloaded")
        except Exception:
            pass
    ctx.sockets.clear()


HOST_OPS = {
    "wsPair": ws_pair,
    "wsAccept": ws_accept,
    "wsSend": ws_send,
    "wsClose": ws_close,
    "wsConnectUrl": ws_connect_url,
}
