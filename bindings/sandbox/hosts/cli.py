"""`ploy hosts add NAME URL [--identity KEY] | list | remove NAME`: the Podman hosts sandboxes go to."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from bindings.errors import PloyError
from bindings.plugin import Subparsers
from bindings.sandbox.hosts.config import add_host, hosts_path, load_hosts, remove_host


def _add(args: argparse.Namespace) -> int:
    path = add_host(args.name, args.url, args.identity)
    print(f"Saved host {args.name} ({args.url}) to {path} (mode 0600); new sandboxes may go there")
    return 0


def _remove(args: argparse.Namespace) -> int:
    if not remove_host(args.name):
        print(f"ploy: no host {args.name!r} in {hosts_path()}", file=sys.stderr)
        return 1
    print(f"Removed host {args.name}; its sandboxes stay there and are still reached by ploy until destroyed")
    return 0


async def _status(name: str, h: dict[str, Any]) -> list[str]:
    from bindings.sandbox.hosts.remote import RemoteHost

    host = RemoteHost(name, str(h["url"]), identity=h.get("identity"))
    try:
        rows, info = await asyncio.gather(host.ps({"ploy.sandbox": "1"}), host.info())
    except PloyError as exc:
        return [name, str(h["url"]), "unreachable", "-", "-", exc.message[:80]]
    running = sum(1 for r in rows if r.get("State") == "running")
    mem = info.get("host") or {}
    gib = 1024**3
    memory = f"{int(mem.get('memFree') or 0) / gib:.1f}/{int(mem.get('memTotal') or 0) / gib:.1f} GiB free"
    return [name, str(h["url"]), "ok", f"{running} running, {len(rows)} in all", memory, ""]


def _list(args: argparse.Namespace) -> int:
    hosts = load_hosts()
    if not hosts:
        print("no hosts configured: sandboxes run on this machine (`ploy hosts add NAME URL`)")
        return 0

    async def all_rows() -> list[list[str]]:
        return list(await asyncio.gather(*(_status(n, h) for n, h in sorted(hosts.items()))))

    rows = [["NAME", "URL", "REACHABLE", "SANDBOXES", "MEMORY", ""], *asyncio.run(all_rows())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except PloyError as exc:
            print(f"ploy: {exc.code}: {exc.message}", file=sys.stderr)
            return 2

    return run


def register(subparsers: Subparsers) -> None:
    hosts = subparsers.add_parser("hosts", help="the Podman hosts sandboxes run on (default: this machine)")
    sub = hosts.add_subparsers(dest="hosts_command", required=True)
    add = sub.add_parser("add", help="add (or replace) a host: a Podman API service")
    add.add_argument("name")
    add.add_argument(
        "url",
        help="as Podman's connections: unix:///run/podman/podman.sock, tcp://HOST:PORT, ssh://USER@HOST/PATH",
    )
    add.add_argument("--identity", help="ssh private key for an ssh:// host")
    add.set_defaults(func=_guard(_add))
    ls = sub.add_parser("list", help="hosts, whether they answer, their sandboxes and memory")
    ls.set_defaults(func=_guard(_list))
    rm = sub.add_parser("remove", help="stop placing new sandboxes on a host")
    rm.add_argument("name")
    rm.set_defaults(func=_guard(_remove))
