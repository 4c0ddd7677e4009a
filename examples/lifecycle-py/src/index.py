"""A sandbox's life beyond the docs: any id, its state and metrics, idle settings at run time, sessions by
id, and destroy() after which the same client starts afresh."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    # Any string is an id: an email, a path, a hash. Ids that differ in any way are different sandboxes.
    sandbox = env.SANDBOX.get(query.get("id", "default"))

    # Running, sleeping or stopped, and since when; asking starts and wakes nothing.
    if url.path == "/state":
        return Response.json(await sandbox.getState())

    if url.path == "/metrics":
        metrics = await sandbox.getMetrics()
        return Response.json({k: metrics[k] for k in ("cpu", "memory", "pids", "network", "disk")})

    if url.path == "/keep-alive":
        return Response.json(await sandbox.setKeepAlive(query.get("on") == "1"))

    if url.path == "/sleep-after":
        return Response.json(await sandbox.setSleepAfter(query.get("after", "10m")))

    # Sessions reached by id from any request; `sessionId` runs a call of the client in one.
    session_id = query.get("session", "work")
    if url.path == "/session/create":
        session = await sandbox.createSession({"id": session_id, "cwd": "/tmp", "commandTimeoutMs": 30_000})
        return Response.json({"sessionId": session.sessionId})
    if url.path == "/session/exec":
        return Response.json(await sandbox.exec(query.get("cmd", "pwd"), {"sessionId": session_id}))
    if url.path == "/session/delete":
        return Response.json(await sandbox.deleteSession(session_id))

    # Destroy, then keep using the same client: its next call gets a fresh, empty sandbox.
    if url.path == "/destroy":
        await sandbox.writeFile("mark.txt", "before")
        destroyed = (await sandbox.destroy())["destroyed"]
        after = await sandbox.exists("mark.txt")
        return Response.json({"destroyed": destroyed, "markAfter": after["exists"]})

    return Response.json(await sandbox.exec("hostname"))
