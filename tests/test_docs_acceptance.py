"""The product docs, read as a user would: their ploy.yaml and snippets in a fresh project, `ploy dev`
serving it, requests over HTTP, and the `ploy` CLI beside it.

One `ploy dev` per worker (a TS worker and its Python twin), shared by the tests of this module; the
routes run the docs' snippets as written. Tests here were added for defects found this way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, DevServer, short_ploy_home

pytestmark = [pytest.mark.podman, pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman")]

PLOY_YAML = """kind: dynamic
build: pnpm build
out: dist
sandbox:
  SANDBOX: default
"""

WORKER_TS = r"""
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const q = url.searchParams;
		const sandbox = env.SANDBOX.get(q.get("id") ?? "docs");

		if (url.pathname === "/exec") {
			const result = await sandbox.exec(q.get("cmd") ?? "true", JSON.parse(q.get("opts") ?? "{}"));
			return Response.json(result);
		}
		if (url.pathname === "/stream") {
			const stream = await sandbox.execStream(q.get("cmd") ?? "true");
			return new Response(stream, {
				headers: { "Content-Type": "text/plain; charset=utf-8" },
			});
		}
		if (url.pathname === "/missing") {
			try {
				await sandbox.readFile("does-not-exist.txt");
				return Response.json({ thrown: false });
			} catch (e) {
				return Response.json({ thrown: e instanceof Error, code: e.code, message: e.message });
			}
		}
		if (url.pathname === "/session") {
			const session = await sandbox.createSession({
				cwd: "/tmp",
				env: { GREETING: "hello from a session" },
			});

			await session.exec("echo started > log.txt");
			const greeting = await session.exec("echo $GREETING");
			const log = await session.exec("cat /tmp/log.txt");
			await session.writeFile("rel.txt", "relative");
			const rel = await sandbox.readFile("/tmp/rel.txt");

			const proc = await session.startProcess("echo $GREETING");
			let info = await session.getProcess(proc.id);
			while (info?.status === "running") {
				await new Promise((r) => setTimeout(r, 20));
				info = await session.getProcess(proc.id);
			}
			const listed = (await sandbox.listProcesses()).find((p) => p.id === proc.id);
			const { logs } = await session.getProcessLogs(proc.id);
			return Response.json({
				sessionId: session.sessionId,
				greeting: greeting.stdout.trim(),
				log: log.stdout.trim(),
				rel: rel.content,
				started: proc.command,
				got: info?.command,
				listed: listed?.command,
				logs,
			});
		}
		if (url.pathname === "/start") {
			return Response.json(await sandbox.startProcess(q.get("cmd") ?? "true"));
		}
		if (url.pathname === "/process") {
			return Response.json(await sandbox.getProcess(q.get("pid")));
		}
		if (url.pathname === "/try-exec") {
			try {
				return Response.json(await sandbox.exec(q.get("cmd") ?? "true"));
			} catch (e) {
				return Response.json({ code: e.code, message: e.message });
			}
		}
		if (url.pathname === "/session-bg") {
			const session = await sandbox.createSession({ cwd: "/tmp" });
			await session.exec("(sleep 0.3; echo late; echo late >&2) &");
			await new Promise((r) => setTimeout(r, 800));
			const next = await session.exec("echo now");
			return Response.json({ stdout: next.stdout, stderr: next.stderr });
		}
		if (url.pathname === "/many-sessions") {
			// the docs' session example makes one session per request: many of them must not break the sandbox
			const first = await sandbox.createSession({ cwd: "/tmp" });
			await first.exec("cd /etc && export KEPT=yes");
			for (let i = 0; i < Number(q.get("n")); i++) {
				const session = await sandbox.createSession({ cwd: "/tmp", env: { GREETING: "hi" } });
				await session.exec("echo $GREETING");
			}
			const again = await first.exec("echo $PWD $KEPT");
			const plain = await sandbox.exec("echo still working");
			return Response.json({ again: again.stdout, plain: plain.stdout });
		}
		return new Response("Sandbox Worker");
	},
} satisfies Ploy;
"""

WORKER_PY = r"""
import asyncio
import json
from urllib.parse import parse_qs, urlparse

from bindings.errors import PloyError
from runtime.http import Response


async def fetch(request, env):
    url = urlparse(request.url)
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    sandbox = env.SANDBOX.get(q.get("id", "docs-py"))
    if url.path == "/exec":
        return Response.json(await sandbox.exec(q.get("cmd", "true"), json.loads(q.get("opts", "{}"))))
    if url.path == "/stream":
        stream = await sandbox.execStream(q.get("cmd", "true"))
        return Response(stream, headers={"Content-Type": "text/plain; charset=utf-8"})
    if url.path == "/missing":
        try:
            await sandbox.readFile("does-not-exist.txt")
            return Response.json({"thrown": False})
        except PloyError as e:
            return Response.json({"thrown": True, "code": e.code, "message": str(e)})
    if url.path == "/session":
        session = await sandbox.createSession({"cwd": "/tmp", "env": {"GREETING": "hello from a session"}})
        await session.exec("echo started > log.txt")
        greeting = await session.exec("echo $GREETING")
        log = await session.exec("cat /tmp/log.txt")
        await session.writeFile("rel.txt", "relative")
        rel = await sandbox.readFile("/tmp/rel.txt")
        proc = await session.startProcess("echo $GREETING")
        info = await session.getProcess(proc["id"])
        while info and info["status"] == "running":
            await asyncio.sleep(0.02)
            info = await session.getProcess(proc["id"])
        listed = [p for p in await sandbox.listProcesses() if p["id"] == proc["id"]]
        logs = (await session.getProcessLogs(proc["id"]))["logs"]
        return Response.json({
            "sessionId": session.sessionId, "greeting": greeting["stdout"].strip(), "log": log["stdout"].strip(),
            "rel": rel["content"], "started": proc["command"], "got": info and info["command"],
            "listed": listed[0]["command"] if listed else None, "logs": logs,
        })
    if url.path == "/start":
        return Response.json(await sandbox.startProcess(q.get("cmd", "true")))
    if url.path == "/process":
        return Response.json(await sandbox.getProcess(q.get("pid")))
    if url.path == "/try-exec":
        try:
            return Response.json(await sandbox.exec(q.get("cmd", "true")))
        except PloyError as e:
            return Response.json({"code": e.code, "message": str(e)})
    if url.path == "/session-bg":
        session = await sandbox.createSession({"cwd": "/tmp"})
        await session.exec("(sleep 0.3; echo late; echo late >&2) &")
        await asyncio.sleep(0.8)
        nxt = await session.exec("echo now")
        return Response.json({"stdout": nxt["stdout"], "stderr": nxt["stderr"]})
    if url.path == "/many-sessions":
        first = await sandbox.createSession({"cwd": "/tmp"})
        await first.exec("cd /etc && export KEPT=yes")
        for _ in range(int(q["n"])):
            session = await sandbox.createSession({"cwd": "/tmp", "env": {"GREETING": "hi"}})
            await session.exec("echo $GREETING")
        again = await first.exec("echo $PWD $KEPT")
        plain = await sandbox.exec("echo still working")
        return Response.json({"again": again["stdout"], "plain": plain["stdout"]})
    return Response("Sandbox Worker")
"""


@pytest.fixture(scope="module")
def docs_home() -> Iterator[Path]:
    with short_ploy_home("ploy-docs") as home:
        yield home


@contextlib.contextmanager
def _serve(
    root: Path, home: Path, entry: str, source: str, ploy_yaml: str = PLOY_YAML
) -> Iterator[DevServer]:
    (root / "src").mkdir(parents=True)
    (root / "ploy.yaml").write_text(ploy_yaml)
    (root / "src" / entry).write_text(source)
    server = DevServer(root, env={"PLOY_HOME": str(home)})
    try:
        yield server.start(timeout=300)
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["ts", "py"])
def docs_server(
    request: pytest.FixtureRequest, docs_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp(f"docs-{request.param}")
    entry, source = ("index.ts", WORKER_TS) if request.param == "ts" else ("index.py", WORKER_PY)
    with _serve(root, docs_home, entry, source) as server:
        yield server


def _exec(server: DevServer, cmd: str, id: str | None = None, **opts: Any) -> dict[str, Any]:  # noqa: A002
    params = {"cmd": cmd, "opts": json.dumps(opts), **({"id": id} if id else {})}
    r = server.get("/exec", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_docs_exec_snippet_shape(docs_server: DevServer) -> None:
    result = _exec(
        docs_server, "ls -la; pwd; echo $GREETING", cwd="/tmp", env={"GREETING": "hi"}, timeoutMs=5000
    )
    assert set(result) >= {"stdout", "stderr", "exitCode", "success"}
    assert result["exitCode"] == 0 and result["success"] is True
    assert result["stdout"].endswith("/tmp\nhi\n")


def test_missing_file_is_a_catchable_not_found(docs_server: DevServer) -> None:
    r = docs_server.get("/missing").json()
    assert r["thrown"] is True and r["code"] == "NOT_FOUND"


def test_exec_returns_when_the_command_leaves_a_background_child(docs_server: DevServer) -> None:
    """`server &` must not hold exec()/execStream() until that child ends (it held them 30 s here)."""
    t0 = time.monotonic()
    result = _exec(docs_server, "sleep 30 & echo started")
    assert result["stdout"] == "started\n" and result["exitCode"] == 0
    assert time.monotonic() - t0 < 5
    t0 = time.monotonic()
    body = docs_server.get("/stream", params={"cmd": "sleep 30 & echo streamed"}).text
    assert body == "streamed\n" and time.monotonic() - t0 < 5
    # the background child was left running, as in a shell
    assert "sleep 30" in _exec(docs_server, "ps -eo cmd")["stdout"]
    # a timeout still applies to the command itself, not to what it left behind
    t0 = time.monotonic()
    result = _exec(docs_server, "sleep 30 & echo ok", timeoutMs=3000)
    assert result["stdout"] == "ok\n" and time.monotonic() - t0 < 2.5


def test_a_background_child_of_a_process_outlives_it(docs_server: DevServer) -> None:
    """`startProcess("server &")`: once the process had ended, the child's next write killed it (SIGPIPE)."""
    from tests.bindings.sandbox.helpers import wait_until

    marker = f"/tmp/bg-alive-{time.monotonic_ns()}"
    proc = docs_server.get(
        "/start", params={"cmd": f"(sleep 1; echo late; touch {marker}) & echo started"}
    ).json()
    assert proc["status"] == "running"
    assert wait_until(
        lambda: docs_server.get("/process", params={"pid": proc["id"]}).json()["status"] == "completed"
    )
    assert wait_until(lambda: _exec(docs_server, f"test -e {marker}")["exitCode"] == 0, timeout=5)


def test_docs_session_snippet_and_process_command(docs_server: DevServer) -> None:
    r = docs_server.get("/session")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["sessionId"] and d["greeting"] == "hello from a session" and d["log"] == "started"
    assert d["rel"] == "relative"  # relative paths resolve against the session's cwd
    assert d["logs"] == "hello from a session\n"
    # SandboxProcessInfo.command is the command the worker gave, also when started from a session
    assert d["started"] == d["got"] == d["listed"] == "echo $GREETING"


def test_session_output_of_a_background_child_is_not_the_next_commands(docs_server: DevServer) -> None:
    r = docs_server.get("/session-bg")
    assert r.status_code == 200, r.text
    assert r.json() == {"stdout": "now\n", "stderr": ""}


def test_an_agent_that_dies_mid_call_is_a_typed_error_and_comes_back(docs_server: DevServer) -> None:
    """The command kills the in-sandbox agent; the call is not retried (it may have run), and the agent
    comes back for the next call."""
    r = docs_server.get("/try-exec", params={"id": "agent-dies", "cmd": "kill -9 $PPID"}).json()
    assert r["code"] == "SANDBOX_UNAVAILABLE", r
    assert _exec(docs_server, "echo back", id="agent-dies")["stdout"] == "back\n"


def test_many_sessions_do_not_exhaust_the_sandbox(docs_server: DevServer) -> None:
    """Each session kept a shell and four agent fds: the 200th session broke every call (EMFILE)."""
    r = docs_server.get("/many-sessions", params={"id": "sessions-many", "n": "260"})
    assert r.status_code == 200, r.text
    # the first session's shell was stopped meanwhile; it came back with its cwd and exported variables
    assert r.json() == {"again": "/etc yes\n", "plain": "still working\n"}


def _ploy(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLOY_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_cli_reaches_the_workers_sandbox_with_options_after_the_id(
    docs_server: DevServer, docs_home: Path
) -> None:
    sandbox_id = "docs" if (docs_server.project / "src" / "index.ts").exists() else "docs-py"
    _exec(docs_server, "echo from-worker > /workspace/mark.txt")
    listing = _ploy(docs_home, docs_server.project, "sandbox", "list")
    assert sandbox_id in listing.stdout, listing.stderr
    r = _ploy(docs_home, REPO, "sandbox", "exec", sandbox_id, "--project", str(docs_server.project),
              "--cwd", "/workspace", "--", "cat mark.txt; pwd")  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "from-worker\n/workspace\n"), r.stderr
    r = _ploy(docs_home, docs_server.project, "sandbox", "exec", sandbox_id, "--", "exit", "3")
    assert r.returncode == 3


def test_a_sandbox_identifier_that_is_no_image_runs_the_default_image(
    docs_home: Path, tmp_path: Path
) -> None:
    """The docs call the value in `sandbox: {SANDBOX: default}` "the sandbox identifier"."""
    with _serve(
        tmp_path / "named", docs_home, "index.ts", WORKER_TS, PLOY_YAML.replace("default", "my-app")
    ) as server:
        result = _exec(server, "echo hi")
        assert result["stdout"] == "hi\n", result
        assert "'my-app'" in server.output and "default image" in server.output


def test_stopping_ploy_dev_removes_its_warm_pool(docs_home: Path, tmp_path: Path) -> None:
    """SIGTERM (what `kill` and the tests send): uvicorn re-raised it and the process died before its
    cleanup, leaving pool containers running; a refill cut short left one that no pool file named."""
    from bindings.context import project_key
    from tests.bindings.sandbox.helpers import containers, wait_until

    for wait_for_pool in (True, False):
        root = tmp_path / f"pool-{wait_for_pool}"
        with _serve(root, docs_home, "index.ts", WORKER_TS) as server:
            key = project_key(root)
            assert _exec(server, "echo hi")["stdout"] == "hi\n"

            def pool(key: str = key) -> list[str]:
                # any home: this server's PLOY_HOME is not the sandbox tests' (its project key is its own)
                project = containers("ploy.project", key, any_home=True)
                return [c for c in project if c in containers("ploy.pool", "1", any_home=True)]

            if wait_for_pool:
                assert wait_until(lambda: any(c.endswith("running") for c in pool()), timeout=30)
            server.stop()
            assert server.proc is not None and server.proc.returncode == 0, server.output
            assert pool() == [], server.output


def test_server_keeps_serving_after_requests(docs_server: DevServer) -> None:
    assert httpx.get(docs_server.url + "/", timeout=30).text == "Sandbox Worker"
