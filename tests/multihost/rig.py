"""Podman hosts on one machine, for tests/multihost and bench/multihost.py: each a `podman system
service` with its own storage (--root/--runroot/--tmpdir under a temporary folder, never the machine's
default storage that other checkouts use) inside its own network namespace, joined to this machine by a
veth pair with a private /30, and reached over TCP at the namespace's address, as a host on another
machine would be. Needs root (ip netns) and Podman.

`go_away()` is a host lost to the network (its link down, its API service killed: its containers keep
running in the namespace, as on a machine cut off); `come_back()` undoes it. `close()` removes the
containers, the storage, the service and the namespace, whatever state they are in."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

API_PORT = 8888


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", *args], capture_output=True, check=check, timeout=30)


def _free_subnet() -> int:
    """A third octet of 10.231.X.0/24 no route of this machine uses (several runs may share it)."""
    routes = _ip("-4", "route").stdout.decode()
    for _ in range(100):
        x = secrets.randbelow(250) + 1
        if f"10.231.{x}." not in routes:
            return x
    raise RuntimeError("no free 10.231.X.0/24 subnet")


class NamespaceHost:
    def __init__(self, base: Path, tag: str, subnet: int, index: int) -> None:
        self.index = index
        self.ns = f"ploy-mh-{tag}-{index}"
        self.veth_host = f"pmh{tag}{index}h"[:15]
        self.veth_ns = f"pmh{tag}{index}n"[:15]
        self.host_addr = f"10.231.{subnet}.{4 * index + 1}"
        self.addr = f"10.231.{subnet}.{4 * index + 2}"
        self.net = f"10.231.{subnet}.{4 * index}/30"
        self.dir = base / f"h{index}"
        self.url = f"tcp://{self.addr}:{API_PORT}"
        self.service: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "service.log"

    def enter(self) -> list[str]:
        # nsenter, not `ip netns exec`: that one also remounts /sys in a mount namespace of its own,
        # which hides the cgroup mounts runc needs ("no cgroup mount found in mountinfo")
        return ["nsenter", f"--net=/run/netns/{self.ns}"]

    def podman_args(self) -> list[str]:
        d = self.dir
        return [
            "podman",
            "--root", str(d / "root"),
            "--runroot", str(d / "runroot"),
            "--tmpdir", str(d / "tmp"),
            "--network-config-dir", str(d / "net"),
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
        ]  # fmt: skip

    def podman(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self.enter(), *self.podman_args(), *args], capture_output=True, check=check, timeout=120
        )

    def create(self) -> None:
        self.dir.mkdir(parents=True)
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
        _ip("link", "set", self.veth_ns, "netns", self.ns)
        _ip("addr", "add", f"{self.host_addr}/30", "dev", self.veth_host)
        _ip("link", "set", self.veth_host, "up")
        _ip("netns", "exec", self.ns, "ip", "addr", "add", f"{self.addr}/30", "dev", self.veth_ns)
        _ip("netns", "exec", self.ns, "ip", "link", "set", self.veth_ns, "up")
        _ip("netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
        self.start_service()

    def start_service(self) -> None:
        with open(self.log, "ab") as log:
            self.service = subprocess.Popen(
                [*self.enter(), *self.podman_args(), "system", "service", "--time=0",
                 f"tcp:{self.addr}:{API_PORT}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.addr}:{API_PORT}/_ping", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.service.poll() is not None:
                raise RuntimeError(
                    f"podman service in {self.ns} did not start: {self.log.read_text()[-800:]}"
                )
            time.sleep(0.05)

    def stop_service(self) -> None:
        if self.service is not None and self.service.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.service.pid, signal.SIGKILL)
            self.service.wait(10)
        self.service = None

    def go_away(self) -> None:
        """Its packets go nowhere (a blackhole route: connections time out, as to a machine that is
        gone; with only the link down they would follow the default route to whatever answers there)."""
        _ip("link", "set", self.veth_host, "down")
        _ip("route", "add", "blackhole", self.net)
        self.stop_service()

    def come_back(self) -> None:
        _ip("route", "del", "blackhole", self.net, check=False)
        _ip("link", "set", self.veth_host, "up")
        self.start_service()

    def close(self) -> None:
        self.stop_service()
        with contextlib.suppress(Exception):
            self.podman("rm", "-af", "-t", "0")
        with contextlib.suppress(Exception):
            self.podman("system", "reset", "--force")
        _ip("route", "del", "blackhole", self.net, check=False)
        _ip("link", "del", self.veth_host, check=False)
        _ip("netns", "del", self.ns, check=False)
        # overlay mounts left by a failed reset would keep rmtree from finishing
        with contextlib.suppress(Exception):
            for line in reversed(Path("/proc/mounts").read_text().splitlines()):
                target = line.split()[1]
                if target.startswith(str(self.dir)):
                    subprocess.run(["umount", "-l", target], capture_output=True, timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Rig:
    def __init__(self, count: int) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ploy-mh-", dir="/var/tmp"))
        tag = secrets.token_hex(2)
        subnet = _free_subnet()
        self.hosts = [NamespaceHost(self.base, tag, subnet, i) for i in range(count)]

    def start(self) -> Rig:
        try:
            for h in self.hosts:
                h.create()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for h in self.hosts:
            with contextlib.suppress(Exception):
                h.close()
        shutil.rmtree(self.base, ignore_errors=True)


def available() -> str | None:
    """Why the rig cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    for tool in ("ip", "podman"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None
