"""Preview URLs: a port of a sandbox reachable at `http://{port}-{label}-{token}.localhost:{devport}/`.

`exposePort` records the exposure in the sandbox's host-only token folder (`ports.json`: port ->
token, name, the container start it was made for, the container's bridge address) and links the URL's
first label to that folder under `<project state>/previews/`. The worker's `proxyToSandbox` finds the
link, checks the exposure is still current with a few stat() calls, and forwards the request to the
container's address (bindings/http_proxy.py). Nothing here ever wakes a sandbox: a preview of a
suspended sandbox answers 503, of a restarted one 410 (until `exposePort` is called again, which keeps
the token, as Cloudflare's SDK does), of an unknown token 404.

The start a sandbox is in is the token init.py writes to `run/boot` at each container start; the agent
removes its socket before an idle stop, so a missing socket means "not running".
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bindings import error_codes as codes
from bindings import podman
from bindings.errors import InvalidArgument, PloyError
from bindings.http_proxy import HttpForwarder, UpstreamError
from bindings.sandbox.agent import wire
from bindings.sandbox.locks import FileLock
from bindings.sandbox.netns import LoopbackDialer, netns_identity
from bindings.web import RequestLike, WebResponse

TOKEN_LEN = 16
TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
CUSTOM_TOKEN = re.compile(r"^[a-z0-9_]{1,16}$")
DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
# {port}-{label}-{token} must fit one DNS label (63): 5 + 1 + label + 1 + 16
MAX_PLAIN_LABEL = 63 - 5 - 1 - 1 - TOKEN_LEN
PREVIEW_HOST = re.compile(r"^(\d{1,5})-([a-z0-9][a-z0-9-]*)-([a-z0-9_]{1,63})$")


def preview_label(sandbox_id: str) -> str:
    """The sandbox's part of its preview host names: the id itself when it is a short lowercase DNS
    label, else a readable slug of it plus a hash of the whole id (stable, and distinct for ids that
    differ only in case or punctuation)."""
    if len(sandbox_id) <= MAX_PLAIN_LABEL and DNS_LABEL.match(sandbox_id):
        return sandbox_id
    slug = re.sub(r"[^a-z0-9]+", "-", sandbox_id.lower()).strip("-")[:20].strip("-")
    digest = hashlib.sha256(sandbox_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}-{digest}" if slug else f"x{digest}"


def check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidArgument(f"port must be an integer from 1 to 65535, got {port!r}")
    return port


def _read_small(path: Path) -> str | None:
    """A small regular file in the sandbox-writable run folder, never following a link or opening a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, 256).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


def _not_found() -> WebResponse:
    return WebResponse.json(
        404, {"error": "Access denied: invalid token or port not exposed", "code": codes.INVALID_TOKEN}
    )


@dataclass
class Route:
    """What a preview host name leads to, with the file identities it was checked against."""

    key: str
    sandbox_id: str
    token_dir: Path
    port: int
    boot: str
    address: str
    ports_mtime: int
    boot_identity: tuple[int, int]
    dial: LoopbackDialer | None = None  # the sandbox's own loopback, for servers on localhost only

    def __post_init__(self) -> None:
        # checked on every request: plain strings, not Path arithmetic
        self.ports_file = str(self.token_dir / "ports.json")
        self.socket_file = str(self.token_dir / "run" / "a.sock")
        self.boot_file = str(self.token_dir / "run" / "boot")


class Previews:
    """One binding's side of preview URLs (every binding of a project shares the index folder)."""

    def __init__(self, manager: Any) -> None:  # the SandboxManager that owns it (which imports this module)
        self.manager = manager
        self.state = manager.state
        self.index = self.state.ctx.project_state / "previews"
        self.forwarder = HttpForwarder()
        self._routes: dict[str, Route] = {}
        # (container token, boot) -> bridge address and network namespace ([path, inode] or None)
        self._addresses: dict[tuple[str, str], tuple[str, list[Any] | None]] = {}

    # ---- records ------------------------------------------------------------------------------

    def _ports_path(self, token_dir: Path) -> Path:
        return token_dir / "ports.json"  # host-only: beside meta.json, not in run/

    def _read_ports(self, token_dir: Path) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self._ports_path(token_dir).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_ports(self, token_dir: Path, ports: dict[str, dict[str, Any]]) -> None:
        tmp = token_dir / f".ports.{secrets.token_hex(6)}"
        tmp.write_text(json.dumps(ports, sort_keys=True))
        os.replace(tmp, self._ports_path(token_dir))

    def _key(self, port: int, sandbox_id: str, token: str) -> str:
        return f"{port}-{preview_label(sandbox_id)}-{token}"

    def _link(self, key: str, token_dir: Path) -> None:
        self.index.mkdir(parents=True, exist_ok=True)
        tmp = self.index / f".{key}.{secrets.token_hex(4)}"
        os.symlink(token_dir, tmp)
        os.replace(tmp, self.index / key)

    def _unlink(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.index / key)
        self._routes.pop(key, None)

    def current_boot(self, token_dir: Path) -> str | None:
        """The start the container is in, or None when it is not running (suspended, stopped, gone)."""
        run = token_dir / "run"
        try:
            if not stat.S_ISSOCK(os.lstat(run / "a.sock").st_mode):
                return None
        except OSError:
            return None
        return _read_small(run / "boot")

    async def _address(self, container_token: str, boot: str) -> tuple[str, list[Any] | None]:
        """The running container's bridge address, and its network namespace (netns.py) when this
        process can see it."""
        key = (container_token, boot)
        found = self._addresses.get(key)
        if found is None:
            from bindings.sandbox.state import container_name

            res = await podman.run(
                "inspect",
                "--format",
                "{{.State.Pid}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                container_name(container_token),
                check=False,
            )
            words = res.stdout.decode().split()
            ns = netns_identity(int(words[0])) if words and words[0].isdigit() else None
            # `network: none` has no address: only its own namespace reaches its servers
            address = words[1] if len(words) > 1 else ""
            if res.returncode != 0 or (not address and ns is None):
                raise PloyError(
                    "the sandbox has no network address to preview (it runs without a network), and "
                    "this process cannot enter its network namespace (that needs root)",
                    code=codes.SANDBOX_UNAVAILABLE,
                )
            found = self._addresses[key] = (address, None if ns is None else [ns[0], ns[1]])
        return found

    # ---- the API ------------------------------------------------------------------------------

    async def expose(
        self, sandbox_id: str, port: int, name: str | None, token: str | None, host: str
    ) -> dict[str, Any]:
        port = check_port(port)
        if name is not None and not isinstance(name, str):
            raise InvalidArgument(f"name must be a string, got {type(name).__name__}")
        if token is not None and (not isinstance(token, str) or not CUSTOM_TOKEN.match(token)):
            raise InvalidArgument("token must be 1-16 characters of a-z, 0-9 and '_'")
        entry = await self.manager.entry(sandbox_id)
        ping, _ = await self.manager.call_entry(entry, {"op": wire.PING.name})  # wakes it; which start
        entry = self.manager.entries.get(sandbox_id, entry)
        boot = str(ping.get("boot") or "")
        address, netns = await self._address(entry.token, boot)
        async with FileLock(entry.dir / "ports.lock"):  # two exposes at once must not lose one
            return self._record(sandbox_id, entry.dir, port, name, token, boot, address, netns, host)

    def _record(
        self,
        sandbox_id: str,
        d: Path,
        port: int,
        name: str | None,
        token: str | None,
        boot: str,
        address: str,
        netns: list[Any] | None,
        host: str,
    ) -> dict[str, Any]:
        ports = self._read_ports(d)
        current = ports.get(str(port)) or {}
        chosen = (
            token or current.get("token") or "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LEN))
        )
        for other, record in ports.items():
            if other != str(port) and record.get("token") == chosen:
                raise PloyError(
                    f"token {chosen!r} is already used by port {other}", code=codes.ALREADY_EXISTS, port=port
                )
        if current.get("token") and current["token"] != chosen:
            self._unlink(self._key(port, sandbox_id, current["token"]))
        ports[str(port)] = {"token": chosen, "name": name, "boot": boot, "address": address, "netns": netns}
        self._write_ports(d, ports)
        self._link(self._key(port, sandbox_id, chosen), d)
        return {"url": self._url(port, sandbox_id, chosen, host), "port": port, "name": name}

    def _url(self, port: int, sandbox_id: str, token: str, host: str) -> str:
        return f"http://{self._key(port, sandbox_id, token)}.{host}/"

    def _token_dir(self, sandbox_id: str) -> Path | None:
        token = self.state.read_claim(sandbox_id)
        return None if token is None else self.state.token_dir(token)

    async def unexpose(self, sandbox_id: str, port: int) -> None:
        port = check_port(port)
        d = self._token_dir(sandbox_id)
        if d is None:
            return
        async with FileLock(d / "ports.lock"):
            ports = self._read_ports(d)
            record = ports.pop(str(port), None)
            if record is None:
                return
            self._write_ports(d, ports)
            self._unlink(self._key(port, sandbox_id, record.get("token", "")))

    def exposed(self, sandbox_id: str, host: str) -> list[dict[str, Any]]:
        """The exposures that forward now: made in the container's current start."""
        d = self._token_dir(sandbox_id)
        if d is None:
            return []
        boot = self.current_boot(d)
        out = []
        for port, record in sorted(self._read_ports(d).items(), key=lambda kv: int(kv[0])):
            if boot is not None and record.get("boot") == boot:
                out.append(
                    {
                        "url": self._url(int(port), sandbox_id, record["token"], host),
                        "port": int(port),
                        "name": record.get("name"),
                        "status": "active",
                    }
                )
        return out

    def token_matches(self, sandbox_id: str, port: int, token: str) -> bool:
        """Whether `token` is the one recorded for the port (Cloudflare's validatePortToken): the record
        until unexposePort, whether or not it forwards in this start (isPortExposed says that)."""
        d = self._token_dir(sandbox_id)
        record = None if d is None else self._read_ports(d).get(str(port))
        recorded = "" if record is None else str(record.get("token") or "")
        # compare_digest: a worker answering "is this token right" must not tell how much of it was
        return bool(recorded) and hmac.compare_digest(
            recorded.encode(), token.encode("utf-8", "surrogatepass")
        )

    async def target(self, sandbox_id: str) -> tuple[str, LoopbackDialer | None]:
        """The running sandbox's bridge address (woken when needed), and the way to its own loopback,
        for wsConnect."""
        entry = await self.manager.entry(sandbox_id)
        ping, _ = await self.manager.call_entry(entry, {"op": wire.PING.name})
        entry = self.manager.entries.get(sandbox_id, entry)
        address, netns = await self._address(entry.token, str(ping.get("boot") or ""))
        return address, _dialer(netns)

    # ---- routing ------------------------------------------------------------------------------

    async def route(self, request: RequestLike, client_host: str | None = None) -> WebResponse | None:
        """The response for a preview host name; None when the host is not one."""
        hostname = urlsplit(request.url).hostname or ""
        key = hostname.partition(".")[0]
        m = PREVIEW_HOST.match(key)
        if m is None or "." not in hostname:
            return None
        route = self._routes.get(key)
        problem = None
        if route is not None:
            problem = self._revalidate(route)
        if route is None or problem == "reload":
            route, problem = self._load(key, int(m.group(1)), m.group(3))
        if route is None or problem == "gone":
            return _not_found()
        if problem == "stopped":
            return WebResponse.json(
                503,
                {
                    "error": f"sandbox {route.sandbox_id} is not running (suspended or stopped): preview "
                    "requests do not wake it; any other use of the sandbox does (then call exposePort again)",
                    "code": codes.SANDBOX_NOT_RUNNING,
                },
                [("retry-after", "1")],
            )
        if problem == "stale":
            return WebResponse.json(
                410,
                {
                    "error": "this preview URL belongs to an earlier start of the sandbox's container: "
                    "call exposePort again to make it current",
                    "code": codes.STALE_PREVIEW_URL,
                },
            )
        try:
            return await self.forwarder.forward(
                request, route.address, route.port, client_host, dial=route.dial
            )
        except UpstreamError as e:
            self._routes.pop(key, None)
            if self.current_boot(route.token_dir) is None:
                return WebResponse.json(
                    503,
                    {
                        "error": f"sandbox {route.sandbox_id} is not running",
                        "code": codes.SANDBOX_NOT_RUNNING,
                    },
                )
            return WebResponse.json(
                502,
                {
                    "error": f"nothing answered on port {route.port} of sandbox {route.sandbox_id} ({e})"
                    + (
                        ""
                        if route.dial is not None
                        else "; a server must listen on 0.0.0.0, not only on localhost, to be previewed"
                    ),
                    "code": codes.PORT_UNREACHABLE,
                },
            )

    def _revalidate(self, route: Route) -> str | None:
        """None while the route holds; else what changed: gone, stopped, stale, or reload (records changed)."""
        try:
            if os.stat(route.ports_file).st_mtime_ns != route.ports_mtime:
                return "reload"
            if not stat.S_ISSOCK(os.lstat(route.socket_file).st_mode):
                return "stopped"
            st = os.lstat(route.boot_file)
        except FileNotFoundError:
            return "reload"
        except OSError:
            return "stopped"
        if (st.st_ino, st.st_mtime_ns) != route.boot_identity:
            return "reload"
        return None

    def _load(self, key: str, port: int, token: str) -> tuple[Route | None, str | None]:
        self._routes.pop(key, None)
        try:
            token_dir = Path(os.readlink(self.index / key))
        except OSError:
            return None, "gone"
        try:
            mtime = os.stat(self._ports_path(token_dir)).st_mtime_ns
            meta = json.loads((token_dir / "meta.json").read_text())
        except (OSError, ValueError):
            self._unlink(key)  # the sandbox was destroyed
            return None, "gone"
        sandbox_id = meta.get("id")
        record = self._read_ports(token_dir).get(str(port)) or {}
        if (
            not isinstance(sandbox_id, str)
            or record.get("token") != token
            or self._key(port, sandbox_id, token) != key
        ):
            return None, "gone"
        try:
            st = os.lstat(token_dir / "run" / "boot")
            identity = (st.st_ino, st.st_mtime_ns)
        except OSError:
            identity = (0, 0)
        route = Route(
            key,
            sandbox_id,
            token_dir,
            port,
            record.get("boot", ""),
            record.get("address", ""),
            mtime,
            identity,
            _dialer(record.get("netns")),
        )
        boot = self.current_boot(token_dir)
        if boot is None:
            return route, "stopped"
        if boot != route.boot:
            return route, "stale"
        self._routes[key] = route
        return route, None

    def close(self) -> None:
        self.forwarder.close()


def _dialer(netns: Any) -> LoopbackDialer | None:
    """A dialer from a record's [path, inode], None when there is none (made by an older ploy, or a
    namespace this process could not see)."""
    if isinstance(netns, list) and len(netns) == 2 and isinstance(netns[1], int):
        return LoopbackDialer(str(netns[0]), netns[1])
    return None
