from urllib.parse import urlsplit

from runtime.http import Request, Response


async def fetch(request: Request, env: object) -> Response:
    path = urlsplit(request.url).path
    return Response(
        f"Hello from ploy! You asked for {path}\n",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
