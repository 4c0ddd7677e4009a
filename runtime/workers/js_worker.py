"""The JS/TS worker loader: an esbuild ES module bundle run in QuickJS on the server's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from runtime.http import Request, Response
from runtime.workers.base import Limits, WorkerError
from runtime.workers.js_context import JsContext, LoadError
from runtime.workers.js_source import ModuleLayout, assemble, runtime_location
from runtime.workers.js_sourcemap import SourceMap, rewrite_stack


class JsWorker:
    def __init__(
        self,
        bundle_path: Path,
        layout: ModuleLayout,
        source_map: SourceMap | None,
        env: dict[str, Any],
        limits: Limits,
        log: Callable[[str], None],
    ) -> None:
        self.bundle_path = bundle_path
        self.layout = layout
        self.source_map = source_map
        self.env = env
        self.limits = limits
        self.log = log
        self._ctx: JsContext | None = None
        self._old: list[JsContext] = []

    @classmethod
    async def load(
        cls, bundle_path: Path, env: dict[str, Any], limits: Limits, log: Callable[[str], None]
    ) -> JsWorker:
        bundle_path = Path(bundle_path)
        try:
            bundle = await asyncio.to_thread(bundle_path.read_text)
        except OSError as e:
            raise WorkerError(f"cannot read the worker bundle {bundle_path}: {e.strerror}") from None
        map_path = bundle_path.with_name(bundle_path.name + ".map")
        if map_path.exists():
            source_map = await asyncio.to_thread(SourceMap.load, map_path)
        else:
            source_map = SourceMap.from_inline(bundle, bundle_path.parent)
        worker = cls(bundle_path, assemble(bundle), source_map, env, limits, log)
        worker._ctx = worker._new_context()
        return worker

    def _new_context(self) -> JsContext:
        try:
            return JsContext(self.layout.source, self.env, self.limits, self.log, self.map_stack)
        except LoadError as e:
            message = str(e)
            stack = e.stack
            if message.startswith("SyntaxError") and stack.strip().startswith("at <input>:"):
                # QuickJS reports syntax errors as a bare position
                stack = self.map_stack("    " + stack.strip())
            raise WorkerError(f"{message}", f"{message}\n{stack}".rstrip()) from None

    def fetch(self, request: Request, log_prefix: str) -> Coroutine[Any, Any, Response]:
        """The context's fetch coroutine itself (not awaited in a coroutine of this one: a frame less
        per request); raises at once if a fresh context cannot be made."""
        ctx = self._ctx
        if ctx is None or ctx.dead:
            # The old context is unusable (e.g. out of memory): start a fresh one transparently.
            if ctx is not None:
                self._old.append(ctx)
                asyncio.get_running_loop().create_task(self._retire(ctx))
            ctx = self._ctx = self._new_context()
        return ctx.fetch(request, log_prefix)

    async def _retire(self, ctx: JsContext) -> None:
        try:
            await ctx.close()
        finally:
            if ctx in self._old:
                self._old.remove(ctx)

    async def close(self) -> None:
        if self._ctx is not None:
            await self._ctx.close()
            self._ctx = None

    # ------------------------------------------------------------------ stacks
    def locate(self, line: int, col: int) -> str | None:
        layout = self.layout
        if line <= layout.bundle_lines:
            gen_col = col - 1 - (layout.prefix_cols if line == 1 else 0)
            if self.source_map is not None:
                hit = self.source_map.lookup(line - 1, gen_col)
                if hit is not None:
                    return f"{hit[0]}:{hit[1]}:{hit[2]}"
            return f"{self.bundle_path}:{line}:{gen_col + 1}"
        where = runtime_location(layout, line)
        if where is None:
            return ""  # ploy's glue between bundle and runtime
        return f"ploy:js/{where[0]}:{where[1]}"

    def map_stack(self, stack: str) -> str:
        lines = rewrite_stack(stack, self.locate).split("\n")
        # ploy's own frames below the user's (the glue that called fetch) are noise; frames above
        # them (an error thrown inside, say, the Response constructor) say where it came from.
        while (
            len(lines) > 1
            and "(ploy:js/" in lines[-1]
            and any("(ploy:js/" not in x for x in lines if "    at " in x)
        ):
            lines.pop()
        return "\n".join(lines)
