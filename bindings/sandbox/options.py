"""The SANDBOX binding's options schema: what ploy.yaml may say about one sandbox binding.

Short form:    sandbox: {SANDBOX: default}
Extended form: sandbox: {SANDBOX: {template: default, memory: 1g, cpus: 1, pids: 1024, sleepAfter: 10m, pool: 1,
                                   outputLimit: 10485760, processLogLimit: 67108864, network: default,
                                   disk: 10g}}
               or {image: my-local-image} / {containerfile: ./Containerfile}
A template other than `default` names a local Podman image (same as `image:`). Any image used must
contain python3 (>= 3.9) and bash; ploy adds its agent layer on top (see bindings/sandbox/README.md).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SandboxOptions:
    binding: str  # the env name, e.g. SANDBOX
    template: str = "default"  # the sandbox identifier of the docs; "default" is ploy's built-in image
    image: str | None = None  # a local Podman image to use instead of the template
    containerfile: str | None = None  # a Containerfile (relative to the project) built on first use
    memory: str = "1g"
    cpus: float = 1.0
    pids: int = 1024
    sleep_after_s: float = 600.0  # idle suspension (issue: background processes keep it awake)
    pool: int = 1  # warm containers kept ready for new ids; 0 turns the pool off
    output_limit: int = 10 * 1024 * 1024  # bytes of exec output kept per stream before it is cut
    process_log_limit: int = 64 * 1024 * 1024  # bytes of a background process's log kept on disk
    # what the sandbox reaches (network.py): open, default, none, or an allow-list (a tuple of entries)
    network: str | tuple[str, ...] = "default"
    # what the sandbox's files may take beyond its image (disks.py); "0": no limit (Podman's own layer)
    disk: str = "10g"

    @property
    def disk_bytes(self) -> int:
        return disk_bytes(self.disk)

    def settings(self) -> dict[str, Any]:
        """What a container is made with and keeps for its life (the rest the agent re-reads from
        config.json): recorded with each sandbox, compared when ploy.yaml changed (changed_settings)."""
        return {
            "image": self.image or self.containerfile or self.template,
            "memory": self.memory,
            "cpus": self.cpus,
            "pids": self.pids,
            "network": list(self.network) if isinstance(self.network, tuple) else self.network,
            "disk": self.disk,
            "userns": USERNS_SETTING,
        }


def changed_settings(made: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between the settings a sandbox was made with and today's, as "memory 512m -> 1g"."""
    out = []
    for key, value in now.items():
        old = made.get(key)
        if key == "network" and old is None:
            old = OPEN  # made before ploy had the option: on Podman's shared bridge, which is `open`
        if key in ("memory", "disk"):
            size = memory_bytes if key == "memory" else disk_bytes
            try:
                same = size(str(old)) == size(str(value))
            except ValueError:
                same = False
        else:
            same = old == value
        if not same:
            if key == "network":
                old, value = describe_policy(old), describe_policy(value)
            out.append(f"{key} {old if old is not None else '?'} -> {value}")
    return out


# ploy.yaml key -> (attribute, accepted python types) for the extended form; config.py validates with it.
OPTION_FIELDS: dict[str, tuple[str, tuple[type, ...]]] = {
    "template": ("template", (str,)),
    "image": ("image", (str,)),
    "containerfile": ("containerfile", (str,)),
    "memory": ("memory", (str, int)),
    "cpus": ("cpus", (int, float)),
    "pids": ("pids", (int,)),
    "sleepAfter": ("sleep_after_s", (str, int, float)),
    "pool": ("pool", (int,)),
    "outputLimit": ("output_limit", (int,)),
    "processLogLimit": ("process_log_limit", (int,)),
    "network": ("network", (str,)),  # or a list, the allow-list: plugin.py reads it with parse_policy
    "disk": ("disk", (str, int)),
}

MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgKMG]?)[bB]?\s*$")
# The least memory a sandbox starts and works with: its init and agent take ~25 MB before any command.
MIN_MEMORY = 64 * 1024 * 1024
# A disk limit below this leaves no room for ext4's own metadata and a package install; the upper bound
# is ext4's largest file system with 4 KiB blocks.
MIN_DISK = 64 * 1024 * 1024
MAX_DISK = 16 * 1024**4
# root in every sandbox is this range on the host (bindings/sandbox/disks.py USERNS_*; a test keeps them
# equal): options.py imports nothing of the backend
USERNS_SETTING = "0:2000000000:65536"
# exec()'s outputLimit ceiling, the agent's (agent/args.py OUTPUT_LIMIT_MAX; a test keeps them equal):
# options.py cannot import the agent's modules, reading ploy.yaml loads only the schema.
OUTPUT_LIMIT_MAX = 64 * 1024 * 1024
# ploy.yaml key -> (lowest, highest) value a sandbox can work with; None: unbounded. cpus' upper bound
# is this machine's CPU count (Podman refuses more).
RANGES: dict[str, tuple[float | None, float | None]] = {
    "pids": (16, 4_194_304),  # init, agent, a shell and its command; the kernel's pid_max
    "cpus": (0.01, None),
    "pool": (0, 16),
    "outputLimit": (0, OUTPUT_LIMIT_MAX),
}


def memory_bytes(text: str) -> int:
    """Bytes of a Podman memory size ("512m", "2g", "1073741824"); ValueError if it is none."""
    m = MEMORY.match(text)
    if not m:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 512m, 2g)")
    return int(float(m.group(1)) * 1024 ** " kmg".index(m.group(2).lower() or " "))


def machine_cpus() -> int:
    return os.cpu_count() or 1


DISK = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)[bB]?\s*$")


def disk_bytes(text: str) -> int:
    """Bytes of a disk size ("512m", "10g", "1t", "1073741824"; 0: no limit); ValueError if it is none."""
    m = DISK.match(text)
    if not m:
        raise ValueError(f"not a disk size: {text!r} (use e.g. 512m, 10g; 0 for no limit)")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))


# ---- network: what a sandbox reaches (bindings/sandbox/network.py applies it) ---------------------
OPEN, DEFAULT, NONE = "open", "default", "none"
# the host itself, as containers name it (Podman writes both into /etc/hosts)
HOST_NAMES = ("host.containers.internal", "host.docker.internal")
_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


@dataclass(frozen=True)
class NetworkEntry:
    """One allow-list entry: a host name, an IPv4 address or CIDR (or `*`), and an optional port."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> NetworkEntry:
        text = text.strip()
        host, port = text, None
        if ":" in text:
            host, _, p = text.rpartition(":")
            if not p.isdigit() or not 0 < int(p) < 65536:
                raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
            port = int(p)
        if not host:
            raise ValueError(f"{text!r}: give a host name, an address or a CIDR before the port")
        if host == "*":
            if port is None:
                raise ValueError("'*' needs a port (*:443); for everything use network: open")
            return cls(host, port)
        try:
            net = ipaddress.ip_network(host, strict=False)
        except ValueError:
            labels = host.rstrip(".").split(".")
            if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
                raise ValueError(
                    f"{text!r} is neither a host name, an IPv4 address nor a CIDR (HOST, HOST:PORT, "
                    "10.1.2.3, 10.0.0.0/8:5432, *:443)"
                ) from None
            return cls(host.lower().rstrip("."), port)
        if net.version != 4:
            raise ValueError(f"{text!r}: sandboxes' networks are IPv4; give an IPv4 address or CIDR")
        return cls(str(net) if net.prefixlen < 32 else str(net.network_address), port)

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def parse_policy(value: str | list[str]) -> str | tuple[str, ...]:
    """The `network` option's value, checked and normalised (ValueError says what is wrong)."""
    if isinstance(value, str):
        if value not in (OPEN, DEFAULT, NONE):
            raise ValueError(
                f"unknown network {value!r}: use open, default, none, or a list of hosts, addresses, "
                "CIDRs, each with an optional :PORT"
            )
        return value
    if not value:
        raise ValueError("an empty allow-list allows nothing: use network: none")
    return tuple(dict.fromkeys(str(NetworkEntry.parse(str(e))) for e in value))


def describe_policy(policy: object) -> str:
    """`default`, or `[a, b:443]` for an allow-list (also as recorded in meta.json: a list)."""
    if isinstance(policy, (list, tuple)):
        return "[" + ", ".join(str(p) for p in policy) + "]"
    return str(policy)
