from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response, proxy_to_sandbox


async def fetch(request: Request, env: Any) -> Response:
    # Requests for a preview URL are answered by the server in the sandbox.
    proxied = await proxy_to_sandbox(request, env)
    if proxied is not None:
        return proxied

    url = urlsplit(request.url)
    sandbox = env.SANDBOX.get(parse_qs(url.query).get("id", ["preview"])[0])

    # Start a web server in the sandbox, wait until it answers, and hand out its preview URL.
    if url.path == "/start":
        current = await sandbox.getExposedPorts()
        if current:
            return Response.json({"url": current[0]["url"]})

        await sandbox.writeFile("/srv/site/index.html", "<h1>Hello from the sandbox</h1>\n")
        server = await sandbox.startProcess("python3 -m http.server 8080", {"cwd": "/srv/site"})
        await server.waitForPort(8080, {"timeoutMs": 15000})
        exposed = await sandbox.exposePort(8080, {"name": "site"})
        return Response.json({"url": exposed["url"], "process": server.id})

    return Response("GET /start runs a web server in a sandbox and returns its preview URL\n")
