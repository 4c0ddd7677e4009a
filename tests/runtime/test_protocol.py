"""The transport wrapper that sends a connection's writes of one loop turn as one write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.protocol import BatchingTransport, flusher_for

pytestmark = pytest.mark.asyncio


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def wrap(real: RecordingTransport) -> BatchingTransport:
    return BatchingTransport(real, flusher_for(asyncio.get_running_loop()))


async def test_writes_of_one_turn_leave_in_one_write_at_its_end() -> None:
    real = RecordingTransport()
    t = wrap(real)
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(bytearray(b"hel"))
    t.write(b"lo")
    assert real.writes == []
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello"]
    t.write(b"more")
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello", b"more"]
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)


async def test_connections_written_in_one_turn_are_all_flushed() -> None:
    reals = [RecordingTransport() for _ in range(5)]
    for i, real in enumerate(reals):
        wrap(real).write(b"r%d" % i)
    await asyncio.sleep(0)
    assert [r.writes for r in reals] == [[b"r%d" % i] for i in range(5)]


async def test_close_sends_what_is_held_first_and_nothing_after() -> None:
    real = RecordingTransport()
    t = wrap(real)
    t.write(b"head")
    t.close()
    assert real.writes == [b"head"] and real.closed
    t.write(b"late")
    await asyncio.sleep(0)
    assert real.writes == [b"head"]
