"""A code interpreter: POST code to /run and get its output and results back. Variables persist
between requests (the default context of each language lives in the sandbox); /context makes a
separate one, /stream sends the output while the code runs."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    query = parse_qs(url.query)
    sandbox = env.SANDBOX.get("interpreter")
    language = "javascript" if query.get("language") == ["javascript"] else "python"
    options: dict[str, Any] = {"language": language}
    if query.get("context"):
        options["context"] = query["context"][0]

    # Run code: { results, logs: { stdout, stderr }, error? }
    if url.path == "/run" and request.method == "POST":
        execution = await sandbox.runCode(await request.text(), options)
        return Response.json(execution)

    # The same, as server-sent events while it runs.
    if url.path == "/stream" and request.method == "POST":
        stream = await sandbox.runCodeStream(await request.text(), options)
        return Response(stream, headers={"Content-Type": "text/event-stream"})

    # A fresh context with its own variables; pass its id as ?context= to /run.
    if url.path == "/context" and request.method == "POST":
        return Response.json(await sandbox.createCodeContext({"language": language}))

    if url.path == "/contexts":
        return Response.json(await sandbox.listCodeContexts())

    return Response("Code Interpreter")
