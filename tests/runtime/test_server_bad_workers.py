"""`ploy dev` under bad workers (issue 11, items 4 and 13): whatever a Python module does at import
(sys.exit, KeyboardInterrupt, os._exit, a loop that never ends), the previous version keeps serving; a
request that blocks the event loop is logged after 1 s with where it is, and stopped at the CPU limit;
a request that can never settle is answered 500 "the worker will never respond"."""

from __future__ import annotations

import signal
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import DevServer

GOOD = """
from runtime.http import Response

async def fetch(request, env):
    return Response("v1")
"""

PY_WORKER = """
import asyncio, sys, time
from runtime.http import Response

async def fetch(request, env):
    path = request.path
    if path == "/spin":
        while True:
            pass
    if path == "/sleep":
        time.sleep(1.6)
        return Response("slept")
    if path == "/exit":
        sys.exit(3)
    if path == "/interrupt":
        raise KeyboardInterrupt
    if path == "/never":
        await asyncio.Future()
    if path == "/never-event":
        await asyncio.Event().wait()
    if path == "/slow":
        await asyncio.sleep(4)
        return Response("slow but fine")
    return Response("ok")
"""


def write(project: Path, code: str, yaml: str = "kind: dynamic\nlimits:\n  cpu_ms: 2000\n") -> None:
    (project / "ploy.yaml").write_text(yaml)
    (project / "src" / "index.py").write_text(textwrap.dedent(code))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("import sys\nsys.exit(5)\n", "SystemExit"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
        ("import os\nos._exit(7)\n", "os._exit(7)"),
        ("while True:\n    pass\n", "did not finish importing"),
        ("import time\ntime.sleep(3600)\n", "did not finish importing"),
    ],
    ids=["sys.exit", "KeyboardInterrupt", "os._exit", "endless loop", "endless sleep"],
)
def test_a_bad_module_keeps_the_previous_version_serving(
    dev_server: type[DevServer], project: Path, body: str, words: str
) -> None:
    write(project, GOOD)
    server = dev_server(project).start()
    assert server.get("/").text == "v1"
    (project / "src" / "index.py").write_text(body)
    server.wait_output("reload failed", timeout=40)
    assert words in server.output, server.output
    assert server.proc is not None and server.proc.poll() is None, server.output
    assert server.get("/").text == "v1"
    started = time.monotonic()
    server.stop()  # SIGTERM works: nothing holds the loop any more
    assert server.proc.returncode is not None and time.monotonic() - started < 8


def test_a_request_that_spins_is_logged_stopped_and_the_server_goes_on(
    dev_server: type[DevServer], project: Path
) -> None:
    write(project, PY_WORKER)
    server = dev_server(project).start()
    started = time.monotonic()
    r = server.get("/spin")
    assert r.status_code == 500 and "CPU time limit" in r.text, r.text
    assert time.monotonic() - started < 10
    out = server.output
    assert "[GET /spin] the worker has blocked the event loop for 1.0 s" in out, out
    assert "index.py" in out.split("blocked the event loop", 1)[1]  # where it was
    assert server.get("/").text == "ok"


def test_a_request_that_blocks_for_a_while_is_logged_with_where(
    dev_server: type[DevServer], project: Path
) -> None:
    write(project, PY_WORKER)
    server = dev_server(project).start()
    assert server.get("/sleep").text == "slept"
    out = server.output
    assert "[GET /sleep] the worker has blocked the event loop for 1.0 s" in out, out
    assert "time.sleep(1.6)" in out


@pytest.mark.parametrize("path", ["/exit", "/interrupt"])
def test_what_a_request_raises_is_a_500(dev_server: type[DevServer], project: Path, path: str) -> None:
    write(project, PY_WORKER)
    server = dev_server(project).start()
    r = server.get(path)
    assert r.status_code == 500
    assert server.proc is not None and server.proc.poll() is None
    assert server.get("/").text == "ok"


@pytest.mark.parametrize("path", ["/never", "/never-event"])
def test_a_request_that_can_never_settle_is_answered(
    dev_server: type[DevServer], project: Path, path: str
) -> None:
    write(project, PY_WORKER)
    server = dev_server(project).start()
    slow: list[httpx.Response] = []
    t = threading.Thread(target=lambda: slow.append(server.get("/slow")))
    t.start()  # awaiting a timer is not "never": it must not be cut short
    r = server.get(path)
    assert r.status_code == 500 and "the worker will never respond" in r.text, r.text
    server.wait_output(f"[GET {path}] the worker will never respond")
    t.join()
    assert slow[0].text == "slow but fine"


ONE_TASK_WORKER = """
import asyncio
import anyio
from runtime.http import Response

async def fetch(request, env):
    before = asyncio.current_task()
    # httpx (env.AI, any HTTP client on anyio) enters a cancel scope in one step and leaves it in a
    # later one: both must be in the same task
    with anyio.CancelScope():
        await asyncio.sleep(0.01)
    return Response("same task" if asyncio.current_task() is before else "moved to another task")
"""


def test_a_request_runs_in_one_task_from_start_to_end(dev_server: type[DevServer], project: Path) -> None:
    """Looking for requests that can never settle must not move a request's code between tasks (the
    first step ran in the server's task, the rest in another: anyio and httpx failed with 'Attempted to
    exit cancel scope in a different task')."""
    write(project, ONE_TASK_WORKER)
    server = dev_server(project).start()
    r = server.get("/")
    assert (r.status_code, r.text) == (200, "same task"), r.text


def test_sigterm_ends_a_server_whose_worker_spins(dev_server: type[DevServer], project: Path) -> None:
    write(project, PY_WORKER, "kind: dynamic\nlimits:\n  cpu_ms: 60000\n")
    server = dev_server(project).start()
    threading.Thread(target=lambda: httpx.get(server.url + "/spin", timeout=90), daemon=True).start()
    server.wait_output("blocked the event loop")
    started = time.monotonic()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(30)
    assert time.monotonic() - started < 8


JS_WORKER = """
export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/spin") { const end = Date.now() + 1500; while (Date.now() < end) {} return new Response("spun"); }
    if (path === "/never") { await new Promise(() => {}); }
    if (path === "/later") { await new Promise((r) => setTimeout(r, 1500)); return new Response("later"); }
    return new Response("ok");
  },
};
"""


def test_js_blocking_and_never_settling(dev_server: type[DevServer], project: Path) -> None:
    (project / "ploy.yaml").write_text("kind: dynamic\n")
    (project / "src" / "index.js").write_text(JS_WORKER)
    server = dev_server(project).start()
    assert server.get("/spin").text == "spun"
    server.wait_output("[GET /spin] the worker has blocked the event loop for 1.0 s")
    r = server.get("/never")
    assert r.status_code == 500 and "the worker will never respond" in r.text, r.text
    server.wait_output("[GET /never] the worker will never respond")
    assert server.get("/later").text == "later"  # a timer pending is not "never"
