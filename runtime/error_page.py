"""The dev error page: an uncaught error in a worker becomes a 500 with its stack (HTML for browsers)."""

from __future__ import annotations

import html

from runtime.http import Response


def error_response(title: str, stack: str, accept: str | None) -> Response:
    if accept and "text/html" in accept:
        body = (
            "<!doctype html><html><head><meta charset=utf-8><title>500 - Worker threw an exception</title>"
            "<style>body{font:14px/1.5 system-ui,sans-serif;margin:2rem;color:#222}"
            "pre{background:#fff4f4;border-left:4px solid #d33;padding:1rem;overflow:auto;font:13px ui-monospace,monospace}"
            "h1{font-size:1.3rem;color:#b00}</style></head><body>"
            f"<h1>Worker threw an exception</h1><p>{html.escape(title)}</p><pre>{html.escape(stack)}</pre>"
            "<p><small>ploy dev: the server keeps running; fix the code and reload.</small></p></body></html>"
        )
        return Response(body, status=500, headers={"content-type": "text/html; charset=utf-8"})
    return Response(f"Worker threw an exception: {title}\n\n{stack}\n", status=500,
                    headers={"content-type": "text/plain; charset=utf-8"})  # fmt: skip
