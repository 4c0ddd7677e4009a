"""Host ops of 20_timers.js: the one wake-up the host keeps for JS's earliest timer deadline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def timer(ctx: JsHost, op: list[Any]) -> None:
    """The earliest deadline moved: wake JS `delay_ms` from now (negative: no timers left)."""
    delay_ms = op[1]
    if ctx.timer is not None:
        ctx.timer.cancel()
        ctx.timer = None
    if delay_ms >= 0:
        ctx.timer = ctx.loop.call_later(delay_ms / 1000, ctx.fire_timers)


HOST_OPS = {"timer": timer}
