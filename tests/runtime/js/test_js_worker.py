"""JsWorker as the server uses it: streaming bodies, limits, concurrency, console tagging, load errors,
source-mapped stacks (real esbuild output) and outbound fetch against a real local HTTP server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from runtime.http import Request
from runtime.workers.base import Limits, WorkerError
from runtime.workers.js_worker import JsWorker
from tests.conftest import REPO
from tests.runtime.js.harness import Harness, write_module

ESBUILD = REPO / "node_modules" / ".bin" / "esbuild"

pytestmark = pytest.mark.asyncio


async def test_streamed_body_arrives_in_chunks_with_backpressure(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
        globalThis.pulls = 0;
        export default {
          fetch(request) {
            let n = 0;
            const enc = new TextEncoder();
            const body = new ReadableStream({
              async pull(c) {
                globalThis.pulls++;
                await new Promise((r) => setTimeout(r, 5));
                if (++n > 3) c.close(); else c.enqueue(enc.encode(`chunk${n};`));
              },
              cancel() { console.log("cancelled after", n); },
            }, { highWaterMark: 0 });
            request.signal.addEventListener("abort", () => console.log("request aborted:", request.signal.reason.name));
            return new Response(body, { headers: { "content-type": "text/plain" } });
          },
        };
    """,
        )
    )
    try:
        resp = await h.request("/")
        assert resp.status == 200 and resp.headers.get("content-type") == "text/plain"
        body = resp._body
        chunks = [chunk async for chunk in body]  # type: ignore[union-attr]
        assert chunks == [b"chunk1;", b"chunk2;", b"chunk3;"]

        # a consumer that stops early: nothing is pulled beyond what it asked for, then JS sees cancel
        resp = await h.request("/")
        it = resp._body
        first = await it.__anext__()  # type: ignore[union-attr]
        assert first == b"chunk1;"
        await asyncio.sleep(0.05)
        await it.aclose()  # type: ignore[union-attr]
        assert any("cancelled after 1" in line for line in h.logs), h.logs
        assert "[test] request aborted: AbortError" in h.logs
    finally:
        await h.close()


async def test_infinite_loop_is_an_error_and_the_worker_lives_on(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
            export default {
              async fetch(request) {
                if (new URL(request.url).pathname === "/loop") { await null; for (;;) {} }
                return new Response("fine");
              },
            };
        """,
        ),
        limits=Limits(cpu_ms=100, memory_mb=64),
    )
    try:
        t = time.monotonic()
        with pytest.raises(WorkerError, match="CPU time limit"):
            await h.request("/loop")
        assert time.monotonic() - t < 2
        resp = await h.request("/ok")
        assert resp.status == 200 and await resp.text() == "fine"
    finally:
        await h.close()


async def test_a_timer_callback_stopped_by_the_cpu_limit_leaves_other_timers_running(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
            export default {
              async fetch(request) {
                if (new URL(request.url).pathname === "/spin-later") {
                  setTimeout(() => { for (;;) {} }, 20);
                  return new Response("scheduled");
                }
                await new Promise((resolve) => setTimeout(resolve, 200));
                return new Response("woke");
              },
            };
        """,
        ),
        limits=Limits(cpu_ms=100, memory_mb=64),
    )
    try:
        waiting = asyncio.ensure_future(h.request("/wait"))
        assert await (await h.request("/spin-later")).text() == "scheduled"
        resp = await asyncio.wait_for(waiting, 5)
        assert await resp.text() == "woke"
        assert any("CPU time limit" in line for line in h.logs), h.logs
    finally:
        await h.close()


async def test_many_and_large_host_ops_from_one_turn_all_arrive(tmp_path: Path) -> None:
    """Ops reach the host as JSON texts; several big ones from one turn must not be lost or mangled."""
    h = await Harness.load(
        write_module(
            tmp_path,
            """
            export default {
              fetch(request) {
                for (let i = 0; i < 300; i++) console.log(`line ${i} ` + "x".repeat(i * 7));
                return new Response("y".repeat(200000) + "é");
              },
            };
        """,
        ),
    )
    try:
        for _ in range(2):
            resp = await h.request("/")
            assert await resp.text() == "y" * 200000 + "é"
        lines = [line for line in h.logs if "line " in line]
        assert len(lines) == 600 and lines[299].endswith("line 299 " + "x" * 299 * 7)
    finally:
        await h.close()


async def test_memory_limit_error_then_recovery(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
            export default {
              fetch(request) {
                if (new URL(request.url).pathname === "/hog") {
                  const a = [];
                  for (;;) a.push(new Array(100000).fill(a.length));
                }
                return new Response("fine");
              },
            };
        """,
        ),
        limits=Limits(cpu_ms=5000, memory_mb=32),
    )
    try:
        with pytest.raises(WorkerError):
            await h.request("/hog")
        resp = await h.request("/ok")
        assert await resp.text() == "fine"
    finally:
        await h.close()


async def test_concurrent_requests_interleave_on_timers(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
        const events = [];
        export default {
          async fetch(request) {
            const name = new URL(request.url).pathname.slice(1);
            events.push(`${name}:start`);
            await new Promise((r) => setTimeout(r, name === "slow" ? 150 : 10));
            events.push(`${name}:end`);
            return Response.json(events);
          },
        };
    """,
        )
    )
    try:
        t = time.monotonic()
        slow_task = asyncio.ensure_future(h.request("/slow"))
        await asyncio.sleep(0.02)
        fast = await h.request("/fast")
        fast_events = await fast.json()
        slow_events = await (await slow_task).json()
        # the fast request started and finished while the slow one was waiting
        assert fast_events == ["slow:start", "fast:start", "fast:end"]
        assert slow_events == ["slow:start", "fast:start", "fast:end", "slow:end"]
        assert time.monotonic() - t < 1.0
    finally:
        await h.close()


async def test_console_output_is_tagged_with_its_request(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
        export default {
          async fetch(request) {
            const id = new URL(request.url).searchParams.get("id");
            console.log("sync", id, { nested: { deep: { deeper: [1] } }, list: [1, "two"], m: new Set(["k"]) });
            console.log({ long: "x".repeat(70), n: 1 });
            await new Promise((r) => setTimeout(r, Number(id) * 10));
            console.error("after timer", id);
            setTimeout(() => console.warn("late timer", id), 1);
            return new Response("ok");
          },
        };
    """,
        )
    )
    try:
        await asyncio.gather(h.request("/?id=1", prefix="[req-1]"), h.request("/?id=2", prefix="[req-2]"))
        await asyncio.sleep(0.05)
        assert (
            "[req-1] sync 1 { nested: { deep: { deeper: [Array] } }, list: [ 1, 'two' ], m: Set(1) { 'k' } }"
            in h.logs
        )
        assert (
            "[req-2] {\n  long: '" + "x" * 70 + "',\n  n: 1\n}" in h.logs
        )  # too long for one line: broken like node
        for rid in ("1", "2"):
            assert f"[req-{rid}] after timer {rid}" in h.logs
            assert f"[req-{rid}] late timer {rid}" in h.logs
    finally:
        await h.close()


async def test_uncaught_errors_and_bad_results(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
        export default {
          async fetch(request) {
            const p = new URL(request.url).pathname;
            if (p === "/throw") throw new TypeError("bad thing");
            if (p === "/string") throw "just a string";
            if (p === "/notresponse") return { hello: 1 };
            if (p === "/logged") { console.error(new RangeError("logged")); return new Response("ok"); }
            return new Response("ok");
          },
        };
    """,
        )
    )
    try:
        with pytest.raises(WorkerError, match="TypeError: bad thing") as e:
            await h.request("/throw")
        assert "worker.js:5:" in e.value.stack  # line 1 of the module is empty
        with pytest.raises(WorkerError, match="just a string"):
            await h.request("/string")
        with pytest.raises(WorkerError, match="must return a Response"):
            await h.request("/notresponse")
        assert await (await h.request("/")).text() == "ok"
        await h.request("/logged")
        assert any(
            line.startswith("[test] RangeError: logged\n    at fetch (") and "worker.js:8:" in line
            for line in h.logs
        ), h.logs
    finally:
        await h.close()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("export default { fetch( { }", "SyntaxError"),
        ("export const x = 1;", "no default export"),
        ("export default { hello() {} };", "no fetch"),
        ("throw new Error('top-level boom');\nexport default {};", "top-level boom"),
        ("for (;;) {}\nexport default {};", "top-level code exceeded its CPU time limit"),
    ],
)
async def test_load_errors_are_readable(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(WorkerError, match=message):
        await JsWorker.load(write_module(tmp_path, source), {}, Limits(cpu_ms=200), print)


async def test_request_fields_and_body_reach_js(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
        export default {
          async fetch(request) {
            const bytes = new Uint8Array(await request.arrayBuffer());
            return Response.json({
              method: request.method, url: request.url, ua: request.headers.get("User-Agent"),
              len: bytes.length, last: bytes[bytes.length - 1],
            }, { headers: [["set-cookie", "a=1"], ["set-cookie", "b=2"]] });
          },
        };
    """,
        )
    )
    try:
        body = bytes(range(256)) * 4
        resp = await h.request("/p?q=1", method="PUT", headers={"user-agent": "tester"}, body=body)
        assert await resp.json() == {
            "method": "PUT",
            "url": "http://localhost:8787/p?q=1",
            "ua": "tester",
            "len": 1024,
            "last": 255,
        }
        assert resp.headers.getSetCookie() == ["a=1", "b=2"]
    finally:
        await h.close()


@pytest.mark.skipif(not ESBUILD.exists(), reason="npm install has not provided esbuild")
async def test_stack_is_mapped_to_the_typescript_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "helper.ts").write_text(
        "export function explode(what: string): never {\n"
        "  // a comment so lines differ from the bundle\n"
        "  throw new Error(`exploded: ${what}`);\n"
        "}\n"
    )
    (src / "index.ts").write_text(
        'import { explode } from "./helper";\n'
        "interface Env { NAME: string }\n"
        "export default {\n"
        "  async fetch(request: Request, env: Env): Promise<Response> {\n"
        "    const n: number = 1;\n"
        "    if (n) explode(env.NAME);\n"
        '    return new Response("unreachable");\n'
        "  },\n"
        "};\n"
    )
    out = tmp_path / "dist" / "index.js"
    subprocess.run(
        [str(ESBUILD), str(src / "index.ts"), "--bundle", "--format=esm", "--platform=neutral", "--sourcemap", f"--outfile={out}"],
        check=True, capture_output=True,
    )  # fmt: skip
    worker = await JsWorker.load(out, {"NAME": "boom"}, Limits(), print)
    try:
        with pytest.raises(WorkerError, match="exploded: boom") as e:
            await worker.fetch(Request("http://localhost/"), "[t]")
        lines = e.value.stack.splitlines()
        assert lines[0] == "Error: exploded: boom"
        assert "helper.ts:3:" in lines[1], e.value.stack
        assert "index.ts:6:" in lines[2], e.value.stack
        assert "<input>" not in e.value.stack
    finally:
        await worker.close()


async def test_a_frame_inside_ploys_js_names_its_file_and_line(tmp_path: Path) -> None:
    h = await Harness.load(
        write_module(
            tmp_path,
            """
        export default {
          fetch() {
            return new Response("x", { headers: [["bad name", "v"]] });
          },
        };
    """,
        )
    )
    try:
        with pytest.raises(WorkerError, match="Invalid header name") as e:
            await h.request("/")
        lines = e.value.stack.splitlines()
        headers_js = (REPO / "runtime" / "js" / "70_headers.js").read_text().splitlines()
        throw_line = next(i for i, x in enumerate(headers_js, 1) if "Invalid header name" in x)
        assert lines[1] == f"    at headerName (ploy:js/70_headers.js:{throw_line})", e.value.stack
        assert "(ploy:js/75_response.js:" in lines[-2] and "worker.js:4:" in lines[-1], e.value.stack
    finally:
        await h.close()


async def test_outbound_fetch_streams_and_aborts(tmp_path: Path, unused_tcp_port: int) -> None:
    server = await _start_http_server(unused_tcp_port)
    base = f"http://127.0.0.1:{unused_tcp_port}"
    h = await Harness.load(
        write_module(
            tmp_path,
            f"""
        const BASE = "{base}";
        export default {{
          async fetch(request) {{
            const p = new URL(request.url).pathname;
            if (p === "/json") {{
              const r = await fetch(BASE + "/echo", {{ method: "POST", body: JSON.stringify({{ a: 1 }}), headers: {{ "x-test": "yes" }} }});
              return Response.json({{ status: r.status, ok: r.ok, ct: r.headers.get("content-type"), body: await r.json() }});
            }}
            if (p === "/redirects") {{
              const follow = await fetch(BASE + "/redirect");
              const manual = await fetch(BASE + "/redirect", {{ redirect: "manual" }});
              let error = null;
              try {{ await fetch(BASE + "/redirect", {{ redirect: "error" }}); }} catch (e) {{ error = e.constructor.name; }}
              return Response.json({{ follow: [follow.status, follow.redirected, follow.url, await follow.text()],
                                     manual: [manual.status, manual.headers.get("location")], error }});
            }}
            if (p === "/abort") {{
              const ac = new AbortController();
              setTimeout(() => ac.abort(), 20);
              try {{ await fetch(BASE + "/slow", {{ signal: ac.signal }}); return new Response("not aborted"); }}
              catch (e) {{ return new Response(e.name); }}
            }}
            if (p === "/refused") {{
              try {{ await fetch("http://127.0.0.1:9/"); }} catch (e) {{ return new Response(e.constructor.name); }}
            }}
            return fetch(BASE + "/stream");  // passed straight through
          }},
        }};
    """,
        )
    )
    try:
        assert await (await h.request("/json")).json() == {
            "status": 200, "ok": True, "ct": "application/json", "body": {"got": '{"a":1}', "x-test": "yes"},
        }  # fmt: skip
        out = await (await h.request("/redirects")).json()
        assert out["follow"] == [200, True, base + "/echo", '{"got":"","x-test":null}']
        assert out["manual"] == [302, "/echo"]
        assert out["error"] == "TypeError"
        assert await (await h.request("/abort")).text() == "AbortError"
        assert await (await h.request("/refused")).text() == "TypeError"
        resp = await h.request("/stream")
        chunks = [c async for c in resp._body]  # type: ignore[union-attr]
        assert b"".join(chunks) == b"part0\npart1\npart2\n"
    finally:
        await h.close()
        server.close()
        await server.wait_closed()


async def _start_http_server(port: int) -> asyncio.Server:
    """A tiny HTTP/1.1 server (no framework) for fetch() to talk to."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        import json

        def send(status: str, hdrs: dict[str, str], data: bytes) -> None:
            extra = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
            writer.write(
                f"HTTP/1.1 {status}\r\n{extra}content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode()
                + data
            )

        if path == "/echo":
            send("200 OK", {"content-type": "application/json"},
                 json.dumps({"got": body.decode(), "x-test": headers.get("x-test")}, separators=(",", ":")).encode())  # fmt: skip
        elif path == "/redirect":
            send("302 Found", {"location": "/echo"}, b"")
        elif path == "/slow":
            await asyncio.sleep(2)
            send("200 OK", {}, b"slow")
        elif path == "/stream":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
            for i in range(3):
                part = f"part{i}\n".encode()
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def test_unread_fetch_bodies_are_closed(tmp_path: Path, unused_tcp_port: int) -> None:
    server = await _start_http_server(unused_tcp_port)
    h = await Harness.load(
        write_module(
            tmp_path,
            f"""
        export default {{
          async fetch() {{
            for (let i = 0; i < 3; i++) await fetch("http://127.0.0.1:{unused_tcp_port}/stream");  // bodies ignored
            return new Response("done");
          }},
        }};
    """,
        )
    )
    try:
        assert await (await h.request("/")).text() == "done"
        ctx = h.worker._ctx
        assert ctx is not None and len(ctx.host_streams) == 3
        await asyncio.sleep(1.3)  # the periodic cycle collection finds the unreachable streams
        assert ctx is not None and ctx.host_streams == {}
    finally:
        await h.close()
        server.close()
        await server.wait_closed()


async def test_request_body_forwarded_and_echoed(tmp_path: Path, unused_tcp_port: int) -> None:
    server = await _start_http_server(unused_tcp_port)
    h = await Harness.load(
        write_module(
            tmp_path,
            f"""
        export default {{
          async fetch(request) {{
            const p = new URL(request.url).pathname;
            if (p === "/echo") return new Response(request.body);
            if (p === "/forward2") return fetch(new Request("http://127.0.0.1:{unused_tcp_port}/echo", request));
            if (p === "/clone") {{ const c = request.clone(); return Response.json([await request.text(), (await c.bytes()).length]); }}
            return fetch("http://127.0.0.1:{unused_tcp_port}/echo", {{ method: "POST", body: request.body ? await request.arrayBuffer() : null }});
          }},
        }};
    """,
        )
    )
    try:
        body = "héllo wörld".encode()
        assert await (await h.request("/echo", method="POST", body=body)).arrayBuffer() == body
        big = os.urandom(300_000)  # binary, every byte value, both conversion paths
        resp = await h.request("/echo", method="POST", body=big)
        assert b"".join([c async for c in resp._body]) == big  # type: ignore[union-attr]
        assert await (await h.request("/clone", method="POST", body=body)).json() == [
            "héllo wörld",
            len(body),
        ]
        for path in ("/forward", "/forward2"):
            out = await (await h.request(path, method="POST", body=body)).json()
            assert out["got"] == "héllo wörld"
    finally:
        await h.close()
        server.close()
        await server.wait_closed()
