"""Files beyond the docs: streamed uploads and downloads, binary-safe reads, listing, exists, rename, move."""

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    sandbox = env.SANDBOX.get(query.get("id", "files"))
    path = query.get("path", "upload.bin")

    # Upload: the request body is written into the sandbox as a stream.
    if request.method == "PUT":
        return Response.json(await sandbox.writeFile(path, request.body or ""))

    # Download: the file streams out of the sandbox as the client reads it.
    if url.path == "/download":
        stream = await sandbox.readFileStream(path)
        return Response(stream, headers={"Content-Type": "application/octet-stream"})

    # A generated file of `mib` MiB, written chunk by chunk: never whole in memory.
    if url.path == "/generate":
        mib = int(query.get("mib", "1"))
        chunk = b"x" * (1024 * 1024)

        async def body() -> AsyncIterator[bytes]:
            for _ in range(mib):
                yield chunk

        return Response.json(await sandbox.writeFile(path, body()))

    # Text comes back as text; anything else as base64 with isBinary: True (never mangled).
    if url.path == "/read":
        file = await sandbox.readFile(path)
        return Response.json({k: file[k] for k in ("content", "encoding", "isBinary", "mimeType", "size")})

    if url.path == "/ls":
        entries = await sandbox.listFiles(
            query.get("dir", "."), {"recursive": "recursive" in query, "includeHidden": "hidden" in query}
        )
        return Response.json(
            [
                {"path": e["relativePath"], "type": e["type"], "size": e["size"], "mode": e["mode"]}
                for e in entries
            ]
        )

    if url.path == "/exists":
        return Response.json(await sandbox.exists(path))

    if url.path in ("/rename", "/move"):
        to = query.get("to")
        if not to:
            return Response("give ?to=", status=400)
        moved = await (sandbox.renameFile(path, to) if url.path == "/rename" else sandbox.moveFile(path, to))
        return Response.json(moved)

    return Response("Files")
