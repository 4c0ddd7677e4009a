"""Where the gateway listens: loopback for the local user, the Podman bridge address for sandboxes.

Never on every interface: a gateway token is a credential, so only the machine itself and its own
containers may reach the listener.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket

from bindings.sandbox.bridge import FALLBACK_INTERFACE

FALLBACK_BRIDGE = "10.88.0.1"  # Podman's default network gateway
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


async def podman_bridge(network: str = "podman") -> tuple[str, str] | None:
    """(the host's address on the Podman network, the bridge interface's name), as containers see it.

    PLOY_AI_BRIDGE_ADDR overrides the address; without Podman there is no bridge (and no sandboxes)."""
    override = os.environ.get("PLOY_AI_BRIDGE_ADDR")
    if shutil.which("podman") is None:
        return (override, FALLBACK_INTERFACE) if override else None
    try:
        proc = await asyncio.create_subprocess_exec(
            "podman", "network", "inspect", network, "--format",
            "{{.NetworkInterface}} {{range .Subnets}}{{.Gateway}} {{end}}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=15)
    except (TimeoutError, OSError):
        return override or FALLBACK_BRIDGE, FALLBACK_INTERFACE
    words = out.decode().split()
    interface = words[0] if words else FALLBACK_INTERFACE
    for word in words[1:]:
        try:
            if ipaddress.ip_address(word).version == 4:
                return override or word, interface
        except ValueError:
            continue
    return override or FALLBACK_BRIDGE, interface


async def bridge_address(network: str = "podman") -> str | None:
    found = await podman_bridge(network)
    return found[0] if found else None


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port.

    IP_FREEBIND lets it bind the bridge address before Podman has created the bridge interface (it
    appears with the first container): connections arrive once the address exists."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only turns Nagle off (TCP_NODELAY) on sockets whose proto is
    # IPPROTO_TCP, and with Nagle on, responses written in two parts wait ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if host not in ("127.0.0.1", "::1", "localhost"):
            sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
