"""Stream a sandbox's file changes to the browser as server-sent events: the page below subscribes
with EventSource; /write changes a file so there is something to see."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response

PAGE = """<!doctype html>
<title>Sandbox file changes</title>
<p id="status">connecting…</p>
<ul id="events"></ul>
<script>
  const list = document.getElementById("events");
  const source = new EventSource("/events");
  source.addEventListener("watching", () => (document.getElementById("status").textContent = "watching"));
  for (const type of ["create", "modify", "delete", "rename"]) {
    source.addEventListener(type, (e) => {
      const event = JSON.parse(e.data);
      const item = document.createElement("li");
      item.textContent = event.type + " " + event.path + (event.isDirectory ? "/" : "");
      list.append(item);
    });
  }
</script>"""


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    sandbox = env.SANDBOX.get("watched")

    # The stream ends when the browser goes away (or the page closes the EventSource).
    if url.path == "/events":
        await sandbox.mkdir("/workspace/site", {"recursive": True})
        events = await sandbox.watch("/workspace/site", {"exclude": ["*.tmp"]})
        return Response(events, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    if url.path == "/write":
        name = parse_qs(url.query).get("name", ["index.html"])[0]
        await sandbox.writeFile(f"/workspace/site/{name}", f"written at {datetime.now(UTC).isoformat()}\n")
        return Response.json({"written": name})

    return Response(PAGE, headers={"Content-Type": "text/html; charset=utf-8"})
