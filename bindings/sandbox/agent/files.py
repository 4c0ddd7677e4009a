"""File operations. Content moves as raw D frames, so a 50 MB file costs 50 MB on the socket, not 67."""

from __future__ import annotations

import asyncio
import os
import stat
from typing import Any

from common import WORKDIR, AgentError, makedirs, os_error, resolve, rmtree
from conn import Conn
from error_codes import ALREADY_EXISTS, IS_DIRECTORY, NOT_A_DIRECTORY


async def write_file(conn: Conn, req: dict[str, Any], cwd: str = WORKDIR) -> None:
    error: AgentError | None = None
    f = None
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
            f = open(path, "wb")  # noqa: SIM115 - closed below, after the upload is consumed
        except OSError as exc:
            raise os_error(exc, path) from None
    except AgentError as exc:
        error = exc
    size = 0
    # The upload is consumed even after an error so the connection stays in sync for the next request.
    async for chunk in conn.upload_chunks():
        if f is not None and error is None:
            try:
                f.write(chunk)
                size += len(chunk)
            except OSError as exc:
                error = os_error(exc, path)
    if f is not None:
        f.close()
    if error is not None:
        raise error
    await conn.reply({"path": path, "size": size})


async def read_file(conn: Conn, req: dict[str, Any], cwd: str = WORKDIR) -> None:
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


def list_files(req: dict[str, Any], cwd: str = WORKDIR) -> list[dict[str, Any]]:
    path = resolve(req.get("path") or ".", cwd)
    entries: list[dict[str, Any]] = []
    try:
        with os.scandir(path) as it:
            for e in it:
                entry: dict[str, Any] = {"name": e.name, "path": os.path.join(path, e.name)}
                try:
                    st = e.stat()  # follows symlinks: a link to a directory lists as a directory
                    is_dir = stat.S_ISDIR(st.st_mode)
                except OSError:
                    st, is_dir = e.stat(follow_symlinks=False), False
                entry["type"] = "directory" if is_dir else "file"
                if not is_dir:
                    entry["size"] = st.st_size
                entries.append(entry)
    except OSError as exc:
        raise os_error(exc, path) from None
    entries.sort(key=lambda x: x["name"])
    return entries
