from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    sandbox = env.SANDBOX.get("builder")

    # Kick off a long job and return its handle right away.
    if url.path == "/build/start":
        proc = await sandbox.startProcess("npm run build")
        return Response.json(proc)
        # → { id, pid, command, status: "running", exitCode: None, startedAt }

    # Later request: check whether it finished.
    if url.path == "/build/status":
        id = parse_qs(url.query).get("id", [""])[0]
        proc = await sandbox.getProcess(id)
        return Response.json(proc)

    return Response("Builder")
