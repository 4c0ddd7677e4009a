"""Host op of 86_preview.js: proxyToSandbox's request for a preview host, answered by the first binding
in the worker's env that routes previews (`preview_fetch`, e.g. SandboxBinding); null from it means
the host is no preview URL after all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.http import Headers, Request

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def preview_proxy(ctx: JsHost, op: list[Any]) -> None:
    _, op_id, desc, handles = op
    ctx.start(op_id, _proxy(ctx, desc, handles))


async def _proxy(ctx: JsHost, desc: dict[str, Any], handles: list[int]) -> Any:
    """`desc` is requestForHost's {method, url, headers, body (latin-1 or null)}."""
    body = None if desc["body"] is None else desc["body"].encode("latin-1")
    request = Request(desc["url"], desc["method"], Headers([(k, v) for k, v in desc["headers"]]), body)
    for handle in handles:
        hook = getattr(ctx.objects.get(handle), "preview_fetch", None)
        if hook is not None:
            return await hook(request)
    return None


HOST_OPS = {"previewProxy": preview_proxy}
