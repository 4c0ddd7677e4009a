"""Host ops of 30_console.js: console output into ploy's log, tagged with its request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.js.host import JsHost


def log(ctx: JsHost, op: list[Any]) -> None:
    _, rid, _level, text = op  # the level is dropped: the worker's log callback takes one line
    if "<input>:" in text:  # a logged Error's stack
        text = ctx.map_stack(text)
    prefix = ctx.prefixes.get(rid, "")
    ctx.log(f"{prefix} {text}" if prefix else text)


HOST_OPS = {"log": log}
