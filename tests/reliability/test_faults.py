"""Faults on demand (issue 11, item 14): `ploy sandbox fault ID --kill-agent | --stop | --pause SECONDS |
--drop-connections` and `ploy sandbox sleep ID`, run as a user runs them while a worker (here the
Python API, as `ploy dev` holds it) uses the sandbox: each does what it says, the worker's call in flight
fails as it would in production (or waits, for a short pause), and its next call works with nothing
lost."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient
from tests.bindings.sandbox.conftest import Bindings
from tests.bindings.sandbox.helpers import container_state, wait_until
from tests.bindings.sandbox.test_sandbox_cli import ploy

Run = Callable[..., Any]


@pytest.fixture
def box(bindings: Bindings, run: Run) -> Iterator[SandboxClient]:
    sb = bindings.make("faults").get(f"box-{uuid.uuid4().hex[:6]}")
    run(sb.writeFile("/workspace/kept.txt", "kept"))
    yield sb
    subprocess.run(["podman", "unpause", _container(sb)], capture_output=True)
    run(sb.destroy())


def _container(sb: SandboxClient) -> str:
    return sb._mgr.entries[sb.id].container


def _cli(home: Path, sb: SandboxClient, *args: str) -> subprocess.CompletedProcess[str]:
    return ploy(home, sb._mgr.ctx.project_root, "sandbox", *args)


def _later(delay: float, fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def go() -> None:
        time.sleep(delay)
        out.append(fn())

    t = threading.Thread(target=go)
    t.start()
    return t, out


def _intact(run: Run, sb: SandboxClient) -> None:
    assert run(sb.exec("echo next"), timeout=60)["stdout"] == "next\n"
    assert run(sb.readFile("/workspace/kept.txt"))["content"] == "kept"


def test_kill_agent(run: Run, box: SandboxClient, sandbox_home: Path) -> None:
    agent_before = run(box.exec("echo $PPID"))["stdout"]  # a command's parent is the agent
    proc = run(box.startProcess("sleep 300"))
    t, out = _later(1.0, lambda: _cli(sandbox_home, box, "fault", box.id, "--kill-agent"))
    with pytest.raises(PloyError) as info:
        run(box.exec("sleep 10"))
    t.join()
    r = out[0]
    assert r.returncode == 0 and "killed the agent" in r.stdout, (r.stdout, r.stderr)
    assert info.value.code == "SANDBOX_UNAVAILABLE" and info.value.details.get("mayHaveRun") is True
    _intact(run, box)
    assert run(box.exec("echo $PPID"))["stdout"] != agent_before  # PID 1 started a new agent
    assert run(box.getProcess(proc["id"]))["status"] == "running"  # the container kept running


def test_stop(run: Run, box: SandboxClient, sandbox_home: Path) -> None:
    r = _cli(sandbox_home, box, "fault", box.id, "--stop")
    assert r.returncode == 0 and "stopped" in r.stdout, (r.stdout, r.stderr)
    assert container_state(_container(box)) == "exited"
    assert run(box.getState())["status"] == "stopped"
    _intact(run, box)
    assert run(box.getState())["status"] == "running"
    again = _cli(sandbox_home, box, "fault", box.id, "--stop")
    assert again.returncode == 0
    assert _cli(sandbox_home, box, "fault", box.id, "--stop").stdout.startswith("already")


def test_pause(run: Run, box: SandboxClient, sandbox_home: Path) -> None:
    name = _container(box)
    t, out = _later(0, lambda: _cli(sandbox_home, box, "fault", box.id, "--pause", "2"))
    assert wait_until(lambda: container_state(name) == "paused", timeout=30)
    started = time.monotonic()
    # a call made during a short pause waits for it (a long one fails: test_deadlines.py)
    assert run(box.exec("echo after"))["stdout"] == "after\n"
    assert time.monotonic() - started > 0.5
    t.join()
    r = out[0]
    assert r.returncode == 0 and "paused" in r.stdout and "unpaused" in r.stdout, (r.stdout, r.stderr)
    assert container_state(name) == "running"
    _intact(run, box)


def test_drop_connections(run: Run, box: SandboxClient, sandbox_home: Path) -> None:
    async def stream() -> bytes:
        return b"".join([c async for c in await box.execStream("echo early; sleep 5; echo late")])

    t, out = _later(1.0, lambda: _cli(sandbox_home, box, "fault", box.id, "--drop-connections"))
    with pytest.raises(PloyError) as info:
        run(stream())
    t.join()
    r = out[0]
    assert r.returncode == 0 and "dropped" in r.stdout, (r.stdout, r.stderr)
    assert int(r.stdout.split("dropped ", 1)[1].split()[0]) >= 1, r.stdout
    assert info.value.code == "SANDBOX_UNAVAILABLE"
    _intact(run, box)


def test_sleep(run: Run, box: SandboxClient, sandbox_home: Path) -> None:
    r = _cli(sandbox_home, box, "sleep", box.id)
    assert r.returncode == 0 and "sleeping" in r.stdout, (r.stdout, r.stderr)
    assert wait_until(lambda: container_state(_container(box)) == "exited", timeout=30)
    assert run(box.getState())["status"] == "sleeping"
    _intact(run, box)  # it wakes on its next use, files kept
    assert run(box.getState())["status"] == "running"
    assert _cli(sandbox_home, box, "sleep", box.id).returncode == 0
    asleep = _cli(sandbox_home, box, "sleep", box.id)
    assert asleep.returncode == 0 and "already" in asleep.stdout, asleep.stdout


def test_faults_name_what_is_wrong(run: Run, box: SandboxClient, sandbox_home: Path) -> None:
    unknown = _cli(sandbox_home, box, "fault", "no-such-box", "--stop")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr, unknown.stderr
    assert container_state(_container(box)) == "running"
    none = _cli(sandbox_home, box, "fault", box.id)
    assert none.returncode == 2 and "--kill-agent" in none.stderr, none.stderr
    for bad in ("0", "-1", "abc", "100000"):
        r = _cli(sandbox_home, box, "fault", box.id, "--pause", bad)
        assert r.returncode == 2 and "--pause" in r.stderr, (bad, r.stderr)
    assert _cli(sandbox_home, box, "fault", box.id, "--stop").returncode == 0
    stopped = _cli(sandbox_home, box, "fault", box.id, "--kill-agent")
    assert stopped.returncode == 1 and "not running" in stopped.stderr, stopped.stderr
    _intact(run, box)
