"""The containers behind a binding's sandboxes: which image, how `podman run` starts one, when its agent
is ready, and bringing a sandbox back when its agent cannot be reached.

The container is `ploy-<token>`, labelled ploy.sandbox / ploy.project / ploy.binding / ploy.home (and
ploy.id, or ploy.pool for a warm-pool container). What lives on disk beside it is state.py's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindings import podman
from bindings.error_codes import SANDBOX_UNAVAILABLE
from bindings.errors import PloyError
from bindings.podman import api as podman_api
from bindings.podman.bridge import pin_bridge_mac
from bindings.sandbox import disks
from bindings.sandbox import image as images
from bindings.sandbox import network as net
from bindings.sandbox.agent import wire
from bindings.sandbox.agent_client import AgentClient, AgentInterrupted, AgentUnavailable
from bindings.sandbox.forks import origin_image
from bindings.sandbox.hosts.base import AGENT_PORT, ContainerHost, RunSpec
from bindings.sandbox.hosts.local import LocalHost
from bindings.sandbox.hosts.remote import RemoteHost, new_secret
from bindings.sandbox.locks import FileLock
from bindings.sandbox.options import NONE, OPEN
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
        # network name -> (its bridge, the gateway address its rules were written for)
        self._bridges: dict[str, tuple[net.Bridge, tuple[str, int] | None]] = {}
        self._net_lock: asyncio.Lock | None = None
        self.local: LocalHost = LOCAL_HOST
        # the configured remote hosts (`ploy hosts`), by name; empty: everything runs here
        self.remote: dict[str, RemoteHost] = {}

    def entry(self, sandbox_id: str, token: str, host: ContainerHost | None = None) -> Entry:
        host = host or self.host_of(token)
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
            await self._start_new(await self.local_args(spec, d), spec.image, d)
        except podman.PodmanError:
            if own_image and not await podman.image_exists(image):
                # removed since we looked it up (e.g. pruned by another ploy's build): make it again, once
                self._image = None
                image = await self.image()
            elif not net.uses_bridge(o.network) or await net.inspect(self.network_name()):
                raise
            else:  # our network was removed by another process's cleanup while it had no container
                self._bridges.pop(self.network_name(), None)
            spec.image = image
            await self._start_new(await self.local_args(spec, d), spec.image, d)
        await self.started()

    async def local_args(self, spec: RunSpec, d: Path) -> list[str]:
        """`podman create`'s arguments for a sandbox on this machine: the seam's (hosts/local.py), the
        user namespace and the network policy, which only this machine's sandboxes get so far."""
        # root in the sandbox is an unprivileged id on the host (disks.py); it makes the agent's socket
        # in the run folder, so that folder is its own (the host, root, reaches it all the same).
        # Its own IPC namespace with /dev/shm a tmpfs that runc mounts inside the container (64m, podman's
        # default size): podman's host-side shm mount of a userns container made `podman rm -f` fail
        # with EBUSY about one time in two (podman 4.3 ignores `--ipc private`: still "shareable")
        os.chown(d / "run", disks.USERNS_BASE, disks.USERNS_BASE)
        return [
            *self.local.container_args(spec),
            *disks.USERNS_FLAGS,
            "--ipc",
            "none",
            "--tmpfs",
            "/dev/shm:rw,nosuid,nodev,size=64m",
            *await self.network_args(),
        ]

    async def start_existing(self, e: Entry) -> None:
        """`podman start` of a stopped container; on this machine its disk mounted and its network's rules
        in place first."""
        if e.host.remote:
            await e.host.start(e.container)
            return
        await self.ensure_disk(e.dir)
        policy = await self.before_start(e)
        await e.host.start(e.container)
        await self.started(policy)

    # ---- the network policy (network.py) --------------------------------------------------------

    async def network_args(self) -> list[str]:
        """`podman run`'s network arguments for the binding's policy (its network and rules made first)."""
        policy = self.options.network
        if policy == OPEN:
            return []
        if policy == NONE:
            return ["--network", "none"]
        bridge = await self.network()
        return [
            "--network",
            bridge.name,
            # the bridge's own address, which the rules let through: in a user namespace Podman 4.3
            # names the host's first address instead (without one, the gateway of the network)
            "--add-host",
            f"host.containers.internal:{bridge.gateway}",
            *await asyncio.to_thread(net.add_hosts, policy),
        ]

    def network_name(self, policy: net.Policy | None = None) -> str:
        o = self.options
        return net.network_name(
            home_label(self.state.home),
            self.ctx.project_key,
            o.binding,
            o.network if policy is None else policy,
        )

    def network_labels(self) -> dict[str, str]:
        return {k: v for k, v in self.labels(None).items() if k != "ploy.pool"}

    async def network(self, policy: net.Policy | None = None) -> net.Bridge:
        """The Podman network of the binding's policy (or of `policy`: an older sandbox's) with its rules
        in place for the gateway's current address: made once per process (rules do not survive a
        reboot; names resolve anew), then again only when the gateway moved."""
        policy = self.options.network if policy is None else policy
        name = self.network_name(policy)
        gateway = await asyncio.to_thread(net.gateway_address, self.state.sandbox_env())
        known = self._bridges.get(name)
        if known is not None and known[1] == gateway:
            return known[0]
        if self._net_lock is None:
            self._net_lock = asyncio.Lock()
        async with self._net_lock:
            known = self._bridges.get(name)
            if known is None or known[1] != gateway:
                bridge = await net.ensure_network(name, self.network_labels())
                await net.apply(bridge, policy, gateway)
                known = self._bridges[name] = (bridge, gateway)
        return known[0]

    async def started(self, policy: net.Policy | None = None) -> None:
        """After a container started: its bridge exists now (Podman makes it with the first container)."""
        policy = self.options.network if policy is None else policy
        known = self._bridges.get(self.network_name(policy)) if net.uses_bridge(policy) else None
        if known is not None:
            await asyncio.to_thread(net.tune_bridge, known[0].interface)
            await asyncio.to_thread(pin_bridge_mac, known[0].interface)
        else:
            await asyncio.to_thread(pin_bridge_mac)

    def made_with(self, e: Entry) -> net.Policy:
        """The policy the sandbox's container was made with (it keeps its network: meta.json says which;
        sandboxes made before the option were on Podman's shared bridge)."""
        made = self.state.read_meta(e.dir).get("settings")
        value = made.get("network", OPEN) if isinstance(made, dict) else OPEN
        return tuple(str(v) for v in value) if isinstance(value, list) else str(value)

    async def before_start(self, e: Entry) -> net.Policy:
        """Before `podman start` of an existing container: its network's rules (after a reboot, or when
        the AI gateway moved), for the policy it was made with."""
        policy = self.made_with(e)
        if net.uses_bridge(policy):
            await self.network(policy)
        return policy

    async def follow_gateway(self, e: Entry) -> None:
        """The injected env changed (`ploy login`, the gateway restarted elsewhere): rewrite the rules of
        the sandbox's network if the gateway's address is not the one they were written for."""
        await self.before_start(e)  # the same: its policy's network, rules for today's gateway

    async def sweep_networks(self) -> list[str]:
        """Remove this binding's networks no container uses any more (a close, a recreate)."""
        labels = {k: v for k, v in self.network_labels().items() if k != "ploy.id"}
        return await net.sweep(labels)

    async def _start_new(self, args: list[str], image: str, d: Path) -> None:
        """`podman run -d`, or, with a disk limit, `podman create`, the layer moved onto the sandbox's
        own filesystem (made meanwhile), then `podman start` (disks.py)."""
        size = self.options.disk_bytes
        if not size:
            await podman.run("run", "-d", *args, image)
            return
        # the disk (mkfs + mount, ~30 ms) and the storage root are ready by the time `create` is
        made = (
            asyncio.to_thread(disks.ensure_mounted, d)
            if disks.has_disk(d)
            else asyncio.to_thread(disks.make, d, size)
        )
        created, *others = await asyncio.gather(
            podman.run("create", *args, image), made, self._graph_root(), return_exceptions=True
        )
        if isinstance(created, BaseException):
            raise created
        name = args[args.index("--name") + 1]
        try:
            for failed in others:
                if isinstance(failed, BaseException):
                    raise failed
            layer = disks.layer_dir(created.text)
            await asyncio.to_thread(disks.adopt, layer, d)
            await podman_api.start(name)  # the API: no second podman process (podman/api.py)
        except BaseException:
            await podman.remove(name)
            await asyncio.to_thread(disks.release, d)
            raise

    async def _graph_root(self) -> None:
        if not disks.graph_root_known():
            disks.set_graph_root((await podman.run("info", "--format", "{{.Store.GraphRoot}}")).text)

    async def ensure_disk(self, d: Path) -> None:
        """Before Podman touches a stopped container's files (start, commit, cp): its filesystem is
        mounted (a reboot unmounts it)."""
        await asyncio.to_thread(disks.ensure_mounted, d)

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
                # removed behind ploy's back: a new empty sandbox under the same id, on a new disk
                await asyncio.to_thread(disks.release, e.dir)
                self.state.write_meta(e.dir, e.token, e.id)  # a new container: made with today's settings
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
                    await self.start_existing(e)
            else:
                self.state.write_config(e.dir)
                await self.start_existing(e)
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
