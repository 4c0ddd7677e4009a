"""The containers behind a binding's sandboxes: which image, how `podman run` starts one, when its agent
is ready, and bringing a sandbox back when its agent cannot be reached.

The container is `ploy-<token>`, labelled ploy.sandbox / ploy.project / ploy.binding / ploy.home (and
ploy.id, or ploy.pool for a warm-pool container). What lives on disk beside it is state.py's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindings import podman
from bindings.error_codes import SANDBOX_UNAVAILABLE
from bindings.errors import PloyError
from bindings.sandbox import image as images
from bindings.sandbox.agent import wire
from bindings.sandbox.agent_client import AgentClient, AgentInterrupted, AgentUnavailable
from bindings.sandbox.forks import origin_image
from bindings.sandbox.hosts.base import AGENT_PORT, ContainerHost, RunSpec
from bindings.sandbox.hosts.local import LocalHost
from bindings.sandbox.hosts.remote import RemoteHost, new_secret
from bindings.sandbox.locks import FileLock
from bindings.sandbox.state import SandboxState, container_name, hostname

# Kept from podman's defaults; dropped: SETFCAP, SETPCAP, SYS_CHROOT (and NET_RAW, MKNOD, AUDIT_WRITE,
# which podman 4 already drops). Enough for apt/pip/npm as root; no admin capability.
CAPS = "CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,NET_BIND_SERVICE"
READY_TIMEOUT_S = 30.0
LOCAL_HOST = LocalHost()


def home_label(home: Path) -> str:
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


@dataclass
class Entry:
    """One sandbox as the host reaches it: its id (empty for a pool container), token folder and agent."""

    id: str
    token: str
    dir: Path
    agent: AgentClient
    config_at: float = field(default_factory=time.monotonic)
    env_written: dict[str, str] | None = None  # the injected env its config.json was last checked against
    host: ContainerHost = LOCAL_HOST  # where its container runs (hosts/)

    @property
    def container(self) -> str:
        return container_name(self.token)


class SandboxContainers:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.ctx = state.ctx
        self.options = state.options
        self._image: str | None = None
        self._image_lock: asyncio.Lock | None = None
        self.local: ContainerHost = LOCAL_HOST
        # the configured remote hosts (`ploy hosts`), by name; empty: everything runs here
        self.remote: dict[str, RemoteHost] = {}

    def entry(self, sandbox_id: str, token: str, host: ContainerHost | None = None) -> Entry:
        host = host or self.host_of(token)
        if not host.remote:
            return Entry(
                sandbox_id, token, self.state.token_dir(token), AgentClient(self.state.socket_path(token))
            )
        agent = host.agent(container_name(token), self.state.socket_path(token))
        return Entry(sandbox_id, token, self.state.token_dir(token), agent, host=host)

    def host_of(self, token: str) -> ContainerHost:
        """The host a token's container was made on (meta.json's host; none: this machine). A host
        removed from the configuration since is still reached, at the URL recorded then."""
        meta = self.state.read_meta(self.state.token_dir(token))
        name = meta.get("host")
        if not isinstance(name, str) or not name:
            return self.local
        known = self.remote.get(name)
        if known is not None:
            return known
        url = meta.get("hostUrl")
        if isinstance(url, str) and url:
            known = self.remote[name] = RemoteHost(name, url)
            return known
        return self.local

    async def image(self) -> str:
        if self._image is not None:
            return self._image
        if self._image_lock is None:
            self._image_lock = asyncio.Lock()
        async with self._image_lock:
            if self._image is None:
                if self.options.containerfile:
                    cf = (self.ctx.project_root / self.options.containerfile).resolve()
                    self._image = await images.ensure_containerfile_image(cf, cf.parent)
                else:
                    custom = self.options.image or (
                        None if self.options.template == "default" else self.options.template
                    )
                    if not self.options.image and custom and not await podman.image_exists(custom):
                        # the docs call this value "the sandbox identifier": a name that is no local image
                        # (e.g. `SANDBOX: my-app`) runs the default image rather than failing every call
                        self.ctx.logger("sandbox").warning(
                            f"template {custom!r} of {self.options.binding} is not a local podman image; "
                            "using the default image"
                        )
                        custom = None
                    self._image = await images.ensure_image(custom_base=custom)
        return self._image

    def labels(self, sandbox_id: str | None) -> dict[str, str]:
        labels = {
            "ploy.sandbox": "1",
            "ploy.project": self.ctx.project_key,
            "ploy.binding": self.options.binding,
            "ploy.home": home_label(self.state.home),
        }
        labels["ploy.id" if sandbox_id else "ploy.pool"] = sandbox_id or "1"
        return labels

    async def run(
        self,
        token: str,
        d: Path,
        sandbox_id: str | None,
        image: str | None = None,
        host: ContainerHost | None = None,
    ) -> None:
        """`image`: a snapshot's, for a sandbox forked from it (else the binding's image)."""
        host = host or self.local
        own_image = image is None
        image = image or await self.image()
        o = self.options
        # No `-e` for the injected env (AI gateway credentials): the agent reads it from config.json,
        # which is rewritten when it changes, so turning `ai:` off or re-minting a token takes effect
        # in containers that already exist.
        spec = RunSpec(
            name=container_name(token),
            image=image,
            labels=self.labels(sandbox_id),
            hostname=hostname(sandbox_id),
            memory=str(o.memory),
            cpus=o.cpus,
            pids=o.pids,
            caps=CAPS,
            run_dir=d / "run",
        )
        if host.remote:
            # the agent listens on TCP there, for this secret only (hosts/remote.py)
            spec.env = {"PLOY_AGENT_PORT": str(AGENT_PORT), "PLOY_AGENT_SECRET": new_secret()}
            # its config in the environment (no host folder there; ~150 ms less than copying a file in).
            # Without the injected env: the AI gateway it names listens on this machine's bridge.
            config = {k: v for k, v in self.state.config().items() if k != "sandboxEnv"}
            spec.env["PLOY_AGENT_CONFIG"] = json.dumps(config)
            try:
                await host.ensure_image(image)
            except podman.PodmanError:
                if not own_image or await podman.image_exists(image):
                    raise
                # gone from this machine since we looked it up (pruned by another ploy): make it again
                self._image = None
                image = spec.image = await self.image()
                await host.ensure_image(image)
            await host.run(spec)
            return
        try:
            await host.run(spec)
        except podman.PodmanError:
            if not own_image or await podman.image_exists(image):
                raise
            # removed since we looked it up (e.g. pruned by another ploy's build): make it again, once
            self._image = None
            spec.image = await self.image()
            await host.run(spec)

    async def wait_ready(self, e: Entry, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                await e.agent.call({"op": wire.PING.name})
                e.agent.suspect = False
                return
            except (AgentUnavailable, AgentInterrupted):  # a ping may always be sent again
                if time.monotonic() > deadline:
                    logs = await e.host.logs(e.container, 20)
                    raise PloyError(
                        f"sandbox agent did not start: {logs[-800:]}",
                        code=SANDBOX_UNAVAILABLE,
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.01)

    async def recover(self, e: Entry) -> None:
        """The agent is unreachable: start the stopped container, recreate a vanished one, or wait."""
        async with FileLock(e.dir / "lock"):
            try:
                await e.agent.call({"op": wire.PING.name})
                e.agent.suspect = False
                return  # another caller/process brought it back meanwhile
            except (AgentUnavailable, AgentInterrupted):
                pass
            state = await e.host.state(e.container)
            if state == "paused":
                # paused on purpose (`podman pause`, `ploy sandbox fault --pause`): resuming or restarting
                # it is not ploy's call, and a restart would lose its processes
                raise PloyError(
                    f"the sandbox's container {e.container} is paused (`podman unpause {e.container}` "
                    "resumes it)",
                    code=SANDBOX_UNAVAILABLE,
                )
            if state in ("created", "configured"):
                await e.host.remove(e.container)  # never ran (a failed start): nothing to keep
                state = None
            if state is None:
                self.state.write_config(e.dir)
                image = origin_image(e.dir)
                if image is not None and not await e.host.image_exists(image):
                    self.ctx.logger("sandbox").warning(
                        f"sandbox {e.id}: the snapshot it was forked from is gone; it starts again empty"
                    )
                    image = None
                await self.run(e.token, e.dir, e.id, image=image, host=e.host)
            elif state in ("running", "stopping"):
                try:
                    await self.wait_ready(e, timeout=3.0)
                    return
                except PloyError:
                    await e.host.stop(e.container, 1)
                    await e.host.start(e.container)
            else:
                self.state.write_config(e.dir)
                await e.host.start(e.container)
            await self.wait_ready(e)

    async def project_states(self) -> dict[str, str]:
        """Container name -> podman's state, for every container of this project (any binding)."""
        rows = await podman.ps({"ploy.project": self.ctx.project_key})
        for host in self.remote.values():
            try:
                rows += await host.ps({"ploy.project": self.ctx.project_key})
            except PloyError:
                pass  # an unreachable host's sandboxes show as missing
        return {c["Names"][0]: c.get("State", "") for c in rows if c.get("Names")}

    async def state_of(self, token: str) -> str | None:
        return await self.host_of(token).state(container_name(token))

    async def inspect(self, token: str) -> dict[str, Any] | None:
        """Podman's record of the container (State, GraphDriver, ...), or None when it does not exist.
        ~100 ms: only for what the agent and the run folder cannot tell."""
        return await self.host_of(token).inspect(container_name(token))

    async def remove(self, token: str) -> None:
        await self.host_of(token).remove(container_name(token))
