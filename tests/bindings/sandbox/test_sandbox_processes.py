"""Background processes: records, logs, streaming, killing trees, durability across restarts (issue 4)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from bindings.sandbox import SandboxClient
from tests.bindings.sandbox.helpers import wait_until

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


@pytest.fixture(scope="module")
def sb(bindings: Any) -> SandboxClient:
    return bindings.make("procs").get("procs")


def wait_done(run: Run, sb: SandboxClient, pid: str, timeout: float = 30) -> dict[str, Any]:
    assert wait_until(lambda: run(sb.getProcess(pid))["status"] != "running", timeout=timeout, step=0.05)
    return run(sb.getProcess(pid))


def test_start_returns_at_once_with_a_handle(run: Run, sb: SandboxClient) -> None:
    t = time.monotonic()
    proc = run(sb.startProcess("sleep 3; echo done", {"cwd": "/tmp", "env": {"W": "4"}}))
    # long before the command could have finished (a margin for a loaded machine: it takes ms)
    assert time.monotonic() - t < 2.5
    assert set(proc) >= {"id", "pid", "command", "status", "exitCode", "startedAt"}
    assert (
        proc["status"] == "running" and proc["exitCode"] is None and proc["command"] == "sleep 3; echo done"
    )
    assert isinstance(proc["pid"], int)
    datetime.fromisoformat(proc["startedAt"].replace("Z", "+00:00"))
    assert proc["id"] in [p["id"] for p in run(sb.listProcesses())]
    done = wait_done(run, sb, proc["id"])
    assert done["status"] == "completed" and done["exitCode"] == 0
    assert run(sb.getProcessLogs(proc["id"])) == {"logs": "done\n"}


def test_failed_status_cwd_env_and_unknown_id(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("pwd; echo $W; exit 7", {"cwd": "/tmp", "env": {"W": "4"}}))
    done = wait_done(run, sb, proc["id"])
    assert done["status"] == "failed" and done["exitCode"] == 7
    assert run(sb.getProcessLogs(proc["id"]))["logs"] == "/tmp\n4\n"
    assert run(sb.getProcess("proc_nope")) is None
    assert run(sb.getProcess(None)) is None  # `url.searchParams.get("id")` without the parameter


def test_logs_combine_stdout_and_stderr_in_order(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("for i in 1 2 3; do echo out $i; echo err $i >&2; done"))
    wait_done(run, sb, proc["id"])
    assert run(sb.getProcessLogs(proc["id"]))["logs"] == "out 1\nerr 1\nout 2\nerr 2\nout 3\nerr 3\n"


def test_stream_replays_follows_and_ends(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("echo early; sleep 0.5; for i in 1 2 3; do echo live $i; sleep 0.2; done"))
    time.sleep(0.3)

    async def collect() -> list[tuple[float, bytes]]:
        stream = await sb.streamProcessLogs(proc["id"])
        t0 = time.monotonic()
        return [(time.monotonic() - t0, c) async for c in stream]

    chunks = run(collect())
    assert b"".join(c for _, c in chunks) == b"early\nlive 1\nlive 2\nlive 3\n"
    assert chunks[0][1].startswith(b"early") and chunks[0][0] < 0.1  # replayed at once
    assert chunks[-1][0] > 0.5  # followed live until the end
    assert run(sb.getProcess(proc["id"]))["status"] == "completed"


def test_kill_trapping_sigterm(run: Run, sb: SandboxClient) -> None:
    proc = run(
        sb.startProcess("trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done")
    )
    assert wait_until(lambda: "ready" in run(sb.getProcessLogs(proc["id"]))["logs"], timeout=5)
    killed = run(sb.killProcess(proc["id"]))
    assert killed["status"] == "failed" and killed["exitCode"] == 3 and killed["killed"] is True
    assert "got TERM" in run(sb.getProcessLogs(proc["id"]))["logs"]


def test_kill_escalates_to_sigkill_and_kills_three_levels(run: Run, sb: SandboxClient) -> None:
    # level 1 ignores TERM; level 2 and level 3 (in its own session) sleep
    cmd = (
        "trap '' TERM; bash -c 'setsid bash -c \"sleep 777\" & sleep 778 & wait' & "
        "echo started; while true; do sleep 0.1; done"
    )
    proc = run(sb.startProcess(cmd))
    assert wait_until(lambda: "sleep 777" in run(sb.exec("ps -eo args"))["stdout"], timeout=5)
    t = time.monotonic()
    killed = run(sb.killProcess(proc["id"], {"graceMs": 500}))
    assert time.monotonic() - t < 5
    assert killed["status"] == "failed" and killed["exitCode"] == 137
    time.sleep(0.2)
    ps = run(sb.exec("ps -eo args"))["stdout"]
    assert "sleep 777" not in ps and "sleep 778" not in ps
    # killing a finished process is harmless and returns its record
    assert run(sb.killProcess(proc["id"]))["exitCode"] == 137


def test_timeout_fails_the_process(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("sleep 30", {"timeoutMs": 300}))
    done = wait_done(run, sb, proc["id"], timeout=10)
    assert done["status"] == "failed" and done["timedOut"] is True


def test_100mb_output_is_capped_on_disk(run: Run, bindings: Any) -> None:
    sb = bindings.make("bigproc").get("big")
    proc = run(sb.startProcess("head -c 100000000 /dev/zero | tr '\\0' 'x'; echo; echo finished >&2"))
    done = wait_done(run, sb, proc["id"], timeout=60)
    assert done["status"] == "completed" and done.get("logTruncated") is True, done
    size = int(run(sb.exec(f"stat -c %s /var/lib/ploy/procs/{proc['id']}/log"))["stdout"])
    assert 64 * 1024 * 1024 <= size < 64 * 1024 * 1024 + 200
    rss = run(sb.exec("ps -o rss= -C python3 | sort -n | tail -1"))["stdout"].strip()
    assert int(rss) < 100_000  # KiB: nothing held the log in memory


def test_records_and_logs_survive_a_host_restart(run: Run, bindings: Any) -> None:
    first = bindings.make("restart-procs")
    proc = run(first.get("r").startProcess("echo one; sleep 1.5; echo two"))
    run(first.close())
    second = bindings.make("restart-procs")  # a fresh host process, in effect
    sb = second.get("r")
    assert run(sb.getProcess(proc["id"]))["status"] == "running"

    async def collect() -> bytes:
        return b"".join([c async for c in await sb.streamProcessLogs(proc["id"])])

    assert run(collect()) == b"one\ntwo\n"
    assert run(sb.getProcess(proc["id"]))["status"] == "completed"


def test_start_latency_and_log_line_latency(run: Run, sb: SandboxClient) -> None:
    times = []
    for _ in range(10):
        t = time.monotonic()
        proc = run(sb.startProcess("true"))
        times.append(time.monotonic() - t)
    times.sort()
    assert times[5] < 0.05, times
    proc = run(sb.startProcess("sleep 0.5; date +%s.%N; sleep 0.5"))

    async def first_line() -> tuple[float, float]:
        async for chunk in await sb.streamProcessLogs(proc["id"]):
            if re.match(rb"\d+\.\d+", chunk):
                return time.time(), float(chunk)
        raise AssertionError("no line")

    got, printed = run(first_line())
    assert got - printed < 0.1
