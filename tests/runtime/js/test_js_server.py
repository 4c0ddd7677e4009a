"""End to end: `ploy dev` bundles a TypeScript worker with esbuild and serves it from QuickJS over HTTP."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, DevServer

pytestmark = pytest.mark.skipif(
    not (REPO / "node_modules" / ".bin" / "esbuild").exists(), reason="npm install has not provided esbuild"
)

WORKER = """\
interface Env { GREETING: string }

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    console.log("handling", url.pathname);
    switch (url.pathname) {
      case "/":
        return new Response(`${env.GREETING} from QuickJS`);
      case "/echo":
        return Response.json({ method: request.method, body: await request.json(), ct: request.headers.get("content-type") });
      case "/stream": {
        let i = 0;
        const enc = new TextEncoder();
        return new Response(new ReadableStream({
          async pull(c) {
            if (i === 3) return c.close();
            if (i > 0) await new Promise((r) => setTimeout(r, 300));
            c.enqueue(enc.encode(`tick${i++}\\n`));
          },
        }), { headers: { "content-type": "text/plain" } });
      }
      case "/cookies": {
        const h = new Headers();
        h.append("set-cookie", "a=1");
        h.append("set-cookie", "b=2");
        return new Response("ok", { status: 201, headers: h });
      }
      case "/loop":
        for (;;) {}
      case "/sleep":
        await new Promise((r) => setTimeout(r, 400));
        return new Response("slept");
      case "/boom":
        return explode();
    }
    return new Response("not found", { status: 404 });
  },
};

function explode(): Response {
  throw new Error("kaboom from TypeScript");
}
"""


def test_typescript_worker_end_to_end(project: Path, dev_server: type[DevServer]) -> None:
    (project / "ploy.yaml").write_text("kind: dynamic\nlimits:\n  cpu_ms: 300\n")
    (project / "src" / "index.ts").write_text(WORKER)
    (project / ".dev.vars").write_text("GREETING=hello\n")
    server = dev_server(project).start()

    r = server.get("/")
    assert r.status_code == 200 and r.text == "hello from QuickJS"
    assert r.headers["content-type"] == "text/plain;charset=UTF-8"

    r = server.request("POST", "/echo", json={"a": [1, "ü"]})
    assert r.json() == {"method": "POST", "body": {"a": [1, "ü"]}, "ct": "application/json"}

    r = server.get("/cookies")
    assert r.status_code == 201 and r.headers.get_list("set-cookie") == ["a=1", "b=2"]

    # the streamed body reaches the client chunk by chunk, as produced
    arrivals: list[tuple[float, bytes]] = []
    t0 = time.monotonic()
    with httpx.stream("GET", server.url + "/stream", timeout=30) as resp:
        for chunk in resp.iter_raw():
            arrivals.append((time.monotonic() - t0, chunk))
    assert b"".join(c for _, c in arrivals) == b"tick0\ntick1\ntick2\n"
    assert len(arrivals) >= 3
    assert arrivals[0][0] < 0.25 and arrivals[-1][0] > 0.5

    # an uncaught error: 500 with the stack pointing at the TypeScript source
    r = server.get("/boom")
    assert r.status_code == 500
    assert "kaboom from TypeScript" in r.text
    assert "src/index.ts:42:" in r.text and "src/index.ts:35:" in r.text, r.text

    # an infinite loop is stopped by the CPU limit; the server keeps serving
    r = server.get("/loop")
    assert r.status_code == 500 and "CPU time limit" in r.text
    assert server.get("/").status_code == 200

    # requests waiting on timers do not block each other
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: server.get("/sleep").text, range(4)))
    assert results == ["slept"] * 4
    assert time.monotonic() - t < 1.2

    server.wait_output("handling /sleep")
    assert "handling /echo" in server.output
