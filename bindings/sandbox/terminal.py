"""The host end of a sandbox terminal: a WebSocket whose other side is a shell on a PTY in the sandbox.

Cloudflare's protocol, so its xterm add-on and our page speak the same: binary messages are terminal
bytes both ways; text messages from the client are JSON controls (`{"type": "resize", "cols", "rows"}`;
any other text is typed as it is), text from the sandbox is status (`{"type": "ready"}` first,
`{"type": "exit", "code"}` when the shell exits, then the socket closes). Closing the socket ends the
shell. Output is read from the agent only as fast as the client takes it.
"""

from __future__ import annotations

import asyncio
import json

from bindings.errors import PloyError
from bindings.sandbox.agent_client import Duplex
from bindings.web import CLOSED, HIGH_WATER, Message, WebSocket, WebSocketClosed


class TerminalSocket(WebSocket):
    def __init__(self, duplex: Duplex) -> None:
        super().__init__()
        self.duplex = duplex
        self._reader: asyncio.Task[None] | None = None
        self._deliver('{"type":"ready"}')

    def accept(self) -> None:
        super().accept()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        reason = "the shell exited"
        try:
            async for kind, payload in self.duplex.frames():
                if kind == b"O":
                    if payload:
                        self._deliver(payload)
                        await self._wait_unread_below(HIGH_WATER)
                elif kind == b"J":
                    code = (json.loads(payload).get("result") or {}).get("exitCode")
                    self._deliver(json.dumps({"type": "exit", "code": code}))
        except PloyError as e:
            reason = "the sandbox went away"
            self._deliver(json.dumps({"type": "error", "message": str(e)}))
        except asyncio.CancelledError:
            raise
        self._peer_closed(1000, reason)

    async def send(self, data: Message) -> None:
        if self.readyState == CLOSED:
            raise WebSocketClosed(self.close_code or 1006, self.close_reason)
        if isinstance(data, str):
            control = _control(data)
            if control is not None:
                if control:  # an unknown or malformed control is dropped, never typed into the shell
                    await self.duplex.send(b"J", json.dumps(control).encode())
                return
            data = data.encode()
        try:
            await self.duplex.send(b"D", bytes(data))
        except PloyError:
            raise WebSocketClosed(1006, "the sandbox went away") from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.readyState == CLOSED:
            return
        self.readyState = CLOSED
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.duplex.close()  # the agent hangs the shell up
        self._wake()
        if self._reader is not None:
            self._reader.cancel()


def _control(text: str) -> dict[str, list[int]] | None:
    if not text.startswith("{"):
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or "type" not in message:
        return None
    cols, rows = message.get("cols"), message.get("rows")
    if message["type"] == "resize" and isinstance(cols, int) and isinstance(rows, int):
        return {"resize": [cols, rows]}
    return {}
