"""killProcess and timeouts reach everything a process started; a fork bomb is stopped and the sandbox
recovers (issue 11, item 5)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient
from tests.bindings.sandbox.conftest import Bindings
from tests.bindings.sandbox.helpers import wait_until

Run = Callable[..., Any]


def _count(run: Run, sb: SandboxClient, pattern: str) -> int:
    # pgrep -c counts itself out; `[x]` keeps the pattern from matching pgrep's own command line
    out = run(sb.exec(f"pgrep -c -f '{pattern}' || true"))["stdout"].strip()
    return int(out or 0)


def _marker() -> str:
    return str(3000 + uuid.uuid4().int % 5000)


def test_kill_reaches_children_that_left_the_session(run: Run, shared: SandboxClient) -> None:
    """`setsid sleep &` used to survive killProcess: it left the process group, and once its parent
    exited it was no longer anyone's descendant."""
    n = _marker()
    proc = run(shared.startProcess(f"setsid sleep {n}1 & (setsid sleep {n}2 &) ; sleep {n}3"))
    assert wait_until(lambda: _count(run, shared, f"[s]leep {n}") == 3, timeout=10)
    rec = run(shared.killProcess(proc["id"], {"graceMs": 500}))
    assert rec["status"] == "failed" and rec["killed"] is True
    assert wait_until(lambda: _count(run, shared, f"[s]leep {n}") == 0, timeout=5)


def test_kill_reaches_what_a_finished_command_left_behind(run: Run, shared: SandboxClient) -> None:
    n = _marker()
    proc = run(shared.startProcess(f"(setsid sleep {n}1 &); echo done"))
    assert wait_until(lambda: run(shared.getProcess(proc["id"]))["status"] == "completed", timeout=10)
    assert _count(run, shared, f"[s]leep {n}") == 1  # the command is done; what it left still runs
    run(shared.killProcess(proc["id"], {"graceMs": 200}))
    assert wait_until(lambda: _count(run, shared, f"[s]leep {n}") == 0, timeout=5)


def test_a_timeout_reaches_children_that_left_the_session(run: Run, shared: SandboxClient) -> None:
    n = _marker()
    proc = run(shared.startProcess(f"(setsid sleep {n}1 &); sleep {n}2", {"timeoutMs": 800}))
    assert wait_until(lambda: run(shared.getProcess(proc["id"]))["status"] != "running", timeout=10)
    assert run(shared.getProcess(proc["id"]))["timedOut"] is True
    assert wait_until(lambda: _count(run, shared, f"[s]leep {n}") == 0, timeout=8)


@pytest.fixture(scope="module")
def bomb_sandbox(bindings: Bindings, run: Run) -> SandboxClient:
    sb = bindings.make("bomb", pids=48).get("bomb")
    run(sb.exec("true"))
    return sb


def _after_bomb(run: Run, sb: SandboxClient) -> None:
    """The sandbox works again: a command runs, and only a handful of processes exist."""

    def recovered() -> bool:
        try:
            out = run(sb.exec("ps -e --no-headers | wc -l"))
        except PloyError as exc:
            assert exc.code == "SPAWN_FAILED", (exc.code, exc.message)
            return False
        return int(out["stdout"]) < 12

    assert wait_until(recovered, timeout=20, step=0.5)


def test_a_fork_bomb_is_stopped_by_kill_process(run: Run, bomb_sandbox: SandboxClient) -> None:
    sb = bomb_sandbox
    proc = run(sb.startProcess("bomb(){ bomb|bomb & }; bomb", {"timeoutMs": 60000}))
    time.sleep(2)
    codes = []
    for _ in range(3):  # while it rages: a typed error or a result, never INTERNAL
        try:
            run(sb.exec("echo hi"))
            codes.append("ok")
        except PloyError as exc:
            codes.append(exc.code)
    assert set(codes) <= {"ok", "SPAWN_FAILED"}, codes
    started = time.monotonic()
    run(sb.killProcess(proc["id"], {"graceMs": 100}))
    _after_bomb(run, sb)
    assert time.monotonic() - started < 20
    assert run(sb.exec("echo back"))["stdout"] == "back\n"


def test_a_fork_bomb_is_stopped_by_its_timeout(run: Run, bomb_sandbox: SandboxClient) -> None:
    sb = bomb_sandbox
    proc = run(sb.startProcess("bomb(){ bomb|bomb & }; bomb", {"timeoutMs": 2000}))
    time.sleep(1)
    _after_bomb(run, sb)
    assert run(sb.getProcess(proc["id"]))["status"] != "running"
    assert run(sb.exec("echo back"))["stdout"] == "back\n"


def test_spawn_failed_names_the_pids_limit(run: Run, bomb_sandbox: SandboxClient) -> None:
    sb = bomb_sandbox
    proc = run(sb.startProcess("for i in $(seq 200); do sleep 30 & done; wait", {"timeoutMs": 60000}))
    errors: list[PloyError] = []

    def refused() -> bool:
        try:
            run(sb.exec("true"))
        except PloyError as exc:
            errors.append(exc)
            return True
        return False

    try:
        assert wait_until(refused, timeout=10)
        assert errors[0].code == "SPAWN_FAILED", (errors[0].code, errors[0].message)
        assert "pids limit (48)" in errors[0].message
    finally:
        run(sb.killProcess(proc["id"], {"graceMs": 0}))
    _after_bomb(run, sb)
