"""The `network` option (issue 11, item 8), tried from inside real containers.

"The internet" is stood in for by a network namespace on the host (a veth pair, a TEST-NET-2 address,
HTTP servers inside): sandboxes reach it only through the host's forwarding and NAT, as they reach a
real off-box address, and this machine has no internet to try. Host services listen on 0.0.0.0 in this
process; the AI gateway is the real one (bindings/ai/testing.AiStack, on loopback and Podman's bridge).
"""

from __future__ import annotations

import http.server
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.sandbox import network
from bindings.sandbox.client import SandboxClient
from bindings.sandbox.options import changed_settings
from tests.bindings.sandbox.conftest import Bindings
from tests.bindings.sandbox.test_sandbox_cli import ploy
from tests.conftest import isolated_homes

Run = Callable[..., Any]


# ---- without Podman ------------------------------------------------------------------------------


def test_every_rule_is_tagged_and_names_its_bridge() -> None:
    bridge = network.Bridge("ploy-abc", "cni-podman7", "10.89.6.0/24", "10.89.6.1")
    for policy in ("default", ("pypi.org:443", "10.1.0.0/16", "*:22", "host.containers.internal:8080")):
        tables = network.rules(bridge, policy, ("10.88.0.1", 4321))
        lines = tables["filter"] + tables["nat"]
        assert lines and all("--comment ploy:ploy-abc " in line for line in lines)
        assert all(" -i cni-podman7 " in line or " -o cni-podman7 " in line for line in lines)
        assert any("--to-destination 127.0.0.1:4321" in line for line in tables["nat"])
        # the last word on the bridge's traffic to the host and onward is a reject
        assert tables["filter"][-1].endswith("icmp-admin-prohibited")


def test_sandboxes_made_before_the_option_count_as_open() -> None:
    now = {"image": "default", "memory": "1g", "cpus": 1.0, "pids": 1024, "network": "default"}
    old = {"image": "default", "memory": "1g", "cpus": 1.0, "pids": 1024}
    assert changed_settings(old, now) == ["network open -> default"]
    assert changed_settings({**old, "network": ["pypi.org"]}, now) == ["network [pypi.org] -> default"]
    assert changed_settings({**old, "network": "default"}, now) == []


# ---- from inside real containers -----------------------------------------------------------------


def _needs_root_networking() -> None:
    if os.geteuid() != 0 or shutil.which("iptables") is None or shutil.which("ip") is None:
        pytest.skip("the network policy needs root, iptables and iproute2")


# Not http.server: its bind looks the address up in DNS (getfqdn), which the namespace cannot reach.
_SERVER = """
import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        self.rfile.readline()
        self.wfile.write(b"HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


class Internet:
    """A network namespace standing in for an off-box address: HTTP on `addr`:8080 and :8081."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{random.randrange(100)}"
        self.ns, self.veth = f"ploy-inet-{tag}", f"pin{tag}"
        block = 4 * random.randrange(64)  # a /30 of 198.51.100.0/24 (TEST-NET-2: not private)
        self.host_side, self.addr = f"198.51.100.{block + 1}", f"198.51.100.{block + 2}"
        self.servers: list[subprocess.Popen[bytes]] = []

    def up(self) -> None:
        def ip(*args: str) -> None:
            subprocess.run(["ip", *args], check=True, capture_output=True)

        ip("netns", "add", self.ns)
        ip("link", "add", self.veth + "a", "type", "veth", "peer", "name", self.veth + "b")
        ip("link", "set", self.veth + "b", "netns", self.ns)
        ip("addr", "add", f"{self.host_side}/30", "dev", self.veth + "a")
        ip("link", "set", self.veth + "a", "up")
        ip("-n", self.ns, "addr", "add", f"{self.addr}/30", "dev", self.veth + "b")
        ip("-n", self.ns, "link", "set", self.veth + "b", "up")
        ip("-n", self.ns, "link", "set", "lo", "up")
        ip("-n", self.ns, "route", "add", "default", "via", self.host_side)
        for port in (8080, 8081):
            self.servers.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", self.ns, sys.executable, "-c", _SERVER, self.addr, str(port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            )
            _wait_listening(self.addr, port)

    def down(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait(5)
        subprocess.run(["ip", "netns", "delete", self.ns], capture_output=True)  # takes the veth with it


def _wait_listening(host: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port}")


class HostService:
    """An HTTP server on 0.0.0.0 of the host: what a sandbox must not reach by default."""

    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), http.server.SimpleHTTPRequestHandler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _host_addresses() -> list[str]:
    """The host's own global IPv4 addresses outside container bridges (eth0's, ...)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    )
    found = []
    for line in out.stdout.splitlines():
        words = line.split()
        if not words[1].startswith(("cni-", "podman", "pin", "veth", "docker")):
            found.append(words[3].split("/")[0])
    return found


@pytest.fixture(scope="module")
def inet() -> Iterator[Internet]:
    _needs_root_networking()
    world = Internet()
    try:
        world.up()
        yield world
    finally:
        world.down()


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[HostService, HostService]]:
    a, b = HostService(), HostService()
    yield a, b
    a.close()
    b.close()


@pytest.fixture(scope="module")
def gateway_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The variables `ai: true` injects, from a real gateway (listening on loopback and Podman's bridge)."""
    from bindings.ai.testing import AiStack

    base = tmp_path_factory.mktemp("net-ai")
    (base / "proj").mkdir()
    with isolated_homes(base):
        stack = AiStack(base / "proj", bridge="auto")
    env = stack.gateway.sandbox_env()
    assert env["PLOY_AI_URL"].startswith("http://") and "127.0.0.1" not in env["PLOY_AI_URL"]
    yield env
    stack.close()


def _code(run: Run, sb: SandboxClient, url: str, extra: str = "") -> str:
    """The HTTP status a sandbox gets from `url`, or 000 when it cannot connect."""
    r = run(sb.exec(f"curl -s -o /dev/null -w '%{{http_code}}' -m 4 {extra} {url}"))
    return str(r["stdout"]).strip()


def _gateway(run: Run, sb: SandboxClient) -> str:
    """What an OpenAI SDK-style call to OPENAI_BASE_URL gets (401/200/...: it reached the gateway)."""
    return _code(run, sb, '"$OPENAI_BASE_URL/models"', '-H "Authorization: Bearer $OPENAI_API_KEY"')


def _networks_of(container: str) -> list[str]:
    out = subprocess.run(
        ["podman", "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
         container], capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


def _tagged_rules(name: str) -> list[str]:
    lines = []
    for table, chain, _ in network.CHAINS:
        out = subprocess.run(["iptables", "-w", "-t", table, "-S", chain], capture_output=True, text=True)
        lines += [line for line in out.stdout.splitlines() if f"ploy:{name}" in line]
    return lines


_TCP = "timeout 5 bash -c 'exec 3<>/dev/tcp/{}/{}'"  # a TCP connection from inside, no HTTP


def _host_reaches(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError:
        return False


def _container(run: Run, sb: SandboxClient) -> str:
    """The sandbox's container (started now if need be)."""
    run(sb.exec("true"))
    return sb._mgr.entries[sb._sandbox_id].container


@pytest.mark.podman
def test_default_reaches_the_internet_and_the_gateway_and_nothing_on_the_host(
    run: Run,
    bindings: Bindings,
    inet: Internet,
    services: tuple[HostService, HostService],
    gateway_env: dict[str, str],
) -> None:
    service = services[0]
    opened = bindings.make("net-open", network="open").get("o")
    sb = bindings.make("net-default", env=gateway_env).get("d")  # no `network`: the default is `default`
    assert _networks_of(_container(run, sb)) == [sb._mgr.containers.network_name()]

    assert _code(run, sb, f"http://{inet.addr}:8080/") == "200"  # forwarded off the host, as the internet
    assert _gateway(run, sb) not in ("000", "")  # the docs' ai: true calls keep working
    # the same host service an `open` sandbox reaches (as before) is refused to it, at every address
    assert _code(run, opened, f"http://host.containers.internal:{service.port}/") == "200"
    for host in ("host.containers.internal", "10.88.0.1", *_host_addresses()):
        assert _code(run, sb, f"http://{host}:{service.port}/") == "000", host
    # nor the gateway's port on another address of the host than the gateway's
    gateway_port = gateway_env["PLOY_AI_URL"].rsplit(":", 1)[1]
    assert _code(run, sb, f"http://host.containers.internal:{gateway_port}/v1/models") == "000"
    # the host has no IPv6 address on the bridge (a link-local one would reach its services on `::`)
    bridge = sb._mgr.containers._bridges[sb._mgr.containers.network_name()][0]
    v6 = subprocess.run(
        ["ip", "-6", "-o", "addr", "show", "dev", bridge.interface], capture_output=True, text=True
    )
    assert v6.returncode == 0 and v6.stdout == ""
    # the real package registry, by name through the host's resolvers, when the host reaches it
    if _host_reaches("pypi.org", 443):
        assert run(sb.exec("getent hosts pypi.org"))["exitCode"] == 0
        assert run(sb.exec(_TCP.format("pypi.org", 443)))["exitCode"] == 0


@pytest.mark.podman
def test_projects_cannot_reach_each_other_but_the_host_reaches_every_sandbox(
    run: Run, bindings: Bindings, inet: Internet
) -> None:
    star = bindings.make("net-star", network=("*:8000",)).get("s")  # its rules first in the chains
    run(star.exec("true"))
    b = bindings.make("net-b")
    server, neighbour = b.get("server"), b.get("neighbour")
    other = bindings.make("net-c").get("other")
    opened = bindings.make("net-open", network="open").get("o")
    run(server.startProcess("python3 -m http.server 8000 --bind 0.0.0.0", {"processId": "web"}))
    run(server.exec("for i in $(seq 100); do curl -s -o /dev/null localhost:8000 && break; sleep 0.05; done"))
    ip = str(run(server.exec("hostname -I"))["stdout"]).split()[0]

    assert _code(run, neighbour, f"http://{ip}:8000/") == "200"  # one binding's sandboxes share a bridge
    assert _code(run, other, f"http://{ip}:8000/") == "000"  # another project's
    assert _code(run, opened, f"http://{ip}:8000/") == "000"  # nor one on Podman's shared bridge
    assert _code(run, star, f"http://{ip}:8000/") == "000"  # nor one whose list allows any address:8000
    with urllib.request.urlopen(f"http://{ip}:8000/", timeout=5) as resp:  # the host: previews, proxies
        assert resp.status == 200
    # (preview URLs are forwarded to that address: test_sandbox_reach.py's run under the default policy)


@pytest.mark.podman
def test_none_reaches_nothing_not_even_the_gateway(
    run: Run, bindings: Bindings, inet: Internet, gateway_env: dict[str, str]
) -> None:
    sb = bindings.make("net-none", env=gateway_env, network="none").get("n")
    assert _networks_of(_container(run, sb)) == []  # --network none
    assert _code(run, sb, f"http://{inet.addr}:8080/") == "000"
    assert _gateway(run, sb) == "000"
    assert str(run(sb.exec("ls /sys/class/net"))["stdout"]).split() == ["lo"]
    assert run(sb.exec("echo hi"))["stdout"] == "hi\n"  # the agent's socket is no network


@pytest.mark.podman
def test_an_allow_list_reaches_only_its_targets_and_the_gateway(
    run: Run,
    bindings: Bindings,
    inet: Internet,
    services: tuple[HostService, HostService],
    gateway_env: dict[str, str],
) -> None:
    listed, unlisted = services
    allow = (f"{inet.addr}:8080", f"host.containers.internal:{listed.port}")
    b = bindings.make("net-allow", env=gateway_env, network=allow, pool=1)

    async def fill() -> None:
        await b.manager.pool._fill()

    run(fill())
    assert b.manager.pool._tokens()  # the warm pool holds one, made for this policy
    sb = b.get("a")
    assert _networks_of(_container(run, sb)) == [b.manager.containers.network_name()]  # pool: right network
    assert _code(run, sb, f"http://{inet.addr}:8080/") == "200"
    assert _code(run, sb, f"http://{inet.addr}:8081/") == "000"  # same address, port not listed
    assert _code(run, sb, f"http://host.containers.internal:{listed.port}/") == "200"
    assert _code(run, sb, f"http://host.containers.internal:{unlisted.port}/") == "000"
    assert _gateway(run, sb) not in ("000", "")
    assert run(sb.exec("getent hosts pypi.org"))["exitCode"] != 0  # DNS is not on the list
    if _host_reaches("pypi.org", 443):  # a listed name: pinned in /etc/hosts, that port only
        named = bindings.make("net-allow-name", network=("pypi.org:443",)).get("p")
        assert run(named.exec(_TCP.format("pypi.org", 443)))["exitCode"] == 0
        assert run(named.exec(_TCP.format("pypi.org", 80)))["exitCode"] != 0


@pytest.mark.podman
def test_open_is_as_before(
    run: Run, bindings: Bindings, inet: Internet, services: tuple[HostService, HostService]
) -> None:
    sb = bindings.make("net-open", network="open").get("o")
    assert _networks_of(_container(run, sb)) == ["podman"]
    assert _code(run, sb, f"http://{inet.addr}:8081/") == "200"
    assert _code(run, sb, f"http://host.containers.internal:{services[1].port}/") == "200"


@pytest.mark.podman
def test_networks_and_rules_go_with_the_last_sandbox(
    run: Run, bindings: Bindings, sandbox_home: Path
) -> None:
    _needs_root_networking()
    b = bindings.make("net-gone")
    sb = b.get("x")
    run(sb.exec("true"))
    name = b.manager.containers.network_name()
    assert _tagged_rules(name)
    run(b.close())  # a sandbox still uses it: kept
    assert subprocess.run(["podman", "network", "exists", name]).returncode == 0 and _tagged_rules(name)
    root = sb._mgr.ctx.project_root
    (root / "ploy.yaml").write_text("kind: dynamic\nsandbox:\n  SANDBOX: default\n")
    r = ploy(sandbox_home, root, "sandbox", "destroy", "x")  # the last one, from the shell
    assert r.returncode == 0, r.stderr
    assert subprocess.run(["podman", "network", "exists", name]).returncode != 0
    assert _tagged_rules(name) == []


@pytest.mark.podman
def test_a_changed_network_is_named_and_recreate_applies_it(
    run: Run, bindings: Bindings, inet: Internet, services: tuple[HostService, HostService]
) -> None:
    old = bindings.make("net-change")
    sb = old.get("r")
    run(sb.writeFile("/workspace/kept.txt", "kept"))
    old_net = old.manager.containers.network_name()
    port = services[0].port
    assert _code(run, sb, f"http://host.containers.internal:{port}/") == "000"
    new = bindings.make("net-change", network="open")
    assert new.manager.outdated() == [("r", ["network default -> open"])]
    run(new.manager.recreate("r"))
    sb = new.get("r")
    assert run(sb.readFile("/workspace/kept.txt"))["content"] == "kept"
    assert _networks_of(_container(run, sb)) == ["podman"]
    assert _code(run, sb, f"http://host.containers.internal:{port}/") == "200"
    assert new.manager.outdated() == []
    assert subprocess.run(["podman", "network", "exists", old_net]).returncode != 0  # swept with its rules
    assert _tagged_rules(old_net) == []


@pytest.mark.podman
def test_the_gateway_is_let_through_once_it_appears(
    run: Run, bindings: Bindings, gateway_env: dict[str, str]
) -> None:
    """A sandbox made before `ploy login` (no gateway injected, so no rule for it) reaches the gateway
    after it: the rules follow the injected env (tests/bindings/ai/test_ai_example.py found this)."""
    b = bindings.make("net-login", env={})
    sb = b.get("l")
    assert str(run(sb.exec("echo ${OPENAI_BASE_URL:-unset}"))["stdout"]).strip() == "unset"
    assert _code(run, sb, gateway_env["OPENAI_BASE_URL"] + "/models") == "000"
    b.manager.ctx.sandbox_env = lambda: dict(gateway_env)  # what signing in changes
    assert _gateway(run, sb) not in ("000", "")
