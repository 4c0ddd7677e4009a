"""Wire format between the host and the in-container agent (stdlib only; imported by both sides).

One frame = 1 type byte + 4-byte big-endian length + payload. Raw bytes travel as they are (no base64):
  J  a JSON object: a request, or the final reply {"ok": true, "result": ...} / {"ok": false, "error": ...}
  O  output bytes of a command (stdout, or the merged output of a stream)
  E  stderr bytes of a command
  D  file or log bytes; an empty D frame ends an upload
  A  (host to agent, empty) the upload's source failed: the agent drops what it has and answers an error

A connection carries one request at a time and may be reused for the next one once the final J frame
of a reply has been read.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

HEADER = struct.Struct(">cI")
UPLOAD_ABORT = b"A"
MAX_FRAME = 64 * 1024 * 1024
CHUNK = 256 * 1024
# 2: a connection stays usable after a finished stream (version 1 agents could drop it when the host
# sent its next request; the host does not pool such a connection for them, see agent_client.py)
VERSION = 2
STREAM_REUSE_VERSION = 2


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def json_frame(obj: Any) -> bytes:
    return frame(b"J", json.dumps(obj, separators=(",", ":")).encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(type, payload); raises asyncio.IncompleteReadError at a clean end of the connection."""
    head = await reader.readexactly(HEADER.size)
    kind, size = HEADER.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame too large: {size}")
    payload = await reader.readexactly(size) if size else b""
    return kind, payload
