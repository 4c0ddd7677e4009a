from typing import Any

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    sandbox = env.SANDBOX.get("default")

    stream = await sandbox.execStream("npm install")

    return Response(stream, headers={"Content-Type": "text/plain; charset=utf-8"})
