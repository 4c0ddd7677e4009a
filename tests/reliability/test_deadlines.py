"""No call waits forever (issue 11, item 11): a paused container or a stuck agent fails calls with
SANDBOX_UNAVAILABLE (mayHaveRun) within seconds instead of hanging until it wakes; one call's output
cannot take the agent down; git's command-running transports are refused."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient
from tests.bindings.sandbox.conftest import Bindings

Run = Callable[..., Any]
# A call on a sandbox that stopped answering fails within this (the liveness check plus its ping).
UNRESPONSIVE_WITHIN_S = 15


@pytest.fixture
def victim(bindings: Bindings, run: Run) -> Iterator[SandboxClient]:
    """A sandbox of its own: these tests pause it or stop its agent."""
    sb = bindings.make("deadlines").get("victim")
    run(sb.writeFile("/workspace/kept.txt", "kept"))
    yield sb
    subprocess.run(["podman", "unpause", _container(sb)], capture_output=True)


def _container(sb: SandboxClient) -> str:
    return sb._mgr.entries[sb.id].container


def _fails_fast(run: Run, call: Any) -> PloyError:
    started = time.monotonic()
    with pytest.raises(PloyError) as info:
        run(call, timeout=120)
    assert time.monotonic() - started < UNRESPONSIVE_WITHIN_S, time.monotonic() - started
    assert info.value.code == "SANDBOX_UNAVAILABLE", (info.value.code, info.value.message)
    return info.value


def test_a_paused_container_fails_calls_within_seconds(run: Run, victim: SandboxClient) -> None:
    name = _container(victim)
    proc = run(victim.startProcess("sleep 600"))
    subprocess.run(["podman", "pause", name], check=True, capture_output=True)
    unpause = threading.Timer(60, lambda: subprocess.run(["podman", "unpause", name], capture_output=True))
    unpause.start()
    try:
        err = _fails_fast(run, victim.exec("echo hi"))
        assert err.details.get("mayHaveRun") is True
        _fails_fast(run, victim.readFile("/workspace/kept.txt"))  # the next one does not hang either
    finally:
        unpause.cancel()
        subprocess.run(["podman", "unpause", name], check=True, capture_output=True)
    # once it runs again, nothing was lost: its files and its process are there
    assert run(victim.readFile("/workspace/kept.txt"))["content"] == "kept"
    assert run(victim.getProcess(proc["id"]))["status"] == "running"


def test_a_terminal_opened_on_a_paused_container_fails_within_seconds(
    run: Run, victim: SandboxClient
) -> None:
    """The terminal's first frame is waited for like any reply: a paused container fails the opening
    instead of holding the WebSocket (and its request) until the container wakes."""
    name = _container(victim)
    subprocess.run(["podman", "pause", name], check=True, capture_output=True)
    unpause = threading.Timer(60, lambda: subprocess.run(["podman", "unpause", name], capture_output=True))
    unpause.start()
    try:
        _fails_fast(run, victim._mgr.duplex(victim.id, {"op": "terminal", "cols": 80, "rows": 24}))
    finally:
        unpause.cancel()
        subprocess.run(["podman", "unpause", name], check=True, capture_output=True)
    duplex = run(victim._mgr.duplex(victim.id, {"op": "terminal", "cols": 80, "rows": 24}))
    duplex.close()  # and after it wakes, a terminal opens again


def test_a_stuck_agent_fails_the_call_and_the_next_call_brings_the_sandbox_back(
    run: Run, victim: SandboxClient
) -> None:
    # the agent is PID 1's child; SIGSTOP it from a command it runs, whose reply then never comes
    _fails_fast(run, victim.exec("kill -STOP $(ps -o ppid= -p $$)"))
    assert run(victim.exec("echo back"), timeout=60)["stdout"] == "back\n"
    assert run(victim.readFile("/workspace/kept.txt"))["content"] == "kept"


def test_a_call_with_a_timeout_has_a_deadline(run: Run, victim: SandboxClient) -> None:
    """The agent is stuck (not the command): the call fails once its timeoutMs plus a margin passed."""
    started = time.monotonic()
    with pytest.raises(PloyError) as info:
        run(victim.exec("kill -STOP $(ps -o ppid= -p $$); sleep 100", {"timeoutMs": 1000}), timeout=120)
    assert info.value.code == "SANDBOX_UNAVAILABLE"
    assert time.monotonic() - started < UNRESPONSIVE_WITHIN_S
    assert run(victim.exec("echo back"), timeout=60)["stdout"] == "back\n"


def test_output_that_json_would_inflate_sixfold_comes_back_whole(run: Run, shared: SandboxClient) -> None:
    """20 MB of NUL bytes on both streams: as JSON (\\u0000 each) the reply was ~240 MB, past the frame
    limit, and the call failed with INTERNAL after the agent held it all."""
    n = 20_000_000
    r = run(shared.exec(f"head -c {n} /dev/zero; head -c {n} /dev/zero >&2", {"outputLimit": n}))
    assert r["stdout"] == "\0" * n and r["stderr"] == "\0" * n and r["exitCode"] == 0
    assert "truncated" not in r
    assert run(shared.exec("echo ok"))["stdout"] == "ok\n"


@pytest.mark.parametrize("url", ["fd::3", "ext::sh -c touch% /tmp/pwned", "FD::0/x"])
def test_command_running_git_transports_are_refused(run: Run, shared: SandboxClient, url: str) -> None:
    with pytest.raises(PloyError) as info:
        run(shared.gitCheckout(url, {"targetDir": "/tmp/never"}))
    assert info.value.code == "INVALID_ARGUMENT" and info.value.message.startswith("repoUrl")
    with pytest.raises(PloyError) as info:  # and by the agent, for a request that skipped the client
        run(shared._mgr.call(shared.id, {"op": "gitCheckout", "repoUrl": url, "targetDir": "/tmp/never"}))
    assert info.value.code == "INVALID_ARGUMENT"
    assert run(shared.exec("test -e /tmp/pwned && echo pwned || echo safe"))["stdout"] == "safe\n"
