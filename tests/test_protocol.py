"""The transport wrapper that sends a response's head and body in one write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.protocol import HeadCoalescingTransport

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


async def test_head_and_body_leave_in_one_write() -> None:
    real = RecordingTransport()
    t = HeadCoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert real.writes == []
    t.write(b"hello")
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello"]
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello"]
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)


async def test_a_lone_head_leaves_at_the_end_of_the_loop_turn() -> None:
    real = RecordingTransport()
    t = HeadCoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"head")
    await asyncio.sleep(0)
    assert real.writes == [b"head"]
    t.write(b"chunk1")
    t.write(b"chunk2")
    assert real.writes == [b"head", b"chunk1chunk2"]


async def test_close_sends_what_is_held_first() -> None:
    real = RecordingTransport()
    t = HeadCoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"head")
    t.close()
    assert real.writes == [b"head"] and real.closed
    await asyncio.sleep(0)
    assert real.writes == [b"head"]
