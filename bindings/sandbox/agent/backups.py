"""Directory archives for backups and forks: `archiveDir` streams a directory out as a tar,
`extractArchive` takes one in and makes a directory's contents exactly that.

Plain tar both ways, made and unpacked by GNU tar when the image has it (the default image does; it is
~8x faster than Python's tarfile here), else by tarpy.py beside this file (tarfile, stdlib only). The
two write and read the same POSIX format, so a backup moves between any two images. Compression happens
on the host (zstd, backups.py there), whose CPUs are not the sandbox's `cpus` limit. Both ends count
the bytes and their CRC-32, so a restore checks that it got exactly what was archived.

Restore never leaves a half-written directory: the archive is extracted into a staging folder beside
the target, its size and CRC-32 are checked, and only then are the target's entries moved out and the
staged ones moved in (renames on one filesystem); any failure before that removes the staging folder
and leaves the target as it was. The target directory itself stays (same inode), so shells and
processes whose cwd it is still see it. What was moved out is deleted in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import stat
import sys
import time
import uuid
import zlib
from typing import Any

import wire
from common import STATE_DIR, AgentError, os_error
from conn import Conn
from error_codes import (
    BACKUP_CREATE_FAILED,
    BACKUP_RESTORE_FAILED,
    INVALID_BACKUP_CONFIG,
    NOT_A_DIRECTORY,
    NOT_FOUND,
)

PIECE = 1 << 20
F_SETPIPE_SZ = 1031
HERE = os.path.dirname(os.path.abspath(__file__))
# Names of the scratch folders a restore makes beside (or inside) its target; archives and watch()
# leave them out.
SCRATCH_PREFIX = ".ploy-restore-"
_RESTORE_LOCKS: dict[str, asyncio.Lock] = {}
_BACKGROUND: set[Any] = set()
_gnu_tar: bool | None = None


def check_dir(path: Any, label: str = "dir") -> str:
    """An absolute path under one of the backup roots, with no `..` (Cloudflare's rules)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise AgentError(
            INVALID_BACKUP_CONFIG, f"{label} must be an absolute path, got {path!r}", reason=label
        )
    if "\0" in path:
        raise AgentError(INVALID_BACKUP_CONFIG, f"{label} must not contain NUL bytes", reason=label)
    if ".." in path.split("/"):
        raise AgentError(
            INVALID_BACKUP_CONFIG, f"{label} must not contain '..' segments: {path}", reason=label
        )
    norm = os.path.normpath(path)
    if not any(norm == root or norm.startswith(root + "/") for root in wire.BACKUP_ROOTS):
        raise AgentError(
            INVALID_BACKUP_CONFIG,
            f"{label} must be inside one of {', '.join(wire.BACKUP_ROOTS)}: {path}",
            reason=label,
        )
    return norm


async def _has_gnu_tar() -> bool:
    global _gnu_tar
    if _gnu_tar is None:
        _gnu_tar = False
        if shutil.which("tar"):
            with contextlib.suppress(OSError):
                proc = await asyncio.create_subprocess_exec(
                    "tar",
                    "--version",
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                out, _ = await proc.communicate()
                _gnu_tar = b"GNU tar" in out
    return _gnu_tar


def _create_command(root: str, patterns: list[str], ignored_file: str | None, gnu: bool) -> list[str]:
    if not gnu:
        cmd = [sys.executable, "-S", os.path.join(HERE, "tarpy.py"), "c", root, ignored_file or ""]
        return cmd + patterns
    cmd = ["tar", "-c", "-f", "-", "-C", root, "--numeric-owner"]
    if ignored_file:
        cmd += ["--anchored", "--no-wildcards", f"--exclude-from={ignored_file}", "--wildcards"]
    # a pattern with "/" matches the path from the archived directory; one without, a name at any depth
    cmd += ["--anchored"] + [f"--exclude=./{p.strip('/')}" for p in patterns if "/" in p.strip("/")]
    cmd += ["--no-anchored", f"--exclude={SCRATCH_PREFIX}*"]
    cmd += [f"--exclude={p.strip('/')}" for p in patterns if "/" not in p.strip("/")]
    return cmd + ["."]


def _extract_command(staging: str, gnu: bool) -> list[str]:
    if not gnu:
        return [sys.executable, "-S", os.path.join(HERE, "tarpy.py"), "x", staging]
    return ["tar", "-x", "-f", "-", "-C", staging, "--numeric-owner", "-p"]


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(w, F_SETPIPE_SZ, PIECE)  # fewer wakeups per MB than the default 64 KiB
    return r, w


async def _read_pipe(fd: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=PIECE)
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
    )
    return reader


async def _git(root: str, *args: str) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        root,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out


async def _git_ignored(root: str) -> tuple[list[str], str | None]:
    """Paths under root that git ignores ("./"-prefixed, directories without their trailing /), or a
    warning saying why none could be found."""
    if shutil.which("git") is None:
        return [], "gitignore: git is not installed in the sandbox; nothing was left out"
    code, out = await _git(root, "rev-parse", "--is-inside-work-tree")
    if code != 0 or out.strip() != b"true":
        return [], None  # not a repository: no git rules apply (as in Cloudflare's)
    code, out = await _git(
        root, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"
    )
    if code != 0:
        return [], "gitignore: git ls-files failed; nothing was left out"
    names = out.decode("utf-8", "surrogateescape").split("\0")
    return ["./" + n.rstrip("/") for n in names if n], None


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read()[-1500:].decode(errors="replace").strip()
    except OSError:
        return ""


async def archive_dir(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = "") -> None:
    root = check_dir(req.get("dir"))
    if not os.path.isdir(root):
        raise AgentError(NOT_FOUND, f"directory does not exist: {root}", path=root)
    patterns = req.get("excludes") or []
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p.strip("/") for p in patterns):
        raise AgentError(
            INVALID_BACKUP_CONFIG, "excludes must be an array of glob strings", reason="excludes"
        )
    # `**/x` and `x/**` mean `x` here (Cloudflare normalises them the same way)
    patterns = [p.replace("**/", "").removesuffix("/**") or p for p in patterns]
    warnings: list[str] = []
    tmp = os.path.join(STATE_DIR, "tmp")
    os.makedirs(tmp, exist_ok=True)
    ignored_file = None
    if req.get("gitignore"):
        ignored, warning = await _git_ignored(root)
        if warning:
            warnings.append(warning)
        if ignored:
            ignored_file = os.path.join(tmp, f"ignored.{uuid.uuid4().hex[:8]}")
            with open(ignored_file, "w", encoding="utf-8", errors="surrogateescape") as f:
                # one per line: GNU tar 1.34 reads only the first name of a --null exclude file
                f.write("".join(name + "\n" for name in ignored if "\n" not in name))
    errors = os.path.join(tmp, f"tar-c.{uuid.uuid4().hex[:8]}.err")
    data_r, data_w = _pipe()
    try:
        with open(errors, "wb") as err_f:
            proc = await asyncio.create_subprocess_exec(
                *_create_command(root, patterns, ignored_file, await _has_gnu_tar()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=data_w,
                stderr=err_f,
                start_new_session=True,
            )
    finally:
        os.close(data_w)
    crc = size = 0
    try:
        data = await _read_pipe(data_r)
        while True:
            chunk = await data.read(PIECE)
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            await conn.send(b"D", chunk)
        code = await proc.wait()
        message = _tail(errors)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the host went away: stop archiving
        await proc.wait()
        raise
    finally:
        for path in (ignored_file, errors):
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    # GNU tar's 1: a file changed or vanished while it was read; the archive is still whole
    if code not in (0, 1):
        raise AgentError(BACKUP_CREATE_FAILED, f"tar could not archive {root}: {message or f'exit {code}'}")
    if code == 1 and message:
        warnings.append(message)
    await conn.reply({"dir": root, "size": size, "crc32": crc, "warnings": warnings})


def _scratch_base(target: str) -> str:
    """Where staging folders go: beside the target when that is the same filesystem (so nothing of a
    restore ever shows inside the target), else inside it."""
    parent = os.path.dirname(target) or "/"
    try:
        if os.stat(parent).st_dev == os.stat(target).st_dev and os.access(parent, os.W_OK):
            return parent
    except OSError:
        pass
    return target


def _swap(target: str, staging: str, trash: str) -> None:
    """Move the target's entries into `trash` and the staged ones into the target; undo on failure."""
    inside = os.path.dirname(staging) == target
    skip = {os.path.basename(staging), os.path.basename(trash)}
    os.mkdir(trash)
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for name in os.listdir(target):
            if not (inside and name in skip):
                os.rename(os.path.join(target, name), os.path.join(trash, name))
                moved_out.append(name)
        for name in os.listdir(staging):
            os.rename(os.path.join(staging, name), os.path.join(target, name))
            moved_in.append(name)
    except OSError:
        for name in moved_in:
            with contextlib.suppress(OSError):
                os.rename(os.path.join(target, name), os.path.join(staging, name))
        for name in moved_out:
            with contextlib.suppress(OSError):
                os.rename(os.path.join(trash, name), os.path.join(target, name))
        raise


def _remove_later(*paths: str) -> None:
    """`rm -rf` in the background: the restore is done, nobody needs to wait for the old files to go."""

    async def run() -> None:
        proc = await asyncio.create_subprocess_exec(
            "rm",
            "-rf",
            "--",
            *paths,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    task = asyncio.ensure_future(run())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


async def extract_archive(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = "") -> None:
    """Consumes the whole upload whatever happens, so the connection stays in step with the host."""
    crc32, size = req.get("crc32"), req.get("size")
    try:
        target = check_dir(req.get("dir"))
        if not isinstance(crc32, int) or not isinstance(size, int):
            raise AgentError(BACKUP_RESTORE_FAILED, "extractArchive needs the archive's crc32 and size")
    except AgentError:
        async for _ in conn.upload_chunks():
            pass
        raise
    lock = _RESTORE_LOCKS.setdefault(target, asyncio.Lock())
    async with lock:
        await _extract(conn, target, crc32, size)


async def _drain(conn: Conn) -> None:
    async for _ in conn.upload_chunks():
        pass


async def _extract(conn: Conn, target: str, crc32: int, size: int) -> None:
    t0 = time.monotonic()
    created = False
    try:
        try:
            st = os.stat(target)
        except FileNotFoundError:
            os.makedirs(target)
            created = True
        else:
            if not stat.S_ISDIR(st.st_mode):
                raise AgentError(NOT_A_DIRECTORY, f"restore target is not a directory: {target}", path=target)
        base = _scratch_base(target)
        tag = uuid.uuid4().hex[:12]
        staging = os.path.join(base, f"{SCRATCH_PREFIX}{tag}")
        trash = os.path.join(base, f"{SCRATCH_PREFIX}{tag}.old")
        os.mkdir(staging, 0o700)
    except OSError as exc:
        await _drain(conn)
        raise os_error(exc, target) from None
    except AgentError:
        await _drain(conn)
        raise
    errors = os.path.join(STATE_DIR, "tmp", f"tar-x.{tag}.err")
    os.makedirs(os.path.dirname(errors), exist_ok=True)
    data_r, data_w = _pipe()
    try:
        with open(errors, "wb") as err_f:
            proc = await asyncio.create_subprocess_exec(
                *_extract_command(staging, await _has_gnu_tar()),
                stdin=data_r,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err_f,
                start_new_session=True,
            )
    finally:
        os.close(data_r)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(data_w, "wb", 0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    got_crc = got = 0
    broken = False
    done = False
    try:
        async for chunk in conn.upload_chunks():
            got_crc = zlib.crc32(chunk, got_crc)
            got += len(chunk)
            if broken:
                continue  # tar gave up: take in the rest of the upload, then say why
            try:
                writer.write(chunk)
                await writer.drain()
            except (BrokenPipeError, ConnectionResetError):
                broken = True
        writer.close()
        code = await proc.wait()
        message = _tail(errors)
        if code != 0:
            raise AgentError(
                BACKUP_RESTORE_FAILED, f"tar could not unpack the archive: {message or f'exit {code}'}"
            )
        if got_crc != crc32 or got != size:
            raise AgentError(
                BACKUP_RESTORE_FAILED,
                f"the archive that arrived does not match its record ({got} bytes, crc32 {got_crc:08x}; "
                f"expected {size} bytes, crc32 {crc32:08x}): nothing was restored",
            )
        root = os.stat(staging)
        _swap(target, staging, trash)
        done = True
    except BaseException:
        # the upload broke off (the host went away, or found the archive damaged), or a check failed:
        # the target is as it was; only the staging folder goes
        writer.close()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(errors)
        if done:
            _remove_later(trash, staging)
        else:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(trash)
    with contextlib.suppress(OSError):
        # the archive's "./" entry gave the staging folder the original directory's owner, mode and mtime
        os.chown(target, root.st_uid, root.st_gid)
        os.chmod(target, stat.S_IMODE(root.st_mode))
        os.utime(target, ns=(root.st_atime_ns, root.st_mtime_ns))
    await conn.reply({"dir": target, "ms": round((time.monotonic() - t0) * 1000)})


FORK_MARK = os.path.join(STATE_DIR, "forked-from")


def reset_if_forked() -> None:
    """A sandbox started from a snapshot (PLOY_SNAPSHOT is set on the snapshot's image) inherits the
    records of the snapshotted sandbox's processes and code contexts, none of which runs here: drop them
    once, at the first start. Sessions, env vars and files stay: they are state the snapshot keeps."""
    snap = os.environ.get("PLOY_SNAPSHOT")
    if not snap:
        return
    try:
        with open(FORK_MARK) as f:
            if f.read() == snap:
                return
    except OSError:
        pass
    for sub in ("procs", "ctx"):
        shutil.rmtree(os.path.join(STATE_DIR, sub), ignore_errors=True)
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(FORK_MARK, "w") as f:
        f.write(snap)
