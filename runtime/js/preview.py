"""Host op of 86_preview.js: proxyToSandbox's request for a preview host, answered by the first binding
in the worker's env that routes previews (`preview_fetch`, e.g. SandboxBinding); null from it means
the host is no preview URL after all."""

from __future__ import annotations

from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from runtime.http import Headers, Request

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def preview_proxy(ctx: JsHost, text: str) -> None:
    """A text op (previewRequestText in 86_preview.js): lines op id, binding handles (comma-separated),
    method, url, body (a JSON-quoted latin-1 string; empty for none), then header names and values.
    Answered through settleResponse, not the JSON codec: this runs on every preview request."""
    op_id, handles, method, url, body_s, *flat = text.split("\n")
    headers = Headers.__new__(Headers)
    headers._items = list(zip(flat[::2], flat[1::2], strict=True))
    body = scanstring(body_s, 1)[0].encode("latin-1") if body_s else None
    request = Request(url, method, headers, body)
    ctx.start(int(op_id), _proxy(ctx, request, [int(h) for h in handles.split(",")]), "response")


async def _proxy(ctx: JsHost, request: Request, handles: list[int]) -> Any:
    for handle in handles:
        hook = getattr(ctx.objects.get(handle), "preview_fetch", None)
        if hook is not None:
            return await hook(request)
    return None


HOST_OPS = {"previewProxy": preview_proxy}
