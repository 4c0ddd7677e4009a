"""What bindings and the runtime exchange about HTTP and WebSockets, without either importing the other.

Bindings never import runtime/ (tests/test_import_graph.py), yet some binding methods take the incoming
request (`sandbox.wsConnect(request, port)`, `sandbox.terminal(request)`) and answer with a response
that may carry a WebSocket. So the shapes live here: `RequestLike` (what runtime.http.Request already
is), `WebResponse` (what the runtime turns into its own Response, for Python and for JS), and
`WebSocket`, one end of a socket whose other end is a browser, a worker, a server in a sandbox or a
terminal. The runtime bridges a WebSocket given in a 101 response to the client's connection.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

# readyState, as in the browser's WebSocket
CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3
# Bytes a sender may queue for a peer that is not reading before `send` waits (Python) or the socket
# is closed with 1009 (JS's send cannot wait): memory stays bounded whatever the peer does.
HIGH_WATER = 1 << 20
MAX_BUFFERED = 16 << 20

Message = str | bytes


class RequestLike(Protocol):
    """The incoming request as bindings see it (runtime.http.Request is one)."""

    method: str
    url: str

    @property
    def headers(self) -> Any: ...  # .get(name) and .items() -> [(name, value)]

    async def arrayBuffer(self) -> bytes: ...  # noqa: N802 - the web's name


def is_websocket_upgrade(request: RequestLike) -> bool:
    return (request.headers.get("upgrade") or "").lower() == "websocket"


class WebSocketClosed(Exception):
    """Raised by receive() once the socket is closed; `code` and `reason` are the close frame's."""

    def __init__(self, code: int = 1005, reason: str = "") -> None:
        super().__init__(f"the WebSocket is closed ({code}{': ' + reason if reason else ''})")
        self.code, self.reason = code, reason


class WebSocket:
    """One end of a WebSocket, as a worker (or the server bridging it) drives it.

    `accept()` starts delivery (messages sent before it wait), `await send(text_or_bytes)` (waits while
    the peer has HIGH_WATER bytes unread), `await receive()` / `async for message in ws` (str for text
    frames, bytes for binary ones; the iteration ends at close), `await close(code, reason)`.
    Subclasses connect it to something: the other end of a WebSocketPair, a server, a terminal."""

    def __init__(self) -> None:
        self.readyState = CONNECTING
        self.accepted = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.protocol = ""  # the negotiated subprotocol, if any
        self._inbox: collections.deque[Message] = collections.deque()
        self._inbox_bytes = 0
        self._readable: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None

    # --- what the worker calls ---
    def accept(self) -> None:
        if self.accepted:
            raise RuntimeError("accept() was already called on this WebSocket")
        self.accepted = True
        if self.readyState == CONNECTING:
            self.readyState = OPEN
        self._wake()

    async def send(self, data: Message) -> None:
        raise NotImplementedError

    async def close(self, code: int = 1000, reason: str = "") -> None:
        raise NotImplementedError

    async def receive(self) -> Message:
        while True:
            if self.accepted and self._inbox:
                message = self._inbox.popleft()
                self._inbox_bytes -= len(message)
                if self._drained is not None and self._inbox_bytes < HIGH_WATER:
                    self._drained.set()
                return message
            if self.readyState == CLOSED or (self.close_code is not None and not self._inbox):
                raise WebSocketClosed(self.close_code or 1005, self.close_reason)
            if self._readable is None:
                self._readable = asyncio.Event()
            self._readable.clear()
            await self._readable.wait()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.receive()
            except WebSocketClosed:
                return

    # --- what the connected side calls ---
    def _deliver(self, message: Message) -> None:
        self._inbox.append(message)
        self._inbox_bytes += len(message)
        self._wake()

    def _peer_closed(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.readyState = CLOSED
        self._wake()
        if self._drained is not None:
            self._drained.set()

    def _wake(self) -> None:
        if self._readable is not None:
            self._readable.set()

    async def _wait_unread_below(self, limit: int) -> None:
        """Backpressure for a sender into this end: wait while it holds `limit` bytes unread."""
        while self._inbox_bytes >= limit and self.readyState != CLOSED:
            if self._drained is None:
                self._drained = asyncio.Event()
            self._drained.clear()
            await self._drained.wait()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} readyState={self.readyState}>"


class _PairEnd(WebSocket):
    peer: _PairEnd

    async def send(self, data: Message) -> None:
        self.send_nowait(data)
        await self.peer._wait_unread_below(HIGH_WATER)

    def send_nowait(self, data: Message) -> None:
        """Queue a message without waiting (JS's send); the caller bounds what it queues."""
        if self.readyState == CLOSED or self.close_code is not None:
            raise WebSocketClosed(self.close_code or 1006, self.close_reason)
        if not isinstance(data, (str, bytes)):
            data = bytes(data)
        self.peer._deliver(data)

    @property
    def peer_unread(self) -> int:
        return self.peer._inbox_bytes

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.close_nowait(code, reason)

    def close_nowait(self, code: int = 1000, reason: str = "") -> None:
        if self.readyState == CLOSED:
            return
        self.close_code, self.close_reason = code, reason
        self.readyState = CLOSED
        self._wake()
        self.peer._peer_closed(code, reason)


def WebSocketPair() -> tuple[WebSocket, WebSocket]:  # noqa: N802 - the Workers name
    """Two connected ends: give the first to the client (`Response(None, status=101, webSocket=client)`),
    keep the second. What one end sends, the other receives."""
    a, b = _PairEnd(), _PairEnd()
    a.peer, b.peer = b, a
    return a, b


@dataclass
class WebResponse:
    """A response made by a binding: the runtime turns it into its Response (Python) or a JS Response.
    `body` is bytes or an async iterator of bytes (streamed, closed with aclose() when abandoned)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncIterator[bytes] | None = None
    webSocket: WebSocket | None = None  # noqa: N815 - the Workers name
    statusText: str = ""  # noqa: N815

    @classmethod
    def json(cls, status: int, data: Any, headers: Iterable[tuple[str, str]] = ()) -> WebResponse:
        import json

        body = json.dumps(data, separators=(",", ":")).encode()
        return cls(status, [("content-type", "application/json"), *headers], body)
