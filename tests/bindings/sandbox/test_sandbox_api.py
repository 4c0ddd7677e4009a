"""Every SandboxClient method against a real container, including its errors (issue 3)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


def error_code(run: Run, coro: Coroutine[Any, Any, Any]) -> str:
    with pytest.raises(PloyError) as info:
        run(coro)
    return info.value.code


@pytest.fixture
def wd(run: Run, shared: SandboxClient) -> str:
    """A fresh folder of the shared sandbox for one test."""
    path = f"/workspace/t-{uuid.uuid4().hex[:8]}"
    run(shared.mkdir(path))
    return path


def test_exec_result_shape_and_options(run: Run, shared: SandboxClient, wd: str) -> None:
    r = run(shared.exec("echo out; echo err >&2; exit 3"))
    assert r == {"stdout": "out\n", "stderr": "err\n", "exitCode": 3, "success": False}
    r = run(shared.exec("pwd; echo $GREETING", {"cwd": wd, "env": {"GREETING": "hi"}}))
    assert r["stdout"] == f"{wd}\nhi\n" and r["success"] is True
    assert run(shared.exec("pwd"))["stdout"] == "/workspace\n"
    # keyword arguments are the same options
    assert run(shared.exec("echo $A", env={"A": "kw"}, timeout_ms=5000))["stdout"] == "kw\n"


def test_exec_errors(run: Run, shared: SandboxClient) -> None:
    assert error_code(run, shared.exec("true", {"cwd": "/no/such/dir"})) == "NOT_FOUND"
    assert error_code(run, shared.exec("")) == "INVALID_ARGUMENT"
    assert error_code(run, shared.exec("true", {"timeoutMs": -1})) == "INVALID_ARGUMENT"


def test_exec_timeout_kills_grandchildren(run: Run, shared: SandboxClient, wd: str) -> None:
    # a grandchild in its own session, so only the tree walk (not the process group) can reach it
    cmd = f"bash -c 'setsid sleep 300 & echo $! > {wd}/gc.pid; sleep 300' & wait"
    t = time.monotonic()
    with pytest.raises(PloyError) as info:
        run(shared.exec(cmd, {"timeoutMs": 700}))
    assert info.value.code == "TIMEOUT"
    assert time.monotonic() - t < 5
    pid = run(shared.exec(f"cat {wd}/gc.pid"))["stdout"].strip()
    assert pid.isdigit()
    time.sleep(0.2)
    assert run(shared.exec(f"kill -0 {pid}"))["exitCode"] != 0
    assert "sleep 300" not in run(shared.exec("ps -eo args"))["stdout"]


def test_exec_output_cap(run: Run, bindings: Any) -> None:
    sb = bindings.make("capped", output_limit=1000).get("cap")
    r = run(sb.exec("head -c 5000 /dev/zero | tr '\\0' x; echo done >&2"))
    assert len(r["stdout"]) == 1000 and r["truncated"] is True and r["stderr"] == "done\n"
    r = run(sb.exec("echo small"))
    assert "truncated" not in r


def test_exec_stream_yields_as_produced(run: Run, shared: SandboxClient) -> None:
    async def go() -> list[tuple[float, bytes]]:
        stream = await shared.execStream("for i in 1 2 3; do echo line $i; echo err $i >&2; sleep 0.3; done")
        t0 = time.monotonic()
        return [(time.monotonic() - t0, chunk) async for chunk in stream]

    chunks = run(go())
    text = b"".join(c for _, c in chunks).decode()
    assert text == "line 1\nerr 1\nline 2\nerr 2\nline 3\nerr 3\n"
    # the first line arrived long before the command finished
    first = next(t for t, c in chunks if b"line 1" in c)
    assert first < 0.25 and chunks[-1][0] > 0.5


def test_exec_stream_close_stops_command(run: Run, shared: SandboxClient, wd: str) -> None:
    async def go() -> None:
        stream = await shared.execStream(f"echo $$ > {wd}/pid; while true; do echo tick; sleep 0.05; done")
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]

    run(go())
    pid = run(shared.exec(f"cat {wd}/pid"))["stdout"].strip()
    time.sleep(0.3)
    assert run(shared.exec(f"kill -0 {pid}"))["exitCode"] != 0


def test_a_finished_stream_leaves_its_connection_usable(run: Run, shared: SandboxClient) -> None:
    """The agent dropped the connection after a stream now and then (its watch for the host closing still
    held the reader when the next request was read); the host hid that by sending the next call again,
    which it no longer does once a request was written."""
    from bindings.sandbox.agent_client import _peer_alive

    async def go() -> list[bool]:
        proc = await shared.startProcess("echo logged")
        alive = []
        for i in range(6):
            stream = await (shared.streamProcessLogs(proc["id"]) if i == 0 else shared.execStream("echo hi"))
            async for _ in stream:
                pass
            await asyncio.sleep(0.1)
            alive += [_peer_alive(c) for c in shared._mgr.entries[shared.id].agent._idle]
        return alive

    alive = run(go())
    assert alive and all(alive), alive


def test_exec_stream_errors_and_timeout(run: Run, shared: SandboxClient) -> None:
    assert error_code(run, shared.execStream("true", {"cwd": "/nope"})) == "NOT_FOUND"

    async def go() -> bytes:
        out = b""
        stream = await shared.execStream("echo before; sleep 30", {"timeoutMs": 500})
        async for chunk in stream:
            out += chunk
        return out

    with pytest.raises(PloyError) as info:
        run(go())
    assert info.value.code == "TIMEOUT"


def _events(run: Run, stream_coro: Coroutine[Any, Any, Any]) -> tuple[bytes, list[dict[str, Any]]]:
    async def go() -> bytes:
        return b"".join([c async for c in await stream_coro])

    raw = run(go())
    assert raw.endswith(b"\n\n")
    events = []
    for block in raw.decode().split("\n\n")[:-1]:
        assert block.startswith("data: ") and "\n" not in block, block  # one `data:` line per event
        events.append(json.loads(block[len("data: ") :]))
    return raw, events


def test_exec_stream_events_tell_how_it_ended(run: Run, shared: SandboxClient) -> None:
    """{format: "sse"}: Cloudflare's ExecEvent stream, so the exit code can be read off the stream."""
    cmd = "echo out; echo err >&2; printf 'ü' | head -c 1; sleep 0.1; printf 'ü' | tail -c 1; exit 3"
    _, events = _events(run, shared.execStream(cmd, {"format": "sse"}))
    assert events[0]["type"] == "start" and events[0]["command"] == cmd
    assert events[-1]["type"] == "complete" and events[-1]["exitCode"] == 3
    assert events[-1]["result"] == {"exitCode": 3, "success": False, "command": cmd}
    out = "".join(e["data"] for e in events if e["type"] == "stdout")
    err = "".join(e["data"] for e in events if e["type"] == "stderr")
    assert out == "out\nü" and err == "err\n"  # a character split across chunks arrives whole
    assert all(e["timestamp"].endswith("Z") for e in events)
    # a timeout ends the stream with an error event (not a broken stream), so an HTTP client sees it too
    _, events = _events(run, shared.execStream("echo before; sleep 30", {"format": "sse", "timeoutMs": 400}))
    assert [e["type"] for e in events] == ["start", "stdout", "error"]
    assert events[-1]["code"] == "TIMEOUT"
    # in a session, and the raw bytes stay the default
    session = run(shared.createSession({"env": {"WHO": "session"}}))
    _, events = _events(run, session.execStream("echo $WHO; false", {"format": "sse"}))
    assert events[1] == {**events[1], "type": "stdout", "data": "session\n"} and events[-1]["exitCode"] == 1
    assert error_code(run, shared.execStream("true", {"format": "json"})) == "INVALID_ARGUMENT"
    assert error_code(run, shared.execStream("true", {"format": "sse", "cwd": "/nope"})) == "NOT_FOUND"


def test_files_text_relative_and_listing(run: Run, shared: SandboxClient, wd: str) -> None:
    name = wd.rsplit("/", 1)[1]
    run(shared.writeFile(f"{name}/config.json", '{"debug": true}'))  # relative to /workspace
    assert run(shared.readFile(f"{wd}/config.json"))["content"] == '{"debug": true}'
    run(shared.writeFile(f"{wd}/deep/er/x.txt", "x"))  # parents are created
    run(shared.mkdir(f"{wd}/empty"))
    entries = run(shared.listFiles(wd))
    assert [(e["name"], e["type"]) for e in entries] == [
        ("config.json", "file"),
        ("deep", "directory"),
        ("empty", "directory"),
    ]
    assert entries[0]["size"] == 15 and entries[0]["path"] == f"{wd}/config.json"
    run(shared.deleteFile(f"{wd}/config.json"))
    assert error_code(run, shared.readFile(f"{wd}/config.json")) == "NOT_FOUND"


def test_file_errors(run: Run, shared: SandboxClient, wd: str) -> None:
    run(shared.writeFile(f"{wd}/f", "x"))
    assert error_code(run, shared.readFile(f"{wd}/missing")) == "NOT_FOUND"
    assert error_code(run, shared.readFile(wd)) == "IS_DIRECTORY"
    assert error_code(run, shared.writeFile(wd, "x")) == "IS_DIRECTORY"
    assert error_code(run, shared.writeFile(f"{wd}/f/child", "x")) == "NOT_A_DIRECTORY"
    assert error_code(run, shared.deleteFile(f"{wd}/missing")) == "NOT_FOUND"
    assert error_code(run, shared.deleteFile(wd)) == "IS_DIRECTORY"
    assert error_code(run, shared.listFiles(f"{wd}/missing")) == "NOT_FOUND"
    assert error_code(run, shared.listFiles(f"{wd}/f")) == "NOT_A_DIRECTORY"
    assert error_code(run, shared.mkdir(f"{wd}/a/b")) == "NOT_FOUND"
    assert error_code(run, shared.mkdir(f"{wd}/f")) == "ALREADY_EXISTS"
    assert error_code(run, shared.writeFile(f"{wd}/g", 12)) == "INVALID_ARGUMENT"
    assert error_code(run, shared.readFile(f"{wd}/f", {"encoding": "latin-7"})) == "INVALID_ARGUMENT"
    # mkdir -p semantics, and a recursive delete of a folder
    run(shared.mkdir(f"{wd}/a/b/c", {"recursive": True}))
    run(shared.mkdir(f"{wd}/a/b/c", {"recursive": True}))
    run(shared.deleteFile(f"{wd}/a", {"recursive": True}))
    assert run(shared.exec(f"test -e {wd}/a"))["exitCode"] == 1


def test_binary_all_bytes_roundtrip(run: Run, shared: SandboxClient, wd: str) -> None:
    data = bytes(range(256)) * 4
    run(shared.writeFile(f"{wd}/bin", data))
    assert run(shared.readFile(f"{wd}/bin", {"encoding": "binary"}))["content"] == data
    b64 = run(shared.readFile(f"{wd}/bin", {"encoding": "base64"}))["content"]
    assert base64.b64decode(b64) == data
    run(shared.writeFile(f"{wd}/bin2", b64, {"encoding": "base64"}))
    assert run(shared.exec(f"cmp {wd}/bin {wd}/bin2 && od -An -tx1 -N4 -j 254 {wd}/bin"))[
        "stdout"
    ].split() == ["fe", "ff", "00", "01"]


def test_unicode_names_and_content(run: Run, shared: SandboxClient, wd: str) -> None:
    name = f"{wd}/héllo wörld ✓ 日本.txt"
    text = "Grüße, мир, 🌍\n"
    run(shared.writeFile(name, text))
    assert run(shared.readFile(name))["content"] == text
    assert [e["name"] for e in run(shared.listFiles(wd))] == ["héllo wörld ✓ 日本.txt"]
    assert run(shared.exec(f"cat '{name}'"))["stdout"] == text


def test_50mb_file_roundtrip(run: Run, shared: SandboxClient, wd: str) -> None:
    data = os.urandom(50 * 1024 * 1024)
    t = time.monotonic()
    run(shared.writeFile(f"{wd}/big", data))
    back = run(shared.readFile(f"{wd}/big", {"encoding": "binary"}))["content"]
    elapsed = time.monotonic() - t
    assert len(back) == len(data) and back == data
    inside = run(shared.exec(f"sha256sum {wd}/big"))["stdout"].split()[0]
    assert inside == hashlib.sha256(data).hexdigest()
    assert elapsed < 20
    run(shared.deleteFile(f"{wd}/big"))


def test_concurrent_execs(run: Run, shared: SandboxClient) -> None:
    async def go() -> list[dict[str, Any]]:
        return await asyncio.gather(*(shared.exec(f"sleep 0.5; echo {i}") for i in range(20)))

    t = time.monotonic()
    results = run(go())
    assert [r["stdout"] for r in results] == [f"{i}\n" for i in range(20)]
    assert time.monotonic() - t < 4  # 20 x 0.5 s in sequence would take 10 s


def test_env_vars_and_precedence(run: Run, bindings: Any) -> None:
    sb = bindings.make("envs", env={"PLOY_AI_TOKEN": "injected", "OTHER": "keep"}).get("e1")
    assert run(sb.exec("echo $PLOY_AI_TOKEN $OTHER"))["stdout"] == "injected keep\n"
    run(sb.setEnvVars({"NODE_ENV": "production", "PLOY_AI_TOKEN": "from-setenv"}))
    assert run(sb.exec("echo $NODE_ENV $PLOY_AI_TOKEN $OTHER"))["stdout"] == "production from-setenv keep\n"
    r = run(sb.exec("echo $PLOY_AI_TOKEN", {"env": {"PLOY_AI_TOKEN": "per-command"}}))
    assert r["stdout"] == "per-command\n"
    assert error_code(run, sb.setEnvVars({"BAD NAME": "x"})) == "INVALID_ARGUMENT"
    # sessions and background processes get the injected variables as well (they come from the
    # agent's config.json, not the container's start: see the ai: off test in test_ai_sandbox.py)
    plain = bindings.make("envs2", env={"PLOY_AI_TOKEN": "injected"}).get("e2")
    session = run(plain.createSession({}))
    assert run(session.exec("echo $PLOY_AI_TOKEN"))["stdout"] == "injected\n"
    proc = run(plain.startProcess("echo $PLOY_AI_TOKEN"))
    deadline = time.monotonic() + 10
    while run(plain.getProcess(proc["id"]))["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run(plain.getProcessLogs(proc["id"]))["logs"] == "injected\n"


def test_git_checkout_branch_depth_1(run: Run, shared: SandboxClient, git_server: str, wd: str) -> None:
    r = run(shared.gitCheckout(git_server, {"branch": "feature", "depth": 1, "targetDir": f"{wd}/repo"}))
    assert r["success"] is True and r["branch"] == "feature" and r["targetDir"] == f"{wd}/repo"
    assert run(shared.readFile(f"{wd}/repo/feature.txt"))["content"] == "feature 1\n"
    assert run(shared.exec("git rev-list --count HEAD", {"cwd": f"{wd}/repo"}))["stdout"] == "1\n"
    # default target folder: the repository's name, relative to the working directory
    r = run(shared.gitCheckout(git_server, {"targetDir": f"{wd}/r2"}))
    assert run(shared.exec("git branch --show-current", {"cwd": r["targetDir"]}))["stdout"] == "main\n"
    assert error_code(run, shared.gitCheckout(git_server, {"targetDir": f"{wd}/repo"})) == "ALREADY_EXISTS"
    assert (
        error_code(run, shared.gitCheckout(git_server + "-missing", {"targetDir": f"{wd}/x"})) == "GIT_ERROR"
    )
    assert error_code(run, shared.gitCheckout("--upload-pack=touch /tmp/pwned")) == "INVALID_ARGUMENT"


def test_invalid_ids(bindings: Any) -> None:
    b = bindings.make("ids")
    for bad in ["", "x" * 1025, "nul\0byte", 5, None]:
        with pytest.raises(PloyError) as info:
            b.get(bad)
        assert info.value.code == "INVALID_ARGUMENT"
    assert b.get("ok-ID_1.2").id == "ok-ID_1.2"


def test_default_image_has_the_programs_the_docs_run(run: Run, shared: SandboxClient) -> None:
    """The docs run `npm install`, `npm run build`, `python worker.py` and git in the default sandbox."""
    r = run(
        shared.exec("python --version && node --version && npm --version && git --version && curl --version")
    )
    assert r["success"], r
    assert r["stdout"].startswith("Python 3.")
