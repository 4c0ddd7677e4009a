"""The state examples (issue 14, item 5) under a real `ploy dev`, TypeScript and Python twins: snapshot
and fork ten sandboxes, file changes streamed to a real browser as server-sent events, a code interpreter."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bindings.sandbox.helpers import in_sandbox
from tests.browser import Chromium

pytestmark = pytest.mark.podman


@pytest.mark.parametrize("name", ["snapshot-fork", "snapshot-fork-py"])
def test_snapshot_after_npm_install_then_ten_forks(name: str, example: Any, dev_server: Any) -> None:
    server = dev_server(example(name)).start(timeout=120)
    r = httpx.get(server.url + "/snapshot", timeout=240)
    if r.status_code == 500 and "ms" not in r.text:
        pytest.skip(f"npm install failed inside the sandbox (no registry?): {r.text[-300:]}")
    assert r.status_code == 200, r.text + server.output
    snapshot = r.json()
    assert snapshot["id"].startswith("snap-") and snapshot["name"] == "after npm install"
    forked = httpx.get(f"{server.url}/fork?snapshot={snapshot['id']}", timeout=240).json()
    assert [f["id"] for f in forked["forks"]] == [f"fork-{i}" for i in range(10)]
    # the package installed before the snapshot runs in every fork: `ms` formats 1..10 minutes
    assert [f["stdout"] for f in forked["forks"]] == [f"{i}m" for i in range(1, 11)]
    assert httpx.get(server.url + "/cleanup", timeout=120).json() == {"deleted": 1}


@pytest.mark.parametrize("name", ["watch-sse", "watch-sse-py"])
def test_watch_streams_changes_to_a_browser(
    name: str, example: Any, dev_server: Any, ploy_home: Path, tmp_path: Path
) -> None:
    project = example(name)
    server = dev_server(project).start(timeout=120)
    with Chromium(tmp_path / "chromium") as browser:
        browser.open(server.url + "/")
        assert browser.wait_for("document.getElementById('status').textContent === 'watching'", 60), (
            server.output
        )
        assert server.get("/write?name=hello.txt").json() == {"written": "hello.txt"}
        server.get("/write?name=skipped.tmp")  # excluded by the example's watch options
        server.get("/write?name=hello.txt")
        items = browser.wait_for(
            "(() => { const t = [...document.querySelectorAll('#events li')].map(li => li.textContent);"
            " return t.length >= 2 ? t : null })()"
        )
        assert items[:2] == ["create /workspace/site/hello.txt", "modify /workspace/site/hello.txt"], items
        assert not any("skipped.tmp" in i for i in items)
    # the browser went away: the worker's stream was cancelled and the watch in the sandbox let go
    deadline = time.monotonic() + 15
    fds = ""
    while time.monotonic() < deadline:
        fds = in_sandbox(
            ploy_home, project, "watched", "exec", "ls -l /proc/$PPID/fd | grep -c inotify || true"
        )["stdout"].strip()
        if fds == "0":
            break
        time.sleep(0.3)
    assert fds == "0"


@pytest.mark.parametrize("name", ["code-interpreter", "code-interpreter-py"])
def test_code_interpreter_example(name: str, example: Any, dev_server: Any) -> None:
    server = dev_server(example(name)).start(timeout=120)

    def post(path: str, code: str) -> httpx.Response:
        return httpx.post(server.url + path, content=code, timeout=60)

    first = post("/run", "import math\nradius = 2\nprint('computing')\nmath.pi * radius ** 2").json()
    assert first["logs"]["stdout"] == ["computing\n"] and first["results"][0]["text"].startswith("12.566")
    # the default context keeps its variables from one request to the next
    assert post("/run", "radius * 10").json()["results"] == [{"text": "20"}]
    failed = post("/run", "1 / 0").json()
    assert failed["error"]["name"] == "ZeroDivisionError" and failed["results"] == []
    assert post("/run?language=javascript", "const xs = [1, 2, 3]; xs.map((x) => x * 2)").json()["results"][
        0
    ]["json"] == [2, 4, 6]
    ctx = post("/context", "").json()
    assert (
        post(f"/run?context={ctx['id']}", "radius").json()["error"]["name"] == "NameError"
    )  # its own variables
    streamed = post("/stream", "for i in range(3): print(i)").text
    events = [json.loads(line[6:]) for line in streamed.split("\n") if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["stdout", "stdout", "stdout", "execution_complete"]
    ids = {c["id"] for c in server.get("/contexts").json()}
    assert {"default-python", "default-javascript", ctx["id"]} <= ids
