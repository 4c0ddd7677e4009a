"""Hot reload: polls the worker's files and calls back with what changed.

Polling (every 0.3 s, mtimes only) instead of inotify: no extra dependency, works on bind mounts and
network folders, and a project's watched set is small (esbuild's inputs, ploy.yaml, .dev.vars, sources).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

SKIP_DIRS = {"node_modules", ".git", ".ploy", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"}


def _snapshot(paths: set[Path], src_dirs: list[Path]) -> dict[Path, int]:
    files = set(paths)
    for d in src_dirs:  # new files in src/ count too (a file the entry will start importing)
        if d.is_dir():
            files.update(p for p in d.rglob("*") if p.is_file() and not SKIP_DIRS.intersection(p.parts))
    snap = {}
    for p in files:
        try:
            snap[p] = p.stat().st_mtime_ns
        except OSError:
            snap[p] = -1
    return snap


class Watcher:
    def __init__(
        self,
        root: Path,
        watched: Callable[[], set[Path]],
        on_change: Callable[[set[Path]], Awaitable[None]],
        interval: float = 0.3,
    ) -> None:
        self.root, self.watched, self.on_change, self.interval = root, watched, on_change, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        src = [self.root / "src"]
        before = await asyncio.to_thread(_snapshot, self.watched(), src)
        while True:
            await asyncio.sleep(self.interval)
            now = await asyncio.to_thread(_snapshot, self.watched(), src)
            changed = {p for p in before.keys() | now.keys() if before.get(p) != now.get(p)}
            if changed:
                # Let an editor finish writing (save = truncate + write) before we read the file.
                await asyncio.sleep(0.05)
                await self.on_change(changed)
                now = await asyncio.to_thread(_snapshot, self.watched(), src)
            before = now
