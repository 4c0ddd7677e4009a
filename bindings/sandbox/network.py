"""What a sandbox can reach: the `network` option, as a Podman network and ploy's own iptables rules.

  open     Podman's shared default bridge, as before: the internet, every host service listening on
           0.0.0.0, the other containers on that bridge.
  default  the internet and the AI gateway (plus the DNS servers and HTTP proxies the host uses),
           nothing else: not the host's services, not other projects' sandboxes or other containers,
           not private addresses (RFC 1918, CGNAT, link-local: cloud metadata at 169.254.169.254).
  none     `--network none`: loopback only, not even the AI gateway.
  [entries] an allow-list: only these, plus the AI gateway. An entry is HOST, IP or CIDR, each with an
           optional :PORT, or *:PORT (any address on that port); `host.containers.internal[:PORT]` is
           the host itself; `default` adds the default policy after the entries. Names are resolved
           when the binding first starts a sandbox, and pinned in the sandbox's /etc/hosts, so it uses
           the addresses that were allowed.

Every policy but `open` and `none` gets a Podman network per PLOY_HOME, project, binding and policy
(`ploy-<hash>`, labelled ploy.sandbox/ploy.project/ploy.binding/ploy.home), so sandboxes of one binding
share a bridge (and reach each other) while other projects' are on other bridges. Its rules live in
ploy's own chains (PLOY-INPUT, PLOY-FORWARD, jumped to first from INPUT and FORWARD; PLOY-PREROUTING in
nat), every rule tagged `ploy:<network>` and naming the network's bridge, so no one else's rule is
touched. Traffic from the bridge to the host is rejected except replies to the host's own connections
(the host reaches every port of a sandbox: preview URLs) and the AI gateway; forwarded traffic is
checked against the policy; nothing is forwarded into the bridge but replies. The AI gateway listens on
Podman's default bridge address, which need not exist while no container uses that bridge: traffic to
it is sent to the gateway's loopback listener (DNAT, and route_localnet on ploy's bridges only). IPv6 is
turned off on ploy's bridges (a link-local address would reach host services listening on `::`).

Rules are (re)written when a process first uses the network and when the gateway's address changes
(they do not survive a reboot). A network and its rules are removed when no container uses it any
more: when a binding closes, after `recreate`, on `ploy sandbox prune` and in the tests' cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bindings import podman
from bindings.error_codes import PODMAN_ERROR
from bindings.errors import PloyError
from bindings.sandbox.options import DEFAULT, HOST_NAMES, NONE, OPEN, NetworkEntry, describe_policy

# Not "the internet": the host's LAN, carrier NAT, link-local (cloud metadata), benchmark, multicast and
# reserved ranges. Container networks are in 10.0.0.0/8 too.
PRIVATE = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
CHAINS = (
    ("filter", "PLOY-INPUT", "INPUT"),
    ("filter", "PLOY-FORWARD", "FORWARD"),
    ("nat", "PLOY-PREROUTING", "PREROUTING"),
)
IPTABLES = os.environ.get("PLOY_IPTABLES", "iptables")
TAG = "ploy:"
Policy = str | tuple[str, ...]


class NetworkError(PloyError):
    code = PODMAN_ERROR


@dataclass(frozen=True)
class Bridge:
    name: str  # the Podman network
    interface: str
    subnet: str
    gateway: str


def network_name(home_label: str, project_key: str, binding: str, policy: Policy) -> str:
    spec = json.dumps([home_label, project_key, binding, describe_policy(policy)])
    return f"ploy-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"


def uses_bridge(policy: Policy) -> bool:
    return policy not in (OPEN, NONE)


def _resolve(host: str) -> list[str]:
    """IPv4 addresses of a name (sandboxes' networks are IPv4)."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({str(i[4][0]) for i in infos})


def resolvers() -> list[str]:
    """The DNS servers a container gets (Podman copies the host's, or systemd-resolved's upstreams)."""
    found: list[str] = []
    for path in ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                try:
                    ip = ipaddress.ip_address(parts[1])
                except ValueError:
                    continue
                if ip.version == 4 and not ip.is_loopback and str(ip) not in found:
                    found.append(str(ip))
        if found:
            break
    return found


def _proxies() -> list[tuple[str, int]]:
    """The host's HTTP proxies: under `default` a sandbox may use them to reach the internet."""
    out = []
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        url = os.environ.get(var)
        if not url:
            continue
        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port or 80
        except ValueError:
            continue
        if parts.hostname:
            out += [(ip, port) for ip in _resolve(parts.hostname)]
    return sorted(set(out))


def gateway_address(env: dict[str, str]) -> tuple[str, int] | None:
    """The AI gateway as sandboxes reach it (PLOY_AI_URL of the injected env), when it is injected."""
    url = env.get("PLOY_AI_URL")
    if not url:
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or not port:
        return None
    ips = _resolve(parts.hostname)
    return (ips[0], port) if ips else None


def _entries(policy: Policy) -> tuple[list[NetworkEntry], bool]:
    """An allow-list's entries, and whether it includes `default`."""
    if not isinstance(policy, tuple):
        return [], policy == DEFAULT
    return [NetworkEntry.parse(p) for p in policy if p != DEFAULT], DEFAULT in policy


def rules(bridge: Bridge, policy: Policy, gateway: tuple[str, int] | None) -> dict[str, list[str]]:
    """table -> iptables-restore lines (`-A CHAIN ...`) for one network, each tagged with its name."""
    i = bridge.interface
    reject = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]
    reset = ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"]
    inp: list[list[str]] = [["-i", i, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]]
    # Into the bridge only what answers its own connections (and its own sandboxes' traffic). These go
    # to the top of PLOY-FORWARD, before every network's accepts: another policy's `*:PORT` must not
    # open this bridge because its rules happen to come first.
    guard: list[list[str]] = [
        ["-i", i, "-o", i, "-j", "ACCEPT"],
        ["-o", i, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ["-o", i, *reject],
    ]
    fwd: list[list[str]] = []
    nat: list[list[str]] = []
    if gateway is not None:
        ip, port = gateway
        nat.append(["-i", i, "-p", "tcp", "-d", ip, "--dport", str(port), "-j", "DNAT",
                    "--to-destination", f"127.0.0.1:{port}"])  # fmt: skip
        inp.append(["-i", i, "-p", "tcp", "-d", "127.0.0.1", "--dport", str(port), "-m", "conntrack",
                    "--ctstate", "DNAT", "-j", "ACCEPT"])  # fmt: skip
    entries, with_default = _entries(policy)
    for entry in entries:
        dport = ["-p", "tcp", "--dport", str(entry.port)] if entry.port is not None else []
        if entry.host in HOST_NAMES:
            inp.append(["-i", i, "-d", bridge.gateway, *dport, "-j", "ACCEPT"])
            continue
        if entry.host == "*":
            fwd.append(["-i", i, *dport, "-j", "ACCEPT"])
            continue
        try:
            targets = [str(ipaddress.ip_network(entry.host, strict=False))]
        except ValueError:
            targets = _resolve(entry.host)
        for target in targets:
            fwd.append(["-i", i, "-d", target, *dport, "-j", "ACCEPT"])
    if with_default:
        for dns in resolvers():
            for proto in ("udp", "tcp"):
                fwd.append(["-i", i, "-p", proto, "-d", dns, "--dport", "53", "-j", "ACCEPT"])
        for ip, port in _proxies():
            fwd.append(["-i", i, "-p", "tcp", "-d", ip, "--dport", str(port), "-j", "ACCEPT"])
        for net in PRIVATE:
            fwd.append(["-i", i, "-d", net, *reset])
            fwd.append(["-i", i, "-d", net, *reject])
        fwd.append(["-i", i, "-j", "ACCEPT"])  # the internet (even where FORWARD's policy is DROP)
    fwd.append(["-i", i, *reset])
    fwd.append(["-i", i, *reject])
    inp.append(["-i", i, *reset])
    inp.append(["-i", i, *reject])

    def lines(chain: str, specs: list[list[str]], at: str = "-A") -> list[str]:
        tag = ["-m", "comment", "--comment", f"{TAG}{bridge.name}"]
        return [" ".join([at, chain, *spec[:2], *tag, *spec[2:]]) for spec in specs]

    top = lines("PLOY-FORWARD 1", guard[::-1], at="-I")  # each inserted at 1: reversed to keep the order
    return {
        "filter": lines("PLOY-INPUT", inp) + top + lines("PLOY-FORWARD", fwd),
        "nat": lines("PLOY-PREROUTING", nat),
    }


def add_hosts(policy: Policy) -> list[str]:
    """`--add-host` arguments: an allow-list's names pinned to an address its rules allow."""
    out = []
    for entry in _entries(policy)[0]:
        if entry.host in HOST_NAMES or entry.host == "*":
            continue
        try:
            ipaddress.ip_network(entry.host, strict=False)
            continue
        except ValueError:
            pass
        ips = _resolve(entry.host)
        if ips:
            out += ["--add-host", f"{entry.host}:{ips[0]}"]
    return out


def _iptables(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`iptables -w ARGS`, or `iptables-restore -w ARGS` fed `stdin` when it is given."""
    argv = [f"{IPTABLES}-restore" if stdin is not None else IPTABLES, "-w", *args]
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise NetworkError(
            f"{argv[0]} is not installed: the sandbox network policy needs it (apt-get install "
            "iptables), or use network: open"
        ) from None
    if check and done.returncode != 0:
        raise NetworkError(
            f"the sandbox network policy could not be applied ({' '.join(argv)}: {done.stderr.strip()}); "
            "ploy dev must run as root for it, or use network: open"
        )
    return done


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """One process at a time reads and rewrites ploy's chains (iptables' own lock covers one command)."""
    with open(Path(tempfile.gettempdir()) / "ploy-iptables.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ploy_lines(table: str, chain: str) -> list[str]:
    done = _iptables("-t", table, "-S", chain, check=False)
    return [line for line in done.stdout.splitlines() if line.startswith("-A ") and TAG in line]


def _owner(line: str) -> str:
    """The network a rule of ours is tagged with (`iptables -S` quotes the comment, restore need not)."""
    return line.split(TAG, 1)[1].split()[0].strip('"')


def _deletes(lines: list[str]) -> list[str]:
    return ["-D" + line[2:] for line in lines]


def apply_rules(bridge: Bridge, table_lines: dict[str, list[str]]) -> None:
    """Replace the rules tagged with this network's name by these, in one transaction per table; rules
    of a network that is gone but named the same bridge (a crash before cleanup; Podman reuses bridge
    names) go too. Chains and jumps are made first."""
    words = (f"-i {bridge.interface} ", f"-o {bridge.interface} ")
    with _machine_lock():
        for table, chain, parent in CHAINS:
            if _iptables("-t", table, "-n", "-L", chain, check=False).returncode != 0:
                _iptables("-t", table, "-N", chain)
            if _iptables("-t", table, "-C", parent, "-j", chain, check=False).returncode != 0:
                _iptables("-t", table, "-I", parent, "1", "-j", chain)
        script = []
        for table, chain, _ in CHAINS:
            old = [
                line
                for line in _ploy_lines(table, chain)
                if _owner(line) == bridge.name or any(w in line + " " for w in words)
            ]
            new = [line for line in table_lines.get(table, []) if line.split()[1] == chain]
            if old or new:
                script += [f"*{table}", *_deletes(old), *new, "COMMIT"]
        if script:
            _iptables("--noflush", stdin="\n".join(script) + "\n")


def remove_rules(name: str) -> None:
    with _machine_lock():
        script = []
        for table, chain, _ in CHAINS:
            mine = [line for line in _ploy_lines(table, chain) if _owner(line) == name]
            if mine:
                script += [f"*{table}", *_deletes(mine), "COMMIT"]
        if script:
            _iptables("--noflush", stdin="\n".join(script) + "\n", check=False)


def tune_bridge(interface: str) -> None:
    """On ploy's own bridges only: let DNAT'ed gateway traffic reach its loopback listener, and no IPv6
    (a link-local address would reach host services listening on `::`). The bridge appears with its
    first container (and netavark removes it with its last), so this follows every start."""
    for path, value in (
        (f"/proc/sys/net/ipv4/conf/{interface}/route_localnet", "1"),
        (f"/proc/sys/net/ipv6/conf/{interface}/disable_ipv6", "1"),
    ):
        try:
            p = Path(path)
            if p.read_text().strip() != value:
                p.write_text(value)
        except OSError:
            pass


async def inspect(name: str) -> Bridge | None:
    res = await podman.run(
        "network", "inspect", name, "--format",
        "{{.NetworkInterface}} {{range .Subnets}}{{.Subnet}} {{.Gateway}} {{end}}", check=False,
    )  # fmt: skip
    words = res.text.split()
    if res.returncode != 0 or len(words) < 3:
        return None
    return Bridge(name, words[0], words[1], words[2])


async def ensure_network(name: str, labels: dict[str, str]) -> Bridge:
    bridge = await inspect(name)
    if bridge is None:
        args = ["network", "create", "--disable-dns"]
        for k, v in labels.items():
            args += ["--label", f"{k}={v}"]
        res = await podman.run(*args, name, check=False)
        if res.returncode != 0 and "already exists" not in res.stderr.decode(errors="replace"):
            raise NetworkError(
                f"podman network create {name} failed: {res.stderr.decode(errors='replace').strip()}"
            )
        bridge = await inspect(name)
    if bridge is None:
        raise NetworkError(f"podman network {name} has no bridge or subnet")
    return bridge


async def apply(bridge: Bridge, policy: Policy, gateway: tuple[str, int] | None) -> None:
    table_lines = await asyncio.to_thread(rules, bridge, policy, gateway)
    await asyncio.to_thread(apply_rules, bridge, table_lines)


async def remove_network(name: str) -> bool:
    """Remove a ploy network and its rules unless a container (running or not) still uses it."""
    res = await podman.run("network", "rm", name, check=False)
    if res.returncode != 0 and await inspect(name) is not None:
        return False
    await asyncio.to_thread(remove_rules, name)
    return True


async def sweep(labels: dict[str, str], keep: str | None = None) -> list[str]:
    """Remove the unused ploy networks carrying these labels (but `keep`), with their rules."""
    res = await podman.run(
        "network", "ls", "--format", "json", "--filter", "label=ploy.sandbox=1", check=False
    )
    try:
        nets = json.loads(res.stdout or b"[]") if res.returncode == 0 else []
    except ValueError:
        nets = []
    removed = []
    for net in nets if isinstance(nets, list) else []:
        name, have = net.get("name") or net.get("Name"), net.get("labels") or net.get("Labels") or {}
        if not name or name == keep or any(have.get(k) != v for k, v in labels.items()):
            continue
        if await remove_network(str(name)):
            removed.append(str(name))
    return removed


def sweep_sync(labels: dict[str, str]) -> list[str]:
    """`sweep` for code without an event loop (the tests' cleanup)."""
    return asyncio.run(sweep(labels))
