"""Forwarding one request to a server at (address, port): plain HTTP/1.1 streamed both ways, or a WebSocket.

Used for preview URLs and `wsConnect` (the sandbox's server at its bridge address). Not httpx: a
forwarded request must keep its method, headers, status and redirects as they are, and the hop has to
cost well under a millisecond (bench/preview_bench.py), so this is a small HTTP/1.1 client on asyncio
protocols with llhttp (httptools) parsing, keep-alive connections pooled per target, and a response
body streamed with flow control (reading pauses while the consumer lags). WebSockets go through the
`websockets` library's client; the messages are then relayed by the runtime like any other WebSocket.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httptools

from bindings.web import CLOSED, OPEN, Message, RequestLike, WebResponse, WebSocket, WebSocketClosed

# Hop-by-hop fields (RFC 9110 7.6.1) are the connection's own, never forwarded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
MAX_IDLE_PER_TARGET = 32
PAUSE_ABOVE = 256 * 1024  # body bytes buffered for a slow consumer before reading from upstream pauses
CONNECT_TIMEOUT_S = 5.0


class UpstreamError(Exception):
    """The target could not be reached, or closed the connection before a whole response head."""


# Another way to the same server when its address refuses: a connected non-blocking socket to `port`
# (bindings/sandbox/netns.py: the sandbox's own loopback, for servers that listen on localhost only).
Dial = Callable[[int], Awaitable[socket.socket]]


def _forward_headers(request: RequestLike, client_host: str | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = list(request.headers.items())
    named = {token.strip().lower() for k, v in pairs if k.lower() == "connection" for token in v.split(",")}
    out = [(k, v) for k, v in pairs if k.lower() not in HOP_BY_HOP and k.lower() not in named]
    url = urlsplit(request.url)
    if url.hostname:
        out.append(("x-forwarded-host", url.netloc))
        out.append(("x-forwarded-proto", url.scheme or "http"))
    if client_host:
        out.append(("x-forwarded-for", client_host))
    return out


class _Upstream(asyncio.Protocol):
    """One keep-alive connection to the target; one request at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.got_bytes = False
        self.head: asyncio.Future[tuple[int, list[tuple[str, str]]]] | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.complete = False
        self.error: BaseException | None = None
        self.wakeup: asyncio.Future[None] | None = None
        self.no_body = False
        self.keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(UpstreamError(f"invalid HTTP response from the server: {e}"))
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(UpstreamError("the server closed the connection" + (f": {exc}" if exc else "")))
        self.pool.forget(self)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim response (100 Continue): wait for the final one
            self.headers = []
            return
        if self.head is not None and not self.head.done():
            self.head.set_result((status, self.headers))
        if self.no_body:
            self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_ABOVE and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.complete:
            return
        self.complete = True
        # asked now: once the message is over, llhttp answers False whatever the response said
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
        self._wake()

    def _wake(self) -> None:
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # request/response
    def start(
        self, head: bytes, body: bytes, no_body: bool
    ) -> asyncio.Future[tuple[int, list[tuple[str, str]]]]:
        assert self.transport is not None
        self.head = asyncio.get_running_loop().create_future()
        self.headers, self.complete, self.error, self.no_body = [], False, None, no_body
        self.keep_alive = False
        self.got_bytes = False
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        return self.head

    async def body(self) -> AsyncIterator[bytes]:
        done = False
        try:
            while True:
                if self.chunks:
                    chunk = self.chunks.popleft()
                    self.buffered -= len(chunk)
                    if self.paused and self.buffered < PAUSE_ABOVE // 2 and self.transport is not None:
                        self.paused = False
                        self.transport.resume_reading()
                    yield chunk
                    continue
                if self.complete:
                    done = True
                    return
                if self.error is not None:
                    raise self.error
                self.wakeup = asyncio.get_running_loop().create_future()
                await self.wakeup
                self.wakeup = None
        finally:
            if done and not self.closed and self.keep_alive and not self.no_body:
                self.pool.release(self)
            else:
                self._close()


class _Pool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Upstream] = []
        self.dial: Dial | None = None
        self.via_dial = False  # the address refused and dial answered: new connections go that way

    async def acquire(self) -> _Upstream:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        loop = asyncio.get_running_loop()
        conn = _Upstream(self)
        if (self.via_dial or not self.host) and self.dial is not None:
            try:
                await loop.create_connection(lambda: conn, sock=await self.dial(self.port))
                return conn
            except OSError:
                if not self.host:  # no address to try instead (a sandbox without a network)
                    raise
                self.via_dial = False  # the server moved (or went): its address is tried again
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: conn, self.host, self.port), CONNECT_TIMEOUT_S
            )
        except ConnectionRefusedError:
            if self.dial is None:
                raise
            await loop.create_connection(lambda: conn, sock=await self.dial(self.port))
            self.via_dial = True
        return conn

    def release(self, conn: _Upstream) -> None:
        if len(self.idle) < MAX_IDLE_PER_TARGET and not conn.closed:
            conn.chunks.clear()
            conn.buffered = 0
            self.idle.append(conn)
        else:
            conn._close()

    def forget(self, conn: _Upstream) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        for conn in self.idle:
            conn._close()
        self.idle.clear()


class HttpForwarder:
    """Forwards requests to targets, keeping idle connections per target for the next request."""

    def __init__(self) -> None:
        self._pools: dict[tuple[Any, ...], _Pool] = {}

    async def forward(
        self,
        request: RequestLike,
        host: str,
        port: int,
        client_host: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        dial: Dial | None = None,
    ) -> WebResponse:
        """The target's response, its body streamed. Raises UpstreamError when it cannot be reached.
        `dial`: the way to try when (host, port) refuses the connection."""
        headers = _forward_headers(request, client_host) + list(extra_headers or ())
        url = urlsplit(request.url)
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        if _is_upgrade(request):
            return await _forward_websocket(request, host, port, target, headers, dial)
        body = b"" if request.method in ("GET", "HEAD") else await request.arrayBuffer()
        if body or request.method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("content-length", str(len(body))))
        lines = [f"{request.method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # an address names one server; without one (a sandbox with no network) the dial's target does
        key: tuple[Any, ...] = (host, port) if host else (host, port, dial)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(host, port)
        if dial is not None:
            pool.dial = dial
        for attempt in (0, 1):
            try:
                conn = await pool.acquire()
            except (OSError, TimeoutError) as e:
                raise UpstreamError(
                    f"cannot connect to {host or 'localhost'}:{port}: {e or type(e).__name__}"
                ) from None
            try:
                status, response_headers = await conn.start(head, body, request.method == "HEAD")
                break
            except UpstreamError:
                # a pooled connection the server had closed meanwhile: nothing of the request was read
                if attempt == 0 and conn.reused and not conn.got_bytes:
                    continue
                raise
        else:  # pragma: no cover - the loop always breaks or raises
            raise UpstreamError("unreachable")
        # the dev server dates every response itself: a second Date would only disagree with it
        out = [(k, v) for k, v in response_headers if k not in HOP_BY_HOP and k != "date"]
        if conn.complete:
            # the whole response came with its head (the usual small one): hand it over as bytes,
            # which the server writes at once, instead of a stream pulled chunk by chunk
            body = b"".join(conn.chunks)
            conn.chunks.clear()
            conn.buffered = 0
            if conn.keep_alive and not conn.no_body and not conn.closed:
                pool.release(conn)
            else:
                conn._close()
            return WebResponse(status, out, body)
        return WebResponse(status, out, conn.body())

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _is_upgrade(request: RequestLike) -> bool:
    return (request.headers.get("upgrade") or "").lower() == "websocket"


# Headers the websockets client sets itself, or that belong to the browser's handshake.
_WS_OWN = frozenset(
    {"host", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
     "content-length", "origin"}
)  # fmt: skip


async def _forward_websocket(
    request: RequestLike,
    host: str,
    port: int,
    target: str,
    headers: list[tuple[str, str]],
    dial: Dial | None = None,
) -> WebResponse:
    protocols = [
        p.strip() for p in (request.headers.get("sec-websocket-protocol") or "").split(",") if p.strip()
    ]
    origin = request.headers.get("origin")
    original_host = request.headers.get("host")
    extra = [(k, v) for k, v in headers if k.lower() not in _WS_OWN]
    if original_host:
        extra.append(("host", original_host))
    url = f"ws://{host or 'localhost'}:{port}{target}"
    try:
        if not host:  # no address (a sandbox without a network): only dial reaches it
            raise ConnectionRefusedError
        return await connect_websocket(url, extra, protocols, origin, refused_raises=dial is not None)
    except ConnectionRefusedError:
        if dial is None:
            raise UpstreamError(
                f"cannot open a WebSocket to port {port}: the target has no address"
            ) from None
        try:
            sock = await dial(port)
        except OSError as e:
            raise UpstreamError(f"cannot open a WebSocket to {url}: {e}") from None
        return await connect_websocket(url, extra, protocols, origin, sock=sock)


async def connect_websocket(
    url: str,
    headers: list[tuple[str, str]],
    protocols: list[str],
    origin: str | None = None,
    sock: socket.socket | None = None,
    refused_raises: bool = False,
) -> WebResponse:
    """Open a WebSocket to `url` (over `sock` when given): a 101 WebResponse whose webSocket is
    connected to it, or the server's own response when it refuses the upgrade. Raises UpstreamError
    when it cannot be reached (ConnectionRefusedError as itself with `refused_raises`)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    via: dict[str, Any] = {"sock": sock} if sock is not None else {}
    try:
        conn = await connect(
            url,
            additional_headers=headers,
            subprotocols=protocols or None,  # type: ignore[arg-type]
            origin=origin,  # type: ignore[arg-type]
            compression=None,
            proxy=None,
            user_agent_header=None,
            max_size=None,
            open_timeout=CONNECT_TIMEOUT_S,
            ping_interval=None,
            **via,
        )
    except ConnectionRefusedError:
        if refused_raises:
            raise
        raise UpstreamError(f"cannot open a WebSocket to {url}: connection refused") from None
    except InvalidStatus as e:
        r = e.response
        return WebResponse(
            r.status_code, [(k.lower(), v) for k, v in r.headers.raw_items()], bytes(r.body or b"")
        )
    except (OSError, TimeoutError, InvalidHandshake) as e:
        raise UpstreamError(f"cannot open a WebSocket to {url}: {e or type(e).__name__}") from None
    ws = ClientSocket(conn)
    headers_out = [("sec-websocket-protocol", str(conn.subprotocol))] if conn.subprotocol else []
    return WebResponse(101, headers_out, None, ws)


class ClientSocket(WebSocket):
    """A WebSocket end whose other side is a server reached with the `websockets` client."""

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn
        self.protocol = conn.subprotocol or ""
        self._reader: asyncio.Task[None] | None = None

    def accept(self) -> None:
        super().accept()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in self.conn:
                self._deliver(message)
                await self._wait_unread_below(1 << 20)
        except ConnectionClosed:
            pass
        except Exception:
            pass
        rcvd = self.conn.close_rcvd
        self._peer_closed(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")

    async def send(self, data: Message) -> None:
        from websockets.exceptions import ConnectionClosed

        if self.readyState == CLOSED:
            raise WebSocketClosed(self.close_code or 1006, self.close_reason)
        try:
            await self.conn.send(data)
        except ConnectionClosed as e:
            raise WebSocketClosed(e.rcvd.code if e.rcvd else 1006, e.rcvd.reason if e.rcvd else "") from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.readyState == CLOSED:
            return
        self.readyState = CLOSED
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._wake()
        try:
            await self.conn.close(code if code not in (1005, 1006) else 1000, reason)
        except Exception:
            pass
        if self._reader is not None:
            self._reader.cancel()

    @property
    def open(self) -> bool:
        return self.readyState == OPEN
