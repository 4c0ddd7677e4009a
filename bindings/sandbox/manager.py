"""Where sandboxes are: id -> container, created lazily, found again after restarts, recovered when down.

What the client calls (entry lookup, create, call/stream with revive, destroy, list), composed of the
on-disk state (state.py: token folders, config.json, id claims), the containers (containers.py: image,
`podman run`, readiness, recovery) and the warm pool (pool.py, which uses those two and never this
module). A new id takes a warm-pool container when one is left (claimed by unlinking its pool entry:
only one unlink can succeed), else a container started for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from bindings import podman
from bindings.context import BindingContext
from bindings.error_codes import SANDBOX_UNAVAILABLE
from bindings.errors import NotFound, PloyError
from bindings.podman import PodmanError
from bindings.sandbox.agent import wire
from bindings.sandbox.agent_client import AgentInterrupted, AgentUnavailable, Duplex, Upload
from bindings.sandbox.backups import BackupStore
from bindings.sandbox.containers import Entry, SandboxContainers, home_label
from bindings.sandbox.forks import Origin, origin_image, write_origin
from bindings.sandbox.hosts.placement import Placement, configured_hosts, mark_host
from bindings.sandbox.locks import FileLock
from bindings.sandbox.options import SandboxOptions, changed_settings, memory_bytes
from bindings.sandbox.pool import WarmPool
from bindings.sandbox.preview import Previews
from bindings.sandbox.snapshots import SnapshotStore
from bindings.sandbox.state import SandboxState, container_name
from bindings.sandbox.status import SandboxStatus

__all__ = ["SandboxManager", "Upload"]

CONFIG_REFRESH_S = 30.0


class SandboxManager:
    def __init__(self, ctx: BindingContext, options: SandboxOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.state = SandboxState(ctx, options)
        self.containers = SandboxContainers(self.state)
        self.pool = WarmPool(self.state, self.containers)
        self.status = SandboxStatus(self.state, self.containers)
        self.previews = Previews(self)
        self.entries: dict[str, Entry] = {}
        # entries only looked at (getState, getMetrics): not opened, so on_sandbox is not told of them
        self._looked_at: dict[str, Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # id -> the backup or snapshot a sandbox of that id starts from, until it exists (get(id, {from}))
        self.origins: dict[str, Origin] = {}
        self.backups = BackupStore(ctx)
        self.snapshots = SnapshotStore(ctx, home_label(self.state.home))
        # `ploy hosts`: with hosts configured, new sandboxes go to them (hosts/placement.py)
        self.containers.remote = configured_hosts()
        self.placement = Placement(self.containers.remote)

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        lock = self._locks.get(sandbox_id)
        if lock is None:
            lock = self._locks[sandbox_id] = asyncio.Lock()
        return lock

    async def entry(self, sandbox_id: str) -> Entry:
        e = self.entries.get(sandbox_id)
        if e is not None:
            env = self.state.sandbox_env()
            if env != e.env_written or time.monotonic() - e.config_at > CONFIG_REFRESH_S:
                # the injected env changed (a `ploy login`, a re-minted AI token): the agent re-reads the file
                e.config_at, e.env_written = time.monotonic(), env
                self.state.write_config(e.dir)
                await self.containers.follow_gateway(e)  # its network's rules let the gateway through
            return e
        async with self._lock(sandbox_id):
            e = self.entries.get(sandbox_id)
            if e is not None:
                return e
            token = self.state.read_claim(sandbox_id)
            if token is not None:
                e = self.containers.entry(sandbox_id, token)
                e.dir.mkdir(parents=True, exist_ok=True)
                self.state.write_config(e.dir)
            else:
                e = await self._create(sandbox_id)
            self.entries[sandbox_id] = e
            if self.ctx.on_sandbox is not None:
                self.ctx.on_sandbox(self.options.binding, sandbox_id)
            return e

    async def _create(self, sandbox_id: str) -> Entry:
        if self.placement.hosts:
            return await self._create_remote(sandbox_id)
        state = self.state
        origin = self.origins.get(sandbox_id)
        if origin is not None and origin.kind == "backup":
            self.backups.valid(origin.id)  # before a pool container is spent on it
        # a snapshot fork runs its own image, so no pool container can serve it
        token = await self.pool.claim() if origin is None or origin.image is None else None
        if token is not None:
            d = state.token_dir(token)
            state.write_meta(d, token, sandbox_id)
            state.write_config(d)
            if state.claim(sandbox_id, token):
                self.pool.kick()
                e = self.containers.entry(sandbox_id, token)
                await self.call_entry(e, {"op": wire.PING.name})
                if origin is not None:
                    await self._seed(e, origin)
                return e
            self.pool.give_back(token)
        token, d = state.new_token_dir(sandbox_id)
        if not state.claim(sandbox_id, token):
            state.remove_token_dir(token)
            other = state.read_claim(sandbox_id)
            assert other is not None
            return self.containers.entry(
                sandbox_id, other
            )  # another process created it; recover() waits for it
        e = self.containers.entry(sandbox_id, token)
        async with FileLock(d / "lock"):
            try:
                if origin is not None:
                    write_origin(d, origin)
                run = self.containers.run(token, d, sandbox_id, image=origin.image if origin else None)
                if origin is not None and origin.kind == "snapshot":
                    await self._run_snapshot(run, origin.id)
                else:
                    await run
                await self.containers.wait_ready(e)
                if origin is not None and origin.kind == "backup":
                    await self.restore_backup(e, origin.id, None)
                self.origins.pop(sandbox_id, None)
            except BaseException:
                # leave no half-made sandbox behind: the next use of the id starts over
                await self.containers.remove(token)
                state.unclaim(sandbox_id)
                state.remove_token_dir(token)
                raise
        self.pool.kick()
        return e

    async def _create_remote(self, sandbox_id: str) -> Entry:
        """An id with no local record, hosts configured: the host whose labels hold it, else a new
        container on the host with the most headroom (placement.py)."""
        state = self.state
        labels = {k: v for k, v in self.containers.labels(sandbox_id).items() if k != "ploy.home"}
        found = await self.placement.find(labels)
        if found is not None:
            host, name = found
            token = name.removeprefix("ploy-")
            d = state.token_dir(token)
            d.mkdir(parents=True, exist_ok=True)
            state.write_meta(d, token, sandbox_id)
            mark_host(d, host)
            if not state.claim(sandbox_id, token):
                other = state.read_claim(sandbox_id)
                assert other is not None
                return self.containers.entry(sandbox_id, other)
            return self.containers.entry(sandbox_id, token, host)
        origin = self.origins.get(sandbox_id)
        if origin is not None and origin.image is not None:
            raise PloyError(
                "a sandbox forked from a snapshot cannot start on a remote host yet (snapshots are "
                "images on this machine)",
                code=SANDBOX_UNAVAILABLE,
            )
        host = await self.placement.choose(memory_bytes(str(self.options.memory)))
        token, d = state.new_token_dir(sandbox_id)
        mark_host(d, host)
        if not state.claim(sandbox_id, token):
            state.remove_token_dir(token)
            other = state.read_claim(sandbox_id)
            assert other is not None
            return self.containers.entry(sandbox_id, other)
        e = self.containers.entry(sandbox_id, token, host)
        self.placement.starting[host.name] = self.placement.starting.get(host.name, 0) + 1
        try:
            async with FileLock(d / "lock"):
                await self.containers.run(token, d, sandbox_id, host=host)
                await self.containers.wait_ready(e)
                if origin is not None and origin.kind == "backup":
                    await self.restore_backup(e, origin.id, None)
                self.origins.pop(sandbox_id, None)
        except BaseException:
            try:
                await self.containers.remove(token)
            except PloyError:
                pass  # the host went away: its labels name no claimed id we keep
            state.unclaim(sandbox_id)
            state.remove_token_dir(token)
            raise
        finally:
            self.placement.starting[host.name] -= 1
        return e

    async def _run_snapshot(self, run: Coroutine[Any, Any, None], snapshot: str) -> None:
        """Start a snapshot's container; that the snapshot is this project's (and still there) is checked
        meanwhile, unless this process already knows it."""
        if snapshot in self.snapshots.known:
            try:
                await run
            except PodmanError:
                await self.snapshots.info(snapshot)  # SNAPSHOT_NOT_FOUND when it was deleted meanwhile
                raise
            return
        ran, owned = await asyncio.gather(run, self.snapshots.info(snapshot), return_exceptions=True)
        for outcome in (owned, ran):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _seed(self, e: Entry, origin: Origin) -> None:
        """A pool container just claimed for a fork: restore the backup it starts from, or undo it."""
        try:
            write_origin(e.dir, origin)
            await self.restore_backup(e, origin.id, None)
        except BaseException:
            await self.containers.remove(e.token)
            self.state.unclaim(e.id)
            self.state.remove_token_dir(e.token)
            raise
        self.origins.pop(e.id, None)

    async def restore_backup(self, e: Entry, backup: Any, target: str | None) -> dict[str, Any]:
        """Stream a stored backup into the sandbox; the agent checks its hash before touching `target`
        (default: the directory it was taken of)."""
        meta, path = self.backups.valid(backup)
        request = {"op": wire.EXTRACT_ARCHIVE.name, "dir": target or meta["dir"], "crc32": meta["crc32"]}
        request["size"] = meta["tarSize"]
        result, _ = await self.call_entry(e, request, upload=self.backups.pieces(meta, path))
        return {"success": True, "id": meta["id"], "dir": result["dir"]}

    # ---- calls --------------------------------------------------------------------------------

    async def _revive(self, e: Entry) -> Entry:
        """After an unreachable agent: the same sandbox brought back, or (if another process destroyed
        the id meanwhile) whatever the id means now."""
        if e.id and self.state.read_claim(e.id) != e.token:
            if self.entries.get(e.id) is e:
                del self.entries[e.id]
            await e.agent.close()
            return await self.entry(e.id)
        await self.containers.recover(e)
        return e

    async def call_entry(
        self, e: Entry, request: dict[str, Any], upload: Upload | None = None
    ) -> tuple[Any, dict[bytes, bytearray]]:
        """One call, retried once after recovery only when nothing of it reached the agent (connect failed,
        socket missing while the container restarted). Once the request was written, AgentInterrupted
        (SANDBOX_UNAVAILABLE, "may or may not have run") reaches the caller: a retry could run an exec,
        writeFile or startProcess twice. The next call recovers the sandbox as usual."""
        if e.agent.suspect:
            e = await self._revive(e)
        try:
            return await e.agent.call(request, upload)
        except AgentUnavailable:
            e = await self._revive(e)
            return await e.agent.call(request, upload)
        except AgentInterrupted:
            if request.get("op") != wire.PING.name:
                raise
            e = await self._revive(e)  # ploy's own health check has no effect: safe to send again
            return await e.agent.call(request, upload)

    async def call(
        self, sandbox_id: str, request: dict[str, Any], upload: Upload | None = None
    ) -> tuple[Any, dict[bytes, bytearray]]:
        return await self.call_entry(await self.entry(sandbox_id), request, upload)

    async def stream(self, sandbox_id: str, request: dict[str, Any]) -> AsyncIterator[tuple[bytes, bytes]]:
        e = await self.entry(sandbox_id)
        if e.agent.suspect:
            e = await self._revive(e)
        try:
            return await e.agent.open_stream(request)
        except AgentUnavailable:
            e = await self._revive(e)
            return await e.agent.open_stream(request)

    # ---- looking without starting (status.py) -------------------------------------------------

    def _existing(self, sandbox_id: str) -> Entry | None:
        """The id's sandbox if it was ever started (claimed), without starting or creating anything."""
        e = self.entries.get(sandbox_id)
        if e is not None:
            return e
        token = self.state.read_claim(sandbox_id)
        if token is None:
            self._looked_at.pop(sandbox_id, None)
            return None
        e = self._looked_at.get(sandbox_id)
        if e is None or e.token != token:
            e = self._looked_at[sandbox_id] = self.containers.entry(sandbox_id, token)
        return e

    async def state_of(self, sandbox_id: str) -> dict[str, Any]:
        return await self.status.state(sandbox_id, self._existing(sandbox_id))

    async def metrics(self, sandbox_id: str) -> dict[str, Any]:
        return await self.status.metrics(sandbox_id, self._existing(sandbox_id))

    async def duplex(self, sandbox_id: str, request: dict[str, Any]) -> Duplex:
        e = await self.entry(sandbox_id)
        try:
            return await e.agent.open_duplex(request)
        except AgentUnavailable:
            e = await self._revive(e)
            return await e.agent.open_duplex(request)

    # ---- ids ----------------------------------------------------------------------------------

    def exists(self, sandbox_id: str) -> bool:
        """The id is claimed (what `ploy sandbox list` shows), whatever state its container is in."""
        return self.state.read_claim(sandbox_id) is not None

    async def destroy(self, sandbox_id: str) -> bool:
        self.origins.pop(sandbox_id, None)
        async with self._lock(sandbox_id):
            for known in (self.entries.pop(sandbox_id, None), self._looked_at.pop(sandbox_id, None)):
                if known is not None:
                    await known.agent.close()
            token = self.state.read_claim(sandbox_id)
            if token is None:
                return False
            forked_from_snapshot = origin_image(self.state.token_dir(token)) is not None
            self.status.forget(token)
            await self.containers.remove(token)
            try:
                self.state.unclaim(sandbox_id)
            except FileNotFoundError:
                pass
            self.state.remove_token_dir(token)
            if forked_from_snapshot:
                await self.snapshots.prune()  # its snapshot may have been deleted while it ran
            return True

    # ---- settings that changed since a sandbox was made (ploy.yaml edited) ------------------------

    def outdated(self) -> list[tuple[str, list[str]]]:
        """(id, what differs) for each sandbox made with other settings than the binding has now.
        Sandboxes made before ploy recorded their settings are not known, so not listed."""
        now = self.options.settings()
        out = []
        for sandbox_id in self.state.claimed_ids():
            token = self.state.read_claim(sandbox_id)
            made = self.state.read_meta(self.state.token_dir(token)).get("settings") if token else None
            if isinstance(made, dict):
                changes = changed_settings(made, now)
                if changes:
                    out.append((sandbox_id, changes))
        return out

    async def recreate(self, sandbox_id: str) -> tuple[str, str]:
        """The id's sandbox made again with the binding's settings now, keeping /workspace: the old
        container is stopped, a new one started, /workspace copied into it, the claim moved to it, the
        old one removed. If anything fails before the move, the new one is removed and the old one
        stays (stopped). (old container, new container)."""
        async with self._lock(sandbox_id):
            old = self.state.read_claim(sandbox_id)
            if old is None:
                raise NotFound(f"no sandbox {sandbox_id!r}")
            old_name = container_name(old)
            state = await podman.container_state(old_name)
            if state == "paused":
                raise PloyError(
                    f"sandbox {sandbox_id!r} is paused: `podman unpause {old_name}` first",
                    code=SANDBOX_UNAVAILABLE,
                )
            if state in ("running", "stopping"):
                await podman.run("stop", "-t", "10", old_name)  # /workspace no longer changes
            token, d = self.state.new_token_dir(sandbox_id)
            e = self.containers.entry(sandbox_id, token)
            try:
                await self.containers.run(token, d, sandbox_id)
                await self.containers.wait_ready(e)
                if state is not None:
                    await self.containers.ensure_disk(self.state.token_dir(old))
                    await podman.copy_between(old_name, "/workspace", e.container, "/")
            except BaseException:
                await self.containers.remove(token)
                self.state.remove_token_dir(token)
                raise
            self.state.reclaim(sandbox_id, token)
            for known in (self.entries.pop(sandbox_id, None), self._looked_at.pop(sandbox_id, None)):
                if known is not None:
                    await known.agent.close()
            self.status.forget(old)
            await self.containers.remove(old)
            self.state.remove_token_dir(old)
            await self.containers.sweep_networks()  # the old one's, when it was the last on it
            return old_name, e.container

    async def list(self) -> list[dict[str, Any]]:
        states = await self.containers.project_states()
        out = []
        for sandbox_id in self.state.claimed_ids():
            token = self.state.read_claim(sandbox_id)
            if token is None:
                continue
            name = container_name(token)
            out.append(
                {
                    "id": sandbox_id,
                    "binding": self.options.binding,
                    "container": name,
                    "status": states.get(name, "missing"),
                }
            )
        return out

    async def close(self) -> None:
        self.previews.close()
        await self.pool.stop()
        await self.pool.drain()
        if not self.state.claimed_ids():
            # no sandbox of this binding is left: its networks (and rules) go. Not tried while any is
            # (podman calls that slow every close; recreate and prune sweep networks of older policies)
            await self.containers.sweep_networks()
        for e in [*self.entries.values(), *self._looked_at.values()]:
            await e.agent.close()
