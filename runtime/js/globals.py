"""Host ops of 42_globals.js: unhandled promise rejections, logged once the job queue is empty."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def rejections(ctx: JsHost, op: list[Any]) -> None:
    """Sent when a promise is rejected with no handler. Ops are handled after the job queue ran
    empty, so what is still unhandled now stays so (HTML's microtask checkpoint): have JS log it."""
    ctx.call_js(ctx.js_report_rejections)


HOST_OPS = {"rejections": rejections}
