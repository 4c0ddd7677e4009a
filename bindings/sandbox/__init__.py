"""The SANDBOX binding: long-lived Linux sandboxes backed by Podman containers (see plugin.py, client.py).

The classes load on first use, so reading ploy.yaml (which imports this package's plugin) does not
load the Podman backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bindings.sandbox.client import SandboxBinding, SandboxClient, SandboxSession

__all__ = ["SandboxBinding", "SandboxClient", "SandboxSession"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bindings.sandbox import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
