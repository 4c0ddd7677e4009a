"""The gateway's call log: one JSON line per call under the project's state folder.

Fields: time (ISO 8601 UTC), project, method, path, model, provider, status, inputTokens, outputTokens,
ms, stream, and error (a short message) for failures. Never a token or a key: the gateway only hands
this module values it chose to record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG_NAME = "ai-calls.jsonl"
MAX_BYTES = 20 * 1024 * 1024  # then the file moves to ai-calls.jsonl.1 (one old file kept)


def log_path(project_state: Path) -> Path:
    return project_state / LOG_NAME


class CallLog:
    """Appends records from a background task so the request path never waits on the disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._busy = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="ploy-ai-calllog")

    def record(self, entry: dict[str, Any]) -> None:
        self._queue.put_nowait(entry)

    async def flush(self) -> None:
        """Wait until every record so far is on disk (tests and close use it)."""
        while not self._queue.empty() or self._busy:
            await asyncio.sleep(0.005)

    async def _drain(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy = True
            try:
                entries = [e for e in batch if e is not None]
                if entries:
                    await asyncio.to_thread(self._append, entries)
            finally:
                self._busy = False
            if None in batch:
                return

    def _append(self, entries: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_size > MAX_BYTES:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
        with self.path.open("a") as fh:
            fh.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries))

    async def close(self) -> None:
        if self._task is None:
            return
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None


def read_entries(path: Path) -> Iterator[dict[str, Any]]:
    try:
        fh = path.open()
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                yield json.loads(line)
