"""File watching against real containers (issue 14, item 3): watch() streams and checkChanges()."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


@pytest.fixture(scope="module")
def box(bindings: Any) -> SandboxClient:
    return bindings.make("watching").get("watching")


@pytest.fixture
def wd(run: Run, box: SandboxClient) -> str:
    path = f"/workspace/w-{uuid.uuid4().hex[:8]}"
    run(box.mkdir(path))
    return path


def parse_sse(buf: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Complete events in `buf` (checking that `event:` names the data's type), and the rest."""
    events = []
    while b"\n\n" in buf:
        block, buf = buf.split(b"\n\n", 1)
        fields = dict(line.split(": ", 1) for line in block.decode().split("\n"))
        event = json.loads(fields["data"])
        assert fields["event"] == event["type"]
        events.append(event)
    return events, buf


async def collect(
    stream: AsyncIterator[bytes], until: Callable[[list[dict[str, Any]]], bool], timeout: float = 10
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    buf = b""
    it = aiter(stream)
    deadline = time.monotonic() + timeout
    try:
        while not until(events):
            chunk = await asyncio.wait_for(anext(it), max(deadline - time.monotonic(), 0.01))
            new, buf = parse_sse(buf + chunk)
            events += new
    except (TimeoutError, StopAsyncIteration):
        pass
    return events


def watch_while(
    run: Run,
    box: SandboxClient,
    path: str,
    command: str,
    until: Callable[[list[dict[str, Any]]], bool],
    options: dict[str, Any] | None = None,
    timeout: float = 10,
) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        stream = await box.watch(path, options or {})
        try:
            first = await collect(stream, lambda e: len(e) >= 1)
            assert first[0]["type"] == "watching" and first[0]["path"] == path
            # watch() resolved, so the watch is in place: what the command does now is seen
            await box.exec(command)
            return await collect(stream, until, timeout)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    return list(run(go()))


def kinds(events: list[dict[str, Any]], root: str) -> list[tuple[str, str, bool]]:
    return [(e["type"], e["path"].removeprefix(root + "/"), e["isDirectory"]) for e in events]


def test_create_modify_rename_delete(run: Run, box: SandboxClient, wd: str) -> None:
    events = watch_while(
        run,
        box,
        wd,
        f"cd {wd} && echo a > f.txt && sleep 0.05 && echo more >> f.txt && sleep 0.05 && mv f.txt g.txt && "
        "sleep 0.05 && mkdir d && sleep 0.05 && rm g.txt && rmdir d",
        lambda e: sum(x["type"] == "delete" for x in e) >= 2,
    )
    assert kinds(events, wd) == [
        ("create", "f.txt", False),
        ("modify", "f.txt", False),
        ("rename", "g.txt", False),
        ("create", "d", True),
        ("delete", "g.txt", False),
        ("delete", "d", True),
    ]
    rename = events[2]
    assert rename["oldPath"] == f"{wd}/f.txt" and rename["timestamp"].endswith("Z")


def test_write_file_is_a_create_then_a_modify_of_its_path(run: Run, box: SandboxClient, wd: str) -> None:
    """writeFile writes a temporary beside the file and renames it over (issue 13); watchers see what the
    caller did: the file created, then modified, never the temporary. So does checkChanges."""
    version = run(box.checkChanges(wd))["version"]

    async def go() -> list[dict[str, Any]]:
        stream = await box.watch(wd)
        try:
            assert (await collect(stream, lambda e: len(e) >= 1))[0]["type"] == "watching"
            await box.writeFile(f"{wd}/f.txt", "one")
            await asyncio.sleep(0.05)  # another batch
            await box.writeFile(f"{wd}/f.txt", "two")
            await box.writeFile(f"{wd}/sub/new.txt", "three")  # a new folder too
            return await collect(stream, lambda e: len(e) >= 4, timeout=3)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    events = run(go())
    assert kinds(events, wd) == [
        ("create", "f.txt", False),
        ("modify", "f.txt", False),
        ("create", "sub", True),
        ("create", "sub/new.txt", False),
    ]
    changed = run(box.checkChanges(wd, {"since": version}))
    assert [(c["type"], c["path"].removeprefix(wd + "/")) for c in changed["changes"]] == [
        ("create", "f.txt"),
        ("modify", "f.txt"),
        ("create", "sub"),
        ("create", "sub/new.txt"),
    ]


def test_recursive_by_default_with_new_subfolders_and_their_contents(
    run: Run, box: SandboxClient, wd: str
) -> None:
    events = watch_while(
        run,
        box,
        wd,
        f"mkdir -p {wd}/a/b/c && touch {wd}/a/b/c/deep.txt && mkdir {wd}/x && mv {wd}/x {wd}/a/y && touch {wd}/a/y/z",
        lambda e: any(x["path"].endswith("/a/y/z") for x in e),
    )
    paths = {(e["type"], e["path"].removeprefix(wd + "/")) for e in events}
    assert {("create", "a"), ("create", "a/b"), ("create", "a/b/c"), ("create", "a/b/c/deep.txt")} <= paths
    assert ("rename", "a/y") in paths and (
        "create",
        "a/y/z",
    ) in paths  # a moved folder is watched at its new path
    flat = watch_while(
        run,
        box,
        wd,
        f"touch {wd}/top && touch {wd}/a/b/nested",
        lambda e: False,
        {"recursive": False},
        timeout=1,
    )
    assert [(e["type"], e["path"]) for e in flat] == [("create", f"{wd}/top")]


def test_include_exclude_and_default_excludes(run: Run, box: SandboxClient, wd: str) -> None:
    cmd = (
        f"cd {wd} && mkdir -p node_modules/pkg .git src && touch node_modules/pkg/i.js .git/HEAD "
        "src/app.ts src/app.js && touch done.ts"
    )
    events = watch_while(run, box, wd, cmd, lambda e: any(x["path"].endswith("done.ts") for x in e))
    seen = {e["path"].removeprefix(wd + "/") for e in events}
    assert not any(p.startswith(("node_modules", ".git")) for p in seen), seen
    assert {"src", "src/app.ts", "src/app.js", "done.ts"} <= seen
    only_ts = watch_while(
        run,
        box,
        wd,
        f"cd {wd} && touch src/b.ts src/b.js node_modules/x.ts && touch end.ts",
        lambda e: any(x["path"].endswith("end.ts") for x in e),
        {"include": ["*.ts"]},
    )
    # an include list replaces the default excludes (as in Cloudflare's): node_modules/x.ts is reported
    assert {e["path"].removeprefix(wd + "/") for e in only_ts} == {"src/b.ts", "node_modules/x.ts", "end.ts"}
    custom = watch_while(
        run,
        box,
        wd,
        f"cd {wd} && touch src/c.ts keep.md && touch fin.md",
        lambda e: any(x["path"].endswith("fin.md") for x in e),
        {"exclude": ["src"]},
    )
    assert {e["path"].removeprefix(wd + "/") for e in custom} == {"keep.md", "fin.md"}


def test_a_burst_of_1000_files_loses_nothing(run: Run, box: SandboxClient, wd: str) -> None:
    events = watch_while(
        run,
        box,
        wd,
        f"cd {wd} && for i in $(seq 1 1000); do echo $i > f$i; done",
        lambda e: len({x["path"] for x in e if x["type"] == "create"}) >= 1000,
        timeout=30,
    )
    created = {e["path"] for e in events if e["type"] == "create"}
    assert created == {f"{wd}/f{i}" for i in range(1, 1001)}
    assert not any(e["type"] == "overflow" for e in events)


def test_unknown_paths_and_files_are_errors(run: Run, box: SandboxClient, wd: str) -> None:
    for path, code in (("/no/such/dir", "NOT_FOUND"), (f"{wd}/missing", "NOT_FOUND")):
        with pytest.raises(PloyError) as info:
            run(box.watch(path))
        assert info.value.code == code
    run(box.writeFile(f"{wd}/file", "x"))
    with pytest.raises(PloyError) as info:
        run(box.watch(f"{wd}/file"))
    assert info.value.code == "NOT_A_DIRECTORY"
    with pytest.raises(PloyError) as info:
        run(box.watch(wd, {"include": "*.ts"}))
    assert info.value.code == "INVALID_ARGUMENT"


def test_cancelled_watches_release_their_inotify_descriptors(run: Run, bindings: Any) -> None:
    sb = bindings.make("watch-release").get("watch-release")
    run(sb.mkdir("/workspace/r"))

    def inotify_fds() -> int:
        out = run(sb.exec("ls -l /proc/$PPID/fd | grep -c inotify || true"))  # $PPID: the agent
        return int(out["stdout"].strip())

    async def open_and_close(n: int) -> None:
        for _ in range(n):
            stream = await sb.watch("/workspace/r")
            await anext(aiter(stream))
            await stream.aclose()

    run(open_and_close(20))
    time.sleep(0.2)
    assert inotify_fds() == 0

    async def deleted_root() -> list[dict[str, Any]]:
        await sb.mkdir("/workspace/gone")
        stream = await sb.watch("/workspace/gone")
        await sb.exec("rm -rf /workspace/gone")
        return await collect(stream, lambda e: any(x["type"] == "stopped" for x in e))

    events = run(deleted_root())
    assert [e["type"] for e in events][-2:] == ["delete", "stopped"]  # and the stream ended by itself


def test_check_changes_keeps_a_log_across_reconnects_and_restarts(run: Run, bindings: Any) -> None:
    b = bindings.make("check-changes")
    sb = b.get("check-changes")
    run(sb.mkdir("/workspace/cc"))
    first = run(sb.checkChanges("/workspace/cc"))
    assert first["status"] == "unchanged" and first["success"] is True
    again = run(sb.checkChanges("/workspace/cc", {"since": first["version"]}))
    assert again["status"] == "unchanged" and again["version"] == first["version"]
    run(sb.exec("cd /workspace/cc && echo 1 > a && mkdir d && echo 2 > d/b && rm a"))
    time.sleep(0.1)
    # a restarted `ploy dev` (a new binding, nothing in memory) asks with the version it stored
    later = bindings.make("check-changes").get("check-changes")
    changed = run(later.checkChanges("/workspace/cc", {"since": first["version"]}))
    assert changed["status"] == "changed" and changed["version"] != first["version"]
    # (d/b may also come with a `modify`: written just after it was found in the new folder d)
    assert [(c["type"], c["path"]) for c in changed["changes"] if c["type"] != "modify"] == [
        ("create", "/workspace/cc/a"),
        ("create", "/workspace/cc/d"),
        ("create", "/workspace/cc/d/b"),
        ("delete", "/workspace/cc/a"),
    ]
    assert run(later.checkChanges("/workspace/cc", {"since": changed["version"]}))["status"] == "unchanged"
    with pytest.raises(PloyError) as info:
        run(later.checkChanges("/workspace/cc", {"since": "not a version"}))
    assert info.value.code == "INVALID_ARGUMENT"
    # the agent restarted (so did its change log): the client is told to resync
    run(later.startProcess("sleep 0.2; pkill -9 -P 1 -f agent/init.py"))  # the agent: a fork of PID 1
    time.sleep(0.6)
    resync = run(later.checkChanges("/workspace/cc", {"since": changed["version"]}))
    assert resync["status"] == "resync" and resync["reason"] == "restarted"
