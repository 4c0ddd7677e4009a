from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    id = parse_qs(url.query).get("id", ["default"])[0]
    sandbox = env.SANDBOX.get(id)

    # Run a command
    if url.path == "/exec":
        result = await sandbox.exec("echo hello from ploy sandbox")
        return Response.json(result)

    # Write then read a file back
    if url.path == "/file":
        await sandbox.writeFile("note.txt", "written by the worker\n")
        content = (await sandbox.readFile("note.txt"))["content"]
        return Response.json({"content": content})

    return Response("Sandbox Worker")
