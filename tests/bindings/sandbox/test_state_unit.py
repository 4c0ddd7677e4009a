"""Fast checks of the state features' pieces (no Podman): the two archivers agree, backup options and
ids, the store's expiry sweep, `from` parsing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from bindings.context import BindingContext
from bindings.errors import PloyError
from bindings.sandbox import backups, forks, image
from bindings.sandbox.client import SandboxClient

AGENT = Path(image.AGENT_DIR)


def agent_layout(tmp: Path) -> Path:
    """The agent's folder as the image lays it out (its modules plus the shared ones)."""
    for dst, src in image._layer_files():
        if dst.startswith("agent/"):
            target = tmp / dst
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    return tmp / "agent"


def make_tree(root: Path) -> None:
    for rel in ("a/x.log", "a/node_modules/m/i.js", "b/keep", "b/sp ace.txt", "c/z", "c/deep/z", "日本.txt"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    (root / "a" / "lnk").symlink_to("../b")
    (root / "empty").mkdir()
    (root / ".ploy-restore-abc").mkdir()  # a restore's scratch folder: never archived


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar on the host")
def test_gnu_tar_and_the_tarfile_fallback_archive_the_same_and_read_each_other(tmp_path: Path) -> None:
    agent = agent_layout(tmp_path / "layout")
    src = tmp_path / "src"
    make_tree(src)
    ignored = tmp_path / "ignored"
    ignored.write_text("./b/keep\n")
    patterns = ["node_modules", "*.log", "c/deep"]
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import backups; "
        "print(json.dumps([backups._create_command(sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], g) "
        "for g in (True, False)]))"
    )
    env = {**os.environ, "PLOY_RUN_DIR": str(tmp_path / "run"), "PLOY_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run(
        [sys.executable, "-S", "-c", script, str(agent), str(src), json.dumps(patterns), str(ignored)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    gnu, fallback = json.loads(out.stdout)
    listings = []
    for cmd in (gnu, fallback):
        tar = subprocess.run(cmd, capture_output=True, check=True).stdout
        listed = subprocess.run(["tar", "t"], input=tar, capture_output=True, check=True).stdout.decode()
        listings.append(sorted(listed.splitlines()))
    assert listings[0] == listings[1]
    names = {n.rstrip("/") for n in listings[0]}
    assert {"./a/lnk", "./b/sp ace.txt", "./c/z", "./empty", "./日本.txt"} <= names
    assert not names & {"./a/x.log", "./a/node_modules", "./b/keep", "./c/deep", "./.ploy-restore-abc"}
    # each unpacks the other's archive into the same tree
    for make, unpack in ((gnu, fallback), (fallback, gnu)):
        dest = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        dest.mkdir()
        tar = subprocess.run(make, capture_output=True, check=True).stdout
        extract = (
            [sys.executable, "-S", str(agent / "tarpy.py"), "x", str(dest)]
            if unpack is fallback
            else ["tar", "-x", "-f", "-", "-C", str(dest)]
        )
        subprocess.run(extract, input=tar, check=True)
        assert (dest / "b" / "sp ace.txt").read_text() == "b/sp ace.txt"
        assert os.readlink(dest / "a" / "lnk") == "../b" and (dest / "empty").is_dir()
        assert not (dest / "a" / "x.log").exists()


def test_backup_options_and_ids() -> None:
    ok = backups.create_options({"dir": "/workspace/app/", "name": "名前 with spaces", "ttl": 10})
    assert ok == {
        "dir": "/workspace/app",
        "name": "名前 with spaces",
        "ttl": 10,
        "gitignore": False,
        "excludes": [],
    }
    bad: list[dict[str, Any]] = [
        {"dir": "workspace"},
        {"dir": "/workspace/../etc"},
        {"dir": "/etc/x"},
        {"dir": "/workspace", "ttl": -1},
        {"dir": "/workspace", "ttl": True},
        {"dir": "/workspace", "name": "a\nb"},
        {"dir": "/workspace", "excludes": "node_modules"},
    ]
    for opts in bad:
        with pytest.raises(PloyError) as info:
            backups.create_options(opts)
        assert info.value.code == "INVALID_BACKUP_CONFIG", opts
    bid = str(uuid.uuid4())
    assert backups.backup_id(bid) == bid and backups.backup_id({"id": bid, "dir": "/workspace"}) == bid
    for value in ("not-a-valid-uuid", bid.upper(), 42, None, {"dir": "/x"}):
        with pytest.raises(PloyError) as info:
            backups.backup_id(value)
        assert info.value.code == "INVALID_BACKUP_CONFIG"


def test_the_sweep_drops_expired_archives_then_their_records(tmp_path: Path) -> None:
    ctx = BindingContext(
        project_root=tmp_path, project_name="p", project_key="k", state_dir=tmp_path / "home"
    )
    store = backups.BackupStore(ctx)
    now = time.time()
    cases = {"live": now + 100, "expired": now - 100, "old": now - backups.TOMBSTONE_S - 100}
    ids = {}
    for label, expires in cases.items():
        bid = ids[label] = str(uuid.uuid4())
        d = store.root / bid
        d.mkdir(parents=True)
        (d / backups.DATA).write_bytes(b"x")
        meta = {"id": bid, "dir": "/workspace", "name": label, "size": 1, "createdAt": now - 200, "ttl": 1}
        (d / "meta.json").write_text(json.dumps({**meta, "expiresAt": expires}))
    partial = store.root / str(uuid.uuid4())
    partial.mkdir()
    os.utime(partial, (now - backups.PARTIAL_S - 10, now - backups.PARTIAL_S - 10))
    assert [b["name"] for b in store.live()] == ["live"]
    assert (store.root / ids["live"] / backups.DATA).exists()
    assert (
        not (store.root / ids["expired"] / backups.DATA).exists() and (store.root / ids["expired"]).is_dir()
    )
    assert not (store.root / ids["old"]).exists() and not partial.exists()
    with pytest.raises(PloyError) as info:
        store.valid(ids["expired"])
    assert info.value.code == "BACKUP_EXPIRED"


def test_from_takes_backup_and_snapshot_ids_or_their_objects() -> None:
    bid = str(uuid.uuid4())
    assert forks.parse_from(bid) == forks.Origin("backup", bid)
    assert forks.parse_from({"id": bid, "dir": "/workspace"}) == forks.Origin("backup", bid)
    snap = forks.parse_from({"id": "snap-0123456789abcdef", "name": None})
    assert snap.kind == "snapshot" and snap.image == "localhost/ploy-snapshot:snap-0123456789abcdef"
    for value in ("nope", "snap-xyz", 3, None):
        with pytest.raises(PloyError) as info:
            forks.parse_from(value)
        assert info.value.code == "INVALID_ARGUMENT"


def test_state_methods_reject_unknown_option_names_before_doing_anything() -> None:
    """Method.options (spec.py) is checked for these methods too: a typo such as `timeoutMS` is an
    INVALID_ARGUMENT naming it, with the closest name, before any container or store is touched (the
    client has no manager here, so anything past the check would fail differently)."""
    client = SandboxClient(None, "unit")  # type: ignore[arg-type]
    calls = {
        "timeoutMs": client.runCode("1", {"timeoutMS": 5}),
        "context": client.runCodeStream("1", {"contxt": "c"}),
        "language": client.createCodeContext({"lang": "python"}),
        "exclude": client.watch("/workspace", {"excludes": ["x"]}),
        "since": client.checkChanges("/workspace", {"snce": "v"}),
        "gitignore": client.createBackup({"dir": "/workspace", "gitIgnore": True}),
        "targetDir": client.restoreBackup(str(uuid.uuid4()), {"target": "/tmp"}),
        "name": client.snapshot({"nam": "x"}),
    }
    for hint, call in calls.items():
        with pytest.raises(PloyError) as info:
            asyncio.run(call)
        assert info.value.code == "INVALID_ARGUMENT" and "unknown option" in info.value.message, hint
        assert f"did you mean {hint!r}?" in info.value.message, info.value.message
    # Cloudflare's createBackup option for local development passes the check (ploy's store is always
    # local), so the error is about `dir`
    with pytest.raises(PloyError) as info:
        asyncio.run(client.createBackup({"dir": "workspace", "localBucket": True}))
    assert info.value.code == "INVALID_BACKUP_CONFIG" and "dir" in info.value.message
