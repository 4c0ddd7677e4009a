"""Lifecycle: lazy start, persistence across restarts, recovery, isolation, limits, idle suspension, pool."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bindings.errors import PloyError
from tests.bindings.sandbox.helpers import container_state, containers, wait_until
from tests.conftest import REPO

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


def test_get_is_lazy_and_first_use_starts(run: Run, bindings: Any) -> None:
    b = bindings.make("lazy")
    sb = b.get("lazy-one")
    time.sleep(0.3)
    assert containers("ploy.id", "lazy-one") == []
    assert run(sb.exec("echo hi"))["stdout"] == "hi\n"
    found = containers("ploy.id", "lazy-one")
    assert len(found) == 1 and found[0].endswith("running")


def test_same_id_same_sandbox_across_clients_and_restart(run: Run, bindings: Any) -> None:
    first = bindings.make("persist")
    run(first.get("p1").writeFile("state.txt", "kept"))
    assert run(first.get("p1").readFile("state.txt"))["content"] == "kept"  # a new client, same sandbox
    run(first.close())
    # a new binding object = a restarted `ploy dev`: nothing in memory, state on disk and in the container
    second = bindings.make("persist")
    assert run(second.get("p1").readFile("state.txt"))["content"] == "kept"
    assert len(containers("ploy.id", "p1")) == 1
    # another binding name of the same project is another namespace
    other = bindings.make("persist", binding="BUILDER")
    assert run(other.get("p1").exec("test -e state.txt"))["exitCode"] == 1


def test_two_sandboxes_are_isolated(run: Run, bindings: Any) -> None:
    b = bindings.make("iso")
    a, c = b.get("iso-a"), b.get("iso-b")
    run(a.writeFile("/tmp/secret", "a only"))
    proc = run(a.startProcess("sleep 4321"))
    assert run(c.exec("cat /tmp/secret"))["exitCode"] != 0
    assert "4321" not in run(c.exec("ps -eo args"))["stdout"]
    assert "4321" in run(a.exec("ps -eo args"))["stdout"]
    run(a.killProcess(proc["id"]))


def test_agent_death_and_stopped_or_removed_container_recover(run: Run, bindings: Any) -> None:
    b = bindings.make("recover")
    sb = b.get("rec")
    run(sb.writeFile("keep.txt", "still here"))
    # kill the agent from inside (a background process survives it): PID 1 restarts it, the host reconnects
    agent_pid = run(sb.exec("echo $PPID"))["stdout"]
    run(sb.startProcess("sleep 0.2; pkill -9 -P 1 -f agent/init.py"))  # the agent: a fork of PID 1
    time.sleep(0.6)
    assert run(sb.exec("echo back"))["stdout"] == "back\n"
    assert run(sb.exec("echo $PPID"))["stdout"] != agent_pid
    # stopped behind our back: restarted on next use with its files
    name = containers("ploy.id", "rec")[0].split()[0]
    subprocess.run(["podman", "stop", "-t", "0", name], check=True, capture_output=True)
    assert run(sb.readFile("keep.txt"))["content"] == "still here"
    # removed behind our back: a new empty sandbox under the same id
    subprocess.run(["podman", "rm", "-f", "-t", "0", name], check=True, capture_output=True)
    assert run(sb.exec("test -e keep.txt"))["exitCode"] == 1


def test_agent_death_after_the_request_was_sent_is_not_retried(run: Run, bindings: Any) -> None:
    """A retry after the agent had the request could run a non-idempotent command twice: only a call
    that never reached the agent is retried; this one fails with a typed "may or may not have run"."""
    from bindings.sandbox.agent_client import AgentInterrupted

    sb = bindings.make("interrupt").get("intr")
    kill = "kill -9 $PPID; sleep 2"  # the command's parent is the agent
    with pytest.raises(PloyError) as info:
        run(sb.exec(f"echo ran >> /workspace/count; {kill}"))
    # the next call reaches the sandbox again; the command ran once
    assert run(sb.exec("wc -l < /workspace/count"))["stdout"] == "1\n"
    assert isinstance(info.value, AgentInterrupted) and info.value.code == "SANDBOX_UNAVAILABLE"
    assert "may or may not have run" in info.value.message and info.value.details["mayHaveRun"] is True

    async def consume() -> bytes:
        out = b""
        async for chunk in await sb.execStream(f"echo ran >> /workspace/streamed; {kill}"):
            out += chunk
        return out

    with pytest.raises(AgentInterrupted):
        run(consume())
    assert run(sb.exec("wc -l < /workspace/streamed"))["stdout"] == "1\n"


def test_destroy(run: Run, bindings: Any) -> None:
    b = bindings.make("destroy")
    sb = b.get("gone")
    run(sb.writeFile("f", "x"))
    assert len(containers("ploy.id", "gone")) == 1
    assert run(sb.destroy())["destroyed"] is True
    assert containers("ploy.id", "gone") == []
    # the same client starts a fresh, empty sandbox on its next call (Cloudflare's behaviour; it used to
    # reject with SANDBOX_DESTROYED)
    assert run(sb.exec("test -e f"))["exitCode"] == 1
    assert len(containers("ploy.id", "gone")) == 1
    assert run(sb.destroy())["destroyed"] is True
    again = b.get("gone")  # a new client of the id: a fresh sandbox too
    assert run(again.exec("test -e f"))["exitCode"] == 1
    # destroyed by another process (`ploy sandbox destroy`) while this one has it cached
    run(again.writeFile("f", "x"))
    other = bindings.make("destroy")
    run(other.get("gone").destroy())
    assert run(again.exec("test -e f"))["exitCode"] == 1
    assert run(other.get("gone").exec("echo same"))["stdout"] == "same\n"
    assert len(containers("ploy.id", "gone")) == 1


def test_security_and_limits(run: Run, bindings: Any) -> None:
    sb = bindings.make("limits", memory="256m", pids=100).get("lim")
    status = run(sb.exec("grep -E 'CapEff|NoNewPrivs' /proc/self/status"))["stdout"]
    assert "NoNewPrivs:\t1" in status
    cap_eff = int(status.split("CapEff:")[1].split()[0], 16)
    assert cap_eff & (1 << 21) == 0  # no CAP_SYS_ADMIN
    assert cap_eff & (1 << 18) == 0  # no CAP_SYS_CHROOT
    mounts = run(sb.exec("cat /proc/self/mountinfo"))["stdout"]
    binds = [
        line.split()[4]
        for line in mounts.splitlines()
        if line.split()[4] not in ("/", "/proc", "/dev", "/sys")
    ]
    assert "/run/ploy" in binds
    assert not any(m.startswith(("/tmp/ploy-t", "/root", "/home", "/work")) for m in binds)
    mem = run(
        sb.exec(
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"
        )
    )
    assert mem["stdout"].strip() == str(256 * 1024 * 1024)
    r = run(sb.exec("for i in $(seq 150); do sleep 5 & done 2>&1 | tail -1; wait", {"timeoutMs": 20000}))
    assert (
        "fork" in r["stdout"] + r["stderr"] or "Resource temporarily unavailable" in r["stdout"] + r["stderr"]
    )


def test_host_does_not_follow_links_planted_in_the_socket_folder(run: Run, bindings: Any) -> None:
    victim = bindings.home / "victim.txt"
    victim.write_text("original")
    sb = bindings.make("planted").get("plant")
    run(sb.exec(f"rm /run/ploy/config.json && ln -s {victim} /run/ploy/config.json"))
    again = bindings.make("planted", sleep_after_s=123).get("plant")  # a restarted host rewrites the config
    assert (
        "123"
        in run(again.exec("cat /run/ploy/config.json; test -L /run/ploy/config.json || echo regular"))[
            "stdout"
        ]
    )
    assert victim.read_text() == "original"


def test_idle_suspension_and_resume(run: Run, bindings: Any) -> None:
    b = bindings.make("idle", sleep_after_s=1.5)
    sb = b.get("sleepy")
    run(sb.writeFile("f.txt", "survives sleep"))
    name = containers("ploy.id", "sleepy")[0].split()[0]
    # a running background process keeps it awake
    proc = run(sb.startProcess("sleep 4"))
    time.sleep(3.5)
    assert container_state(name) == "running"
    assert wait_until(lambda: container_state(name) == "exited", timeout=15)
    t = time.monotonic()
    assert run(sb.readFile("f.txt"))["content"] == "survives sleep"
    assert time.monotonic() - t < 5
    assert run(sb.getProcess(proc["id"]))["status"] == "completed"


def test_processes_do_not_survive_a_stop(run: Run, bindings: Any) -> None:
    b = bindings.make("stopped")
    sb = b.get("stp")
    proc = run(sb.startProcess("echo started; sleep 300"))
    name = containers("ploy.id", "stp")[0].split()[0]
    subprocess.run(["podman", "stop", "-t", "0", name], check=True, capture_output=True)
    info = run(sb.getProcess(proc["id"]))
    assert info["status"] == "failed" and info["exitCode"] is not None
    assert "stopped" in info["error"]
    assert run(sb.getProcessLogs(proc["id"]))["logs"] == "started\n"


def test_warm_pool_hands_out_started_containers(run: Run, bindings: Any) -> None:
    b = bindings.make("pooled", pool=1)

    async def first_get() -> None:
        b.get("warm-0")  # get(), called on the event loop as in a worker, starts filling the pool

    run(first_get())
    assert wait_until(lambda: len(containers("ploy.pool", "1")) >= 1, timeout=30)
    pool_dir = b.manager.pool.dir
    assert wait_until(lambda: pool_dir.is_dir() and len(list(pool_dir.iterdir())) == 1, timeout=30)
    pooled = next(pool_dir.iterdir()).name
    t = time.monotonic()
    assert run(b.get("warm-1").exec("echo fast"))["stdout"] == "fast\n"
    elapsed = time.monotonic() - t
    assert b.manager.entries["warm-1"].token == pooled
    assert elapsed < 0.2, elapsed
    # and it refills
    assert wait_until(
        lambda: len(list(pool_dir.iterdir())) == 1 and next(pool_dir.iterdir()).name != pooled, timeout=30
    )
    # closing the binding removes the unclaimed pool container, not the claimed one
    spare = next(pool_dir.iterdir()).name
    run(b.close())
    assert container_state(f"ploy-{spare}") is None
    assert containers("ploy.id", "warm-0") == [] and container_state(f"ploy-{pooled}") == "running"


def test_two_processes_racing_for_a_new_id_share_one_sandbox(
    sandbox_home: Path, bindings: Any, tmp_path: Path
) -> None:
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\nname: race\nsandbox:\n  SANDBOX: default\n")
    env = {**os.environ, "PLOY_HOME": str(sandbox_home), "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "runtime.cli",
        "sandbox",
        "exec",
        "--create",
        "raced",
        "--",
        "grep -o 'libpod-[0-9a-f]*' /proc/1/cgroup | head -1",
    ]
    procs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len({out for out, _ in outs}) == 1 and outs[0][0].startswith(
        "libpod-"
    )  # one container answered all
    assert len(containers("ploy.id", "raced")) == 1


def test_containerfile_and_template_images(run: Run, bindings: Any, tmp_path: Path, base_image: str) -> None:
    # a Containerfile from the project, with a RUN step, built on first use; the agent layer goes on top
    root = bindings.tmp / "custom-image"
    root.mkdir(exist_ok=True)
    (root / "Containerfile").write_text(f"FROM {base_image}\nRUN echo custom > /etc/custom-marker\n")
    b = bindings.make("custom-image", containerfile="Containerfile")
    sb = b.get("c1")
    try:
        assert run(sb.exec("cat /etc/custom-marker"), timeout=300)["stdout"] == "custom\n"
    finally:
        # the project folder (so the image tag) is new on every run: leave neither image behind
        layer = b.manager.containers._image
        run(b.manager.destroy("c1"))
        if layer:
            user = subprocess.run(
                ["podman", "image", "inspect", "--format", '{{index .Config.Labels "ploy.base"}}', layer],
                capture_output=True,
                text=True,
            ).stdout.strip()
            subprocess.run(["podman", "rmi", layer, *([user] if user else [])], capture_output=True)
    # a template name other than `default` is a local image (here the bare debootstrap base)
    sb2 = bindings.make("template-image", template=base_image).get("t1")
    assert run(sb2.exec("test -e /etc/custom-marker; echo $?; python3 --version"))["stdout"].startswith(
        "1\nPython 3"
    )


def _image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name]).returncode == 0


def test_an_image_build_removes_stale_sandbox_images(
    run: Run, sandbox_image: str, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bindings.sandbox import image as images

    monkeypatch.delenv("PLOY_IMAGE_PRUNE", raising=False)  # what this test checks is the default
    stale = f"localhost/ploy-sandbox:stale-build-{os.getpid()}"
    # the layer on the base as it is now (another checkout may have rebuilt the base since this run's
    # image was made): the rebuild below is then cached, the same image with the stale name on it
    assert run(images.ensure_image(custom_base=base_image, force=True)) == sandbox_image
    subprocess.run(["podman", "tag", sandbox_image, stale], check=True)
    try:
        assert run(images.ensure_image(custom_base=base_image, force=True)) == sandbox_image
        assert not _image_exists(stale) and _image_exists(sandbox_image)
    finally:
        subprocess.run(["podman", "rmi", stale], capture_output=True)


def test_a_build_leaves_another_ploys_freshly_built_image(
    run: Run, sandbox_image: str, base_image: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A second ploy version on the machine (another checkout, a CI run) builds its own image: a build
    here must not remove it while it is new, or the two remove each other's images mid-run."""
    from bindings.sandbox import image as images

    monkeypatch.delenv("PLOY_IMAGE_PRUNE", raising=False)
    other = f"localhost/ploy-sandbox:other-version-{os.getpid()}"
    (tmp_path / "Containerfile").write_text(f"FROM {sandbox_image}\nLABEL ploy.test.other={os.getpid()}\n")
    subprocess.run(
        ["podman", "build", "-q", "--pull=never", "-t", other, str(tmp_path)], check=True, capture_output=True
    )
    try:
        assert run(images.ensure_image(custom_base=base_image, force=True)) == sandbox_image
        assert _image_exists(other)
    finally:
        subprocess.run(["podman", "rmi", other], capture_output=True)


def test_a_binding_whose_image_was_removed_looks_it_up_again(run: Run, bindings: Any) -> None:
    """The image a binding looked up was removed since (pruned by another ploy's build, podman rmi):
    a new sandbox still starts, on the image ensured again, instead of every new sandbox failing."""
    b = bindings.make("image-gone")
    b.manager.containers._image = f"localhost/ploy-sandbox:removed-{os.getpid()}"
    assert run(b.get("after").exec("echo ok"))["stdout"] == "ok\n"
    assert (
        b.manager.containers._image.startswith("localhost/ploy-sandbox:")
        and "removed" not in b.manager.containers._image
    )


def _since(state: dict[str, Any]) -> float:
    return datetime.fromisoformat(state["since"].replace("Z", "+00:00")).timestamp()


def test_get_state_starts_nothing_and_tells_running_sleeping_stopped(run: Run, bindings: Any) -> None:
    b = bindings.make("states", sleep_after_s=1.0)
    sb = b.get("st")
    assert run(sb.getState()) == {"id": "st", "status": "stopped", "since": None}
    assert containers("ploy.id", "st") == []  # asking started nothing
    before = time.time()
    run(sb.exec("true"))
    state = run(sb.getState())
    assert state["status"] == "running" and before - 2 < _since(state) <= time.time() + 1
    # polling the state is no activity: the sandbox still goes to sleep on time
    name = containers("ploy.id", "st")[0].split()[0]
    assert wait_until(lambda: run(sb.getState())["status"] == "sleeping", timeout=15, step=0.2)
    assert wait_until(lambda: container_state(name) == "exited", timeout=10)
    slept = run(sb.getState())
    assert time.time() - 15 < _since(slept) <= time.time() + 1
    time.sleep(0.3)
    assert run(sb.getState()) == slept and container_state(name) == "exited"  # still not woken
    # stopped otherwise (podman stop): stopped, since then
    run(sb.exec("true"))
    assert run(sb.getState())["status"] == "running"
    subprocess.run(["podman", "stop", "-t", "0", name], check=True, capture_output=True)
    stopped = run(sb.getState())
    assert stopped["status"] == "stopped" and time.time() - 30 < _since(stopped) <= time.time() + 1
    run(sb.destroy())
    assert run(sb.getState()) == {"id": "st", "status": "stopped", "since": None}


def test_sleep_after_and_keep_alive_at_run_time(run: Run, bindings: Any) -> None:
    b = bindings.make("idle-settings")  # the binding's default: 10 minutes
    sb, other = b.get("short"), b.get("untouched")
    run(other.exec("true"))
    assert run(sb.setSleepAfter("1s")) == {"sleepAfter": 1.0, "keepAlive": False}
    name = containers("ploy.id", "short")[0].split()[0]
    assert wait_until(lambda: container_state(name) == "exited", timeout=15)
    assert run(other.getState())["status"] == "running"  # per sandbox
    # kept across the sleep (it lives in the sandbox): after waking it sleeps again on its own
    assert run(sb.exec("echo awake"))["stdout"] == "awake\n"
    assert run(sb.setKeepAlive(True)) == {"sleepAfter": 1.0, "keepAlive": True}
    time.sleep(3)
    assert container_state(name) == "running"
    assert run(sb.setKeepAlive(False))["keepAlive"] is False
    assert wait_until(lambda: container_state(name) == "exited", timeout=15)
    assert run(sb.setSleepAfter(0))["sleepAfter"] == 0.0  # 0: never
    for bad in ("soon", -5, True, None):
        with pytest.raises(PloyError) as info:
            run(sb.setSleepAfter(bad))
        assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(PloyError) as info:
        run(sb.setKeepAlive("yes"))
    assert info.value.code == "INVALID_ARGUMENT"


def test_get_metrics(run: Run, bindings: Any) -> None:
    b = bindings.make("metrics", memory="300m", cpus=0.5, pids=200)
    sb = b.get("m")
    before = run(sb.getMetrics())  # never started: zeros, and nothing started
    assert (
        before["status"] == "stopped" and before["memory"]["used"] == 0 and containers("ploy.id", "m") == []
    )
    run(
        sb.exec(
            "head -c 20000000 /dev/urandom > /workspace/blob && curl -s -o /dev/null http://host.containers.internal:1 || true"
        )
    )
    m = run(sb.getMetrics())
    assert m["status"] == "running" and m["id"] == "m"
    assert m["memory"]["limit"] == 300 * 1024 * 1024 and 0 < m["memory"]["used"] < 300 * 1024 * 1024
    assert m["pids"]["limit"] == 200 and m["pids"]["current"] >= 2
    assert m["cpu"]["cores"] == 0.5 and m["cpu"]["totalSeconds"] > 0
    assert m["disk"]["used"] >= 20_000_000 and m["disk"]["measuredAt"]
    assert m["network"]["txBytes"] > 0
    # CPU percent: a busy loop shows, of the sandbox's half core
    proc = run(sb.startProcess("while :; do :; done"))
    time.sleep(2.5)
    busy = run(sb.getMetrics())["cpu"]["percent"]
    run(sb.killProcess(proc["id"], "SIGKILL"))
    assert busy > 50, busy
    # metrics are no activity: polling them does not keep the sandbox awake, and never wakes it
    run(sb.setSleepAfter(1))
    name = containers("ploy.id", "m")[0].split()[0]
    assert wait_until(lambda: run(sb.getMetrics())["status"] == "sleeping", timeout=15, step=0.3)
    assert wait_until(lambda: container_state(name) == "exited", timeout=10)
    asleep = run(sb.getMetrics())
    assert asleep["memory"]["used"] == 0 and asleep["disk"]["used"] >= 20_000_000


def test_get_takes_cloudflares_get_sandbox_options(run: Run, bindings: Any) -> None:
    """Cloudflare's own e2e worker calls getSandbox(ns, id, {keepAlive, transport, sleepAfter,
    enableDefaultSession: false}): the same options on get, applied with the first operation."""
    b = bindings.make("get-options")
    sb = b.get("Ported", {"keepAlive": True, "sleepAfter": "1s", "transport": "rpc", "normalizeId": True})
    assert sb.id == "ported"
    assert run(sb.getState())["status"] == "stopped"  # get and getState start nothing
    assert run(sb.exec("echo up"))["stdout"] == "up\n"
    name = containers("ploy.id", "ported")[0].split()[0]
    time.sleep(3)
    assert container_state(name) == "running"  # kept alive, though sleepAfter is 1 s
    assert run(b.get("ported").setKeepAlive(False)) == {"sleepAfter": 1.0, "keepAlive": False}
    assert wait_until(lambda: container_state(name) == "exited", timeout=15)
    plain = b.get("Ported", {"enableDefaultSession": False})  # no normalizeId: another sandbox
    assert plain.id == "Ported" and run(plain.exec("echo other"))["stdout"] == "other\n"
    assert len(containers("ploy.id", "Ported")) == 1
    bad = (
        {"keepAlive": "yes"},
        {"sleepAfter": "soon"},
        {"normalizeId": 1},
        {"transport": "carrier-pigeon"},
        {"enableDefaultSession": True},
        {"keepAlve": True},
    )
    for options in bad:
        with pytest.raises(PloyError) as info:
            b.get("x", options)
        assert info.value.code == "INVALID_ARGUMENT", options
