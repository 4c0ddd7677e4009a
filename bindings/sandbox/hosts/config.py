"""The configured sandbox hosts (`ploy hosts add/list/remove`): `config_home()/hosts.json`, mode 0600
like the AI credentials (an ssh identity's path and the hosts' API addresses are as sensitive as keys:
whoever reaches a Podman API is root there)::

    {"hosts": {"NAME": {"url": "tcp://10.0.0.2:8888", "identity": "/root/.ssh/id_ed25519"}}}

No file, or no host in it: every sandbox runs on this machine, as before."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from bindings.context import config_home, write_private_json
from bindings.error_codes import INVALID_ARGUMENT
from bindings.errors import PloyError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
SCHEMES = ("unix", "tcp", "ssh", "http")


def hosts_path() -> Path:
    if os.environ.get("PLOY_HOSTS_FILE"):
        return Path(os.environ["PLOY_HOSTS_FILE"])
    return config_home() / "hosts.json"


def load_hosts(path: Path | None = None) -> dict[str, dict[str, Any]]:
    path = path or hosts_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise PloyError(f"{path}: not a hosts file ({exc})", INVALID_ARGUMENT) from None
    hosts = data.get("hosts") if isinstance(data, dict) else None
    return (
        {k: v for k, v in hosts.items() if isinstance(v, dict) and v.get("url")}
        if isinstance(hosts, dict)
        else {}
    )


def _write(hosts: dict[str, dict[str, Any]], path: Path) -> None:
    write_private_json(path, {"hosts": hosts})


def add_host(name: str, url: str, identity: str | None = None, path: Path | None = None) -> Path:
    if not NAME_RE.match(name):
        raise PloyError(
            f"name: {name!r} is not a host name (lower-case letters, digits, '.', '_', '-')", INVALID_ARGUMENT
        )
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in SCHEMES:
        raise PloyError(
            f"url: {url!r} is not a Podman connection (unix:///run/podman/podman.sock, "
            "tcp://HOST:PORT, ssh://USER@HOST[:PORT]/run/podman/podman.sock)",
            INVALID_ARGUMENT,
        )
    if identity is not None:
        if scheme != "ssh":
            raise PloyError("identity: only an ssh:// host takes an identity", INVALID_ARGUMENT)
        identity = str(Path(identity).expanduser().resolve())
        if not Path(identity).is_file():
            raise PloyError(f"identity: {identity} is not a file", INVALID_ARGUMENT)
    path = path or hosts_path()
    hosts = load_hosts(path)
    entry: dict[str, Any] = {"url": url}
    if identity:
        entry["identity"] = identity
    hosts[name] = entry
    _write(hosts, path)
    return path


def remove_host(name: str, path: Path | None = None) -> bool:
    path = path or hosts_path()
    hosts = load_hosts(path)
    if hosts.pop(name, None) is None:
        return False
    _write(hosts, path)
    return True
