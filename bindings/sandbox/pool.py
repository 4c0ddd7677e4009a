"""A warm pool of started containers, so a new sandbox id answers in milliseconds instead of ~200 ms.

Pool entries are files `<home>/pool/<key>/<token>`; the key covers everything a container is created
with (project, binding, image and limits), so only matching containers are handed out. Claiming one is
an unlink(2), which exactly one process can win. Pool containers idle-stop like any sandbox; a stopped
one is replaced on the next refill. When the binding closes (`ploy dev` stops or reloads its env),
its unclaimed pool containers are removed, so none pile up on a shared machine; the next start
refills in the background within a few hundred ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os

from bindings.sandbox.containers import SandboxContainers
from bindings.sandbox.state import SandboxState


class WarmPool:
    def __init__(self, state: SandboxState, containers: SandboxContainers) -> None:
        self.state = state
        self.containers = containers
        o = state.options
        spec = json.dumps(
            [
                state.ctx.project_key,
                o.binding,
                o.template,
                o.image,
                o.containerfile,
                o.memory,
                o.cpus,
                o.pids,
                list(o.network) if isinstance(o.network, tuple) else o.network,
                o.disk,
                str(state.home),
            ]
        )
        self.key = hashlib.sha256(spec.encode()).hexdigest()[:12]
        self.dir = state.home / "pool" / self.key
        self._task: asyncio.Task[None] | None = None
        self._checked = False

    @property
    def size(self) -> int:
        return max(int(self.state.options.pool), 0)

    def kick(self) -> None:
        """Refill in the background (no-op without a running loop or with pool: 0)."""
        if self.size == 0 or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._fill())

    def _tokens(self) -> list[str]:
        try:
            return sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []

    async def _fill(self) -> None:
        try:
            if not self._checked:
                self._checked = True
                for token in self._tokens():
                    if await self.containers.state_of(token) != "running":
                        try:
                            os.unlink(self.dir / token)
                        except FileNotFoundError:
                            continue  # claimed meanwhile: it is the claimer's sandbox now, keep its folder
                        await self.containers.remove(token)
                        self.state.remove_token_dir(token)
            while len(self._tokens()) < self.size:
                token, d = self.state.new_token_dir(None)
                run = asyncio.ensure_future(self.containers.run(token, d, None))
                try:
                    await asyncio.shield(run)
                    await self.containers.wait_ready(self.containers.entry("", token))
                    self.dir.mkdir(parents=True, exist_ok=True)
                    (self.dir / token).touch()
                except BaseException:
                    # stopped (ploy dev exiting right after a first request) or failed midway: no pool file
                    # points at this container yet, so nothing would ever remove it. Let `podman run`
                    # finish first, or the remove could come before the container exists.
                    with contextlib.suppress(BaseException):
                        await run
                    await self.containers.remove(token)
                    self.state.remove_token_dir(token)
                    raise
        except Exception as exc:  # a failed refill must not break the request that triggered it
            self.state.ctx.logger("sandbox").warning(f"pool refill failed: {exc}")

    async def claim(self) -> str | None:
        if self.size == 0:
            return None
        for token in self._tokens():
            try:
                os.unlink(self.dir / token)
            except FileNotFoundError:
                continue  # another process took it
            return token
        self.kick()
        return None

    def give_back(self, token: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / token).touch()

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def drain(self) -> None:
        """Remove the unclaimed pool containers (claiming each first, so none is handed out meanwhile)."""
        for token in self._tokens():
            try:
                os.unlink(self.dir / token)
            except FileNotFoundError:
                continue
            await self.containers.remove(token)
            self.state.remove_token_dir(token)
