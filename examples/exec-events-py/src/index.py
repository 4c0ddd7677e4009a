"""The docs' coding agent, run so that its end is known: execStream's events format (as Cloudflare's SDK
sends it) ends with `complete` and the exit code, or with `error`."""

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response

AGENT = 'soulforge --headless --model openai/gpt-5.5 "summarize this repository"'


async def events(stream: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """The `data: {json}` events of a stream, one at a time."""
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            if block.startswith(b"data: "):
                yield json.loads(block[6:])


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    sandbox = env.SANDBOX.get("agent")
    command = parse_qs(url.query).get("cmd", [AGENT])[0]

    # The client reads the events: stdout, stderr, then `complete` with the exit code.
    if url.path == "/events":
        stream = await sandbox.execStream(command, {"format": "sse"})
        return Response(stream, headers={"Content-Type": "text/event-stream"})

    # The worker reads them, and says whether the agent succeeded.
    output, exit_code, error = "", None, None
    async for event in events(await sandbox.execStream(command, {"format": "sse"})):
        if event["type"] in ("stdout", "stderr"):
            output += event["data"]
        elif event["type"] == "complete":
            exit_code = event["exitCode"]
        elif event["type"] == "error":
            error = event["error"]
    ok = exit_code == 0
    return Response.json(
        {"ok": ok, "exitCode": exit_code, "error": error, "output": output}, status=200 if ok else 502
    )
