"""The SANDBOX binding: long-lived Linux sandboxes backed by Podman containers (see client.py)."""

from bindings.sandbox.client import SandboxBinding, SandboxClient, SandboxSession

__all__ = ["SandboxBinding", "SandboxClient", "SandboxSession"]
