"""A Podman host reached through its REST API (`podman system service`, over unix://, tcp:// or
ssh://), with the `podman` package (podman-py), in a worker thread per call.

The control channel: the agent also listens on TCP port AGENT_PORT inside the container, published on
the host's address (a port Podman picks), and serves a connection only after it sent the sandbox's
secret (32 random bytes, hex; given to the container in its environment, which the agent drops before
any command runs, and read back from `inspect` when ploy's local state is lost). After that the
connection carries the same frames as the local unix socket, and is pooled the same way, so every
method (streams, sessions, processes, the terminal) works unchanged. Nothing is encrypted: over an
untrusted network use an ssh:// host and reach the published ports through a tunnel or a VPN
(BACKENDS.md says what a TLS channel would change).

Every call has a deadline: an API request fails after CONNECT_TIMEOUT_S when the host does not answer
(SANDBOX_UNAVAILABLE naming the host), and the agent's client gives up on a silent host in about two
seconds (liveness 1 s, health check 1 s) instead of the local 3 s + 5 s.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from bindings import podman as podman_cli
from bindings.error_codes import SANDBOX_UNAVAILABLE
from bindings.errors import PloyError
from bindings.podman import api as podman_api
from bindings.sandbox.agent_client import AgentClient, AgentUnavailable, Duplex, Upload, _Conn
from bindings.sandbox.disks import USERNS_BASE, USERNS_SIZE
from bindings.sandbox.hosts.base import AGENT_PORT, ContainerHost, RunSpec

USERNS_MAP = {"container_id": 0, "host_id": USERNS_BASE, "size": USERNS_SIZE}

CONNECT_TIMEOUT_S = 1.5
READ_TIMEOUT_S = 120.0
# Queries (inspect, list, info) answer in milliseconds: a pooled HTTP connection to a host that is
# gone would otherwise wait the whole read timeout
QUERY_READ_S = 1.5
LOAD_TIMEOUT_S = 1800.0
T = TypeVar("T")


class HostUnavailable(PloyError):
    code = SANDBOX_UNAVAILABLE


def agent_address(url: str) -> str:
    """The address a host's published agent ports are bound to and reached at: the URL's host for
    tcp:// and ssh://, loopback for a unix socket (a service on this machine)."""
    parsed = urlparse(url)
    if parsed.scheme in ("tcp", "http", "ssh", "http+ssh") and parsed.hostname:
        return parsed.hostname
    return "127.0.0.1"


class RemoteHost(ContainerHost):
    remote = True

    def __init__(self, name: str, url: str, identity: str | None = None, address: str | None = None) -> None:
        self.name = name
        self.url = url
        self.identity = identity
        self.address = address or agent_address(url)
        self._client: Any = None
        self._image_lock = asyncio.Lock()
        self._images: set[str] = set()
        self.down_since: float | None = None

    # ---- the API ------------------------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None:
            from podman import PodmanClient  # imported on first use: no cost for a user without hosts

            kwargs: dict[str, Any] = {"base_url": self.url, "timeout": self.timeout(READ_TIMEOUT_S)}
            if self.identity:
                kwargs["identity"] = self.identity
            self._client = PodmanClient(**kwargs)
        return self._client

    def timeout(self, read_s: float) -> float | tuple[float, float]:
        """(connect, read) over TCP; podman-py's unix socket and ssh adapters take one number only."""
        if urlparse(self.url).scheme in ("tcp", "http"):
            return (CONNECT_TIMEOUT_S, read_s)
        return read_s

    def unavailable(self, exc: BaseException) -> HostUnavailable:
        return HostUnavailable(
            f"sandbox host {self.name!r} ({self.url}) is unavailable: {type(exc).__name__}: {exc}",
            host=self.name,
        )

    async def _api(self, fn: Callable[[], T]) -> T:
        import requests
        from podman.errors import APIError, NotFound

        def call() -> T:
            return fn()

        try:
            result = await asyncio.to_thread(call)
        except NotFound as exc:
            response = getattr(exc, "response", None)
            if response is not None and "Libpod-Api-Version" not in response.headers:
                # not Podman answering (a proxy on the way to a host that is gone): "no such container"
                # from it must never make ploy recreate a sandbox whose files are on that host
                self.down_since = self.down_since or time.monotonic()
                raise self.unavailable(
                    RuntimeError(f"{response.status_code} from a server that is not Podman")
                ) from None
            raise
        except APIError as exc:  # (a requests error, so an OSError: first)
            if isinstance(exc.__cause__, OSError):  # podman-py's wrapping of a failed connection
                self.down_since = self.down_since or time.monotonic()
                raise self.unavailable(exc.__cause__) from None
            raise podman_cli.PodmanError(f"host {self.name!r}: {exc}", host=self.name) from None
        except (requests.ConnectionError, requests.Timeout, OSError) as exc:
            self.down_since = self.down_since or time.monotonic()
            raise self.unavailable(exc) from None
        self.down_since = None
        return result

    async def info(self) -> dict[str, Any]:
        info = await self._api(
            lambda: self.client().api.get("/info", timeout=self.timeout(QUERY_READ_S)).json()
        )
        return info if isinstance(info, dict) else {}

    # ---- ContainerHost ------------------------------------------------------------------------

    async def run(self, spec: RunSpec) -> None:
        memory = spec.memory

        def create_and_start() -> None:
            c = self.client().containers.create(
                spec.image,
                name=spec.name,
                labels=spec.labels,
                hostname=spec.hostname,
                runtime="runc",
                ulimits=[
                    {"Name": "nofile", "Soft": 1024, "Hard": 1024},
                    {"Name": "nproc", "Soft": 32768, "Hard": 32768},
                ],
                mem_limit=memory,
                memswap_limit=memory,
                nano_cpus=int(spec.cpus * 1e9),
                pids_limit=spec.pids,
                cap_drop=["ALL"],
                cap_add=spec.caps.split(","),
                no_new_privileges=True,
                stop_timeout=3,
                environment=spec.env,
                ports={f"{AGENT_PORT}/tcp": {"ip": self.address}},
                # as on this machine (containers.local_args): root in the sandbox is an unprivileged id
                # on the host, and its own IPC namespace with a tmpfs /dev/shm
                userns_mode="private",
                idmappings={"UIDMap": [USERNS_MAP], "GIDMap": [USERNS_MAP]},
                ipc_mode="none",
                mounts=[{"type": "tmpfs", "source": "tmpfs", "target": "/dev/shm", "size": "64m"}],
            )
            c.start()

        await self._api(create_and_start)

    async def ensure_image(self, image: str) -> None:
        """No registry: the image goes from this machine's storage to the host's as `podman save` piped
        into the API's image load (streamed; ~29 s for the 563 MB default image here). Building it
        there instead would take the debootstrap minute on every host."""
        if image in self._images:
            return
        async with self._image_lock:
            if image in self._images:
                return
            if not await self.image_exists(image):
                await self._load(image)
            self._images.add(image)

    async def _load(self, image: str) -> None:
        def load() -> None:
            err = tempfile.TemporaryFile()
            proc = subprocess.Popen(
                [podman_cli.PODMAN, "save", image],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                close_fds=True,
            )
            assert proc.stdout is not None

            def chunks() -> Iterator[bytes]:
                while True:
                    b = proc.stdout.read(1 << 20)  # type: ignore[union-attr]
                    if not b:
                        return
                    yield b

            try:
                res = self.client().api.post(
                    "/images/load",
                    data=chunks(),
                    headers={"Content-Type": "application/x-tar"},
                    # over TCP requests' connect timeout also bounds each send: a host busy writing
                    # the layers stalled one for more than CONNECT_TIMEOUT_S (seen in CI)
                    timeout=(LOAD_TIMEOUT_S, LOAD_TIMEOUT_S)
                    if isinstance(self.timeout(1.0), tuple)
                    else LOAD_TIMEOUT_S,
                )
                res.raise_for_status()
            except BaseException:
                proc.kill()  # its error would only say the pipe closed: the load's is the one to see
                raise
            finally:
                proc.stdout.close()
                saved = proc.wait()
                err.seek(0)
                why = err.read().decode(errors="replace").strip()
                err.close()
            if saved != 0:
                raise podman_cli.PodmanError(f"podman save {image} failed: {why}")

        await self._api(load)

    async def image_exists(self, ref: str) -> bool:
        return bool(await self._api(lambda: self.client().images.exists(ref)))

    async def _container(self, name: str) -> Any:
        from podman.errors import NotFound

        try:
            return await self._api(lambda: self.client().containers.get(name))
        except NotFound:
            return None

    async def start(self, name: str) -> None:
        await podman_api.once_more_if_address_leaked(
            lambda: self._api(lambda: self.client().containers.get(name).start())
        )

    async def stop(self, name: str, timeout: int) -> None:
        c = await self._container(name)
        if c is not None:
            await self._api(lambda: c.stop(timeout=timeout))

    async def remove(self, name: str) -> None:
        from podman.errors import NotFound

        try:
            await self._api(lambda: self.client().containers.remove(name, force=True, v=True))
        except NotFound:
            pass

    async def state(self, name: str) -> str | None:
        attrs = await self.inspect(name)
        return None if attrs is None else str((attrs.get("State") or {}).get("Status") or "") or None

    async def inspect(self, name: str) -> dict[str, Any] | None:
        from podman.errors import NotFound

        try:
            attrs = await self._api(
                lambda: (
                    self.client()
                    .api.get(f"/containers/{name}/json", timeout=self.timeout(QUERY_READ_S))
                    .json()
                )
            )
        except NotFound:
            return None
        return attrs if isinstance(attrs, dict) else None

    async def ps(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        rows = await self._api(
            lambda: (
                self.client()
                .api.get(
                    "/containers/json",
                    params={"all": True, "filters": _json(filters)},
                    timeout=self.timeout(QUERY_READ_S),
                )
                .json()
            )
        )
        return rows if isinstance(rows, list) else []

    async def logs(self, name: str, tail: int) -> str:
        c = await self._container(name)
        if c is None:
            return ""
        out = await self._api(lambda: b"".join(c.logs(tail=tail, stdout=True, stderr=True)))
        return out.decode(errors="replace")

    def agent(self, name: str, socket_path: Path) -> AgentClient:
        return TcpAgentClient(self, name, socket_path)

    async def agent_endpoint(self, name: str) -> tuple[str, int, bytes]:
        """(address, port, secret) of the agent of container `name`, from the host's record of it."""
        attrs = await self.inspect(name)
        if attrs is None:
            raise AgentUnavailable(f"container {name} does not exist on host {self.name!r}", host=self.name)
        secret = ""
        for var in (attrs.get("Config") or {}).get("Env") or []:
            if var.startswith("PLOY_AGENT_SECRET="):
                secret = var.split("=", 1)[1]
        ports = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{AGENT_PORT}/tcp") or []
        if not ports or not secret:
            raise AgentUnavailable(
                f"container {name} on host {self.name!r} publishes no agent port", host=self.name
            )
        return ports[0].get("HostIp") or self.address, int(ports[0]["HostPort"]), secret.encode()


def new_secret() -> str:
    return secrets.token_hex(16)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


class TcpAgentClient(AgentClient):
    """The agent of a container on a remote host, over TCP with the sandbox's secret (see the module)."""

    liveness_s = 1.0
    ping_timeout_s = 1.0

    def __init__(self, host: RemoteHost, container: str, socket_path: Path) -> None:
        super().__init__(socket_path)
        self.host = host
        self.container = container
        self.endpoint: tuple[str, int, bytes] | None = None
        self.reuse_after_stream = True  # agents that listen on TCP are all newer than stream reuse

    async def _connect(self) -> _Conn:
        if self.endpoint is None:
            try:
                self.endpoint = await self.host.agent_endpoint(self.container)
            except PloyError as exc:
                if isinstance(exc, AgentUnavailable):
                    raise
                raise AgentUnavailable(exc.message, host=self.host.name) from None
        addr, port, secret = self.endpoint
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(addr, port, limit=1 << 20), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            self.endpoint = None  # looked up again next time (the container may have been made again)
            raise AgentUnavailable(
                f"the agent of {self.container} on host {self.host.name!r} ({addr}:{port}) cannot be "
                f"reached: {exc or 'timed out'}",
                host=self.host.name,
            ) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(secret)
        return _Conn(reader, writer)

    def _named(self, exc: PloyError) -> PloyError:
        if exc.code == SANDBOX_UNAVAILABLE and "host" not in exc.details:
            exc.args = (f"{exc.message} (sandbox host {self.host.name!r})",)
            exc.details["host"] = self.host.name
        return exc

    async def call(
        self, request: dict[str, Any], upload: Upload | None = None
    ) -> tuple[Any, dict[bytes, bytearray]]:
        try:
            return await super().call(request, upload)
        except PloyError as exc:
            raise self._named(exc) from None

    async def open_stream(self, request: dict[str, Any]) -> Any:
        try:
            return await super().open_stream(request)
        except PloyError as exc:
            raise self._named(exc) from None

    async def open_duplex(self, request: dict[str, Any]) -> Duplex:
        try:
            return await super().open_duplex(request)
        except PloyError as exc:
            raise self._named(exc) from None

    async def agent_pid(self) -> int | None:
        return None
