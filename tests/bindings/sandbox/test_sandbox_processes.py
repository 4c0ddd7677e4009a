"""Background processes: records, logs, streaming, killing trees, durability across restarts (issue 4)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient
from tests.bindings.sandbox.helpers import wait_until

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


@pytest.fixture(scope="module")
def sb(bindings: Any, run: Run) -> SandboxClient:
    client: SandboxClient = bindings.make("procs").get("procs")
    run(client.exec("true"))  # started here: the first test times startProcess, not the container's start
    return client


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
    assert run(sb.getProcessLogs(proc["id"])) == {
        "logs": "done\n", "stdout": "done\n", "stderr": "", "processId": proc["id"],
    }  # fmt: skip


def test_failed_status_cwd_env_and_unknown_id(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("pwd; echo $W; exit 7", {"cwd": "/tmp", "env": {"W": "4"}}))
    done = wait_done(run, sb, proc["id"])
    assert done["status"] == "failed" and done["exitCode"] == 7
    assert run(sb.getProcessLogs(proc["id"]))["logs"] == "/tmp\n4\n"
    assert run(sb.getProcess("proc_nope")) is None
    assert run(sb.getProcess(None)) is None  # `url.searchParams.get("id")` without the parameter


def test_logs_combine_stdout_and_stderr_in_order(run: Run, sb: SandboxClient) -> None:
    # the streams are two pipes: writes to both within the same instant may be read in either order,
    # so each line here comes a moment after the previous one
    proc = run(
        sb.startProcess("for i in 1 2 3; do echo out $i; sleep 0.05; echo err $i >&2; sleep 0.05; done")
    )
    wait_done(run, sb, proc["id"])
    logs = run(sb.getProcessLogs(proc["id"]))
    assert logs["logs"] == "out 1\nerr 1\nout 2\nerr 2\nout 3\nerr 3\n"
    assert logs["stdout"] == "out 1\nout 2\nout 3\n" and logs["stderr"] == "err 1\nerr 2\nerr 3\n"


def test_stdout_and_stderr_apart_whatever_the_timing(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("for i in $(seq 200); do echo out $i; echo err $i >&2; done; echo tail"))
    wait_done(run, sb, proc["id"])
    logs = run(sb.getProcessLogs(proc["id"]))
    assert logs["stdout"] == "".join(f"out {i}\n" for i in range(1, 201)) + "tail\n"
    assert logs["stderr"] == "".join(f"err {i}\n" for i in range(1, 201))
    assert sorted(logs["logs"].splitlines()) == sorted((logs["stdout"] + logs["stderr"]).splitlines())


def test_a_fast_commands_output_is_logged_when_it_is_reported_done(run: Run, sb: SandboxClient) -> None:
    for i in range(15):
        proc = run(sb.startProcess(f"echo fast-{i}; echo e-{i} >&2"))
        done = wait_done(run, sb, proc["id"])
        assert done["status"] == "completed"
        logs = run(sb.getProcessLogs(proc["id"]))
        assert (logs["stdout"], logs["stderr"]) == (f"fast-{i}\n", f"e-{i}\n")


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


def test_kill_with_a_signal(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("trap 'echo got INT' INT; echo ready; while true; do sleep 0.05; done"))
    assert wait_until(lambda: "ready" in run(sb.getProcessLogs(proc["id"]))["logs"], timeout=5)
    # a signal the process handles: it keeps running, and is not marked killed
    after = run(sb.killProcess(proc["id"], "SIGINT"))
    assert after["status"] == "running" and "killed" not in after
    assert wait_until(lambda: "got INT" in run(sb.getProcessLogs(proc["id"]))["logs"], timeout=5)
    assert run(sb.getProcess(proc["id"]))["status"] == "running"
    done = run(sb.killProcess(proc["id"], "KILL"))  # a name without SIG, and it waits for the end
    assert done["status"] == "failed" and done["exitCode"] == 137 and done["killed"] is True
    other = run(sb.startProcess("sleep 30"))
    done = run(sb.killProcess(other["id"], {"signal": 15, "graceMs": 2000}))
    assert done["exitCode"] == 143 and done["killed"] is True
    for bad in ("SIGNOPE", "9x", 0, 999):
        err = pytest.raises(PloyError, run, sb.killProcess(other["id"], bad)).value
        assert err.code == "INVALID_ARGUMENT"


def test_kill_all_and_cleanup(run: Run, bindings: Any) -> None:
    box = bindings.make("killall").get("ka")
    session = run(box.createSession())
    outside = [run(box.startProcess("sleep 60")) for _ in range(3)]
    inside = run(session.startProcess("sleep 60"))
    finished = run(box.startProcess("true"))
    wait_done(run, box, finished["id"])
    # on a session: the session's processes only
    assert [p["id"] for p in run(session.listProcesses())] == [inside["id"]]
    assert run(session.killAllProcesses()) == 1
    assert run(box.getProcess(inside["id"]))["killed"] is True
    assert all(run(box.getProcess(p["id"]))["status"] == "running" for p in outside)
    assert run(box.killAllProcesses({"signal": "SIGKILL"})) == 3
    assert all(run(box.getProcess(p["id"]))["exitCode"] == 137 for p in outside)
    assert run(box.killAllProcesses()) == 0
    keep = run(box.startProcess("sleep 60"))
    assert run(box.cleanupCompletedProcesses()) == 5  # 3 + 1 killed, 1 finished; the running one stays
    assert [p["id"] for p in run(box.listProcesses())] == [keep["id"]]
    assert run(box.getProcess(finished["id"])) is None
    run(box.killProcess(keep["id"]))


def test_interactive_stdin(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess('while read line; do echo "got $line"; done; echo bye', {"stdin": True}))
    run(sb.writeStdin(proc["id"], "one\n"))
    assert wait_until(lambda: run(sb.getProcessLogs(proc["id"]))["stdout"] == "got one\n", timeout=5)
    time.sleep(0.3)  # between writes the program waits for more (no end-of-file)
    assert run(sb.getProcess(proc["id"]))["status"] == "running"
    assert run(sb.writeStdin(proc["id"], b"two\nthr")) == {"id": proc["id"], "size": 7}
    run(sb.writeStdin(proc["id"], "ZWUK", {"encoding": "base64"}))  # "ee\n"
    done = run(sb.closeStdin(proc["id"]))
    done = wait_done(run, sb, proc["id"]) if done["status"] == "running" else done
    assert done["status"] == "completed"
    assert run(sb.getProcessLogs(proc["id"]))["stdout"] == "got one\ngot two\ngot three\nbye\n"
    err = pytest.raises(PloyError, run, sb.writeStdin(proc["id"], "late")).value
    assert err.code == "INVALID_ARGUMENT" and "closed" in err.message
    plain = run(sb.startProcess("sleep 5"))
    err = pytest.raises(PloyError, run, sb.writeStdin(plain["id"], "x")).value
    assert err.code == "INVALID_ARGUMENT" and "stdin: true" in err.message
    # the connection stays in sync after a refused upload
    assert run(sb.exec("echo ok"))["stdout"] == "ok\n"
    run(sb.killProcess(plain["id"]))


def test_stdin_text_backpressure_and_a_reader_that_goes(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("wc -c", {"stdin": "hello"}))
    wait_done(run, sb, proc["id"])
    assert run(sb.getProcessLogs(proc["id"]))["stdout"].strip() == "5"
    # more than a pipe holds, to a program that reads late: writeStdin waits for it
    slow = run(sb.startProcess("sleep 0.5; wc -c", {"stdin": True}))
    t = time.monotonic()
    run(sb.writeStdin(slow["id"], b"x" * (4 * 1024 * 1024)))
    assert time.monotonic() - t > 0.3
    run(sb.closeStdin(slow["id"]))
    wait_done(run, sb, slow["id"])
    assert run(sb.getProcessLogs(slow["id"]))["stdout"].strip() == str(4 * 1024 * 1024)
    # a program that closes its stdin early: writing more fails cleanly
    gone = run(sb.startProcess("exec 0<&-; sleep 5", {"stdin": True}))
    time.sleep(0.3)
    err = pytest.raises(PloyError, run, sb.writeStdin(gone["id"], b"y" * 200_000)).value
    assert err.code == "INVALID_ARGUMENT"
    run(sb.killProcess(gone["id"]))


def test_exec_stdin(run: Run, sb: SandboxClient) -> None:
    assert run(sb.exec("cat", {"stdin": "from the worker\n"}))["stdout"] == "from the worker\n"
    assert run(sb.exec("wc -c", {"stdin": "x" * 3_000_000}))["stdout"].strip() == "3000000"
    # a command that never reads its stdin is not held by it
    assert run(sb.exec("echo no-read", {"stdin": "y" * 3_000_000}))["stdout"] == "no-read\n"
    assert run(sb.exec("cat"))["stdout"] == ""  # without stdin: empty, not the agent's
    session = run(sb.createSession())
    assert run(session.exec('read a; echo "[$a]"', {"stdin": "line\n"}))["stdout"] == "[line]\n"

    async def streamed() -> bytes:
        return b"".join([c async for c in await sb.execStream("tr a-z A-Z", {"stdin": "shout"})])

    assert run(streamed()) == b"SHOUT"
    err = pytest.raises(PloyError, run, sb.exec("cat", {"stdin": 5})).value
    assert err.code == "INVALID_ARGUMENT"


def test_custom_process_id(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("sleep 5", {"processId": "web-server"}))
    assert proc["id"] == "web-server" and run(sb.getProcess("web-server"))["status"] == "running"
    err = pytest.raises(PloyError, run, sb.startProcess("true", {"processId": "web-server"})).value
    assert err.code == "ALREADY_EXISTS"
    err = pytest.raises(PloyError, run, sb.startProcess("true", {"processId": "../escape"})).value
    assert err.code == "INVALID_ARGUMENT"
    run(sb.killProcess("web-server"))
