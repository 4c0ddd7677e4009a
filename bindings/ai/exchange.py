"""What the gateway answers with when no upstream is asked (the local model, a replay): an `Answer`.

An answer is a status, headers and either a whole body or a list of server-sent events, each with the
time (ms after the request arrived) at which it is due. The gateway turns it into an HTTP response,
pacing the events by that time divided by a speed (0: all at once).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes | None = None  # a whole response
    events: list[tuple[float, bytes]] | None = None  # a stream: (due at ms, one complete event)
    ms: float = 0.0  # when a whole body is due (ms after the request arrived)
    usage: tuple[int | None, int | None] = (None, None)  # input, output tokens (for the call log)
    error: str | None = None  # a short message for the call log, for error statuses
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stream(self) -> bool:
        return self.events is not None


def json_answer(status: int, obj: Any, usage: tuple[int | None, int | None] = (None, None)) -> Answer:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return Answer(status, {"content-type": JSON}, body=body, usage=usage)


def sse_event(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return ((f"event: {event}\n" if event else "") + f"data: {text}\n\n").encode()


async def paced(events: list[tuple[float, bytes]], started: float, speed: float) -> AsyncIterator[bytes]:
    """The events, each sent once its time (ms after `started`, a perf_counter) divided by `speed` has
    come; speed 0 sends them all at once, as one chunk."""
    if speed <= 0:
        yield b"".join(data for _, data in events)
        return
    for due_ms, data in events:
        wait = started + due_ms / 1000 / speed - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        yield data


async def wait_until(due_ms: float, started: float, speed: float) -> None:
    if speed > 0:
        wait = started + due_ms / 1000 / speed - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
