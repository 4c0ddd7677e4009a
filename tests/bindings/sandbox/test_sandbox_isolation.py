"""Issue 11 items 9 and 10: root in a sandbox is not root on the host, and a sandbox's files have a disk
limit (bindings/sandbox/disks.py), tested from inside real containers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxBinding, disks
from bindings.sandbox.options import USERNS_SETTING
from bindings.sandbox.state import container_name
from tests.bindings.sandbox.conftest import Bindings

Run = Callable[..., Any]
MIB = 1024 * 1024


def test_the_user_namespace_setting_is_the_one_podman_gets() -> None:
    assert USERNS_SETTING == disks.USERNS_SETTING
    assert f"0:{disks.USERNS_BASE}:{disks.USERNS_SIZE}" in disks.USERNS_FLAGS


def _token_dir(b: SandboxBinding, sandbox_id: str) -> Path:
    token = b.manager.state.read_claim(sandbox_id)
    assert token is not None
    return b.manager.state.token_dir(token)


def _mounted(path: Path) -> bool:
    return any(line.split()[4] == str(path) for line in Path("/proc/self/mountinfo").read_text().splitlines())


def _loop_files() -> str:
    return subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout


@pytest.mark.podman
def test_root_in_a_sandbox_is_not_root_on_the_host(run: Run, bindings: Bindings) -> None:
    b = bindings.make("userns")
    sb = b.get("u")
    out = run(sb.exec("id -u; cat /proc/self/uid_map; echo hi > /run/ploy/from-sandbox; mkdir /run/ploy/d"))
    assert out["exitCode"] == 0, out
    uid, mapping = out["stdout"].split("\n", 1)
    assert uid == "0"  # root inside: apt, pip and chown work as before
    assert mapping.split() == ["0", str(disks.USERNS_BASE), str(disks.USERNS_SIZE)]
    d = _token_dir(b, "u")
    for name in ("from-sandbox", "d", "a.sock"):  # the run folder is the one host folder it writes
        st = os.lstat(d / "run" / name)
        assert (st.st_uid, st.st_gid) == (disks.USERNS_BASE, disks.USERNS_BASE), name
    # what the host writes there stays readable by the agent, and its answers keep coming
    b.manager.state.write_config(d)
    assert run(sb.exec("test -r /run/ploy/config.json && echo ok"))["stdout"] == "ok\n"
    # root of the sandbox cannot act as host root on what the host owns: its files appear as nobody
    out = run(sb.exec("stat -c %u /run/ploy/config.json; touch /run/ploy/config.json"))
    assert out["stdout"].split("\n")[0] == "65534", out
    assert out["exitCode"] != 0 and "Permission denied" in out["stderr"], out


@pytest.mark.podman
def test_writing_past_the_disk_limit_is_enospc_and_the_sandbox_recovers(run: Run, bindings: Bindings) -> None:
    b = bindings.make("disk", disk="64m")
    sb = b.get("d")
    df = run(sb.exec("df -B1 --output=size / | tail -1"))
    assert 40 * MIB < int(df["stdout"]) <= 64 * MIB, df  # the limit, less ext4's own metadata
    out = run(sb.exec("dd if=/dev/zero of=/workspace/big bs=1M count=100"))
    assert out["exitCode"] != 0 and "No space left on device" in out["stderr"], out
    with pytest.raises(PloyError) as info:
        run(sb.writeFile("/workspace/more.bin", b"x" * (8 * MIB)))
    assert info.value.code == "NO_SPACE", info.value
    assert not run(sb.exists("/workspace/more.bin"))["exists"]  # no half file left behind
    # the host's disk holds at most the limit
    img = _token_dir(b, "d") / disks.DISK_FILE
    assert img.stat().st_size == 64 * MIB and img.stat().st_blocks * 512 <= 64 * MIB
    run(sb.deleteFile("/workspace/big"))
    run(sb.writeFile("/workspace/more.bin", b"x" * (8 * MIB)))
    assert run(sb.exec("stat -c %s /workspace/more.bin"))["stdout"] == f"{8 * MIB}\n"
    assert run(sb.exec("echo fine"))["stdout"] == "fine\n"


@pytest.mark.podman
def test_a_disk_limited_sandbox_keeps_its_files_across_stops_reboots_and_restarts(
    run: Run, bindings: Bindings
) -> None:
    b = bindings.make("disk-life", disk="128m")
    sb = b.get("life")
    run(sb.writeFile("/workspace/keep.txt", "kept"))
    run(sb.exec("echo etc > /etc/written-here"))
    d = _token_dir(b, "life")
    name = container_name(d.name)
    subprocess.run(["podman", "stop", "-t", "0", name], check=True, capture_output=True)
    assert run(sb.readFile("/workspace/keep.txt"))["content"] == "kept"
    # a reboot: the container stopped and the disk's mount gone; the next call mounts it again
    subprocess.run(["podman", "stop", "-t", "0", name], check=True, capture_output=True)
    subprocess.run(["umount", str(d / disks.MOUNT_DIR)], check=True)
    assert not _mounted(d / disks.MOUNT_DIR)
    assert run(sb.exec("cat /workspace/keep.txt /etc/written-here"))["stdout"] == "keptetc\n"
    assert _mounted(d / disks.MOUNT_DIR)
    # a restarted `ploy dev` (a new binding object) reaches the same files
    again = bindings.make("disk-life", disk="128m").get("life")
    assert run(again.readFile("/workspace/keep.txt"))["content"] == "kept"


@pytest.mark.podman
def test_snapshots_of_a_disk_limited_sandbox_carry_its_files(run: Run, bindings: Bindings) -> None:
    b = bindings.make("disk-snap", disk="128m")
    sb = b.get("src")
    run(sb.exec("mkdir -p /opt/tool && echo v1 > /opt/tool/version && echo w > /workspace/w"))
    snap = run(sb.snapshot())
    try:
        fork = b.get("fork", {"from": snap["id"]})
        out = run(fork.exec("cat /opt/tool/version /workspace/w; df -B1 --output=size / | tail -1"))
        lines = out["stdout"].split()
        assert lines[:2] == ["v1", "w"] and int(lines[2]) <= 128 * MIB, out
        # what the source's root wrote is root's in the fork too (Podman commits the host's ids)
        out = run(
            fork.exec(
                "stat -c %u:%g /opt/tool/version && echo v2 > /opt/tool/version && cat /opt/tool/version"
            )
        )
        assert out["stdout"] == "0:0\nv2\n", out
    finally:
        run(b.get("fork").destroy())
        run(sb.deleteSnapshot(snap["id"]))


@pytest.mark.podman
def test_nothing_is_left_mounted_after_destroy_or_a_removal_behind_plays_back(
    run: Run, bindings: Bindings
) -> None:
    b = bindings.make("disk-leak", disk="64m")
    sb = b.get("gone")
    run(sb.writeFile("/workspace/old", "x"))
    d = _token_dir(b, "gone")
    img = str(d / disks.DISK_FILE)
    assert _mounted(d / disks.MOUNT_DIR) and img in _loop_files()
    # removed behind ploy's back: `podman rm` leaves the disk; the next call makes a new empty sandbox
    # and frees the old disk
    subprocess.run(["podman", "rm", "-f", "-t", "0", container_name(d.name)], check=True, capture_output=True)
    assert run(sb.exists("/workspace/old"))["exists"] is False
    assert run(sb.exec("df -B1 --output=used / | tail -1"))["exitCode"] == 0
    run(sb.destroy())
    assert not _mounted(d / disks.MOUNT_DIR) and not d.exists()
    assert img not in _loop_files()


@pytest.mark.podman
def test_recreate_applies_a_new_disk_limit(run: Run, bindings: Bindings) -> None:
    old = bindings.make("disk-re", disk="64m")
    run(old.get("r").writeFile("/workspace/kept", "yes"))
    new = bindings.make("disk-re", disk="256m")
    assert new.manager.outdated() == [("r", ["disk 64m -> 256m"])]
    old_dir = _token_dir(old, "r")
    run(new.manager.recreate("r"))
    out = run(new.get("r").exec("cat /workspace/kept; echo; df -B1 --output=size / | tail -1"))
    kept, size = out["stdout"].split()
    assert kept == "yes" and 128 * MIB < int(size) <= 256 * MIB, out
    assert not _mounted(old_dir / disks.MOUNT_DIR) and not old_dir.exists()


@pytest.mark.podman
def test_disk_0_means_no_limit(run: Run, bindings: Bindings) -> None:
    b = bindings.make("nodisk", disk="0")
    sb = b.get("n")
    assert run(sb.exec("echo ok"))["stdout"] == "ok\n"
    assert not (_token_dir(b, "n") / disks.DISK_FILE).exists()


@pytest.mark.podman
def test_prune_frees_the_disk_of_a_container_removed_behind_plays_back(
    run: Run, bindings: Bindings, sandbox_home: Path, tmp_path: Path
) -> None:
    from tests.bindings.sandbox.test_sandbox_cli import ploy

    b = bindings.make("disk-prune", disk="64m")
    run(b.get("p").exec("true"))
    d = _token_dir(b, "p")
    subprocess.run(["podman", "rm", "-f", "-t", "0", container_name(d.name)], check=True, capture_output=True)
    assert _mounted(d / disks.MOUNT_DIR)
    (tmp_path / "ploy.yaml").write_text(
        "kind: dynamic\nname: prune-disks\nsandbox:\n  SANDBOX:\n    pool: 0\n"
    )
    os.utime(d, (1, 1))  # not one being made right now
    r = ploy(sandbox_home, tmp_path, "sandbox", "prune")
    assert r.returncode == 0 and "disk(s) of sandboxes whose container was removed" in r.stdout, r.stdout
    assert not _mounted(d / disks.MOUNT_DIR) and not (d / disks.DISK_FILE).exists()
    assert run(b.get("p").exec("echo back"))["stdout"] == "back\n"  # the id gets a new empty sandbox


@pytest.mark.podman
def test_destroy_removes_the_container_every_time(run: Run, bindings: Bindings) -> None:
    """Podman 4.3's `rm -f` of a userns container failed with EBUSY on its host-side /dev/shm mount about
    one time in two (so destroy, and a user's own `podman rm -f`, left containers behind): sandboxes get
    an IPC namespace without podman's shm mount, and /dev/shm is a tmpfs mounted inside."""
    b = bindings.make("rm-often")
    names = []
    for i in range(6):
        sb = b.get(f"r{i}")
        assert run(sb.exec("echo x > /dev/shm/t && cat /dev/shm/t"))["stdout"] == "x\n"
        name = container_name(_token_dir(b, f"r{i}").name)
        if i % 2:
            run(sb.destroy())
            names.append(name)
        else:  # behind ploy's back
            rm = subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, text=True)
            assert rm.returncode == 0, rm.stderr
    left = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True)
    assert not set(names) & set(left.stdout.split()), left.stdout
