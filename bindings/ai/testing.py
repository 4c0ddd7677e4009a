"""A fake upstream plus a real gateway on a background event loop, for synchronous tests and benches.

The stack runs in its own thread, as it would in `ploy dev`'s process, so callers can use blocking
clients (the official SDKs, httpx.Client) against it without sharing its event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from bindings.ai.fake_upstream import FakeUpstream
from bindings.ai.gateway import Gateway
from bindings.context import BindingContext

T = TypeVar("T")


class BackgroundLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ploy-ai-test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class AiStack:
    """FakeUpstream + Gateway for one project. `environ` is what the gateway sees as its environment (the
    fake upstream's keys for the providers asked for, plus `extra_environ`)."""

    def __init__(self, project_root: Path, *, bridge: str | None = None, ttl_s: float = 3600.0, with_openai: bool = True,
                 with_anthropic: bool = True, default_provider: str = "openai",
                 extra_environ: dict[str, str] | None = None) -> None:  # fmt: skip
        self.bg = BackgroundLoop()
        self.ctx = BindingContext.for_project(project_root)
        self.upstream: FakeUpstream = self.bg.run(self._new_upstream())
        environ = {"PLOY_AI_DEFAULT_PROVIDER": default_provider}
        if with_openai:
            environ |= {
                "PLOY_OPENAI_API_KEY": self.upstream.openai_key,
                "PLOY_OPENAI_BASE_URL": self.upstream.openai_base_url,
            }
        if with_anthropic:
            environ |= {"PLOY_ANTHROPIC_API_KEY": self.upstream.anthropic_key,
                        "PLOY_ANTHROPIC_BASE_URL": self.upstream.anthropic_base_url}  # fmt: skip
        environ |= extra_environ or {}
        self.environ = environ
        self.gateway: Gateway = self.bg.run(
            Gateway.start(self.ctx, ttl_s=ttl_s, bridge=bridge, environ=environ)
        )

    @staticmethod
    async def _new_upstream() -> FakeUpstream:
        # Created inside the loop so its asyncio.Event belongs to that loop.
        return await FakeUpstream().start()

    def release_holds(self) -> None:
        self.bg.call(self.upstream.release.set)

    def reset(self) -> None:
        async def _reset() -> None:
            self.upstream.release = asyncio.Event()
            self.upstream.script = []
            self.upstream.requests.clear()

        self.bg.run(_reset())

    def configure(self, record: Path | None = None, replay: Path | None = None, speed: float = 1.0) -> None:
        """Record to / replay from a file, or neither (what ai: {record/replay} does in `ploy dev`)."""
        self.bg.run(self.gateway.configure(record, replay, speed))

    def flush_log(self) -> None:
        self.bg.run(self.gateway.calllog.flush())

    def close(self) -> None:
        self.bg.run(self.gateway.close())
        self.bg.run(self.upstream.close())
        self.bg.stop()


def listening_addresses(port: int) -> list[str]:
    """The IPv4 addresses with a socket listening on `port`, from /proc/net/tcp (state 0A = LISTEN)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.append(".".join(str(b) for b in reversed(bytes.fromhex(addr_hex))))
    return found
