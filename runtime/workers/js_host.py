"""Host side of the JS bridge that does not touch QuickJS: value codec, byte streams, outbound fetch.

Bytes cross the QuickJS boundary as latin-1 strings (one char per byte), the cheapest form it takes.
"""

from __future__ import annotations

import functools
import inspect
import json
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from bindings.error_codes import FETCH_FAILED, INTERNAL
from bindings.errors import InvalidArgument, PloyError
from bindings.spec import ObjectSpec, spec_of


@functools.lru_cache(maxsize=512)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def check_arity(method: Callable[..., Any], args: list[Any]) -> None:
    """JS lets a caller pass too few or too many arguments; a binding method says which it takes."""
    fn = getattr(method, "__func__", method)  # cache per function, not per bound method
    receiver = (None,) if fn is not method else ()
    try:
        _signature(fn).bind(*receiver, *args)
    except TypeError as e:
        raise InvalidArgument(f"{getattr(fn, '__name__', 'method')}(): {e}") from None


def error_info(exc: BaseException) -> dict[str, Any]:
    """The JSON a JS Error is rebuilt from: name, message, code (+ details)."""
    if isinstance(exc, PloyError):
        return exc.to_json()
    return {"name": "Error", "code": INTERNAL, "message": f"{type(exc).__name__}: {exc}"}


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


class Codec:
    """JSON to and from JS, with bytes, binding objects and streams tagged."""

    def __init__(
        self, register_object: Callable[[Any], int], register_stream: Callable[[HostStream], int]
    ) -> None:
        self._register_object = register_object
        self._register_stream = register_stream
        self.sent_specs: set[str] = set()

    def describe(self, obj: Any, spec: ObjectSpec) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "handle": self._register_object(obj),
            "spec": spec.name,
            "props": {p: getattr(obj, p, None) for p in spec.props},
        }
        if spec.name not in self.sent_specs:
            self.sent_specs.add(spec.name)
            desc["methods"] = spec_methods(spec)
        return desc

    def encode(self, value: Any) -> tuple[str, bool]:
        special = False

        def default(v: Any) -> Any:
            nonlocal special
            if isinstance(v, (bytes, bytearray, memoryview)):
                special = True
                return {"__ploy_bytes": bytes(v).decode("latin-1")}
            spec = spec_of(v)
            if spec is not None:
                special = True
                return {"__ploy_obj": self.describe(v, spec)}
            if isinstance(v, HostStream):
                special = True
                return {"__ploy_stream": self._register_stream(v)}
            if isinstance(v, (set, frozenset, tuple)):
                return list(v)
            to_json = getattr(v, "to_json", None)
            if callable(to_json):
                return to_json()
            raise TypeError(f"cannot send a {type(v).__name__} to JS")

        if value is None:
            return "null", False
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":")), special

    def decode_args(self, text: str, lookup: Callable[[int], Any]) -> list[Any]:
        def hook(d: dict[str, Any]) -> Any:
            if "__ploy_bytes" in d and len(d) == 1:
                return d["__ploy_bytes"].encode("latin-1")
            if "__ploy_handle" in d and len(d) == 1:
                return lookup(d["__ploy_handle"])
            return d

        args = json.loads(text, object_hook=hook)
        return args if isinstance(args, list) else [args]


def spec_methods(spec: ObjectSpec) -> list[list[Any]]:
    """[name, kind, returns, props_from_args] per method. `props_from_args` names
    the props of a sync method's result that equal its arguments, so JS can set them at once
    (`env.SANDBOX.get(id).id`) instead of when the host has run the call."""
    return [[m.name, m.kind, m.returns, list(m.props_from_args)] for m in spec.methods]


# ---------------------------------------------------------------- outbound fetch
_DROP_DECODED = {"content-encoding", "content-length"}


async def outbound_fetch(
    client: httpx.AsyncClient, req: dict[str, Any]
) -> tuple[dict[str, Any], HostStream | None]:
    """Performs one fetch() for JS. Raises PloyError(name TypeError) as the web's network error."""
    body = req.get("body")
    redirect = req.get("redirect", "follow")
    headers = [(k, v) for k, v in req["headers"]]
    try:
        request = client.build_request(req["method"], req["url"], headers=headers, content=body)
        resp = await client.send(request, stream=True, follow_redirects=redirect == "follow")
    except httpx.HTTPError as e:
        raise _network_error(f"fetch failed: {e or type(e).__name__}") from e
    if redirect == "error" and resp.is_redirect:
        await resp.aclose()
        raise _network_error(
            f"fetch failed: redirect to {resp.headers.get('location')} with redirect mode 'error'"
        )
    decoded = "content-encoding" in resp.headers
    pairs = [
        [k.lower(), v] for k, v in resp.headers.multi_items() if not (decoded and k.lower() in _DROP_DECODED)
    ]
    meta = {
        "status": resp.status_code,
        "statusText": resp.reason_phrase,
        "headers": pairs,
        "url": str(resp.url),
        "redirected": bool(resp.history),
        "stream": None,
    }
    if req["method"] == "HEAD" or resp.status_code in (101, 103, 204, 205, 304):
        await resp.aclose()
        return meta, None
    return meta, HostStream(resp.aiter_bytes(), resp.aclose)


def _network_error(message: str) -> PloyError:
    err = PloyError(message, code=FETCH_FAILED)
    err.to_json = lambda: {"name": "TypeError", "code": FETCH_FAILED, "message": message}  # type: ignore[method-assign]
    return err


ZLIB_WBITS = {"gzip": 31, "deflate": 15, "deflate-raw": -15}
ZLIB_OUT_CHUNK = 1 << 20  # decompressed output reaches JS in pieces of at most this size


def zlib_step(zlibs: dict[int, Any], zid: int, mode: str, fmt: str, data: bytes, final: bool) -> list[bytes]:
    """Feed one chunk to stream `zid`'s (de)compressor (made on first use); at `final`, finish it.
    Raises zlib.error or ValueError for corrupt, truncated or trailing input (JS: TypeError)."""
    wbits = ZLIB_WBITS[fmt]
    if mode == "compress":
        c = zlibs.get(zid) or zlibs.setdefault(zid, zlib.compressobj(wbits=wbits))
        piece = c.compress(data)
        if final:
            piece += c.flush()
            del zlibs[zid]
        return [piece] if piece else []
    d = zlibs.get(zid) or zlibs.setdefault(zid, zlib.decompressobj(wbits=wbits))
    out: list[bytes] = []
    while data:
        if d.eof:
            raise ValueError("data after the end of the compressed stream")
        out.append(d.decompress(data, ZLIB_OUT_CHUNK))
        data = d.unconsumed_tail or d.unused_data
    if final:
        del zlibs[zid]
        out.append(d.flush())
        if not d.eof:
            raise ValueError("the compressed stream ended early")
    return [c for c in out if c]
