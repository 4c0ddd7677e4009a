"""The docs' sandbox examples under a real `ploy dev`, in TypeScript and in Python, across a server restart."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from bindings.context import BindingContext, project_key
from bindings.sandbox import SandboxBinding
from bindings.sandbox.options import SandboxOptions
from tests.bindings.sandbox.helpers import in_sandbox

pytestmark = pytest.mark.podman


PACKAGE_JSON = json.dumps(
    {"name": "demo", "version": "1.0.0", "scripts": {"build": "echo building && sleep 1 && echo built"}}
)


def read_note(home: Path, project: Path, sandbox_id: str) -> str:
    return str(in_sandbox(home, project, sandbox_id, "readFile", "note.txt")["content"])


@pytest.mark.parametrize("name", ["basic", "basic-py"])
def test_basic_example_survives_a_killed_server(
    name: str, example: Any, dev_server: Any, ploy_home: Path
) -> None:
    project = example(name)
    server = dev_server(project).start(timeout=120)
    r = server.get("/exec")
    assert r.status_code == 200, server.output
    assert r.json() == {"stdout": "hello from ploy sandbox\n", "stderr": "", "exitCode": 0, "success": True}
    assert server.get("/file?id=notes").json() == {"content": "written by the worker\n"}
    assert server.get("/").text == "Sandbox Worker"
    server.stop(signal.SIGKILL)
    # nothing of the killed server is needed: a new one, and a bare binding, find the same sandbox
    assert read_note(ploy_home, project, "notes") == "written by the worker\n"
    server = dev_server(project, port=server.port).start(timeout=120)
    t = time.monotonic()
    assert server.get("/exec?id=notes").json()["stdout"] == "hello from ploy sandbox\n"
    assert time.monotonic() - t < 2


@pytest.mark.parametrize("name", ["exec-stream", "exec-stream-py"])
def test_exec_stream_example(name: str, example: Any, dev_server: Any, ploy_home: Path) -> None:
    project = example(name)
    in_sandbox(ploy_home, project, "default", "writeFile", "package.json", PACKAGE_JSON)
    server = dev_server(project).start(timeout=120)
    r = server.get("/")
    assert r.status_code == 200, server.output
    assert r.headers["content-type"].startswith("text/plain")
    assert "up to date" in r.text, r.text  # npm's own output, streamed from the sandbox


@pytest.mark.parametrize("name", ["builder", "builder-py"])
def test_builder_example(name: str, example: Any, dev_server: Any, ploy_home: Path) -> None:
    project = example(name)
    server = dev_server(project).start(timeout=120)
    failed = server.get("/build/start").json()  # no package.json yet: npm fails
    deadline = time.monotonic() + 30
    while (
        server.get(f"/build/status?id={failed['id']}").json()["status"] == "running"
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    in_sandbox(ploy_home, project, "builder", "writeFile", "package.json", PACKAGE_JSON)
    proc = server.get("/build/start").json()
    assert proc["status"] == "running" and proc["exitCode"] is None and proc["command"] == "npm run build"
    deadline = time.monotonic() + 30
    status = proc
    while status["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = server.get(f"/build/status?id={proc['id']}").json()
    assert status["status"] == "completed" and status["exitCode"] == 0
    assert "built" in in_sandbox(ploy_home, project, "builder", "getProcessLogs", proc["id"])["logs"]
    failed = server.get(f"/build/status?id={failed['id']}").json()
    assert failed["status"] == "failed" and failed["exitCode"] not in (None, 0)
    assert server.get("/build/status?id=proc_unknown").json() is None


@pytest.mark.parametrize("name", ["sessions", "sessions-py"])
def test_sessions_example(name: str, example: Any, dev_server: Any) -> None:
    server = dev_server(example(name)).start(timeout=120)
    r = server.get("/")
    assert r.status_code == 200, server.output
    data = json.loads(r.text)
    assert data["greeting"] == "hello from a session" and data["log"] == "started" and data["sessionId"]
    server.wait_output("hello from a session")


@pytest.mark.parametrize("name", ["builder", "builder-py"])
def test_build_keeps_running_through_a_killed_server(
    name: str, example: Any, dev_server: Any, ploy_home: Path
) -> None:
    project = example(name)
    slow = json.dumps(
        {"name": "demo", "version": "1.0.0", "scripts": {"build": "echo step1; sleep 2; echo step2"}}
    )
    in_sandbox(ploy_home, project, "builder", "writeFile", "package.json", slow)
    server = dev_server(project).start(timeout=120)
    proc = server.get("/build/start").json()
    server.stop(signal.SIGKILL)
    server = dev_server(project, port=server.port).start(timeout=120)
    assert server.get(f"/build/status?id={proc['id']}").json()["status"] == "running"
    # logs of a process started by the killed server still stream from the start, live, to the end
    logs = b"".join(asyncio.run(_collect(ploy_home, project, proc["id"])))
    assert b"step1" in logs and b"step2" in logs
    assert server.get(f"/build/status?id={proc['id']}").json()["status"] == "completed"


async def _collect(home: Path, project: Path, proc_id: str) -> list[bytes]:
    ctx = BindingContext(
        project_root=project.resolve(),
        project_name=project.name,
        project_key=project_key(project),
        state_dir=home,
    )
    b = SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", pool=0))
    try:
        return [chunk async for chunk in await b.get("builder").streamProcessLogs(proc_id)]
    finally:
        await b.close()


# ---- the examples of the APIs beyond the docs (issue 13) -----------------------------------------


@pytest.mark.parametrize(("name", "mib"), [("files", 1024), ("files-py", 64)])
def test_files_example(name: str, mib: int, example: Any, dev_server: Any, ploy_home: Path) -> None:
    """Streams both ways; the TS twin writes 1 GiB from JS, where the default memory limit is 256 MB."""
    server = dev_server(example(name)).start(timeout=120)
    data = os.urandom(3 * 1024 * 1024)
    up = server.request("PUT", "/?path=in/upload.bin", content=data)
    assert up.status_code == 200, server.output
    assert up.json()["size"] == len(data)
    down = server.get("/download?path=in/upload.bin")
    assert down.content == data and down.headers["content-type"] == "application/octet-stream"
    t = time.monotonic()
    generated = server.get(f"/generate?path=big.bin&mib={mib}")
    assert generated.status_code == 200, server.output
    assert generated.json()["size"] == mib * 1024 * 1024, generated.text
    elapsed = time.monotonic() - t
    assert elapsed < 120
    in_box = in_sandbox(ploy_home, server.project, "files", "exec", "tr -d x < big.bin | wc -c")
    assert in_box["stdout"].strip() == "0"  # every byte the worker made, nothing else
    read = server.get("/read?path=in/upload.bin").json()
    assert (
        read["encoding"] == "base64"
        and read["isBinary"] is True
        and base64.b64decode(read["content"]) == data
    )
    server.request("PUT", "/?path=in/.hidden/notes.md", content="# notes\n")
    listing = server.get("/ls?dir=in&recursive").json()
    assert [e["path"] for e in listing] == ["upload.bin"]
    listing = server.get("/ls?dir=in&recursive&hidden").json()
    assert [e["path"] for e in listing] == [".hidden", ".hidden/notes.md", "upload.bin"]
    assert server.get("/exists?path=in/upload.bin").json()["exists"] is True
    assert (
        server.get("/rename?path=in/upload.bin&to=in/renamed.bin").json()["newPath"]
        == "/workspace/in/renamed.bin"
    )
    assert server.get("/move?path=in/renamed.bin&to=/tmp").json()["newPath"] == "/tmp/renamed.bin"
    assert server.get("/exists?path=in/renamed.bin").json()["exists"] is False
    assert "exceeded" not in server.output, server.output


@pytest.mark.parametrize("name", ["processes", "processes-py"])
def test_processes_example(name: str, example: Any, dev_server: Any) -> None:
    server = dev_server(example(name)).start(timeout=120)
    started = server.get("/start").json()
    assert started["id"] == "calc" and started["status"] == "running", server.output
    server.get("/send?line=6*7")
    server.get("/send?line=1/0")
    deadline = time.monotonic() + 20
    logs: dict[str, str] = {}
    while time.monotonic() < deadline:
        logs = server.get("/logs").json()
        if "6*7 = 42" in logs["stdout"] and "division by zero" in logs["stderr"]:
            break
        time.sleep(0.1)
    assert logs["stdout"] == "6*7 = 42\n" and "division by zero" in logs["stderr"], logs
    server.get("/close")
    deadline = time.monotonic() + 20
    while "bye" not in server.get("/logs").json()["stdout"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.get("/logs").json()["stdout"] == "6*7 = 42\nbye\n"
    server.get("/start?id=calc2")
    killed = server.get("/signal?id=calc2&signal=SIGKILL").json()
    assert killed["exitCode"] == 137 and killed["killed"] is True
    server.get("/start?id=calc3")
    assert server.get("/stop-all").json() == {"stopped": 1}
    assert server.get("/cleanup").json() == {"removed": 3}
    assert server.get("/").json() == []


@pytest.mark.parametrize("name", ["exec-events", "exec-events-py"])
def test_exec_events_example(name: str, example: Any, dev_server: Any) -> None:
    """The docs' agent without AI credentials fails: the events say so, to the worker and the client."""
    server = dev_server(example(name)).start(timeout=120)
    r = server.get("/run")
    assert r.status_code == 502, server.output
    body = r.json()
    assert body["ok"] is False and body["exitCode"] == 1 and "OPENAI_API_KEY is not set" in body["output"]
    assert server.get("/run", params={"cmd": "echo fine"}).json() == {
        "ok": True, "exitCode": 0, "error": None, "output": "fine\n",
    }  # fmt: skip
    events = server.get("/events", params={"cmd": "echo out; exit 5"})
    assert events.headers["content-type"] == "text/event-stream"
    parsed = [json.loads(line[6:]) for line in events.text.split("\n\n") if line.startswith("data: ")]
    assert [e["type"] for e in parsed] == ["start", "stdout", "complete"] and parsed[-1]["exitCode"] == 5


@pytest.mark.parametrize("name", ["lifecycle", "lifecycle-py"])
def test_lifecycle_example(name: str, example: Any, dev_server: Any) -> None:
    server = dev_server(example(name)).start(timeout=120)
    odd = {"id": "ana@example.com/tenant 42"}
    assert server.get("/state", params=odd).json() == {"id": odd["id"], "status": "stopped", "since": None}
    assert server.get("/", params=odd).json()["stdout"] == "ana-example-com-tenant-42\n", server.output
    assert server.get("/state", params=odd).json()["status"] == "running"
    metrics = server.get("/metrics", params=odd).json()
    assert metrics["memory"]["used"] > 0 and metrics["pids"]["current"] >= 2
    assert server.get("/keep-alive", params={**odd, "on": "1"}).json()["keepAlive"] is True
    assert server.get("/sleep-after", params={**odd, "after": "30s"}).json() == {
        "sleepAfter": 30.0,
        "keepAlive": True,
    }
    assert server.get("/session/create", params=odd).json() == {"sessionId": "work"}
    server.get("/session/exec", params={**odd, "cmd": "cd /var && export SEEN=yes"})
    assert (
        server.get("/session/exec", params={**odd, "cmd": "pwd; echo $SEEN"}).json()["stdout"]
        == "/var\nyes\n"
    )
    assert server.get("/session/delete", params=odd).json()["deleted"] is True
    assert server.get("/destroy", params=odd).json() == {"destroyed": True, "markAfter": False}
    # another id that differs only in case is another sandbox
    assert server.get("/state", params={"id": odd["id"].upper()}).json()["status"] == "stopped"
