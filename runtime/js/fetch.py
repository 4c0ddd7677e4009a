"""Host ops of 81_fetch.js: a worker's outbound fetch() over httpx, and its cancellation on abort."""

from __future__ import annotations

import json
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import httpx

from bindings.error_codes import FETCH_FAILED
from bindings.errors import PloyError
from runtime.js.host_streams import HostStream

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def fetch(ctx: JsHost, op: list[Any]) -> None:
    """Settles with the response's status, headers and url, and its body as a host stream."""
    _, op_id, req_json = op
    ctx.start(op_id, _fetch(ctx, req_json))


def abort_op(ctx: JsHost, op: list[Any]) -> None:
    """The request's signal aborted: JS has rejected already, and the op is never settled."""
    task = ctx.tasks.pop(op[1], None)
    if task is not None:
        task.cancel()


async def _fetch(ctx: JsHost, req_json: str) -> Any:
    req = json.loads(req_json, object_hook=_bytes_hook)
    if ctx.client is None:
        # fetch() in a worker has no cookie jar: a Set-Cookie from one call must never ride
        # along on later calls (of other requests, other users).
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        ctx.client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=30.0), cookies=no_cookies)
    meta, stream = await outbound_fetch(ctx.client, req)
    if stream is not None:
        meta["stream"] = ctx.register_stream(stream)
    return meta


def _bytes_hook(d: dict[str, Any]) -> Any:
    if "__ploy_bytes" in d and len(d) == 1:
        return d["__ploy_bytes"].encode("latin-1")
    return d


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


HOST_OPS = {"fetch": fetch, "abortOp": abort_op}
