"""Sessions: persistent shells with their own cwd and environment (issue 4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient
from tests.bindings.sandbox.helpers import wait_until

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


@pytest.fixture(scope="module")
def sb(bindings: Any) -> SandboxClient:
    return bindings.make("sessions").get("sessions")


def test_docs_example(run: Run, sb: SandboxClient) -> None:
    session = run(sb.createSession({"cwd": "/tmp", "env": {"GREETING": "hello from a session"}}))
    run(session.exec("echo started > log.txt"))
    greeting = run(session.exec("echo $GREETING"))
    log = run(session.exec("cat /tmp/log.txt"))
    assert session.sessionId
    assert greeting["stdout"].strip() == "hello from a session"
    assert log["stdout"].strip() == "started"


def test_cd_export_functions_and_variables_persist(run: Run, sb: SandboxClient) -> None:
    s = run(sb.createSession())
    run(
        s.exec(
            "mkdir -p /tmp/sess-a && cd /tmp/sess-a && export FOO=bar && LOCALVAR=1 && greet() { echo hi $1; }"
        )
    )
    r = run(s.exec("pwd; echo $FOO $LOCALVAR; greet you"))
    assert r["stdout"] == "/tmp/sess-a\nbar 1\nhi you\n"
    # relative file paths follow the session's cwd
    run(s.writeFile("rel.txt", "in sess-a"))
    assert run(sb.readFile("/tmp/sess-a/rel.txt"))["content"] == "in sess-a"
    assert [e["name"] for e in run(s.listFiles("."))] == ["rel.txt"]
    # the exit code, stderr and per-command options work as with the client
    r = run(s.exec("echo e >&2; false"))
    assert r["exitCode"] == 1 and r["stderr"] == "e\n" and r["success"] is False
    r = run(s.exec("pwd; echo $FOO", {"cwd": "/", "env": {"FOO": "once"}}))
    assert r["stdout"] == "/\nonce\n"
    assert run(s.exec("pwd; echo $FOO"))["stdout"] == "/tmp/sess-a\nbar\n"


def test_sessions_are_isolated_and_share_the_filesystem(run: Run, sb: SandboxClient) -> None:
    a = run(sb.createSession({"cwd": "/tmp"}))
    b = run(sb.createSession({"cwd": "/"}))
    run(a.exec("cd /etc; export ONLY_A=1; fa() { :; }"))
    r = run(b.exec('pwd; echo "[$ONLY_A]"; type fa >/dev/null 2>&1 && echo has-fa || echo no-fa'))
    assert r["stdout"] == "/\n[]\nno-fa\n"
    run(a.writeFile("/tmp/shared-by-sessions", "x"))
    assert run(b.readFile("/tmp/shared-by-sessions"))["content"] == "x"
    # the plain client is not affected by sessions either
    assert run(sb.exec('pwd; echo "[$ONLY_A]"'))["stdout"] == "/workspace\n[]\n"


def test_one_session_runs_in_order_sessions_run_in_parallel(run: Run, sb: SandboxClient) -> None:
    a = run(sb.createSession())
    b = run(sb.createSession())

    async def go() -> tuple[list[str], float]:
        t = time.monotonic()
        results = await asyncio.gather(
            a.exec("sleep 0.6; echo a1 >> /tmp/order"),
            a.exec("echo a2 >> /tmp/order"),
            b.exec("sleep 0.6; echo b1"),
        )
        return [r["stdout"] for r in results], time.monotonic() - t

    run(sb.exec("rm -f /tmp/order"))
    _, elapsed = run(go())
    assert run(sb.readFile("/tmp/order"))["content"] == "a1\na2\n"
    assert elapsed < 1.1  # a's two commands waited for each other, b ran beside them


def test_lookup_by_id_from_a_later_request_and_restart(run: Run, bindings: Any) -> None:
    first = bindings.make("sess-restart")
    s = run(first.get("sr").createSession({"cwd": "/tmp"}))
    run(s.exec("cd /var; export KEEP=yes"))
    again = run(first.get("sr").getSession(s.sessionId))
    assert run(again.exec("pwd; echo $KEEP"))["stdout"] == "/var\nyes\n"
    run(first.close())
    second = bindings.make("sess-restart")
    later = run(second.get("sr").getSession(s.sessionId))
    assert run(later.exec("pwd; echo $KEEP"))["stdout"] == "/var\nyes\n"
    with pytest.raises(PloyError) as info:
        run(second.get("sr").getSession("session_unknown"))
    assert info.value.code == "NOT_FOUND"


def test_exit_and_timeout_keep_the_session_usable(run: Run, sb: SandboxClient) -> None:
    s = run(sb.createSession({"cwd": "/tmp"}))
    run(s.exec("cd /usr; export V=1; greet() { echo hi $1; }"))
    assert run(s.exec("exit 4"))["exitCode"] == 4
    assert run(s.exec("pwd; echo $V; greet there"))["stdout"] == "/usr\n1\nhi there\n"  # from the snapshot
    with pytest.raises(PloyError) as info:
        run(s.exec("sleep 30", {"timeoutMs": 400}))
    assert info.value.code == "TIMEOUT"
    with pytest.raises(PloyError):
        run(s.exec("while true; do :; done", {"timeoutMs": 400}))  # a busy builtin: the shell is replaced
    assert run(s.exec("pwd; echo $V"))["stdout"] == "/usr\n1\n"


def test_session_stream_env_and_processes(run: Run, sb: SandboxClient) -> None:
    s = run(sb.createSession({"cwd": "/tmp", "env": {"S": "sess"}}))
    run(s.exec("mkdir -p /tmp/sp && cd /tmp/sp && export LATER=set"))
    run(s.setEnvVars({"NODE_ENV": "production"}))

    async def stream() -> bytes:
        return b"".join([c async for c in await s.execStream("echo $S $LATER $NODE_ENV; pwd; echo err >&2")])

    assert run(stream()) == b"sess set production\n/tmp/sp\nerr\n"
    proc = run(s.startProcess("pwd; echo $S $LATER $NODE_ENV $X", {"env": {"X": "x"}}))
    assert wait_until(lambda: run(s.getProcess(proc["id"]))["status"] == "completed", timeout=10)
    assert run(s.getProcessLogs(proc["id"]))["logs"] == "/tmp/sp\nsess set production x\n"
    # file methods of a session
    run(s.mkdir("d/e", {"recursive": True}))
    run(s.writeFile("d/e/f.txt", "ok"))
    assert run(s.readFile("/tmp/sp/d/e/f.txt"))["content"] == "ok"
    run(s.deleteFile("d/e/f.txt"))
    assert run(s.listFiles("d/e")) == []


def test_session_id_option_on_the_client(run: Run, sb: SandboxClient) -> None:
    """Cloudflare's `sessionId` option (and its positional form) runs a client call in a session."""
    s = run(sb.createSession({"id": "by-option", "cwd": "/tmp"}))
    run(s.exec("mkdir -p /tmp/opt && cd /tmp/opt && export WHO=session"))
    r = run(sb.exec("pwd; echo $WHO", {"sessionId": "by-option"}))
    assert r["stdout"] == "/tmp/opt\nsession\n"
    assert run(sb.exec("pwd"))["stdout"] == "/workspace\n"  # the client itself is untouched
    run(sb.writeFile("rel.txt", "in the session's cwd", {"sessionId": "by-option"}))
    assert run(sb.exists("/tmp/opt/rel.txt"))["exists"] is True
    assert run(sb.exists("rel.txt", "by-option"))["exists"] is True  # Cloudflare's positional sessionId
    assert run(sb.readFile("rel.txt", {"sessionId": "by-option"}))["content"] == "in the session's cwd"
    assert [e["name"] for e in run(sb.listFiles(".", {"sessionId": "by-option"}))] == ["rel.txt"]
    run(sb.renameFile("rel.txt", "moved.txt", "by-option"))
    assert run(s.exists("moved.txt"))["exists"] is True

    async def stream() -> bytes:
        return b"".join([c async for c in await sb.execStream("echo $WHO", {"sessionId": "by-option"})])

    assert run(stream()) == b"session\n"
    proc = run(sb.startProcess("echo $WHO; pwd", {"sessionId": "by-option"}))
    assert proc["sessionId"] == "by-option"
    assert [p["id"] for p in run(sb.listProcesses("by-option"))] == [proc["id"]]
    assert [p["id"] for p in run(sb.listProcesses({"sessionId": "by-option"}))] == [proc["id"]]
    assert wait_until(lambda: run(sb.getProcess(proc["id"]))["status"] == "completed", timeout=10)
    assert run(sb.getProcessLogs(proc["id"]))["stdout"] == "session\n/tmp/opt\n"
    # unknown sessions, and a session's call naming another session, are errors
    with pytest.raises(PloyError) as info:
        run(sb.exec("true", {"sessionId": "no-such-session"}))
    assert info.value.code == "NOT_FOUND"
    with pytest.raises(PloyError) as info:
        run(s.exec("true", {"sessionId": "another"}))
    assert info.value.code == "INVALID_ARGUMENT"
    assert run(s.exec("echo same", {"sessionId": "by-option"}))["stdout"] == "same\n"


def test_create_session_options_and_command_timeout(run: Run, sb: SandboxClient) -> None:
    s = run(sb.createSession({"name": "builder", "commandTimeoutMs": 400}))
    assert s.info["name"] == "builder" and s.info["commandTimeoutMs"] == 400
    t = time.monotonic()
    with pytest.raises(PloyError) as info:
        run(s.exec("sleep 10"))
    assert info.value.code == "TIMEOUT" and time.monotonic() - t < 5
    assert run(s.exec("sleep 0.6; echo longer", {"timeoutMs": 3000}))["stdout"] == "longer\n"  # its own wins
    proc = run(s.startProcess("sleep 10"))
    assert wait_until(lambda: run(s.getProcess(proc["id"]))["status"] != "running", timeout=10)
    assert run(s.getProcess(proc["id"]))["timedOut"] is True
    # the default survives getSession (from a later request)
    again = run(sb.getSession(s.sessionId))
    with pytest.raises(PloyError) as info:
        run(again.exec("sleep 10"))
    assert info.value.code == "TIMEOUT"
    for bad in ({"commandTimeoutMs": -1}, {"commandTimeoutMs": "1s"}, {"commandTimeoutMS": 5}):
        with pytest.raises(PloyError) as info:
            run(sb.createSession(bad))
        assert info.value.code == "INVALID_ARGUMENT"


def test_delete_session_kills_its_commands_and_processes(run: Run, sb: SandboxClient) -> None:
    s = run(sb.createSession({"id": "doomed"}))
    other = run(sb.createSession())
    mine = run(s.startProcess("sleep 300"))
    theirs = run(other.startProcess("sleep 301"))
    running = asyncio.run_coroutine_threadsafe(s.exec("sleep 302; echo never"), _loop_of(run))
    assert wait_until(lambda: "sleep 302" in run(sb.exec("ps -eo args"))["stdout"], timeout=5)
    result = run(sb.deleteSession("doomed"))
    assert result == {"sessionId": "doomed", "deleted": True, "killed": 1}
    ended = running.result(10)  # the running command ended with the session's shell
    assert ended["exitCode"] != 0 and "never" not in ended["stdout"]
    ps = run(sb.exec("ps -eo args"))["stdout"]
    assert "sleep 300" not in ps and "sleep 302" not in ps and "sleep 301" in ps
    assert run(sb.getProcess(mine["id"]))["killed"] is True
    assert run(sb.getProcess(theirs["id"]))["status"] == "running"
    with pytest.raises(PloyError) as info:
        run(sb.getSession("doomed"))
    assert info.value.code == "NOT_FOUND"
    with pytest.raises(PloyError) as info:
        run(s.exec("true"))
    assert info.value.code == "NOT_FOUND"
    with pytest.raises(PloyError) as info:
        run(sb.deleteSession("doomed"))
    assert info.value.code == "NOT_FOUND"
    # the id can be taken again, fresh
    again = run(sb.createSession({"id": "doomed"}))
    assert run(again.exec("echo new"))["stdout"] == "new\n"
    run(sb.killProcess(theirs["id"]))


def _loop_of(run: Run) -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = run.__self__.loop  # type: ignore[attr-defined]
    return loop
