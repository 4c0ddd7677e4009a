"""How the gateway listens: loopback for the local user, the Podman bridge address for sandboxes
(found by bindings.podman.bridge).

Never on every interface: a gateway token is a credential, so only the machine itself and its own
containers may reach the listener.
"""

from __future__ import annotations

import socket

_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


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
