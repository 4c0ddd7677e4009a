"""The AI binding (`env.AI` when ploy.yaml has `ai: true`) and the gateway behind it (see plugin.py).

The classes load on first use, so reading ploy.yaml (which imports this package's plugin) does not
load the gateway's HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bindings.ai.binding import AiBinding
    from bindings.ai.gateway import Gateway

__all__ = ["AiBinding", "Gateway"]


def __getattr__(name: str) -> Any:
    if name == "AiBinding":
        from bindings.ai.binding import AiBinding

        return AiBinding
    if name == "Gateway":
        from bindings.ai.gateway import Gateway

        return Gateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
