"""Host op of 86_preview.js: proxyToSandbox's request for a preview host, answered by the first binding
in the worker's env that routes previews (`preview_fetch`, e.g. SandboxBinding); null from it means
the host is no preview URL after all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def preview_proxy(ctx: JsHost, op: list[Any]) -> None:
    _, op_id, args_json, handles = op
    ctx.start(op_id, _proxy(ctx, args_json, handles))


async def _proxy(ctx: JsHost, args_json: str, handles: list[int]) -> Any:
    (request,) = ctx.codec.decode_args(args_json, ctx.objects.lookup)
    for handle in handles:
        hook = getattr(ctx.objects.get(handle), "preview_fetch", None)
        if hook is not None:
            return await hook(request)
    return None


HOST_OPS = {"previewProxy": preview_proxy}
