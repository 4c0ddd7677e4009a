from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response

# xterm.js comes from npm (package.json; `npm install` in this folder) and is served from node_modules.
ROOT = Path(__file__).resolve().parent.parent
ASSETS = {
    "/": (ROOT / "src" / "page.html", "text/html; charset=utf-8"),
    "/xterm.js": (ROOT / "node_modules/@xterm/xterm/lib/xterm.js", "text/javascript; charset=utf-8"),
    "/xterm.css": (ROOT / "node_modules/@xterm/xterm/css/xterm.css", "text/css; charset=utf-8"),
    "/addon-fit.js": (
        ROOT / "node_modules/@xterm/addon-fit/lib/addon-fit.js",
        "text/javascript; charset=utf-8",
    ),
}


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    query = parse_qs(url.query)

    # The page's WebSocket: an interactive shell in the sandbox.
    if url.path == "/ws":
        sandbox = env.SANDBOX.get(query.get("id", ["terminal"])[0])
        cols = int(query.get("cols", ["80"])[0] or 80)
        rows = int(query.get("rows", ["24"])[0] or 24)
        return await sandbox.terminal(request, {"cols": cols, "rows": rows})

    asset = ASSETS.get(url.path)
    if asset is not None:
        return Response(asset[0].read_bytes(), headers={"content-type": asset[1]})
    return Response("Not found", status=404)
