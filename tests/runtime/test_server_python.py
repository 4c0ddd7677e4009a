"""`ploy dev` serving Python workers: the HTTP contract, errors, streaming, reload, vars."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from tests.conftest import EXAMPLES, DevServer, free_port

WORKER = """
import asyncio, os
from runtime.http import Response

async def fetch(request, env):
    path = request.path
    if path == "/echo":
        body = await request.json() if request.method == "POST" else None
        return Response.json({"method": request.method, "url": request.url, "body": body,
                              "ua": request.headers.get("user-agent"), "x": request.headers.get("X-Multi")})
    if path == "/cookies":
        r = Response("ok", status=201, headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2"), ("X-Y", "z")])
        return r
    if path == "/redirect":
        return Response.redirect("https://example.com/next", 307)
    if path == "/stream":
        async def gen():
            for i in range(3):
                yield f"chunk{i}\\n".encode()
                await asyncio.sleep(0.3)
        return Response(gen(), headers={"content-type": "text/plain"})
    if path == "/late":
        async def late():
            await asyncio.sleep(1.0)
            yield b"finally"
        return Response(late(), headers={"x-early": "yes"})
    if path == "/forever":
        async def forever():
            try:
                while True:
                    yield b"x" * 1024
                    await asyncio.sleep(0.01)
            finally:
                open(env.MARKER, "w").write("closed")
        return Response(forever())
    if path == "/vars":
        return Response.json({"secret": env.SECRET, "inherited": os.environ.get("SECRET"), "from_yaml": env.FROM_YAML})
    if path == "/boom":
        return helper()
    return Response("v1")

def helper():
    raise ValueError("kaboom")
"""


def write(project: Path, code: str = WORKER, yaml: str = "kind: dynamic\n") -> None:
    (project / "ploy.yaml").write_text(yaml)
    (project / "src" / "index.py").write_text(textwrap.dedent(code))


def test_hello_example(dev_server: type[DevServer]) -> None:
    server = dev_server(EXAMPLES / "hello-py").start()
    r = server.get("/abc")
    assert r.status_code == 200
    assert r.text == "Hello from ploy! You asked for /abc\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "entry: src/index.py (Python worker)" in server.output
    server.wait_output("GET /abc 200 ")
    assert re.search(r"^GET /abc 200 \d+\.\dms$", server.output, re.M)


def test_request_and_response_shapes(dev_server: type[DevServer], project: Path) -> None:
    write(project)
    server = dev_server(project).start()
    r = server.request("POST", "/echo?q=1", json={"a": [1, 2]}, headers={"user-agent": "t", "X-Multi": "1"})
    assert r.json() == {
        "method": "POST",
        "url": f"{server.url}/echo?q=1",
        "body": {"a": [1, 2]},
        "ua": "t",
        "x": "1",
    }
    assert r.headers["content-type"] == "application/json"

    r = server.get("/cookies")
    assert r.status_code == 201 and r.text == "ok"
    assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]
    assert r.headers["x-y"] == "z"

    r = server.get("/redirect", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "https://example.com/next"


def test_streaming_body_arrives_as_produced(dev_server: type[DevServer], project: Path) -> None:
    write(project)
    server = dev_server(project).start()
    started = time.monotonic()
    arrivals = []
    with httpx.stream("GET", server.url + "/stream", timeout=30) as r:
        for chunk in r.iter_raw():
            arrivals.append((time.monotonic() - started, chunk))
    assert b"".join(c for _, c in arrivals) == b"chunk0\nchunk1\nchunk2\n"
    assert arrivals[0][0] < 0.5 < arrivals[-1][0], arrivals  # the first chunk did not wait for the last


def test_streamed_response_headers_do_not_wait_for_the_first_chunk(
    dev_server: type[DevServer], project: Path
) -> None:
    """The server holds a response's head to send it with the body in one write; a stream's head must
    still leave at once (an SSE client learns the connection is open from it)."""
    write(project)
    server = dev_server(project).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        head = s.recv(4096)
        took = time.monotonic() - started
        assert head.startswith(b"HTTP/1.1 200") and b"x-early: yes" in head, head
        assert b"finally" not in head and took < 0.7, (took, head)
        rest = b""
        while b"0\r\n\r\n" not in rest:
            rest += s.recv(4096)
        assert b"finally" in rest


def test_client_disconnect_stops_the_stream(
    dev_server: type[DevServer], project: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "closed.txt"
    write(project)
    (project / ".dev.vars").write_text(f"MARKER={marker}\n")
    server = dev_server(project).start()
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200" in s.recv(4096)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "closed"
    assert server.get("/").text == "v1"


def test_uncaught_error_gives_500_with_stack_and_server_lives(
    dev_server: type[DevServer], project: Path
) -> None:
    write(project)
    server = dev_server(project).start()
    r = server.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/plain")
    assert "ValueError: kaboom" in r.text
    assert re.search(r'src/index\.py", line \d+, in helper', r.text)
    html = server.get("/boom", headers={"accept": "text/html,application/xhtml+xml"})
    assert html.status_code == 500 and html.headers["content-type"].startswith("text/html")
    assert "kaboom" in html.text and "<pre>" in html.text
    assert server.get("/").text == "v1"


def test_hot_reload_and_broken_edit_keeps_serving(dev_server: type[DevServer], project: Path) -> None:
    write(project)
    server = dev_server(project).start()
    assert server.get("/").text == "v1"
    src = project / "src" / "index.py"
    src.write_text(src.read_text().replace('Response("v1")', 'Response("v2")'))
    server.wait_output("reloaded")
    assert server.get("/").text == "v2"
    good = src.read_text()
    src.write_text(good + "\ndef broken(:\n")
    server.wait_output("reload failed")
    assert "SyntaxError" in server.output
    assert server.get("/").text == "v2"
    src.write_text(good.replace('Response("v2")', 'Response("v3")'))
    deadline = time.monotonic() + 10
    while server.get("/").text != "v3" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.get("/").text == "v3"


def test_vars_from_dev_vars_and_yaml_not_in_child_env(dev_server: type[DevServer], project: Path) -> None:
    write(project, yaml="kind: dynamic\nvars:\n  FROM_YAML: yes-yaml\n")
    (project / ".env").write_text("SECRET=from-env\n")
    (project / ".dev.vars").write_text("SECRET=from-dev-vars\n")
    server = dev_server(project).start()
    assert server.get("/vars").json() == {
        "secret": "from-dev-vars",
        "inherited": None,
        "from_yaml": "yes-yaml",
    }
    (project / ".dev.vars").write_text("SECRET=changed\n")
    server.wait_output("reloaded")
    assert server.get("/vars").json()["secret"] == "changed"


def test_port_in_use_is_a_clear_error(project: Path) -> None:
    write(project)
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        proc = subprocess.run(
            [sys.executable, "-m", "runtime.cli", "dev", str(project), "--port", str(port)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr


def test_missing_entry_is_a_clear_error(project: Path) -> None:
    (project / "ploy.yaml").write_text("kind: dynamic\n")
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "dev", str(project), "--port", "0"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 1 and "no worker entry" in proc.stderr


def test_error_page_renders_in_a_browser(dev_server: type[DevServer], project: Path, tmp_path: Path) -> None:
    """The 500 page is a real page: Debian's chromium renders the message and the stack."""
    write(project)
    server = dev_server(project).start()
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", server.url + "/boom"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Worker threw an exception" in proc.stdout
    assert "ValueError: kaboom" in proc.stdout and "index.py" in proc.stdout
    server.wait_output("GET /boom 500")


def test_turning_ai_on_and_off_in_ploy_yaml_reloads_the_gateway(
    dev_server: type[DevServer], project: Path
) -> None:
    write(project, code="from runtime.http import Response\n\nasync def fetch(request, env):\n"
          "    return Response(env.AI.baseUrl if 'AI' in env else 'no ai')\n")  # fmt: skip
    server = dev_server(project).start()
    assert server.get("/").text == "no ai"
    (project / "ploy.yaml").write_text("kind: dynamic\nai: true\n")
    server.wait_output("reloaded")
    base = server.get("/").text
    assert base.startswith("http://127.0.0.1:"), base
    assert (
        httpx.get(base.rstrip("/") + "/v1/models", timeout=10).status_code == 401
    )  # a live gateway: no token
    (project / "ploy.yaml").write_text("kind: dynamic\n")
    server.wait_output("ai: gateway stopped")
    deadline = time.monotonic() + 10
    while server.get("/").text != "no ai" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.get("/").text == "no ai"


def test_a_body_stream_failing_midway_is_reported_and_cuts_the_connection(
    dev_server: type[DevServer], project: Path
) -> None:
    write(
        project,
        code="""
from runtime.http import Response

async def fetch(request, env):
    if request.path == "/":
        return Response("fine")
    async def gen():
        yield b"first part\\n"
        raise RuntimeError("disk on fire")
    return Response(gen())
""",
    )
    server = dev_server(project).start()
    received = b""
    try:
        with httpx.stream("GET", server.url + "/broken", timeout=10) as r:
            for chunk in r.iter_raw():
                received += chunk
        failed = False
    except httpx.HTTPError:
        failed = True
    assert failed, f"a truncated body was passed off as complete: {received!r}"
    server.wait_output("the response body stream failed")
    assert "RuntimeError: disk on fire" in server.output
    assert "Exception in ASGI application" not in server.output
    assert server.get("/").text == "fine"
