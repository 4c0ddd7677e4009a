"""Backups of a sandbox directory, kept by the host so they outlive the sandbox and `ploy dev`.

On disk, per project (so any sandbox of the project, of any binding, can restore any of its backups):
  <state home>/backups/<project key>/<id>/data.tar.zst   the directory as a tar, zstd-compressed
  <state home>/backups/<project key>/<id>/meta.json      {id, dir, name, size, sha256, tarSize, crc32,
                                                          createdAt, ttl, expiresAt}, written last
A backup exists once its meta.json does. The sandbox sends a plain tar and the host compresses it
(zstd level 1, in a worker thread while more arrives: the sandbox's CPU limit is not spent on it, and it
never sits whole in memory). Three checks: the tar's size and CRC-32 as the agent counted them must
match what arrived; zstd's own frame checksum is verified when a restore reads the file back, along
with the file's sha256; and the agent checks size and CRC-32 of what it extracts before it swaps it in.
`zstd -dc data.tar.zst | tar t` reads a backup by hand.

Ids are UUIDs (Cloudflare's format): anything else is INVALID_BACKUP_CONFIG, an unknown one
BACKUP_NOT_FOUND, one past its ttl BACKUP_EXPIRED. Expired archives are deleted when the project's
backups are next listed or created; their meta.json stays TOMBSTONE_S longer, so a late restore still
says "expired" rather than "not found".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import zstandard

from bindings.context import BindingContext
from bindings.error_codes import (
    BACKUP_CREATE_FAILED,
    BACKUP_EXPIRED,
    BACKUP_NOT_FOUND,
    BACKUP_RESTORE_FAILED,
    INVALID_BACKUP_CONFIG,
)
from bindings.errors import PloyError
from bindings.sandbox.agent import wire

ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DEFAULT_TTL_S = 259200  # 3 days, Cloudflare's default
MAX_NAME = 256
TOMBSTONE_S = 7 * 86400
PARTIAL_S = 3600  # a folder without meta.json this old is what a killed `ploy dev` left mid-backup
READ_PIECE = 1 << 20
ZSTD_LEVEL = 1  # ~250 MB/s of source text per core here; level 3 halves that for ~10% smaller archives
IN_FLIGHT = 4  # pieces queued between the event loop and a worker thread (bounded memory)
DATA = "data.tar.zst"


class _Stopped(Exception):
    """The event-loop side went away; the worker thread ends its job."""


_ENDED = object()


class _Worker:
    """A thread doing one blocking job (zstd, file I/O) that exchanges pieces with the event loop through
    a bounded asyncio queue, so compression overlaps the transfer, memory stays bounded (IN_FLIGHT
    pieces), and neither side can be left waiting: the thread checks `stopped` between waits, and the
    loop side gives up waiting once the thread is done. `result()` returns its value or raises its error."""

    def __init__(self, job: Callable[[_Worker], Any]) -> None:
        self.loop = asyncio.get_running_loop()
        self.q: asyncio.Queue[Any] = asyncio.Queue(maxsize=IN_FLIGHT)
        self.stopped = False
        self.done = asyncio.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        self.thread.start()

    def _run(self, job: Callable[[_Worker], Any]) -> None:
        try:
            self.value = job(self)
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side
            self.error = exc
        finally:
            self.loop.call_soon_threadsafe(self.done.set)

    def _wait(self, coro: Any) -> Any:
        """On the thread: run a queue operation on the loop, re-checking `stopped` every half second."""
        while True:
            fut = asyncio.run_coroutine_threadsafe(coro(), self.loop)
            try:
                return fut.result(0.5)
            except concurrent.futures.TimeoutError:
                if not fut.cancel():
                    return fut.result()  # it completed just now
                if self.stopped:
                    raise _Stopped from None

    def send(self, item: Any) -> None:
        """On the thread: hand a piece to the loop (blocks while IN_FLIGHT are waiting)."""
        self._wait(lambda: self.q.put(item))

    def receive(self) -> Any:
        """On the thread: the next piece from the loop (None: the end)."""
        return self._wait(self.q.get)

    async def _until_done(self, op: Any) -> Any:
        """`op`'s value, or _ENDED if the thread ended first (and `op` is then abandoned)."""
        task = asyncio.ensure_future(op)
        done = asyncio.ensure_future(self.done.wait())
        try:
            await asyncio.wait({task, done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return _ENDED

    async def put(self, item: Any) -> None:
        """On the loop: give the thread a piece (dropped when the thread has already ended)."""
        await self._until_done(self.q.put(item))

    async def get(self) -> Any:
        """On the loop: the thread's next piece, or None at its end (or once it ended, nothing left)."""
        if not self.q.empty():
            return self.q.get_nowait()
        if self.done.is_set():
            return None
        item = await self._until_done(self.q.get())
        if item is _ENDED:
            return self.q.get_nowait() if not self.q.empty() else None
        return item

    async def result(self) -> Any:
        await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value

    def stop(self) -> None:
        """The loop side is leaving: let the thread's next wait end its job."""
        self.stopped = True


def invalid(message: str, reason: str) -> PloyError:
    return PloyError(message, code=INVALID_BACKUP_CONFIG, reason=reason)


def check_dir(value: Any, label: str) -> str:
    """The agent checks again; checking here first means a bad call starts no container."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise invalid(f"{label} must be an absolute path, got {value!r}", label)
    if "\0" in value:
        raise invalid(f"{label} must not contain NUL bytes", label)
    if ".." in value.split("/"):
        raise invalid(f"{label} must not contain '..' segments: {value}", label)
    norm = os.path.normpath(value)
    if not any(norm == r or norm.startswith(r + "/") for r in wire.BACKUP_ROOTS):
        raise invalid(f"{label} must be inside one of {', '.join(wire.BACKUP_ROOTS)}: {value}", label)
    return norm


def backup_id(value: Any) -> str:
    """An id from a string or from the object createBackup returned ({id, dir, ...})."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not ID_RE.match(value):
        raise invalid(f"{value!r} is not a backup id (createBackup returns ids like {uuid.uuid4()})", "id")
    return value


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def create_options(options: dict[str, Any]) -> dict[str, Any]:
    """createBackup's options, checked: {dir, name, ttl, gitignore, excludes}."""
    d = check_dir(options.get("dir"), "dir")
    name = options.get("name")
    if name is not None:
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise invalid(f"name must be a string of at most {MAX_NAME} characters", "name")
        if re.search(r"[\x00-\x1f\x7f]", name):
            raise invalid("name must not contain control characters", "name")
    ttl = options.get("ttl", DEFAULT_TTL_S)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        raise invalid(f"ttl must be a positive number of seconds, got {ttl!r}", "ttl")
    gitignore = options.get("gitignore", False)
    if not isinstance(gitignore, bool):
        raise invalid("gitignore must be a boolean", "gitignore")
    excludes = options.get("excludes", [])
    if not isinstance(excludes, list) or not all(isinstance(e, str) and e for e in excludes):
        raise invalid("excludes must be an array of glob strings", "excludes")
    return {"dir": d, "name": name, "ttl": ttl, "gitignore": gitignore, "excludes": excludes}


class BackupStore:
    def __init__(self, ctx: BindingContext) -> None:
        self.root = ctx.state_dir / "backups" / ctx.project_key

    def _dir(self, bid: str) -> Path:
        return self.root / bid

    def _write_meta(self, bid: str, meta: dict[str, Any]) -> None:
        tmp = self._dir(bid) / f".meta.{uuid.uuid4().hex[:8]}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self._dir(bid) / "meta.json")

    def _read_meta(self, bid: str) -> dict[str, Any] | None:
        try:
            meta: dict[str, Any] = json.loads((self._dir(bid) / "meta.json").read_text())
            return meta
        except (OSError, ValueError):
            return None

    def valid(self, value: Any) -> tuple[dict[str, Any], Path]:
        """The backup's record and archive, or BACKUP_NOT_FOUND / BACKUP_EXPIRED."""
        bid = backup_id(value)
        meta = self._read_meta(bid)
        data = self._dir(bid) / DATA
        if meta is None:
            raise PloyError(f"no backup {bid} in this project", code=BACKUP_NOT_FOUND, backupId=bid)
        if time.time() >= meta["expiresAt"]:
            raise PloyError(
                f"backup {bid} expired at {_iso(meta['expiresAt'])} (ttl {meta['ttl']} s); make a new one",
                code=BACKUP_EXPIRED,
                backupId=bid,
                expiredAt=_iso(meta["expiresAt"]),
            )
        if not data.is_file():
            raise PloyError(
                f"backup {bid}'s archive is missing from {data.parent}", code=BACKUP_NOT_FOUND, backupId=bid
            )
        return meta, data

    @staticmethod
    def public(meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": meta["id"],
            "dir": meta["dir"],
            "name": meta.get("name"),
            "size": meta["size"],
            "createdAt": _iso(meta["createdAt"]),
            "expiresAt": _iso(meta["expiresAt"]),
        }

    async def create(
        self, frames: AsyncIterator[tuple[bytes, bytes]], opts: dict[str, Any], source: str
    ) -> dict[str, Any]:
        """Store what an archiveDir stream sends; nothing is left behind if anything fails."""
        self.sweep()
        bid = str(uuid.uuid4())
        d = self._dir(bid)
        d.mkdir(parents=True)
        partial = d / "data.partial"

        def compress(worker: _Worker) -> tuple[int, int, str, int]:
            sha = hashlib.sha256()
            crc, raw = 0, 0
            with open(partial, "wb") as f:
                z = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compressobj()
                while (piece := worker.receive()) is not None:
                    crc = zlib.crc32(piece, crc)
                    raw += len(piece)
                    out = z.compress(piece)
                    sha.update(out)
                    f.write(out)
                out = z.flush()
                sha.update(out)
                f.write(out)
                return raw, crc, sha.hexdigest(), f.tell()

        worker = _Worker(compress)
        reply: dict[str, Any] = {}
        try:
            async for kind, payload in frames:
                if kind == b"J":
                    reply = json.loads(payload).get("result") or {}
                    continue
                await worker.put(payload)
            await worker.put(None)
            raw, crc, sha256, size = await worker.result()
            if reply.get("crc32") != crc or reply.get("size") != raw:
                raise PloyError(
                    f"the archive of {opts['dir']} arrived damaged ({raw} bytes, the sandbox sent "
                    f"{reply.get('size')}); nothing was kept",
                    code=BACKUP_CREATE_FAILED,
                    dir=opts["dir"],
                )
            os.replace(partial, d / DATA)
            now = time.time()
            meta = {
                "id": bid,
                "dir": opts["dir"],
                "name": opts["name"],
                "size": size,
                "sha256": sha256,
                "tarSize": raw,
                "crc32": crc,
                "createdAt": now,
                "ttl": opts["ttl"],
                "expiresAt": now + opts["ttl"],
                "sandbox": source,
            }
            self._write_meta(bid, meta)
        except BaseException:
            worker.stop()
            with contextlib.suppress(BaseException):
                await frames.aclose()  # type: ignore[attr-defined]
            shutil.rmtree(d, ignore_errors=True)
            raise
        out = self.public(meta)
        if reply.get("warnings"):
            out["warnings"] = reply["warnings"]
        return out

    async def pieces(self, meta: dict[str, Any], path: Path) -> AsyncIterator[bytes]:
        """The backup's tar, decompressed in a worker thread while the pieces go out. The file's sha256
        and zstd's checksum are checked as it is read; a mismatch raises before the last piece, so the
        upload never completes and the agent discards what it staged."""

        def decompress(worker: _Worker) -> None:
            sha = hashlib.sha256()
            intact = True
            with open(path, "rb") as f:
                z = zstandard.ZstdDecompressor().decompressobj()
                while chunk := f.read(READ_PIECE):
                    sha.update(chunk)
                    try:
                        out = z.decompress(chunk)
                    except zstandard.ZstdError:
                        intact = False
                        break
                    if out:
                        worker.send(out)
            if not intact or sha.hexdigest() != meta["sha256"] or not z.eof:
                raise PloyError(
                    f"backup {meta['id']}'s archive is damaged (its sha256 or zstd checksum does not match); "
                    "nothing was restored",
                    code=BACKUP_RESTORE_FAILED,
                    backupId=meta["id"],
                )
            worker.send(None)

        worker = _Worker(decompress)
        try:
            while (piece := await worker.get()) is not None:
                yield piece
            await worker.result()
        finally:
            worker.stop()

    def live(self) -> list[dict[str, Any]]:
        self.sweep()
        out = []
        now = time.time()
        for meta in self._all():
            if now < meta["expiresAt"]:
                out.append(self.public(meta))
        out.sort(key=lambda m: m["createdAt"])
        return out

    def _all(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        metas = []
        for d in self.root.iterdir():
            meta = self._read_meta(d.name) if ID_RE.match(d.name) else None
            if meta is not None:
                metas.append(meta)
        return metas

    def delete(self, value: Any) -> dict[str, Any]:
        bid = backup_id(value)
        if self._read_meta(bid) is None:
            raise PloyError(f"no backup {bid} in this project", code=BACKUP_NOT_FOUND, backupId=bid)
        (self._dir(bid) / "meta.json").unlink()  # gone from now on, whatever the rest of the removal does
        shutil.rmtree(self._dir(bid), ignore_errors=True)
        return {"id": bid, "deleted": True}

    def sweep(self) -> None:
        """Archives past their ttl go; their records stay as tombstones a while; stale partials go."""
        if not self.root.is_dir():
            return
        now = time.time()
        for d in self.root.iterdir():
            meta = self._read_meta(d.name)
            if meta is None:
                with contextlib.suppress(OSError):
                    if now - d.stat().st_mtime > PARTIAL_S:
                        shutil.rmtree(d, ignore_errors=True)
                continue
            if now >= meta["expiresAt"] + TOMBSTONE_S:
                shutil.rmtree(d, ignore_errors=True)
            elif now >= meta["expiresAt"]:
                with contextlib.suppress(FileNotFoundError):
                    (d / DATA).unlink()
