"""The docs' sandbox examples under a real `ploy dev`, in TypeScript and in Python, across a server restart."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.context import BindingContext, project_key
from bindings.sandbox import SandboxBinding
from bindings.sandbox.containers import home_label
from bindings.sandbox.options import SandboxOptions
from tests.conftest import REPO, remove_podman_leftovers

pytestmark = pytest.mark.podman
EXAMPLES = REPO / "examples"


@pytest.fixture
def example(tmp_path: Path, ploy_home: Path, sandbox_image: str) -> Iterator[Any]:
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("node_modules", "dist"))
        return target

    yield copy
    remove_podman_leftovers(home_label(ploy_home))


def in_sandbox(home: Path, project: Path, sandbox_id: str, method: str, *args: Any) -> Any:
    """Call one method on the project's sandbox from outside the server (as a restarted process would)."""

    async def go() -> Any:
        ctx = BindingContext(
            project_root=project.resolve(),
            project_name=project.name,
            project_key=project_key(project),
            state_dir=home,
        )
        b = SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", pool=0))
        try:
            return await getattr(b.get(sandbox_id), method)(*args)
        finally:
            await b.close()

    return asyncio.run(go())


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
