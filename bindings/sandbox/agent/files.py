"""File operations. Content moves as raw D frames, so a 50 MB file costs 50 MB on the socket, not 67."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import os
import re
import shutil
import stat
import uuid
from typing import Any

from common import WORKDIR, AgentError, iso_time, makedirs, os_error, resolve, rmtree
from conn import Conn
from error_codes import ALREADY_EXISTS, INVALID_ARGUMENT, IS_DIRECTORY, NOT_A_DIRECTORY, NOT_FOUND

# writeFile's temporaries (`.<name>.ploy-<8 hex>`, see _open_for_write), and the last ones whose target
# existed: a watcher hides the temporaries and reports the rename that completes a write as a `modify`
# of the file when it existed, else as its `create` (watch.py), as if the file had been written in place.
WRITE_TEMP_RE = re.compile(r"^\..+\.ploy-[0-9a-f]{8}$")
_REPLACING: collections.OrderedDict[str, None] = collections.OrderedDict()
_REPLACING_KEPT = 4096  # watchers read a rename within milliseconds; this is thousands of writes


def replaced_existing(temp_name: str) -> bool:
    """Whether the write through this temporary (its file name) replaced an existing file."""
    return temp_name in _REPLACING


def _open_for_write(path: str) -> tuple[Any, str | None]:
    """(file, temporary path to rename over `path` once complete, or None to write in place).

    A regular file (or a new one) is written beside its target and renamed over it at the end, so a
    reader never sees half a file and an upload that breaks off (a failing stream) leaves the old
    content as it was. Through a symlink the link's target is written; a FIFO or device in place."""
    target = os.path.realpath(path)
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise AgentError(IS_DIRECTORY, f"is a directory: {path}", path=path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        return open(target, "wb"), None  # noqa: SIM115 - the caller closes it
    tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.ploy-{uuid.uuid4().hex[:8]}")
    if st is not None:
        _REPLACING[os.path.basename(tmp)] = None
        if len(_REPLACING) > _REPLACING_KEPT:
            _REPLACING.popitem(last=False)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644 if st is None else stat.S_IMODE(st.st_mode))
    if st is not None:
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except OSError:
            pass
    return os.fdopen(fd, "wb"), tmp


def _replace(tmp: str, target: str) -> None:
    """Rename the complete file over its target; a target that cannot be renamed over (a file mounted
    into the container: /etc/hosts, /etc/resolv.conf) gets the content copied into it instead."""
    try:
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        with open(tmp, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)


async def write_file(conn: Conn, req: dict[str, Any], cwd: str = WORKDIR) -> None:
    error: AgentError | None = None
    f = None
    tmp: str | None = None
    path = ""
    try:
        path = resolve(req.get("path"), cwd)
        parent = os.path.dirname(path)
        try:
            makedirs(parent)
        except FileExistsError:
            raise AgentError(NOT_A_DIRECTORY, f"a parent of {path} is not a directory", path=path) from None
        except OSError as exc:
            raise os_error(exc, path) from None
        try:
            f, tmp = _open_for_write(path)
        except OSError as exc:
            raise os_error(exc, path) from None
    except AgentError as exc:
        error = exc
    size = 0
    complete = False
    try:
        # The upload is consumed even after an error so the connection stays in sync for the next request.
        async for chunk in conn.upload_chunks():
            if f is not None and error is None:
                try:
                    f.write(chunk)
                    size += len(chunk)
                except OSError as exc:
                    error = os_error(exc, path)
        complete = True
    finally:
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                error = error or os_error(exc, path)
        if tmp is not None:
            if complete and error is None:
                try:
                    _replace(tmp, os.path.realpath(path))
                except OSError as exc:
                    error = os_error(exc, path)
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # gone already when renamed
    if error is not None:
        raise error
    await conn.reply({"path": path, "size": size})


async def read_file(conn: Conn, req: dict[str, Any], cwd: str = WORKDIR) -> None:
    """The file as D frames, then {path, size}: readFile (read whole by the host) and readFileStream
    (forwarded as it comes; conn.send waits for the host every MiB, so a slow reader holds the read)."""
    path = resolve(req.get("path"), cwd)
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise os_error(exc, path) from None
    size = 0
    with f:
        if stat.S_ISDIR(os.fstat(f.fileno()).st_mode):
            raise AgentError(IS_DIRECTORY, f"is a directory: {path}", path=path)
        while True:
            try:
                chunk = f.read(256 * 1024)
            except OSError as exc:
                raise os_error(exc, path) from None
            if not chunk:
                break
            size += len(chunk)
            await conn.send(b"D", chunk)
    await conn.reply({"path": path, "size": size})


async def delete_file(req: dict[str, Any], cwd: str = WORKDIR) -> dict[str, Any]:
    path = resolve(req.get("path"), cwd)
    try:
        if req.get("recursive") and os.path.isdir(path) and not os.path.islink(path):
            # in a thread: a big tree takes seconds, and the agent must keep answering meanwhile
            await asyncio.to_thread(rmtree, path)
        else:
            os.unlink(path)
    except OSError as exc:
        raise os_error(exc, path) from None
    return {"path": path, "deleted": True}


def mkdir(req: dict[str, Any], cwd: str = WORKDIR) -> dict[str, Any]:
    path = resolve(req.get("path"), cwd)
    try:
        if req.get("recursive"):
            if os.path.exists(path) and not os.path.isdir(path):
                raise FileExistsError(path)
            makedirs(path)
        else:
            os.mkdir(path)
    except FileExistsError:
        kind = NOT_A_DIRECTORY if req.get("recursive") else ALREADY_EXISTS
        raise AgentError(kind, f"already exists: {path}", path=path) from None
    except OSError as exc:
        raise os_error(exc, path) from None
    return {"path": path}


_PERMS = ("---", "--x", "-w-", "-wx", "r--", "r-x", "rw-", "rwx")


def _entry(base: str, path: str, name: str, st: os.stat_result, is_dir: bool) -> dict[str, Any]:
    """One listFiles entry: the docs' {name, path, type, size} plus Cloudflare's FileInfo fields."""
    mode = stat.S_IMODE(st.st_mode)
    owner = (mode >> 6) & 7
    return {
        "name": name,
        "path": path,
        "absolutePath": path,
        "relativePath": os.path.relpath(path, base),
        "type": "directory" if is_dir else "file",
        "size": st.st_size,
        "modifiedAt": iso_time(st.st_mtime),
        "mode": _PERMS[owner] + _PERMS[(mode >> 3) & 7] + _PERMS[mode & 7],
        "permissions": {
            "readable": bool(owner & 4),
            "writable": bool(owner & 2),
            "executable": bool(owner & 1),
        },
    }


def list_files(req: dict[str, Any], cwd: str = WORKDIR) -> list[dict[str, Any]]:
    """Entries sorted by relativePath. Hidden names (a leading dot) only with includeHidden, as in
    Cloudflare's SDK; with recursive, every level (a link to a directory is listed, not entered)."""
    path = resolve(req.get("path") or ".", cwd)
    recursive, hidden = bool(req.get("recursive")), bool(req.get("includeHidden"))
    entries: list[dict[str, Any]] = []
    todo = [path]
    while todo:
        folder = todo.pop()
        try:
            with os.scandir(folder) as it:
                for e in it:
                    if not hidden and e.name.startswith("."):
                        continue
                    try:
                        st = e.stat()  # follows symlinks: a link to a directory lists as a directory
                        is_dir = stat.S_ISDIR(st.st_mode)
                    except OSError:
                        st, is_dir = e.stat(follow_symlinks=False), False
                    entries.append(_entry(path, e.path, e.name, st, is_dir))
                    if recursive and is_dir and not e.is_symlink():
                        todo.append(e.path)
        except OSError as exc:
            if folder == path:
                raise os_error(exc, path) from None
            # a folder below the listed one that vanished or cannot be read: listed, not entered
    entries.sort(key=lambda x: x["relativePath"])
    return entries


def exists(req: dict[str, Any], cwd: str = WORKDIR) -> dict[str, Any]:
    path = resolve(req.get("path"), cwd)
    return {"exists": os.path.lexists(path), "path": path}


def _move(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(src, dst)  # another filesystem (a tmpfs /tmp): copy, then remove


def rename_file(req: dict[str, Any], cwd: str = WORKDIR) -> dict[str, Any]:
    """Exactly to newPath (an existing file there is replaced, as mv does); no parents are created."""
    src, dst = resolve(req.get("oldPath"), cwd, "oldPath"), resolve(req.get("newPath"), cwd, "newPath")
    if not os.path.lexists(src):
        raise AgentError(NOT_FOUND, f"no such file or directory: {src}", path=src)
    try:
        _move(src, dst)
    except OSError as exc:
        raise os_error(exc, dst if os.path.lexists(src) else src) from None
    return {"path": src, "newPath": dst}


def move_file(req: dict[str, Any], cwd: str = WORKDIR) -> dict[str, Any]:
    """`mv` semantics, as Cloudflare's moveFile: into destinationPath when it is a directory, else to it."""
    src = resolve(req.get("sourcePath"), cwd, "sourcePath")
    dst = resolve(req.get("destinationPath"), cwd, "destinationPath")
    if not os.path.lexists(src):
        raise AgentError(NOT_FOUND, f"no such file or directory: {src}", path=src)
    if os.path.isdir(dst):
        dst = os.path.join(dst, os.path.basename(src.rstrip("/")))
    if dst == src or dst.startswith(src.rstrip("/") + "/"):
        raise AgentError(INVALID_ARGUMENT, f"cannot move {src} into itself", path=src)
    try:
        _move(src, dst)
    except OSError as exc:
        raise os_error(exc, dst) from None
    return {"path": src, "newPath": dst}
