"""WebSockets in `ploy dev` (issue 12): WebSocketPair and 101 responses in JS and Python workers, served
by uvicorn, spoken to with the `websockets` client; outgoing sockets from JS; bounded buffering."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

JS_ECHO = """
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.headers.get("upgrade") !== "websocket") return new Response("plain");
    if (url.pathname === "/refuse") return new Response("no sockets here", { status: 403 });
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (event) => {
      const data = event.data;
      if (data === "close") return server.close(4001, "asked to");
      if (data === "flood") {
        const chunk = "x".repeat(1 << 20);
        for (let i = 0; i < 40; i++) server.send(chunk);
        return;
      }
      if (data === "kind") return server.send(typeof data);
      server.send(typeof data === "string" ? data : new Uint8Array(data));
    });
    server.addEventListener("close", (event) => console.log(`server saw close ${event.code}`));
    return new Response(null, { status: 101, webSocket: client, headers: { "x-worker": "js" } });
  },
};
"""

PY_ECHO = """
import asyncio
from runtime.http import Response, WebSocketPair

tasks = set()


async def echo(ws):
    async for message in ws:
        if message == "close":
            await ws.close(4001, "asked to")
            return
        await ws.send(message)
    print(f"server saw close {ws.close_code}")


async def fetch(request, env):
    if request.headers.get("upgrade") != "websocket":
        return Response("plain")
    if request.path == "/refuse":
        return Response("no sockets here", status=403)
    client, server = WebSocketPair()
    server.accept()
    task = asyncio.ensure_future(echo(server))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return Response(None, status=101, webSocket=client, headers={"x-worker": "py"})
"""


@pytest.fixture(params=["js", "py"])
def echo_server(request: Any, project: Path, dev_server: Any) -> Any:
    if request.param == "js":
        (project / "src" / "index.js").write_text(JS_ECHO)
    else:
        (project / "src" / "index.py").write_text(PY_ECHO)
    (project / "ploy.yaml").write_text("name: ws\n")
    server = dev_server(project).start()
    server.ws = server.url.replace("http://", "ws://")
    return server


def talk(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_echo_text_binary_and_close_codes(echo_server: Any) -> None:
    async def go() -> tuple[Any, ...]:
        async with connect(echo_server.ws + "/x", proxy=None, compression=None) as ws:
            header = ws.response.headers.get("x-worker") if ws.response else None
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x00\x01\xfe\xff")
            data = await ws.recv()
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            return header, text, data, closed.value.rcvd.code, closed.value.rcvd.reason

    header, text, data, code, reason = talk(go())
    assert header in ("js", "py") and text == "hello" and data == b"\x00\x01\xfe\xff"
    assert (code, reason) == (4001, "asked to")
    assert echo_server.get("/").text == "plain"  # plain HTTP on the same worker is untouched


def test_the_client_closing_reaches_the_worker(echo_server: Any) -> None:
    async def go() -> None:
        async with connect(echo_server.ws + "/x", proxy=None, compression=None) as ws:
            await ws.send("hi")
            await ws.recv()
            await ws.close(4002, "bye")

    talk(go())
    echo_server.wait_output("server saw close 4002")


def test_a_plain_answer_to_an_upgrade_reaches_the_client(echo_server: Any) -> None:
    async def go() -> int:
        with pytest.raises(InvalidStatus) as e:
            async with connect(echo_server.ws + "/refuse", proxy=None):
                pass
        assert e.value.response.body == b"no sockets here"
        return int(e.value.response.status_code)

    assert talk(go()) == 403


def test_many_concurrent_sockets(echo_server: Any) -> None:
    async def one(i: int) -> str:
        async with connect(echo_server.ws + f"/{i}", proxy=None, compression=None) as ws:
            await asyncio.sleep(0.2)  # all open at once
            await ws.send(f"m{i}")
            return str(await ws.recv())

    async def go() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(200)))

    assert talk(go()) == [f"m{i}" for i in range(200)]


def test_a_client_that_does_not_read_gets_closed_not_buffered_forever(project: Path, dev_server: Any) -> None:
    (project / "src" / "index.js").write_text(JS_ECHO)
    (project / "ploy.yaml").write_text("name: ws\n")
    server = dev_server(project).start()

    async def go() -> int:
        # a tiny receive queue: the client stops reading after 1 message, so 40 MiB pile up server-side
        async with connect(
            server.url.replace("http", "ws") + "/f", proxy=None, max_queue=1, max_size=None
        ) as ws:
            await ws.send("flood")
            await asyncio.sleep(3)
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else 1006

    assert talk(go()) == 1009
    server.wait_output("peer left 16 MiB of messages unread")


@pytest.fixture
def upstream() -> Iterator[int]:
    """A WebSocket server outside ploy (the `websockets` library) that echoes with a prefix."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    async def handler(ws: Any) -> None:
        async for message in ws:
            await ws.send(f"upstream:{message}" if isinstance(message, str) else message)

    stop: asyncio.Future[None] = loop.create_future()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as s:
            port.append(s.sockets[0].getsockname()[1])
            ready.set()
            await stop

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(10)
    yield port[0]
    loop.call_soon_threadsafe(stop.set_result, None)
    thread.join(10)
    loop.close()


OUTGOING = """
export default {
  async fetch(request, env) {
    const port = new URL(request.url).searchParams.get("port");
    if (new URL(request.url).pathname === "/fetch") {
      const resp = await fetch(`http://127.0.0.1:${port}/`, { headers: { Upgrade: "websocket" } });
      const ws = resp.webSocket;
      ws.accept();
      const got = new Promise((resolve) => ws.addEventListener("message", (e) => resolve(e.data)));
      ws.send("via fetch");
      const text = await got;
      ws.close();
      return Response.json({ status: resp.status, text });
    }
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const text = await new Promise((resolve, reject) => {
      ws.addEventListener("open", () => ws.send("via new WebSocket"));
      ws.addEventListener("message", (e) => resolve(e.data));
      ws.addEventListener("error", (e) => reject(new Error(e.message)));
    });
    ws.close(1000);
    return Response.json({ state: ws.readyState, text });
  },
};
"""


def test_outgoing_websockets_from_js(project: Path, dev_server: Any, upstream: int) -> None:
    (project / "src" / "index.js").write_text(OUTGOING)
    (project / "ploy.yaml").write_text("name: out\n")
    server = dev_server(project).start()
    assert server.get(f"/fetch?port={upstream}").json() == {"status": 101, "text": "upstream:via fetch"}
    assert server.get(f"/new?port={upstream}").json() == {"state": 2, "text": "upstream:via new WebSocket"}


def test_response_101_needs_a_websocket(project: Path, dev_server: Any) -> None:
    (project / "src" / "index.js").write_text(
        "export default { fetch() {"
        " try { new Response(null, { status: 101 }); } catch (e) { return new Response(e.name); } } };"
    )
    (project / "ploy.yaml").write_text("name: r\n")
    server = dev_server(project).start()
    assert server.get("/").text == "RangeError"
