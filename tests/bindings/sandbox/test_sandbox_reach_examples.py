"""The issue-12 examples under a real `ploy dev`, TS and Python twins: preview URLs (HTTP and a WebSocket
through one), the WebSocket echo, and the terminal, also as a page in Debian's headless chromium."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.bindings.sandbox.helpers import in_sandbox
from tests.bindings.sandbox.servers import ECHO_SERVER
from tests.conftest import free_port

pytestmark = pytest.mark.podman


def get_via(server: Any, url: str) -> httpx.Response:
    """GET a preview URL: to ploy dev's port, with the URL's host (Python does not resolve *.localhost)."""
    host = url.split("//", 1)[1].split("/", 1)[0]
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    return httpx.get(server.url + path, headers={"host": host}, timeout=30)


@pytest.mark.parametrize("name", ["preview", "preview-py"])
def test_preview_example(name: str, example: Any, dev_server: Any, ploy_home: Path) -> None:
    project = example(name)
    server = dev_server(project).start(timeout=120)
    started = server.get("/start")
    assert started.status_code == 200, server.output
    url = started.json()["url"]
    assert url.startswith("http://8080-preview-") and url.endswith(f".localhost:{server.port}/")
    page = get_via(server, url)
    assert page.status_code == 200 and page.text == "<h1>Hello from the sandbox</h1>\n"
    assert server.get("/start").json()["url"] == url  # exposed once, found again
    assert server.get("/").text.startswith("GET /start")  # other hosts reach the worker's own code
    wrong = get_via(server, url.replace(url.split("-")[-1].split(".")[0], "0" * 16))
    assert wrong.status_code == 404 and wrong.json()["code"] == "INVALID_TOKEN"

    # a WebSocket through a preview URL: the echo server on another port of the same sandbox
    in_sandbox(ploy_home, project, "preview", "writeFile", "/srv/echo.py", ECHO_SERVER)

    async def ws_echo() -> str:
        ctx_binding_url = await _expose_echo(ploy_home, project, server.port)
        host = ctx_binding_url.split("//")[1].rstrip("/")
        async with connect(f"ws://{host}/ws", host="127.0.0.1", port=server.port, proxy=None) as ws:
            await ws.send("through ploy dev")
            return str(await ws.recv())

    assert asyncio.run(ws_echo()) == "through ploy dev"


async def _expose_echo(home: Path, project: Path, dev_port: int) -> str:
    from bindings.context import BindingContext, project_key
    from bindings.sandbox import SandboxBinding
    from bindings.sandbox.options import SandboxOptions

    ctx = BindingContext(project.resolve(), project.name, project_key(project), state_dir=home)
    ctx.dev_host = f"localhost:{dev_port}"
    b = SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", pool=0))
    try:
        sb = b.get("preview")
        proc = await sb.startProcess("python3 /srv/echo.py 8081")
        await proc.waitForPort(8081, {"path": "/hello", "timeoutMs": 15000})
        return str((await sb.exposePort(8081))["url"])
    finally:
        await b.close()


@pytest.mark.parametrize("name", ["websocket-echo", "websocket-echo-py"])
def test_websocket_echo_example(name: str, example: Any, dev_server: Any) -> None:
    server = dev_server(example(name)).start(timeout=120)
    assert "Connect a WebSocket" in server.get("/").text

    async def go() -> list[Any]:
        async with connect(server.url.replace("http", "ws") + "/", proxy=None) as ws:
            await ws.send("ping")
            first = await ws.recv()
            await ws.send(b"\x01\x02")
            return [first, await ws.recv()]

    assert asyncio.run(go()) == ["ping", b"\x01\x02"]
    server.wait_output("closed: 1000")


@pytest.mark.parametrize("name", ["terminal", "terminal-py"])
def test_terminal_example_over_a_websocket(name: str, example: Any, dev_server: Any) -> None:
    server = dev_server(example(name)).start(timeout=120)
    page = server.get("/")
    assert page.status_code == 200 and '<script src="/xterm.js">' in page.text
    script = server.get("/xterm.js")
    assert script.status_code == 200 and "Terminal" in script.text and len(script.content) > 100_000
    assert server.get("/xterm.css").headers["content-type"].startswith("text/css")

    async def go() -> bytes:
        # the first /ws starts the sandbox: seconds when other Podman commands hold its locks (CI), more
        # than the client's default 10 s handshake timeout once in a while
        url = server.url.replace("http", "ws") + "/ws?cols=90&rows=20"
        async with connect(url, proxy=None, open_timeout=90) as ws:
            assert json.loads(await ws.recv()) == {"type": "ready"}
            await ws.send(b"stty size; echo hi-$((6*7))\r")
            out = b""
            while b"hi-42" not in out:
                m = await ws.recv()
                out += m if isinstance(m, bytes) else m.encode()
            return out

    assert b"20 90" in asyncio.run(asyncio.wait_for(go(), 120))


# ---- the page in a real browser ---------------------------------------------------------------


class Cdp:
    """The Chrome DevTools Protocol over a WebSocket: just enough to drive one page."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.next_id = ws, 1

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"{expression} stayed falsy for {timeout}s")


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (install.sh installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--window-size=1000,700", f"--user-data-dir={tmp_path / 'chromium-profile'}",
         f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/json/version", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield port
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.parametrize("name", ["terminal", "terminal-py"])
def test_terminal_page_in_chromium(
    name: str, example: Any, dev_server: Any, chromium: int, tmp_path: Path
) -> None:
    server = dev_server(example(name)).start(timeout=120)
    page = next(t for t in httpx.get(f"http://127.0.0.1:{chromium}/json/list").json() if t["type"] == "page")

    async def drive() -> tuple[str, bytes]:
        async with connect(page["webSocketDebuggerUrl"], proxy=None, max_size=None) as ws:
            cdp = Cdp(ws)
            await cdp.call("Page.enable")
            await cdp.call("Page.navigate", url=f"http://localhost:{server.port}/")
            await cdp.wait_for("document.body && document.body.dataset.state === 'ready'", timeout=90)
            await cdp.wait_for(
                "document.querySelector('.xterm-rows') && document.querySelector('.xterm-rows').innerText.includes('#')"
            )
            await cdp.evaluate("window.term.focus()")
            await cdp.call("Input.insertText", text="echo hi-$((6*7))")
            for kind in ("keyDown", "keyUp"):
                await cdp.call(
                    "Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13,
                    **({"text": "\r"} if kind == "keyDown" else {}),
                )  # fmt: skip
            rows = await cdp.wait_for(
                "(() => { const t = document.querySelector('.xterm-rows').innerText;"
                " return /\\nhi-42(\\n|$)/.test(t) ? t : ''; })()"
            )
            shot = await cdp.call("Page.captureScreenshot", format="png")
            return str(rows), base64.b64decode(shot["data"])

    try:
        rows, png = asyncio.run(asyncio.wait_for(drive(), 120))
    except AssertionError as e:
        raise AssertionError(f"{e}\nploy dev printed:\n{server.output}") from None
    assert "echo hi-$((6*7))" in rows and "\nhi-42" in rows
    artifact = tmp_path / f"{name}-terminal.png"
    artifact.write_bytes(png)
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    print(f"\nscreenshot of the terminal page: {artifact}")
    if os.environ.get("PLOY_ARTIFACTS"):
        shutil.copy(artifact, Path(os.environ["PLOY_ARTIFACTS"]) / artifact.name)


BRIDGE_WORKER = """
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const proxied = await proxyToSandbox(request, env);
    if (proxied) {
      if (url.pathname !== "/wrapped") return proxied;
      const headers = new Headers(proxied.headers);
      headers.set("x-worker-saw", proxied.headers.get("content-type") ?? "none");
      return new Response(proxied.body, { status: proxied.status, headers });
    }
    const sandbox = env.SANDBOX.get("bridge");
    const server = await sandbox.startProcess("python3 /srv/echo.py 8082");
    await server.waitForPort(8082, { path: "/hello", timeoutMs: 15000 });
    return Response.json(await sandbox.exposePort(8082));
  },
};
"""


def test_a_js_workers_proxy_keeps_bodies_headers_and_streams(
    tmp_path: Path, dev_server: Any, ploy_home: Path, sandbox_image: str
) -> None:
    """proxyToSandbox in a JS worker: the request's bytes (NUL, CR, LF, non-UTF-8) and headers (an empty
    value) reach the server as sent; its answer comes back whole, streamed, or read and rewrapped by the
    worker (the request and the Response cross the JS bridge as lines and parts, not JSON)."""
    project = tmp_path / "bridge"
    (project / "src").mkdir(parents=True)
    (project / "ploy.yaml").write_text("kind: dynamic\nsandbox:\n  SANDBOX: default\n")
    (project / "src" / "index.js").write_text(BRIDGE_WORKER)
    server = dev_server(project).start(timeout=120)
    in_sandbox(ploy_home, project, "bridge", "writeFile", "/srv/echo.py", ECHO_SERVER)
    exposed = server.get("/start")
    assert exposed.status_code == 200, server.output
    host = exposed.json()["url"].split("//", 1)[1].split("/", 1)[0]

    def via(method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"host": host, **kw.pop("headers", {})}
        return httpx.request(method, server.url + path, headers=headers, timeout=30, **kw)

    sent = b"a\x00b\nc\xff\r\n" + bytes(range(256))
    echo = via("POST", "/echo?q=1", content=sent, headers={"x-empty": "", "x-two": "two words"})
    assert echo.status_code == 200, echo.text
    doc = echo.json()
    assert (doc["method"], doc["path"], doc["body"].encode("latin-1")) == ("POST", "/echo?q=1", sent)
    assert (doc["headers"]["x-empty"], doc["headers"]["x-two"]) == ("", "two words")
    assert doc["headers"]["x-forwarded-host"] == host

    wrapped = via("GET", "/wrapped")
    assert wrapped.status_code == 200 and wrapped.headers["x-worker-saw"] == "application/json"
    assert wrapped.json()["path"] == "/wrapped"
    streamed = via("GET", "/stream")
    assert streamed.text == "".join(f"part {i}\n" for i in range(5))
    big = via("GET", "/big")
    assert big.status_code == 200 and big.content == b"x" * (2 * 1024 * 1024)
    assert via("GET", "/status/418").status_code == 418
    assert via("GET", "/hello").headers["x-sandbox"] == "yes"
