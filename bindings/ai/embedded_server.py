"""Run a Starlette app with uvicorn on pre-bound sockets inside the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    # The embedding process (`ploy dev`) owns the signals; these servers stop through stop().
    def capture_signals(self) -> Any:
        return contextlib.nullcontext()


class EmbeddedServer:
    def __init__(self, app: Any, sockets: list[socket.socket]) -> None:
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, ws="none")
        self._server = _Server(config)
        self._sockets = sockets
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self._server.serve(sockets=self._sockets), name="ploy-embedded-server"
        )
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("server stopped during startup")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
        except TimeoutError:
            self._server.force_exit = True  # streams still open: stop waiting for them
            await self._task
        self._task = None
        for sock in self._sockets:
            sock.close()
