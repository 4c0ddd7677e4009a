"""Backups, forks and snapshots against real containers (issue 14, items 1 and 2). Cloudflare's e2e
rules for backups (tests/e2e/backup-workflow.test.ts there) are each one test here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient
from bindings.sandbox.containers import home_label
from tests.bindings.sandbox.helpers import containers
from tests.conftest import REPO

pytestmark = pytest.mark.podman

Run = Callable[..., Any]

TREE = (
    "mkdir -p {d}/src/utils {d}/config {d}/empty && "
    "echo 'console.log(1)' > {d}/src/index.js && echo 'export const V = 1' > {d}/src/utils/v.js && "
    "echo '{{\"port\": 3000}}' > {d}/config/settings.json && "
    "echo space > '{d}/file with spaces.txt' && echo emoji > '{d}/emoji-🎉-file.txt' && "
    "echo unicode > '{d}/日本語ファイル.txt' && ln -s src/index.js {d}/link && "
    "chmod 750 {d}/src && chmod 600 {d}/config/settings.json && head -c 300000 /dev/urandom > {d}/blob.bin"
)
LISTING = "cd {d} && find . -printf '%p %y %m %s %l\\n' | sort && find . -type f -exec md5sum {{}} + | sort"


def code_of(run: Run, coro: Coroutine[Any, Any, Any]) -> str:
    with pytest.raises(PloyError) as info:
        run(coro)
    return info.value.code


@pytest.fixture(scope="module")
def box(bindings: Any) -> SandboxClient:
    return bindings.make("backups").get("backups")


@pytest.fixture
def wd(run: Run, box: SandboxClient) -> str:
    path = f"/workspace/b-{uuid.uuid4().hex[:8]}"
    run(box.mkdir(path))
    return path


def sh(run: Run, sb: SandboxClient, command: str) -> str:
    r = run(sb.exec(command))
    assert r["exitCode"] == 0, r
    return str(r["stdout"])


def test_round_trip_keeps_tree_names_modes_links_and_replaces_what_was_there(
    run: Run, box: SandboxClient, wd: str
) -> None:
    sh(run, box, TREE.format(d=wd))
    before = sh(run, box, LISTING.format(d=wd))
    backup = run(box.createBackup({"dir": wd, "name": "nested tree ✓"}))
    assert set(backup) >= {"id", "dir", "size", "createdAt", "expiresAt"} and backup["dir"] == wd
    assert backup["name"] == "nested tree ✓" and uuid.UUID(backup["id"]).version == 4
    sh(run, box, f"rm -rf {wd}/src && echo new > {wd}/new.txt && echo changed > {wd}/blob.bin")
    assert run(box.restoreBackup(backup["id"])) == {"success": True, "id": backup["id"], "dir": wd}
    assert sh(run, box, LISTING.format(d=wd)) == before  # new.txt is gone: the dir is exactly the backup
    # no scratch folder of the restore is left anywhere
    assert sh(run, box, "ls -a / /workspace | grep -c ploy-restore || true").strip() == "0"
    # an empty directory round-trips as itself
    empty = f"{wd}/empty"
    b2 = run(box.createBackup({"dir": empty}))
    sh(run, box, f"rmdir {empty}")
    run(box.restoreBackup(b2))  # the object createBackup returned works as well as its id
    assert sh(run, box, f"test -d {empty} && ls -A {empty} | wc -l").strip() == "0"


def test_restore_into_another_directory_and_writes_after_restore_do_not_touch_the_backup(
    run: Run, box: SandboxClient, wd: str
) -> None:
    sh(run, box, f"mkdir -p {wd}/orig/sub && echo original > {wd}/orig/file.txt && echo n > {wd}/orig/sub/n")
    backup = run(box.createBackup({"dir": f"{wd}/orig"}))
    other = f"{wd}/restored/deeper"
    assert run(box.restoreBackup(backup["id"], {"targetDir": other}))["dir"] == other
    assert sh(run, box, f"cat {other}/file.txt {other}/sub/n") == "original\nn\n"
    assert sh(run, box, f"cat {wd}/orig/file.txt") == "original\n"
    sh(run, box, f"echo modified > {other}/file.txt && echo extra > {other}/new.txt")
    # Cloudflare's form: restoreBackup({id, dir}) restores into that dir
    run(box.restoreBackup({"id": backup["id"], "dir": other}))
    assert sh(run, box, f"cat {other}/file.txt; ls {other}") == "original\nfile.txt\nsub\n"


def test_bad_options_and_ids_are_typed_errors_that_start_nothing(run: Run, bindings: Any) -> None:
    fresh = bindings.make("backups-errors").get("never-started")
    bad_dirs = ["relative/path", "/workspace/../../../etc/passwd", "/etc", "/proc/x", "", None]
    for d in bad_dirs:
        assert code_of(run, fresh.createBackup({"dir": d})) == "INVALID_BACKUP_CONFIG", d
    assert code_of(run, fresh.createBackup({"dir": "/workspace", "ttl": 0})) == "INVALID_BACKUP_CONFIG"
    assert (
        code_of(run, fresh.createBackup({"dir": "/workspace", "name": "x" * 257})) == "INVALID_BACKUP_CONFIG"
    )
    assert (
        code_of(run, fresh.createBackup({"dir": "/workspace", "gitignore": "yes"})) == "INVALID_BACKUP_CONFIG"
    )
    assert code_of(run, fresh.restoreBackup("not-a-valid-uuid")) == "INVALID_BACKUP_CONFIG"
    assert code_of(run, fresh.restoreBackup(str(uuid.uuid4()))) == "BACKUP_NOT_FOUND"
    assert code_of(run, fresh.deleteBackup(str(uuid.uuid4()))) == "BACKUP_NOT_FOUND"
    assert (
        code_of(run, fresh.restoreBackup(str(uuid.uuid4()), {"targetDir": "rel"})) == "INVALID_BACKUP_CONFIG"
    )
    assert not fresh._mgr.exists("never-started")  # none of that started a container
    assert containers("ploy.id", "never-started") == []


def test_expired_backups_are_refused_then_swept(run: Run, box: SandboxClient, wd: str) -> None:
    sh(run, box, f"echo x > {wd}/f")
    backup = run(box.createBackup({"dir": wd, "ttl": 1}))
    assert backup["id"] in [b["id"] for b in run(box.listBackups())]
    time.sleep(1.2)
    with pytest.raises(PloyError) as info:
        run(box.restoreBackup(backup["id"]))
    assert info.value.code == "BACKUP_EXPIRED" and info.value.details["expiredAt"].endswith("Z")
    assert backup["id"] not in [b["id"] for b in run(box.listBackups())]
    # the sweep removed the archive; the record stays a while, so it still says "expired"
    store = box._mgr.backups.root / backup["id"]
    assert not (store / "data.tar.zst").exists() and (store / "meta.json").exists()
    assert code_of(run, box.restoreBackup(backup["id"])) == "BACKUP_EXPIRED"


def test_a_damaged_archive_or_a_bad_target_leaves_the_target_as_it_was(
    run: Run, box: SandboxClient, wd: str
) -> None:
    sh(run, box, f"mkdir -p {wd}/src && head -c 200000 /dev/urandom > {wd}/src/data && echo v1 > {wd}/src/v")
    backup = run(box.createBackup({"dir": f"{wd}/src"}))
    sh(run, box, f"echo v2 > {wd}/src/v")
    before = sh(run, box, LISTING.format(d=f"{wd}/src"))
    archive = box._mgr.backups.root / backup["id"] / "data.tar.zst"
    good = archive.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    archive.write_bytes(bytes(damaged))
    assert code_of(run, box.restoreBackup(backup["id"])) == "BACKUP_RESTORE_FAILED"
    assert sh(run, box, LISTING.format(d=f"{wd}/src")) == before
    assert (
        code_of(run, box.restoreBackup(backup["id"], {"targetDir": f"{wd}/fresh"})) == "BACKUP_RESTORE_FAILED"
    )
    assert sh(run, box, f"test -e {wd}/fresh && echo left || echo none") == "none\n"  # made, then removed
    assert sh(run, box, "ls -a / /workspace | grep -c ploy-restore || true").strip() == "0"
    archive.write_bytes(good)
    # a file where the directory should be: typed error, nothing changed
    sh(run, box, f"echo file > {wd}/plain")
    assert code_of(run, box.restoreBackup(backup["id"], {"targetDir": f"{wd}/plain"})) == "NOT_A_DIRECTORY"
    assert sh(run, box, f"cat {wd}/plain") == "file\n"
    run(box.restoreBackup(backup["id"]))  # the backup itself is fine
    assert sh(run, box, f"cat {wd}/src/v") == "v1\n"


def test_concurrent_backups_and_restores_do_not_mix(run: Run, box: SandboxClient, wd: str) -> None:
    sh(run, box, f"mkdir -p {wd}/a {wd}/b && echo content-a > {wd}/a/f && echo content-b > {wd}/b/f")
    sh(run, box, f"head -c 2000000 /dev/urandom > {wd}/a/big && head -c 2000000 /dev/urandom > {wd}/b/big")
    sums = sh(run, box, f"md5sum {wd}/a/big {wd}/b/big")

    async def both() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(box.createBackup({"dir": f"{wd}/a"}), box.createBackup({"dir": f"{wd}/b"}))
        )

    ba, bb = run(both())
    assert ba["id"] != bb["id"]
    sh(run, box, f"rm -rf {wd}/a/* {wd}/b/*")

    async def restore() -> None:
        await asyncio.gather(box.restoreBackup(ba["id"]), box.restoreBackup(bb["id"]))

    run(restore())
    assert sh(run, box, f"cat {wd}/a/f {wd}/b/f") == "content-a\ncontent-b\n"
    assert sh(run, box, f"md5sum {wd}/a/big {wd}/b/big") == sums


def test_gitignore_and_excludes(run: Run, box: SandboxClient, wd: str) -> None:
    app = f"{wd}/repo/apps/web"
    sh(
        run,
        box,
        f"git init -q {wd}/repo && mkdir -p {app}/dist {app}/node_modules/m {app}/.cache && "
        f"printf '*.log\\n' > {wd}/repo/.gitignore && printf 'dist/\\n' > {app}/.gitignore && "
        f"echo keep > {app}/keep.txt && echo b > {app}/dist/app.js && echo l > {app}/server.log && "
        f"echo m > {app}/node_modules/m/i.js && echo c > {app}/.cache/x",
    )
    plain = run(box.createBackup({"dir": app}))
    ignoring = run(
        box.createBackup({"dir": app, "gitignore": True, "excludes": ["node_modules", ".cache/**"]})
    )
    sh(run, box, f"rm -rf {app} && mkdir -p {app}")
    run(box.restoreBackup(ignoring["id"]))
    assert sh(run, box, f"cd {app} && find . -type f | sort") == "./.gitignore\n./keep.txt\n"
    run(box.restoreBackup(plain["id"]))  # gitignore is off by default: everything is there
    assert "./dist/app.js" in sh(run, box, f"cd {app} && find . -type f")
    # outside a repository gitignore changes nothing
    sh(run, box, f"mkdir -p {wd}/nogit/dist && echo d > {wd}/nogit/dist/a")
    b = run(box.createBackup({"dir": f"{wd}/nogit", "gitignore": True}))
    sh(run, box, f"rm -rf {wd}/nogit")
    run(box.restoreBackup(b["id"]))
    assert sh(run, box, f"cat {wd}/nogit/dist/a") == "d\n"


def test_backups_survive_destroy_and_a_restarted_ploy_dev(run: Run, bindings: Any) -> None:
    first = bindings.make("backups-persist")
    sb = first.get("orig")
    run(sb.exec("mkdir -p /workspace/app && echo kept > /workspace/app/f"))
    backup = run(sb.createBackup({"dir": "/workspace/app", "name": "survivor"}))
    run(sb.destroy())
    run(first.close())
    again = bindings.make("backups-persist")  # a restarted `ploy dev`: nothing in memory
    listed = run(again.get("other").listBackups())
    assert [b["id"] for b in listed] == [backup["id"]] and listed[0]["name"] == "survivor"
    other = again.get("other")
    run(other.restoreBackup(backup["id"]))
    assert run(other.exec("cat /workspace/app/f"))["stdout"] == "kept\n"
    # stored under ploy's state home, compressed (zstd), with its hash recorded
    meta = json.loads((again.manager.backups.root / backup["id"] / "meta.json").read_text())
    assert len(meta["sha256"]) == 64 and meta["tarSize"] > meta["size"]
    assert run(other.deleteBackup(backup["id"])) == {"id": backup["id"], "deleted": True}
    assert run(other.listBackups()) == []
    assert code_of(run, other.restoreBackup(backup["id"])) == "BACKUP_NOT_FOUND"
    # another project does not see this project's backups
    b2 = run(other.createBackup({"dir": "/workspace/app"}))
    stranger = bindings.make("backups-stranger").get("s")
    assert code_of(run, stranger.restoreBackup(b2["id"])) == "BACKUP_NOT_FOUND"


def test_large_backups_stream_instead_of_buffering_on_the_host(run: Run, box: SandboxClient, wd: str) -> None:
    """What the host holds at once is a few pieces in flight, whatever the size of the backup."""
    sh(run, box, f"head -c 40000000 /dev/urandom > {wd}/big")
    tracemalloc.start()
    try:
        backup = run(box.createBackup({"dir": wd}))
        sh(run, box, f"rm {wd}/big")
        run(box.restoreBackup(backup["id"]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert backup["size"] > 40_000_000
    assert peak < 20_000_000, f"the host held {peak} bytes at once for a 40 MB backup"
    assert sh(run, box, f"stat -c %s {wd}/big") == "40000000\n"


# ---- forks ------------------------------------------------------------------------------------------


def test_fork_from_a_backup_with_and_without_the_pool(run: Run, bindings: Any) -> None:
    for pool in (1, 0):
        b = bindings.make(f"fork-backup-{pool}", pool=pool)
        src = b.get("src")
        run(
            src.exec(
                "mkdir -p /workspace/p && echo from-backup > /workspace/p/a && cd /workspace && ln -s p/a l"
            )
        )
        backup = run(src.createBackup({"dir": "/workspace"}))
        fork = b.get(f"fork-{pool}", {"from": backup["id"]})
        assert run(fork.exec("cat /workspace/p/a /workspace/l"))["stdout"] == "from-backup\nfrom-backup\n"
        run(fork.writeFile("/workspace/p/a", "changed in fork"))
        assert run(src.exec("cat /workspace/p/a"))["stdout"] == "from-backup\n"
        # `from` applies to new ids only: asking again does not reset the fork (`from_=`: Python's spelling)
        same = b.get(f"fork-{pool}", from_=backup["id"])
        assert run(same.readFile("/workspace/p/a"))["content"] == "changed in fork"


def test_a_fork_that_cannot_be_made_leaves_no_sandbox(run: Run, bindings: Any) -> None:
    b = bindings.make("fork-bad")
    with pytest.raises(PloyError) as info:
        b.get("x", {"from": "not-an-id"})
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(PloyError) as info:
        b.get("x", {"form": str(uuid.uuid4())})  # a typo is not an empty sandbox
    assert info.value.code == "INVALID_ARGUMENT" and "did you mean 'from'?" in info.value.message
    unknown = b.get("fork-unknown", {"from": str(uuid.uuid4())})
    assert code_of(run, unknown.exec("true")) == "BACKUP_NOT_FOUND"
    assert not b.manager.exists("fork-unknown") and containers("ploy.id", "fork-unknown") == []
    assert code_of(run, unknown.exec("true")) == "BACKUP_NOT_FOUND"  # still the fork, not an empty sandbox
    run(unknown.destroy())  # forgets the `from`
    assert run(b.get("fork-unknown").exec("echo plain"))["stdout"] == "plain\n"
    ghost = b.get("fork-ghost", {"from": "snap-0123456789abcdef"})
    assert code_of(run, ghost.exec("true")) == "SNAPSHOT_NOT_FOUND"
    assert containers("ploy.id", "fork-ghost") == []


def test_snapshot_forks_keep_installed_files_and_env_but_no_processes(
    run: Run, bindings: Any, sandbox_home: Path
) -> None:
    b = bindings.make("snapshots")
    src = b.get("snap-src")
    run(
        src.exec(
            "printf '#!/bin/sh\\necho installed tool\\n' > /usr/local/bin/tool && chmod +x /usr/local/bin/tool"
        )
    )
    run(src.exec("mkdir -p /workspace/w && echo ws > /workspace/w/f"))
    run(src.setEnvVars({"FROM_SNAPSHOT": "yes"}))
    proc = run(src.startProcess("sleep 300"))
    snap = run(src.snapshot({"name": "tooling"}))
    assert snap["id"].startswith("snap-") and snap["name"] == "tooling" and snap["sourceId"] == "snap-src"
    assert run(src.getProcess(proc["id"]))["status"] == "running"  # the source keeps running
    fork = b.get("snap-fork", {"from": snap["id"]})
    r = run(fork.exec("tool; cat /workspace/w/f; echo $FROM_SNAPSHOT $PLOY_SNAPSHOT"))
    assert r["stdout"] == f"installed tool\nws\nyes {snap['id']}\n"
    assert run(fork.listProcesses()) == []  # process records of the source are not the fork's
    # labelled for this project and this home, so prune and cleanup find them
    out = json.loads(_podman("image", "inspect", snap["image"]))[0]["Labels"]
    assert out["ploy.home"] == home_label(sandbox_home) and out["ploy.project"] == b.ctx.project_key
    # snapshots outlive the source and a restarted ploy dev
    run(src.destroy())
    again = bindings.make("snapshots")
    assert [s["id"] for s in run(again.get("any").listSnapshots())] == [snap["id"]]
    # another project neither lists it nor forks from it
    other = bindings.make("snapshots-other")
    assert run(other.get("any").listSnapshots()) == []
    assert code_of(run, other.get("thief", {"from": snap["id"]}).exec("true")) == "SNAPSHOT_NOT_FOUND"
    fork2 = again.get("snap-fork-2", {"from": snap})
    assert run(fork2.exec("tool"))["stdout"] == "installed tool\n"
    # deleting it keeps its forks running; the image goes once they are gone
    assert run(fork2.deleteSnapshot(snap["id"])) == {"id": snap["id"], "deleted": True}
    assert run(fork2.listSnapshots()) == []
    assert code_of(run, fork2.deleteSnapshot(snap["id"])) == "SNAPSHOT_NOT_FOUND"
    assert run(fork.exec("tool"))["stdout"] == "installed tool\n"
    run(fork.destroy())
    run(fork2.destroy())
    assert _podman("images", "-q", "--filter", f"label=ploy.snapshot.id={snap['id']}").strip() == ""
    # a deleted snapshot whose fork went away behind ploy's back: `ploy sandbox prune` removes its image
    second = run(again.get("snap-src-2").snapshot())
    orphan = again.get("snap-fork-3", {"from": second})
    run(orphan.exec("true"))
    run(orphan.deleteSnapshot(second))
    assert _podman("images", "-q", "--filter", f"label=ploy.snapshot.id={second['id']}").strip() != ""
    _podman("rm", "-f", "-t", "0", again.manager.entries["snap-fork-3"].container)
    pruned = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "sandbox", "prune", "--project", str(again.ctx.project_root)],
        env={**os.environ, "PLOY_HOME": str(sandbox_home)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pruned.returncode == 0, pruned.stderr
    assert _podman("images", "-q", "--filter", f"label=ploy.snapshot.id={second['id']}").strip() == ""


def test_backups_snapshots_and_forks_take_any_sandbox_id(run: Run, bindings: Any) -> None:
    """Ids are any string (issue 13): a slash, a colon, quotes, a backslash, `$`, a tab, any script. Such
    an id and a name like it come back unchanged from a snapshot's labels (Podman keeps a LABEL's JSON
    escapes as they are written)."""
    b = bindings.make("odd-ids")
    src_id, fork_id = "tenant/42:job", 'Ünï 日本 "q" \\ $HOME\tx'
    name = 'név 日本 "q" \\ $HOME'
    src = b.get(src_id)
    run(src.exec("echo odd > /workspace/o"))
    backup = run(src.createBackup({"dir": "/workspace", "name": name}))
    assert backup["name"] == name and backup["id"] in [x["id"] for x in run(src.listBackups())]
    fork = b.get(fork_id, {"from": backup["id"]})
    assert run(fork.exec("cat /workspace/o"))["stdout"] == "odd\n"
    snap = run(fork.snapshot({"name": name}))
    assert (snap["sourceId"], snap["name"]) == (fork_id, name)
    [listed] = [s for s in run(fork.listSnapshots()) if s["id"] == snap["id"]]
    assert (listed["sourceId"], listed["name"]) == (fork_id, name)
    twin = b.get(fork_id + "/twin", {"from": snap["id"]})
    assert run(twin.exec("cat /workspace/o"))["stdout"] == "odd\n"
    assert sorted(x["id"] for x in run(b.manager.list())) == sorted([src_id, fork_id, fork_id + "/twin"])
    for sb in (twin, fork, src):
        run(sb.destroy())
    run(src.deleteSnapshot(snap["id"]))
    run(src.deleteBackup(backup["id"]))


def _podman(*args: str) -> str:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=True).stdout


def test_a_cancelled_restore_is_all_or_nothing_and_leaves_no_worker(
    run: Run, box: SandboxClient, wd: str
) -> None:
    import threading

    sh(run, box, f"head -c 40000000 /dev/urandom > {wd}/big && echo v1 > {wd}/v")
    backup = run(box.createBackup({"dir": wd}))
    sh(run, box, f"echo v2 > {wd}/v && rm {wd}/big")
    threads = threading.active_count()

    async def cancelled() -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(box.restoreBackup(backup["id"]), 0.15)

    run(cancelled())
    deadline = time.monotonic() + 10
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads  # the decompressing thread ended with the restore
    time.sleep(0.5)  # the agent learns of the cut connection, then removes what it staged
    # all or nothing: cut before the upload was whole, nothing changed; after, the restore completed
    assert sh(run, box, f"cat {wd}/v; ls {wd}") in ("v2\nv\n", "v1\nbig\nv\n")
    assert sh(run, box, "ls -a / /workspace | grep -c ploy-restore || true").strip() == "0"
    # and a connection cut for certain mid-upload (the first MB sent, then the caller is gone)
    sh(run, box, f"rm -rf {wd}/* && echo v3 > {wd}/v")
    mgr = box._mgr
    meta, path = mgr.backups.valid(backup["id"])

    async def cut() -> None:
        async def first_piece_only() -> AsyncIterator[bytes]:
            async for piece in mgr.backups.pieces(meta, path):
                yield piece
                raise asyncio.CancelledError

        request = {"op": "extractArchive", "dir": wd, "crc32": meta["crc32"], "size": meta["tarSize"]}
        with contextlib.suppress(asyncio.CancelledError):
            await mgr.call_entry(await mgr.entry("backups"), request, upload=first_piece_only())

    run(cut())
    time.sleep(0.5)
    assert sh(run, box, f"cat {wd}/v; ls {wd}") == "v3\nv\n"
    assert sh(run, box, "ls -a / /workspace | grep -c ploy-restore || true").strip() == "0"
