"""Where sandboxes are: id -> container, created lazily, found again after restarts, recovered when down.

On disk (under state_home(), so it outlives `ploy dev`):
  <home>/s/<token>/            meta.json, lock: host-only
  <home>/s/<token>/run/        the only host folder the container sees (at /run/ploy): a.sock, config.json.
                               The sandbox can write there, so the host never follows links in it.
  <home>/projects/<key>/sandboxes/<binding>/<id> -> ../../../../s/<token>   (a symlink: the id's claim)
The container is `ploy-<token>`, labelled ploy.sandbox / ploy.project / ploy.binding / ploy.home.
Claiming an id is one atomic symlink(2), so two processes racing for a new id agree on one container;
a warm-pool container is claimed by unlinking its pool entry (only one unlink can succeed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindings import podman
from bindings.context import BindingContext
from bindings.errors import InvalidArgument, PloyError
from bindings.podman.bridge import pin_bridge_mac
from bindings.sandbox import image as images
from bindings.sandbox.agent_client import AgentClient, AgentInterrupted, AgentUnavailable
from bindings.sandbox.locks import FileLock
from bindings.sandbox.options import SandboxOptions

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# Kept from podman's defaults; dropped: SETFCAP, SETPCAP, SYS_CHROOT (and NET_RAW, MKNOD, AUDIT_WRITE,
# which podman 4 already drops). Enough for apt/pip/npm as root; no admin capability.
CAPS = "CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,NET_BIND_SERVICE"
READY_TIMEOUT_S = 30.0
CONFIG_REFRESH_S = 30.0


def validate_id(sandbox_id: object) -> str:
    if not isinstance(sandbox_id, str) or not ID_RE.match(sandbox_id):
        raise InvalidArgument(
            f"invalid sandbox id {sandbox_id!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return sandbox_id


def home_label(home: Path) -> str:
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


@dataclass
class Entry:
    id: str
    token: str
    dir: Path
    agent: AgentClient
    config_at: float = field(default_factory=time.monotonic)

    @property
    def container(self) -> str:
        return f"ploy-{self.token}"


class SandboxManager:
    def __init__(self, ctx: BindingContext, options: SandboxOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.home = ctx.state_dir
        self.ids_dir = ctx.project_state / "sandboxes" / options.binding
        self.entries: dict[str, Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._image: str | None = None
        self._image_lock: asyncio.Lock | None = None
        self._env_sig = ""
        from bindings.sandbox.pool import WarmPool

        self.pool = WarmPool(self)

    # ---- images, configuration ----------------------------------------------------------------

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
                    custom = self.options.image or (None if self.options.template == "default" else self.options.template)
                    if not self.options.image and custom and not await podman.image_exists(custom):
                        # the docs call this value "the sandbox identifier": a name that is no local image
                        # (e.g. `SANDBOX: my-app`) runs the default image rather than failing every call
                        print(f"ploy: sandbox template {custom!r} of {self.options.binding} is not a local podman "
                              "image; using the default image", flush=True)
                        custom = None
                    self._image = await images.ensure_image(custom_base=custom)
        return self._image

    def sandbox_env(self) -> dict[str, str]:
        return dict(self.ctx.sandbox_env() or {}) if self.ctx.sandbox_env else {}

    def config(self) -> dict[str, Any]:
        return {
            "sleepAfterS": self.options.sleep_after_s,
            "outputLimit": self.options.output_limit,
            "processLogLimit": self.options.process_log_limit,
            "sandboxEnv": self.sandbox_env(),
        }

    def write_config(self, d: Path) -> None:
        """config.json in the token's run folder, written without following anything the sandbox planted."""
        run = d / "run"
        run.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.config(), sort_keys=True).encode()
        path = run / "config.json"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                if f.read() == data:
                    return
        except OSError:
            pass
        tmp = run / f".config.{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # rename replaces a planted link instead of writing through it

    def labels(self, sandbox_id: str | None) -> dict[str, str]:
        labels = {
            "ploy.sandbox": "1",
            "ploy.project": self.ctx.project_key,
            "ploy.binding": self.options.binding,
            "ploy.home": home_label(self.home),
        }
        labels["ploy.id" if sandbox_id else "ploy.pool"] = sandbox_id or "1"
        return labels

    def token_dir(self, token: str) -> Path:
        return self.home / "s" / token

    def new_token_dir(self, sandbox_id: str | None) -> tuple[str, Path]:
        token = secrets.token_hex(5)
        d = self.token_dir(token)
        d.mkdir(parents=True)
        self.write_meta(d, token, sandbox_id)
        self.write_config(d)
        return token, d

    def write_meta(self, d: Path, token: str, sandbox_id: str | None) -> None:
        meta = {"id": sandbox_id, "token": token, "container": f"ploy-{token}", "project": self.ctx.project_key,
                "projectName": self.ctx.project_name, "binding": self.options.binding, "createdAt": time.time()}
        (d / "meta.json").write_text(json.dumps(meta))

    # ---- containers ---------------------------------------------------------------------------

    async def run_container(self, token: str, d: Path, sandbox_id: str | None) -> None:
        image = await self.image()
        o = self.options
        args = ["run", "-d", "--pull=never", "--name", f"ploy-{token}", *podman.RUNTIME_FLAGS, *podman.ULIMIT_FLAGS,
                "--memory", str(o.memory), "--memory-swap", str(o.memory), "--cpus", str(o.cpus),
                "--pids-limit", str(o.pids), "--cap-drop", "ALL", "--cap-add", CAPS,
                "--security-opt", "no-new-privileges", "--stop-timeout", "3",
                "-v", f"{d / 'run'}:/run/ploy", "--hostname", (sandbox_id or "sandbox").replace("_", "-")[:63]]
        for k, v in self.labels(sandbox_id).items():
            args += ["--label", f"{k}={v}"]
        # No `-e` for the injected env (AI gateway credentials): the agent reads it from config.json,
        # which is rewritten when it changes, so turning `ai:` off or re-minting a token takes effect
        # in containers that already exist.
        try:
            await podman.run(*args, image)
        except podman.PodmanError:
            if await podman.image_exists(image):
                raise
            # removed since we looked it up (e.g. pruned by another ploy's build): make it again, once
            self._image = None
            await podman.run(*args, await self.image())
        await asyncio.to_thread(pin_bridge_mac)

    async def wait_ready(self, e: Entry, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                await e.agent.call({"op": "ping"})
                return
            except (AgentUnavailable, AgentInterrupted):  # a ping may always be sent again
                if time.monotonic() > deadline:
                    logs = await podman.run("logs", "--tail", "20", e.container, check=False)
                    raise PloyError(f"sandbox agent did not start: {logs.stderr.decode(errors='replace')[-800:]}",
                                    code="SANDBOX_UNAVAILABLE") from None
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.01)

    async def recover(self, e: Entry) -> None:
        """The agent is unreachable: start the stopped container, recreate a vanished one, or wait."""
        async with FileLock(e.dir / "lock"):
            try:
                await e.agent.call({"op": "ping"})
                return  # another caller/process brought it back meanwhile
            except (AgentUnavailable, AgentInterrupted):
                pass
            state = await podman.container_state(e.container)
            if state in ("created", "configured"):
                await podman.remove(e.container)  # never ran (a failed start): nothing to keep
                state = None
            if state is None:
                self.write_config(e.dir)
                await self.run_container(e.token, e.dir, e.id)
            elif state in ("running", "stopping"):
                try:
                    await self.wait_ready(e, timeout=3.0)
                    return
                except PloyError:
                    await podman.run("stop", "-t", "1", e.container, check=False)
                    await podman.run("start", e.container)
                    await asyncio.to_thread(pin_bridge_mac)
            else:
                self.write_config(e.dir)
                await podman.run("start", e.container)
                await asyncio.to_thread(pin_bridge_mac)
            await self.wait_ready(e)

    # ---- ids ----------------------------------------------------------------------------------

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        lock = self._locks.get(sandbox_id)
        if lock is None:
            lock = self._locks[sandbox_id] = asyncio.Lock()
        return lock

    def _entry_for(self, sandbox_id: str, token: str) -> Entry:
        d = self.token_dir(token)
        return Entry(sandbox_id, token, d, AgentClient(d / "run" / "a.sock"))

    def _read_claim(self, sandbox_id: str) -> str | None:
        try:
            return Path(os.readlink(self.ids_dir / sandbox_id)).name
        except FileNotFoundError:
            return None

    def _claim(self, sandbox_id: str, token: str) -> bool:
        self.ids_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(self.token_dir(token), self.ids_dir / sandbox_id)
            return True
        except FileExistsError:
            return False

    async def entry(self, sandbox_id: str) -> Entry:
        e = self.entries.get(sandbox_id)
        if e is not None:
            if time.monotonic() - e.config_at > CONFIG_REFRESH_S:
                # the injected env (AI gateway token) may have been re-minted: the agent re-reads the file
                e.config_at = time.monotonic()
                self.write_config(e.dir)
            return e
        async with self._lock(sandbox_id):
            e = self.entries.get(sandbox_id)
            if e is not None:
                return e
            token = self._read_claim(sandbox_id)
            if token is not None:
                e = self._entry_for(sandbox_id, token)
                e.dir.mkdir(parents=True, exist_ok=True)
                self.write_config(e.dir)
            else:
                e = await self._create(sandbox_id)
            self.entries[sandbox_id] = e
            return e

    async def _create(self, sandbox_id: str) -> Entry:
        token = await self.pool.claim()
        if token is not None:
            d = self.token_dir(token)
            self.write_meta(d, token, sandbox_id)
            self.write_config(d)
            if self._claim(sandbox_id, token):
                self.pool.kick()
                e = self._entry_for(sandbox_id, token)
                await self.call_entry(e, {"op": "ping"})
                return e
            self.pool.give_back(token)
        token, d = self.new_token_dir(sandbox_id)
        if not self._claim(sandbox_id, token):
            shutil.rmtree(d, ignore_errors=True)
            other = self._read_claim(sandbox_id)
            assert other is not None
            return self._entry_for(sandbox_id, other)  # another process created it; recover() waits for it
        e = self._entry_for(sandbox_id, token)
        async with FileLock(d / "lock"):
            try:
                await self.run_container(token, d, sandbox_id)
                await self.wait_ready(e)
            except BaseException:
                # leave no half-made sandbox behind: the next use of the id starts over
                await podman.remove(e.container)
                os.unlink(self.ids_dir / sandbox_id)
                shutil.rmtree(d, ignore_errors=True)
                raise
        self.pool.kick()
        return e

    # ---- calls --------------------------------------------------------------------------------

    async def _revive(self, e: Entry) -> Entry:
        """After an unreachable agent: the same sandbox brought back, or (if another process destroyed
        the id meanwhile) whatever the id means now."""
        if e.id and self._read_claim(e.id) != e.token:
            if self.entries.get(e.id) is e:
                del self.entries[e.id]
            await e.agent.close()
            return await self.entry(e.id)
        await self.recover(e)
        return e

    async def call_entry(self, e: Entry, request: dict[str, Any], upload: bytes | None = None) -> tuple[Any, dict[bytes, bytearray]]:
        """One call, retried once after recovery only when nothing of it reached the agent (connect failed,
        socket missing while the container restarted). Once the request was written, AgentInterrupted
        (SANDBOX_UNAVAILABLE, "may or may not have run") reaches the caller: a retry could run an exec,
        writeFile or startProcess twice. The next call recovers the sandbox as usual."""
        try:
            return await e.agent.call(request, upload)
        except AgentUnavailable:
            e = await self._revive(e)
            return await e.agent.call(request, upload)
        except AgentInterrupted:
            if request.get("op") != "ping":
                raise
            e = await self._revive(e)  # ploy's own health check has no effect: safe to send again
            return await e.agent.call(request, upload)

    async def call(self, sandbox_id: str, request: dict[str, Any], upload: bytes | None = None) -> tuple[Any, dict[bytes, bytearray]]:
        return await self.call_entry(await self.entry(sandbox_id), request, upload)

    async def stream(self, sandbox_id: str, request: dict[str, Any]) -> AsyncIterator[tuple[bytes, bytes]]:
        e = await self.entry(sandbox_id)
        try:
            return await e.agent.open_stream(request)
        except AgentUnavailable:
            e = await self._revive(e)
            return await e.agent.open_stream(request)

    def exists(self, sandbox_id: str) -> bool:
        """The id is claimed (what `ploy sandbox list` shows), whatever state its container is in."""
        return self._read_claim(sandbox_id) is not None

    async def destroy(self, sandbox_id: str) -> bool:
        async with self._lock(sandbox_id):
            e = self.entries.pop(sandbox_id, None)
            if e is not None:
                await e.agent.close()
            token = self._read_claim(sandbox_id)
            if token is None:
                return False
            await podman.remove(f"ploy-{token}")
            try:
                os.unlink(self.ids_dir / sandbox_id)
            except FileNotFoundError:
                pass
            shutil.rmtree(self.token_dir(token), ignore_errors=True)
            return True

    async def list(self) -> list[dict[str, Any]]:
        states = {c["Names"][0]: c.get("State", "") for c in await podman.ps({"ploy.project": self.ctx.project_key})
                  if c.get("Names")}
        out = []
        if self.ids_dir.is_dir():
            for link in sorted(self.ids_dir.iterdir()):
                token = self._read_claim(link.name)
                if token is None:
                    continue
                name = f"ploy-{token}"
                out.append({"id": link.name, "binding": self.options.binding, "container": name,
                            "status": states.get(name, "missing")})
        return out

    async def close(self) -> None:
        await self.pool.stop()
        await self.pool.drain()
        for e in self.entries.values():
            await e.agent.close()
