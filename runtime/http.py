"""Request, Response and Headers with the web's names, for Python workers.

They are also the types the server hands to every worker loader (the JS loader converts them to and
from its QuickJS Request/Response), so the server speaks one shape whatever language the worker is in.
"""

from __future__ import annotations

import builtins
import json as _json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any, Union
from urllib.parse import urlsplit

from bindings.web import WebResponse, WebSocket, WebSocketClosed, WebSocketPair

__all__ = [
    "Headers",
    "Request",
    "Response",
    "WebSocket",
    "WebSocketClosed",
    "WebSocketPair",
    "proxyToSandbox",
    "proxy_to_sandbox",
]

BodyInit = bytes | bytearray | str | AsyncIterable[bytes] | None
HeadersInit = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]], None]  # noqa: UP007 - forward ref


class Headers:
    """Case-insensitive header list that keeps repeated fields (Set-Cookie) apart."""

    def __init__(self, init: HeadersInit = None) -> None:
        self._items: list[tuple[str, str]] = []
        if init is None:
            return
        pairs = init.items() if isinstance(init, (Headers, Mapping)) else init
        for name, value in pairs:
            self.append(name, value)

    def append(self, name: str, value: str) -> None:
        self._items.append((name.lower(), str(value).strip()))

    def set(self, name: str, value: str) -> None:
        self.delete(name)
        self.append(name, value)

    def delete(self, name: str) -> None:
        key = name.lower()
        self._items = [(k, v) for k, v in self._items if k != key]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        if not values:
            return default
        return values[0] if name.lower() == "set-cookie" else ", ".join(values)

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self._items if k == key]

    def getSetCookie(self) -> list[str]:  # noqa: N802 - the web's name
        return self.get_all("set-cookie")

    def has(self, name: str) -> bool:
        key = name.lower()  # once, not per item: the server asks this of every response
        return any(k == key for k, _ in self._items)

    def items(self) -> list[tuple[str, str]]:
        """Pairs in order, repeated names kept apart (what goes on the wire)."""
        return list(self._items)

    def keys(self) -> list[str]:
        return sorted({k for k, _ in self._items})

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.has(name)

    def __iter__(self) -> AsyncIterator[str] | Any:
        return iter(self.keys())

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


async def _iterate(body: BodyInit) -> AsyncIterator[bytes]:
    if body is None:
        return
    if isinstance(body, str):
        yield body.encode()
    elif isinstance(body, (bytes, bytearray)):
        yield bytes(body)
    else:
        async for chunk in body:
            yield chunk.encode() if isinstance(chunk, str) else bytes(chunk)


class _Body:
    _body: BodyInit
    headers: Headers

    async def arrayBuffer(self) -> bytes:  # noqa: N802
        if isinstance(self._body, (bytes, bytearray)):
            return bytes(self._body)
        data = b"".join([c async for c in _iterate(self._body)])
        self._body = data
        return data

    async def text(self) -> str:
        return (await self.arrayBuffer()).decode("utf-8", errors="replace")

    async def json(self) -> Any:
        return _json.loads(await self.arrayBuffer() or b"null")

    @property
    def body(self) -> AsyncIterator[bytes] | None:
        return None if self._body is None else _iterate(self._body)

    async def bytes(self) -> builtins.bytes:  # last: inside the class body it shadows the builtin
        return await self.arrayBuffer()


class Request(_Body):
    def __init__(
        self,
        url: str,
        method: str = "GET",
        headers: HeadersInit = None,
        body: BodyInit = None,
    ) -> None:
        self.url = url
        self.method = method.upper()
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._body = body

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class _ClassOrInstance:
    """`Response.json(data)` builds a response while `await response.json()` reads one, as on the web."""

    def __init__(self, on_class: Any, on_instance: Any) -> None:
        self.on_class, self.on_instance = on_class, on_instance

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self.on_class.__get__(owner, owner)
        return self.on_instance.__get__(obj, owner)


class Response(_Body):
    webSocket: WebSocket | None = None  # noqa: N815 - the Workers name: a 101 response's client end

    def __init__(
        self,
        body: BodyInit = None,
        status: int = 200,
        headers: HeadersInit = None,
        statusText: str = "",  # noqa: N803
        webSocket: WebSocket | None = None,  # noqa: N803
    ) -> None:
        if webSocket is not None:
            if status != 101 or not isinstance(webSocket, WebSocket):
                raise ValueError("a Response with a webSocket must have status 101 (and a WebSocket end)")
            self.webSocket = webSocket
        elif not 200 <= status <= 599:
            raise ValueError(f"Response status must be in 200..599 (101 with webSocket=client), got {status}")
        self.status = status
        self.statusText = statusText
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._body = body
        if isinstance(body, str) and not self.headers.has("content-type"):
            self.headers.set("content-type", "text/plain;charset=UTF-8")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @classmethod
    def _json_response(cls, data: Any, status: int = 200, headers: HeadersInit = None) -> Response:
        h = Headers(headers)
        if not h.has("content-type"):
            h.set("content-type", "application/json")
        return cls(_json.dumps(data, separators=(",", ":")).encode(), status=status, headers=h)

    json = _ClassOrInstance(_json_response, _Body.json)

    @classmethod
    def redirect(cls, url: str, status: int = 302) -> Response:
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"invalid redirect status {status}")
        return cls(None, status=status, headers={"location": url})

    def __repr__(self) -> str:
        return f"<Response {self.status}>"

    @classmethod
    def _from_web(cls, web: WebResponse) -> Response:
        """A binding's response (bindings/web.py) as the runtime's."""
        resp = cls.__new__(cls)
        resp.status, resp.statusText = web.status, web.statusText
        resp.headers = Headers(web.headers)
        resp._body = web.body
        if web.webSocket is not None:
            resp.webSocket = web.webSocket
        return resp


async def proxyToSandbox(request: Request, env: Any) -> Response | None:  # noqa: N802 - Cloudflare's name
    """The proxied response when `request` is for a preview URL (`sandbox.exposePort`), else None.

    Call it first in fetch(): `if (r := await proxy_to_sandbox(request, env)) is not None: return r`."""
    values = env.values() if isinstance(env, dict) else vars(env).values()
    for value in values:
        hook = getattr(value, "preview_fetch", None)
        if hook is not None:
            web = await hook(request)
            return None if web is None else Response._from_web(web)
    return None


proxy_to_sandbox = proxyToSandbox
