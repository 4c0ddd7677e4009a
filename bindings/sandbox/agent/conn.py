"""One host connection as seen by the agent: send replies and data frames, receive uploads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import proto
from common import AgentError
from error_codes import INVALID_ARGUMENT


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffered = 0

    async def send(self, kind: bytes, payload: bytes) -> None:
        self.writer.write(proto.frame(kind, payload))
        self.buffered += len(payload)
        # drain per ~1 MiB rather than per frame: cheap for many small frames, bounded memory for big ones
        if self.buffered >= 1024 * 1024:
            self.buffered = 0
            await self.writer.drain()

    async def send_data(self, kind: bytes, data: bytes) -> None:
        for i in range(0, len(data), proto.CHUNK):
            await self.send(kind, data[i : i + proto.CHUNK])

    async def reply(self, result: Any) -> None:
        self.writer.write(proto.json_frame({"ok": True, "result": result}))
        self.buffered = 0
        await self.writer.drain()

    async def fail(self, error: dict[str, Any]) -> None:
        self.writer.write(proto.json_frame({"ok": False, "error": error}))
        self.buffered = 0
        await self.writer.drain()

    async def read_request(self) -> dict[str, Any] | None:
        try:
            kind, payload = await proto.read_frame(self.reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        if kind != b"J":
            raise ValueError(f"expected a request frame, got {kind!r}")
        req = json.loads(payload)
        if not isinstance(req, dict):
            raise ValueError("request must be a JSON object")
        return req

    async def upload_chunks(self) -> Any:
        """Yield the D frames of an upload until its empty terminating frame."""
        while True:
            kind, payload = await proto.read_frame(self.reader)
            if kind == proto.UPLOAD_ABORT:
                # the host's source failed: the handler drops what it has, and its error reply tells the
                # host when that is done (a caller sees its error only once no partial file is left)
                raise AgentError(INVALID_ARGUMENT, "the upload was abandoned by its source")
            if kind != b"D":
                raise ValueError(f"expected upload data, got {kind!r}")
            if not payload:
                return
            yield payload

    async def wait_closed_by_peer(self) -> None:
        """Resolves when the host closes the connection (used to stop a stream nobody reads)."""
        while True:
            data = await self.reader.read(65536)
            if not data:
                return

    @staticmethod
    async def stop_watching(watch: asyncio.Future[Any]) -> None:
        """Cancel a wait_closed_by_peer() task and wait until it has let go of the reader. The connection's
        next request is read from the same reader, which takes one waiter at a time: a read still pending
        there made that read_request() raise, and the agent dropped a connection the host had pooled."""
        watch.cancel()
        await asyncio.wait({watch})
