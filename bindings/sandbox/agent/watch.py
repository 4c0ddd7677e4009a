"""File watching with inotify (reached through ctypes: the agent is stdlib only).

One Watcher per (path, options), shared by every `watch` stream on it and by `checkChanges`. A watcher
puts an inotify watch on the directory and, when recursive, on every directory below it that no
exclude pattern prunes, adding new directories as they appear (and reporting what was created in them
before their watch was in place). Events are read as soon as the kernel has them and leave in one
batch per read, as server-sent events.

What reaches the client: `create`, `modify` (content written, or metadata such as mtime/mode
changed), `delete`, and `rename` (`oldPath` -> `path`, when both ends are watched; a move out of the
tree is a delete, into it a create). Coalescing: events are sent in batches, a batch being what
arrives within BATCH_S (5 ms) of its first event; within a batch, repeated `modify` events of one path
are reported once, and a `modify` of a path created in the same batch is dropped (a new file written
at once is one `create`; one written over a longer time is a `create`, then `modify` events). Nothing
else is merged, so a burst of 1,000 new files gives 1,000 `create` events. writeFile's temporaries
(files.py) are not reported: the rename that completes a write is the file's `create`, or its `modify`
when it existed. If the kernel's queue overflows (16,384 events unread), an `overflow` event
says events were lost and the client should rescan.

checkChanges keeps its watcher after the call (a retained watcher, Cloudflare's change tracking) with a
log of the last MAX_LOG events, so a polling client learns what changed while it was away. A retained
watcher nobody asked about for RETAIN_S is dropped; the next call then answers `resync`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import errno
import fnmatch
import json
import os
import stat
import struct
import uuid
from typing import Any

import files
from common import WORKDIR, AgentError, iso_now, os_error, resolve
from conn import Conn
from error_codes import INVALID_ARGUMENT, NOT_A_DIRECTORY

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
EVENT = struct.Struct("iIII")
DEFAULT_EXCLUDE = [".git", "node_modules", ".DS_Store"]  # Cloudflare's default
INTERNAL_PREFIX = ".ploy-restore-"  # a restore's scratch folders (backups.py)
MAX_LOG = 10000
RETAIN_S = 600.0
BATCH_S = 0.005  # events arriving within this of a batch's first one are merged with it
MOVE_PAIR_S = 0.01  # how long an unpaired move-out waits for its move-in before it counts as a delete
_agent_run = ""


def agent_run() -> str:
    """Tells a version from this agent's life from one of an earlier life. Made on first use, in the
    agent itself: the agent is a fork of PID 1, which imported this module, so a value made at import
    would be the same in every restarted agent."""
    global _agent_run
    if not _agent_run:
        _agent_run = uuid.uuid4().hex[:8]
    return _agent_run


_libc: Any = None


def _inotify() -> Any:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        _libc = libc
    return _libc


def _patterns(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise AgentError(INVALID_ARGUMENT, f"{name} must be an array of glob patterns")
    return list(value)


def _match(rel: str, patterns: list[str]) -> bool:
    # a pattern without "/" matches any one component of the path (so `node_modules` covers all that is
    # under it); one with "/" matches the path relative to the watched directory
    parts = rel.split("/")
    for p in patterns:
        if "/" in p.strip("/"):
            if fnmatch.fnmatchcase(rel, p.strip("/")):
                return True
        elif any(fnmatch.fnmatchcase(part, p.strip("/")) for part in parts):
            return True
    return False


class Watcher:
    def __init__(self, root: str, recursive: bool, include: list[str] | None, exclude: list[str]) -> None:
        self.root = root
        self.recursive = recursive
        self.include = include
        self.exclude = exclude
        self.id = f"watch-{agent_run()}-{uuid.uuid4().hex[:8]}"
        self.fd = -1
        self.wds: dict[int, str] = {}  # watch descriptor -> directory path relative to root ("" = root)
        self.subscribers: set[asyncio.Queue[Any]] = set()
        self.retained = False
        self.seq = 0
        self.log: collections.deque[tuple[int, dict[str, Any]]] = collections.deque(maxlen=MAX_LOG)
        self.gap_at = 0  # the last seq at which events were lost (kernel overflow)
        self.pending_moves: dict[int, tuple[str, bool, asyncio.TimerHandle]] = {}
        self.stopped: str | None = None
        self.stopping: str | None = None  # why the watch ends once the current batch is out
        self.expiry: asyncio.TimerHandle | None = None
        self.batch: list[dict[str, Any]] = []
        self.flush_at: asyncio.TimerHandle | None = None

    # ---- inotify ---------------------------------------------------------------------------

    def start(self) -> None:
        libc = _inotify()
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise os_error(OSError(e, os.strerror(e)), self.root)
        self.fd = fd
        try:
            self._add_tree("", report=False)
        except BaseException:
            self.close()
            raise
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _abs(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def _add(self, rel: str) -> bool:
        path = self._abs(rel).encode("utf-8", "surrogateescape")
        wd = _inotify().inotify_add_watch(self.fd, path, MASK | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
        if wd < 0:
            e = ctypes.get_errno()
            if rel and e in (errno.ENOENT, errno.ENOTDIR):
                return False  # gone again before we got to it
            raise os_error(OSError(e, os.strerror(e)), self._abs(rel))
        self.wds[wd] = rel
        return True

    def _add_tree(self, rel: str, report: bool) -> list[dict[str, Any]]:
        """Watch `rel` and (recursively) the directories in it. With `report`, what is already in it
        comes back as create events: it was made before the watch could see it."""
        found: list[dict[str, Any]] = []
        if not self._add(rel):
            return found
        if not self.recursive and rel:
            return found
        try:
            entries = list(os.scandir(self._abs(rel)))
        except OSError:
            return found
        for e in entries:
            child = f"{rel}/{e.name}" if rel else e.name
            if self._skip(child):
                continue
            is_dir = e.is_dir(follow_symlinks=False)
            if report:
                found.append(self._event("create", child, is_dir))
            if is_dir and self.recursive:
                found += self._add_tree(child, report)
        return found

    def _skip(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if name.startswith(INTERNAL_PREFIX) or files.WRITE_TEMP_RE.match(name):
            return True
        return bool(self.exclude) and _match(rel, self.exclude)

    def _drop_tree(self, rel: str) -> None:
        prefix = rel + "/"
        for wd, path in list(self.wds.items()):
            if path == rel or path.startswith(prefix):
                del self.wds[wd]

    def _move_tree(self, old: str, new: str) -> None:
        prefix = old + "/"
        for wd, path in list(self.wds.items()):
            if path == old:
                self.wds[wd] = new
            elif path.startswith(prefix):
                self.wds[wd] = new + path[len(old) :]

    def _event(self, kind: str, rel: str, is_dir: bool, old: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"type": kind, "path": self._abs(rel), "isDirectory": is_dir}
        if old is not None:
            event["oldPath"] = self._abs(old)
        event["timestamp"] = iso_now()
        return event

    def _visible(self, rel: str) -> bool:
        if self._skip(rel):
            return False
        if not self.recursive and "/" in rel:
            return False
        return not self.include or _match(rel, self.include)

    def _readable(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 256 * 1024)
            except BlockingIOError:
                break
            except OSError:
                self._stop("the watch failed: its inotify descriptor could not be read")
                return
            if not data:
                break
            self._parse(data, self.batch)
        if self.batch and self.flush_at is None:
            # a batch stays open BATCH_S for the events that come with the first one (a file's create and
            # its first write, a `touch`'s create and attrib), so they are merged whatever the read timing
            self.flush_at = asyncio.get_running_loop().call_later(BATCH_S, self._flush)

    def _flush(self) -> None:
        self.flush_at = None
        batch, self.batch = self.batch, []
        self._publish(batch)
        if self.stopping is not None:
            self._stop(self.stopping)

    def _parse(self, data: bytes, batch: list[dict[str, Any]]) -> None:
        at = 0
        while at + EVENT.size <= len(data):
            wd, mask, cookie, length = EVENT.unpack_from(data, at)
            raw = data[at + EVENT.size : at + EVENT.size + length].rstrip(b"\0")
            at += EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                self.gap_at = self.seq + len(batch) + 1
                batch.append(
                    {"type": "overflow", "path": self.root, "isDirectory": True, "timestamp": iso_now()}
                )
                continue
            base = self.wds.get(wd)
            if base is None:
                continue
            if mask & IN_IGNORED:
                self.wds.pop(wd, None)
                continue
            is_dir = bool(mask & IN_ISDIR)
            if not raw:  # an event on the watched directory itself
                if (
                    base == ""
                    and mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)
                    and self.stopping is None
                ):
                    batch.append(self._event("delete", "", True))
                    self.stopping = "the watched directory was deleted or moved away"
                continue
            name = raw.decode("utf-8", "surrogateescape")
            rel = f"{base}/{name}" if base else name
            if mask & IN_CREATE:
                if self._visible(rel):
                    batch.append(self._event("create", rel, is_dir))
                if is_dir and self.recursive and not self._skip(rel):
                    batch.extend(e for e in self._add_tree(rel, report=True) if self._visible(self._rel(e)))
            elif mask & (IN_MODIFY | IN_ATTRIB):
                if self._visible(rel):
                    batch.append(self._event("modify", rel, is_dir))
            elif mask & IN_DELETE:
                if is_dir:
                    self._drop_tree(rel)
                if self._visible(rel):
                    batch.append(self._event("delete", rel, is_dir))
            elif mask & IN_MOVED_FROM:
                timer = asyncio.get_running_loop().call_later(MOVE_PAIR_S, self._moved_away, cookie)
                self.pending_moves[cookie] = (rel, is_dir, timer)
            elif mask & IN_MOVED_TO:
                pending = self.pending_moves.pop(cookie, None)
                if pending is not None:
                    old, _, timer = pending
                    timer.cancel()
                    if is_dir:
                        self._move_tree(old, rel)
                    old_visible, new_visible = self._visible(old), self._visible(rel)
                    if old_visible and new_visible:
                        batch.append(self._event("rename", rel, is_dir, old))
                    elif old_visible:
                        batch.append(self._event("delete", old, is_dir))
                    elif new_visible:
                        # writeFile's temporary renamed over its file: the file written in place
                        replaced = files.replaced_existing(old.rsplit("/", 1)[-1])
                        batch.append(self._event("modify" if replaced else "create", rel, is_dir))
                    if (
                        is_dir
                        and self.recursive
                        and not self._skip(rel)
                        and not any(p == rel for p in self.wds.values())
                    ):
                        self._add_tree(rel, report=False)
                else:
                    if self._visible(rel):
                        batch.append(self._event("create", rel, is_dir))
                    if is_dir and self.recursive and not self._skip(rel):
                        self._add_tree(rel, report=False)

    def _rel(self, event: dict[str, Any]) -> str:
        path = str(event["path"])
        return path[len(self.root) + 1 :] if path != self.root else ""

    def _moved_away(self, cookie: int) -> None:
        pending = self.pending_moves.pop(cookie, None)
        if pending is None:
            return
        rel, is_dir, _ = pending
        if is_dir:
            self._drop_tree(rel)
        if self._visible(rel):
            self.batch.append(self._event("delete", rel, is_dir))
            if self.flush_at is None:
                self.flush_at = asyncio.get_running_loop().call_later(BATCH_S, self._flush)

    def _publish(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        out: list[dict[str, Any]] = []
        last: dict[str, str] = {}  # path -> type of its latest event in this batch
        for event in batch:
            path, kind = event["path"], event["type"]
            if kind == "modify" and last.get(path) in ("create", "modify"):
                continue
            last[path] = kind
            out.append(event)
        for event in out:
            self.seq += 1
            self.log.append((self.seq, event))
        for q in self.subscribers:
            q.put_nowait(out)

    # ---- lifetime ----------------------------------------------------------------------------

    def _stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
            for q in self.subscribers:
                q.put_nowait(None)
            _forget(self)
            self.close()

    def close(self) -> None:
        if self.flush_at is not None:
            self.flush_at.cancel()
            self.flush_at = None
        for _, _, timer in self.pending_moves.values():
            timer.cancel()
        self.pending_moves.clear()
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if self.fd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1

    def release(self) -> None:
        """A stream left, or a retained watcher was asked about: keep, expire later, or close now."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if self.subscribers or self.stopped is not None:
            return
        if self.retained:
            self.expiry = asyncio.get_running_loop().call_later(RETAIN_S, self._expire)
        else:
            _forget(self)
            self.close()

    def _expire(self) -> None:
        self.expiry = None
        if not self.subscribers:
            _forget(self)
            self.close()


_WATCHERS: dict[str, Watcher] = {}


def _forget(w: Watcher) -> None:
    for key, other in list(_WATCHERS.items()):
        if other is w:
            del _WATCHERS[key]


def _watcher(req: dict[str, Any], cwd: str) -> Watcher:
    root = resolve(req.get("path") or ".", cwd)
    try:
        st = os.stat(root)
    except OSError as exc:
        raise os_error(exc, root) from None
    if not stat.S_ISDIR(st.st_mode):
        raise AgentError(NOT_A_DIRECTORY, f"watch needs a directory: {root}", path=root)
    recursive = req.get("recursive") is not False
    include = _patterns(req.get("include"), "include")
    exclude = _patterns(req.get("exclude"), "exclude")
    if exclude is None:
        exclude = [] if include else list(DEFAULT_EXCLUDE)
    key = json.dumps([root, recursive, include, exclude])
    w = _WATCHERS.get(key)
    if w is not None and w.stopped is None:
        return w
    w = Watcher(root, recursive, include, exclude)
    w.start()
    _WATCHERS[key] = w
    return w


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


async def watch(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = WORKDIR) -> None:
    w = _watcher(req, cwd)
    q: asyncio.Queue[Any] = asyncio.Queue()
    w.subscribers.add(q)
    if w.expiry is not None:
        w.expiry.cancel()
        w.expiry = None
    closed = asyncio.ensure_future(conn.wait_closed_by_peer())
    reason = "the client closed the stream"
    try:
        await conn.send(b"D", _sse({"type": "watching", "path": w.root, "watchId": w.id}))
        while True:
            get = asyncio.ensure_future(q.get())
            done, _ = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                raise ConnectionResetError("host closed the stream")
            batch = get.result()
            if batch is None:
                reason = w.stopped or "stopped"
                await conn.send(b"D", _sse({"type": "stopped", "reason": reason}))
                break
            await conn.send(b"D", b"".join(_sse(e) for e in batch))
    finally:
        w.subscribers.discard(q)
        w.release()
        await conn.stop_watching(closed)
    await conn.reply({"stopped": reason})


async def check_changes(conn: Conn, req: dict[str, Any], s: Any = None, cwd: str = WORKDIR) -> None:
    await conn.reply(_check_changes(req, cwd))


def _check_changes(req: dict[str, Any], cwd: str) -> dict[str, Any]:
    since = req.get("since")
    parsed: tuple[str, int] | None = None
    if since is not None:
        head, _, digits = since.rpartition(":") if isinstance(since, str) else ("", "", "")
        if not head or not digits.isdigit():
            raise AgentError(
                INVALID_ARGUMENT, "since must be a version returned by checkChanges()", since=since
            )
        parsed = (head, int(digits))
    w = _watcher(req, cwd)
    w.retained = True
    w.release()
    version = f"{w.id}:{w.seq}"
    out: dict[str, Any] = {"success": True, "version": version, "timestamp": iso_now()}
    if parsed is None:
        return {**out, "status": "unchanged"}
    watch_id, cursor = parsed
    if watch_id != w.id:
        # a version from an earlier life of the agent (the sandbox restarted), or from a retained watcher
        # that expired (or never existed with these options)
        restarted = not watch_id.startswith(f"watch-{agent_run()}-")
        return {**out, "status": "resync", "reason": "restarted" if restarted else "expired"}
    if cursor > w.seq:
        raise AgentError(
            INVALID_ARGUMENT, "since is newer than this watch's state", since=since, currentVersion=version
        )
    if cursor == w.seq:
        return {**out, "status": "unchanged"}
    out["status"] = "changed"
    oldest = w.log[0][0] if w.log else w.seq + 1
    if oldest <= cursor + 1 and w.gap_at <= cursor:
        out["changes"] = [event for seq, event in w.log if seq > cursor]
    else:
        out["truncated"] = True  # more changed than the log holds, or events were lost: rescan
    return out
