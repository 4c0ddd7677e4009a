"""Files beyond the docs (issue 13): exists, rename and move, Cloudflare's listFiles, binary-safe readFile,
readFileStream, streamed writeFile, strict encodings and option names."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


def error_of(run: Run, coro: Coroutine[Any, Any, Any]) -> PloyError:
    with pytest.raises(PloyError) as info:
        run(coro)
    return info.value


@pytest.fixture
def wd(run: Run, shared: SandboxClient) -> str:
    path = f"/workspace/f-{uuid.uuid4().hex[:8]}"
    run(shared.mkdir(path))
    return path


def test_exists(run: Run, shared: SandboxClient, wd: str) -> None:
    run(shared.writeFile(f"{wd}/a.txt", "a"))
    run(shared.exec(f"ln -s {wd}/nowhere {wd}/dangling"))
    assert run(shared.exists(f"{wd}/a.txt")) == {"exists": True, "path": f"{wd}/a.txt"}
    assert run(shared.exists(wd))["exists"] is True
    assert run(shared.exists(f"{wd}/dangling"))["exists"] is True  # something is there: a link
    assert run(shared.exists(f"{wd}/missing"))["exists"] is False
    assert run(shared.exists(f"{wd}/a.txt/below"))["exists"] is False
    assert error_of(run, shared.exists("")).code == "INVALID_ARGUMENT"


def test_rename_and_move(run: Run, shared: SandboxClient, wd: str) -> None:
    run(shared.writeFile(f"{wd}/a.txt", "A"))
    run(shared.writeFile(f"{wd}/b.txt", "B"))
    r = run(shared.renameFile(f"{wd}/a.txt", f"{wd}/c.txt"))
    assert r == {"path": f"{wd}/a.txt", "newPath": f"{wd}/c.txt"}
    assert run(shared.exists(f"{wd}/a.txt"))["exists"] is False
    assert run(shared.readFile(f"{wd}/c.txt"))["content"] == "A"
    run(shared.renameFile(f"{wd}/c.txt", f"{wd}/b.txt"))  # replaces a file, as mv does
    assert run(shared.readFile(f"{wd}/b.txt"))["content"] == "A"
    assert error_of(run, shared.renameFile(f"{wd}/nope", f"{wd}/x")).code == "NOT_FOUND"
    assert error_of(run, shared.renameFile(f"{wd}/b.txt", f"{wd}/no/such/dir/x")).code == "NOT_FOUND"
    # moveFile: into a directory keeps the name; to a path that is not a directory renames
    run(shared.mkdir(f"{wd}/dest"))
    r = run(shared.moveFile(f"{wd}/b.txt", f"{wd}/dest"))
    assert r["newPath"] == f"{wd}/dest/b.txt"
    assert run(shared.readFile(f"{wd}/dest/b.txt"))["content"] == "A"
    r = run(shared.moveFile(f"{wd}/dest/b.txt", f"{wd}/renamed.txt"))
    assert r["newPath"] == f"{wd}/renamed.txt"
    # a directory moves with its content, also across filesystems (/tmp may be another one)
    run(shared.writeFile(f"{wd}/tree/x/y.txt", "deep"))
    r = run(shared.moveFile(f"{wd}/tree", "/tmp"))
    assert run(shared.readFile(f"{r['newPath']}/x/y.txt"))["content"] == "deep"
    assert error_of(run, shared.moveFile(f"{wd}/dest", f"{wd}/dest/inner")).code == "INVALID_ARGUMENT"
    assert error_of(run, shared.moveFile(f"{wd}/missing", f"{wd}/dest")).code == "NOT_FOUND"
    run(shared.deleteFile(r["newPath"], {"recursive": True}))


def test_list_files_defaults_fields_and_options(run: Run, shared: SandboxClient, wd: str) -> None:
    run(shared.writeFile(f"{wd}/visible.txt", "12345"))
    run(shared.writeFile(f"{wd}/.hidden", "h"))
    run(shared.writeFile(f"{wd}/sub/inner.py", "print(1)\n"))
    run(shared.writeFile(f"{wd}/sub/.secret/deep.txt", "d"))
    run(shared.exec(f"chmod 750 {wd}/sub && chmod 640 {wd}/visible.txt"))
    # Cloudflare's defaults: not recursive, hidden names left out
    entries = run(shared.listFiles(wd))
    assert [e["name"] for e in entries] == ["sub", "visible.txt"]
    visible = entries[1]
    assert visible == {
        "name": "visible.txt",
        "path": f"{wd}/visible.txt",
        "absolutePath": f"{wd}/visible.txt",
        "relativePath": "visible.txt",
        "type": "file",
        "size": 5,
        "modifiedAt": visible["modifiedAt"],
        "mode": "rw-r-----",
        "permissions": {"readable": True, "writable": True, "executable": False},
    }
    modified = datetime.fromisoformat(visible["modifiedAt"].replace("Z", "+00:00"))
    assert abs((datetime.now(modified.tzinfo) - modified).total_seconds()) < 60
    assert entries[0]["type"] == "directory" and entries[0]["mode"] == "rwxr-x---"
    assert [e["name"] for e in run(shared.listFiles(wd, {"includeHidden": True}))] == [
        ".hidden", "sub", "visible.txt",
    ]  # fmt: skip
    rel = [e["relativePath"] for e in run(shared.listFiles(wd, {"recursive": True}))]
    assert rel == ["sub", "sub/inner.py", "visible.txt"]
    rel = [e["relativePath"] for e in run(shared.listFiles(wd, {"recursive": True, "includeHidden": True}))]
    assert rel == [".hidden", "sub", "sub/.secret", "sub/.secret/deep.txt", "sub/inner.py", "visible.txt"]
    err = error_of(run, shared.listFiles(wd, {"recursve": True}))
    assert err.code == "INVALID_ARGUMENT" and "'recursve'" in err.message and "'recursive'" in err.message


def test_read_file_never_replaces_bytes_silently(run: Run, shared: SandboxClient, wd: str) -> None:
    data = bytes(range(256))
    run(shared.writeFile(f"{wd}/blob.bin", data))
    r = run(shared.readFile(f"{wd}/blob.bin"))  # no encoding asked: not text, so base64
    assert r["encoding"] == "base64" and r["isBinary"] is True and base64.b64decode(r["content"]) == data
    assert r["size"] == 256 and r["mimeType"] == "application/octet-stream"
    png = run(shared.readFile(f"{wd}/blob.bin", {"encoding": "binary"}))
    assert png["content"] == data and png["isBinary"] is True
    # asking for text gives text (with replacement characters), as before
    r = run(shared.readFile(f"{wd}/blob.bin", {"encoding": "utf-8"}))
    assert r["encoding"] == "utf-8" and "\ufffd" in r["content"]
    # text stays text, with a MIME type from its name
    run(shared.writeFile(f"{wd}/conf.json", '{"ü": 1}'))
    r = run(shared.readFile(f"{wd}/conf.json"))
    assert r == {
        "content": '{"ü": 1}', "encoding": "utf-8", "path": f"{wd}/conf.json", "size": 9,
        "isBinary": False, "mimeType": "application/json",
    }  # fmt: skip
    run(shared.writeFile(f"{wd}/notes", "plain"))
    assert run(shared.readFile(f"{wd}/notes"))["mimeType"] == "text/plain"
    # valid UTF-8 with a NUL byte is not text either
    run(shared.writeFile(f"{wd}/nul", b"a\0b"))
    assert run(shared.readFile(f"{wd}/nul"))["encoding"] == "base64"
    assert (
        error_of(run, shared.readFile(f"{wd}/conf.json", {"encoding": "latin1"})).code == "INVALID_ARGUMENT"
    )


def test_write_file_rejects_unknown_encodings(run: Run, shared: SandboxClient, wd: str) -> None:
    """`latin1` used to be written as UTF-8 without a word."""
    for encoding in ("latin1", "hex", "utf-16", 7):
        err = error_of(run, shared.writeFile(f"{wd}/x", "é", {"encoding": encoding}))
        assert err.code == "INVALID_ARGUMENT" and "encoding" in err.message
    assert run(shared.exists(f"{wd}/x"))["exists"] is False
    run(shared.writeFile(f"{wd}/x", "é", {"encoding": "UTF-8"}))
    assert run(shared.exec(f"od -An -tx1 {wd}/x"))["stdout"].split() == ["c3", "a9"]
    run(shared.writeFile(f"{wd}/y", base64.b64encode(b"\xff\x00").decode(), {"encoding": "base64"}))
    assert run(shared.readFile(f"{wd}/y", {"encoding": "binary"}))["content"] == b"\xff\x00"


def test_read_file_stream(run: Run, shared: SandboxClient, wd: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    run(shared.writeFile(f"{wd}/big.bin", data))

    async def read(path: str) -> tuple[int, bytes]:
        chunks = [c async for c in await shared.readFileStream(path)]
        return len(chunks), b"".join(chunks)

    n, back = run(read(f"{wd}/big.bin"))
    assert back == data and n > 1  # in pieces, as it is read
    run(shared.writeFile(f"{wd}/empty", ""))
    assert run(read(f"{wd}/empty")) == (0, b"")
    assert error_of(run, read(f"{wd}/missing")).code == "NOT_FOUND"
    assert error_of(run, read(wd)).code == "IS_DIRECTORY"

    async def first_then_stop() -> bytes:
        stream = await shared.readFileStream(f"{wd}/big.bin")
        async for chunk in stream:
            await stream.aclose()  # type: ignore[attr-defined]
            return chunk
        return b""

    assert data.startswith(run(first_then_stop()))
    assert run(shared.exec("echo still fine"))["stdout"] == "still fine\n"


def test_write_file_from_a_stream(run: Run, shared: SandboxClient, wd: str) -> None:
    chunk = os.urandom(1024 * 1024)

    async def source(n: int) -> AsyncIterator[bytes]:
        for i in range(n):
            yield chunk[i:] + chunk[:i]

    expected = hashlib.sha256(b"".join(chunk[i:] + chunk[:i] for i in range(64))).hexdigest()
    r = run(shared.writeFile(f"{wd}/streamed.bin", source(64)))
    assert r == {"path": f"{wd}/streamed.bin", "size": 64 * 1024 * 1024}
    assert run(shared.exec(f"sha256sum {wd}/streamed.bin"))["stdout"].split()[0] == expected

    async def text() -> AsyncIterator[Any]:
        yield "grüße "
        yield b"and bytes"

    run(shared.writeFile(f"{wd}/mixed.txt", text()))
    assert run(shared.readFile(f"{wd}/mixed.txt"))["content"] == "grüße and bytes"


def test_a_failing_stream_leaves_the_old_file(run: Run, shared: SandboxClient, wd: str) -> None:
    run(shared.writeFile(f"{wd}/keep.txt", "old content"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 500_000
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        run(shared.writeFile(f"{wd}/keep.txt", broken()))

    async def wrong_type() -> AsyncIterator[Any]:
        yield b"fine"
        yield 42

    assert error_of(run, shared.writeFile(f"{wd}/keep.txt", wrong_type())).code == "INVALID_ARGUMENT"
    assert run(shared.readFile(f"{wd}/keep.txt"))["content"] == "old content"
    # no half-written file is left beside it, and the connection pool is healthy
    assert [e["name"] for e in run(shared.listFiles(wd, {"includeHidden": True}))] == ["keep.txt"]
    assert run(shared.exec("echo ok"))["stdout"] == "ok\n"


def test_write_file_keeps_mode_and_writes_through_links(run: Run, shared: SandboxClient, wd: str) -> None:
    run(shared.writeFile(f"{wd}/run.sh", "#!/bin/sh\necho one\n"))
    run(shared.exec(f"chmod 755 {wd}/run.sh && ln -s run.sh {wd}/link.sh"))
    run(shared.writeFile(f"{wd}/link.sh", "#!/bin/sh\necho two\n"))
    assert run(shared.exec(f"{wd}/run.sh"))["stdout"] == "two\n"  # still executable, through the link
    assert run(shared.exec(f"test -L {wd}/link.sh"))["exitCode"] == 0
    run(shared.writeFile("/dev/null", "into a device: written in place"))
    # a file mounted into the container cannot be renamed over: its content is replaced instead
    hosts = run(shared.readFile("/etc/hosts"))["content"]
    run(shared.writeFile("/etc/hosts", hosts + "10.1.2.3 added-by-test\n"))
    assert "added-by-test" in run(shared.exec("cat /etc/hosts"))["stdout"]
    assert not [n for n in run(shared.exec("ls -a /etc"))["stdout"].split() if ".ploy-" in n]


def test_unknown_option_names_are_rejected_everywhere(run: Run, shared: SandboxClient, wd: str) -> None:
    calls = [
        shared.exec("true", {"timeoutMS": 10}),
        shared.execStream("true", {"cwdd": "/"}),
        shared.writeFile(f"{wd}/o", "x", {"encodng": "utf-8"}),
        shared.readFile(f"{wd}/o", {"enc": "utf-8"}),
        shared.deleteFile(f"{wd}/o", {"force": True}),
        shared.mkdir(f"{wd}/o2", {"parents": True}),
        shared.gitCheckout("git://h/r", {"ref": "main"}),
        shared.startProcess("true", {"autoCleanup": True}),
        shared.killProcess("p", {"grace": 1}),
        shared.listProcesses({"all": True}),
        shared.createSession({"cwdir": "/"}),
        shared.exists(wd, {"follow": True}),
    ]
    for call in calls:
        err = error_of(run, call)
        assert err.code == "INVALID_ARGUMENT" and "unknown option" in err.message, err.message
    err = error_of(run, shared.exec("true", {"timeoutMS": 10}))
    assert "did you mean 'timeoutMs'?" in err.message and err.details["option"] == "timeoutMS"
    # keyword arguments are options too, checked the same way
    assert error_of(run, shared.exec("true", timeout=5)).code == "INVALID_ARGUMENT"
