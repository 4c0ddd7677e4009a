"""Reaching a server that listens on a sandbox's own loopback (localhost only, the default of Vite, many
dev servers and `node`'s `listen(port, "localhost")`), which its bridge address cannot reach.

A socket belongs to the network namespace it was made in: one made inside the container's namespace
and connected to 127.0.0.1 (or ::1) there keeps talking to the sandbox after this thread has gone back
to its own. Needs CAP_SYS_ADMIN (ploy dev as root, as rootful Podman is); without it the dial fails
and the preview answers what it answered before (nothing listens on the bridge address).

Dialing runs in a thread of its own: setns changes the calling thread's namespace, and a pool thread
left inside a sandbox's namespace would carry the next job there.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import socket
import threading
from concurrent.futures import Future
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_identity(pid: int) -> tuple[str, int] | None:
    """The path and inode of a running container's network namespace (its init's), or None."""
    path = f"/proc/{pid}/ns/net"
    try:
        return path, os.stat(path).st_ino
    except OSError:
        return None


def _dial_inside(path: str, inode: int, port: int) -> socket.socket:
    target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(target).st_ino != inode:  # the pid now belongs to another process
            raise OSError(errno.ESRCH, "the sandbox's network namespace is gone")
        _setns(target)
        try:
            problem: OSError = ConnectionRefusedError(errno.ECONNREFUSED, "nothing listens on localhost")
            for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.settimeout(2.0)
                    sock.connect((address, port))
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    return sock
                except OSError as e:
                    sock.close()
                    problem = e
            raise problem
        finally:
            _setns(own)  # if this failed the thread would stay inside: it ends right after anyway
    finally:
        os.close(target)
        os.close(own)


@dataclass(frozen=True)
class LoopbackDialer:
    """`await dialer(port)`: a non-blocking socket connected to the sandbox's localhost:port. Equal for
    the same namespace: HttpForwarder pools the connections of an address-less sandbox under it."""

    path: str
    inode: int

    async def __call__(self, port: int) -> socket.socket:
        done: Future[socket.socket] = Future()

        def run() -> None:
            try:
                done.set_result(_dial_inside(self.path, self.inode, port))
            except BaseException as e:  # handed to the awaiting side
                done.set_exception(e)

        threading.Thread(target=run, name="ploy-netns-dial", daemon=True).start()
        return await asyncio.wrap_future(done)
