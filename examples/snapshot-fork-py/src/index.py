"""Install dependencies once, snapshot the whole sandbox, then start ten sandboxes from the snapshot:
each has node_modules in place from its first command, without installing anything."""

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    path = url.path

    # 1. A sandbox runs `npm install`, then its files and packages become a snapshot.
    if path == "/snapshot":
        base = env.SANDBOX.get("base")
        package = {"name": "app", "version": "1.0.0", "dependencies": {"ms": "^2.1.3"}}
        await base.writeFile("/workspace/app/package.json", json.dumps(package))
        install = await base.exec("npm install --no-audit --no-fund", {"cwd": "/workspace/app"})
        if not install["success"]:
            return Response.json(install, status=500)
        snapshot = await base.snapshot({"name": "after npm install"})
        return Response.json(snapshot)

    # 2. Ten forks of it, started side by side; each runs the installed package at once.
    if path == "/fork":
        source = parse_qs(url.query).get("snapshot", [""])[0]
        if not source:
            return Response("pass ?snapshot=<id from /snapshot>", status=400)
        started = time.monotonic()

        async def fork(i: int) -> dict[str, str]:
            sandbox = env.SANDBOX.get(f"fork-{i}", {"from": source})
            result = await sandbox.exec(
                f"node -e \"console.log(require('ms')({i + 1} * 60000))\"", {"cwd": "/workspace/app"}
            )
            return {"id": sandbox.id, "stdout": result["stdout"].strip()}

        forks = await asyncio.gather(*(fork(i) for i in range(10)))
        return Response.json({"ms": round((time.monotonic() - started) * 1000), "forks": forks})

    # 3. Forks are sandboxes like any other: destroy them when done. The snapshot stays until deleted.
    if path == "/cleanup":
        await asyncio.gather(*(env.SANDBOX.get(f"fork-{i}").destroy() for i in range(10)))
        snapshots = await env.SANDBOX.get("base").listSnapshots()
        for snapshot in snapshots:
            await env.SANDBOX.get("base").deleteSnapshot(snapshot["id"])
        return Response.json({"deleted": len(snapshots)})

    return Response("Snapshot and fork: /snapshot, then /fork?snapshot=ID, then /cleanup")
