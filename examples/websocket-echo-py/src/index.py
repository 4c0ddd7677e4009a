import asyncio
from typing import Any

from runtime.http import Request, Response, WebSocket, WebSocketPair

_echoes: set[asyncio.Task[None]] = set()  # keeps each socket's task alive while it runs


async def echo(server: WebSocket) -> None:
    async for message in server:
        await server.send(message)
    print(f"closed: {server.close_code}")


async def fetch(request: Request, env: Any) -> Response:
    if (request.headers.get("upgrade") or "").lower() != "websocket":
        return Response("Connect a WebSocket to this URL: every message comes back.\n")
    client, server = WebSocketPair()
    server.accept()
    task = asyncio.ensure_future(echo(server))
    _echoes.add(task)
    task.add_done_callback(_echoes.discard)
    return Response(None, status=101, webSocket=client)
