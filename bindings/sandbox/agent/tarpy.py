"""tar for images without GNU tar: `tarpy.py c ROOT IGNORED_FILE [PATTERN...]` writes ROOT as a tar to
stdout, `tarpy.py x DIR` unpacks stdin into DIR. Stdlib only (tarfile), python 3.9-compatible.

The same archives and the same exclusion rules as backups.py asks of GNU tar: entries are `./`-relative;
IGNORED_FILE (may be empty) holds `./paths`, one per line, left out as they are; a PATTERN with `/`
matches the path from ROOT, one without matches a name at any depth.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import sys
import tarfile
from typing import Any

SCRATCH_PREFIX = ".ploy-restore-"
PIECE = 1 << 20


def _excluded(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for p in patterns:
        p = p.strip("/")
        if "/" in p:
            if fnmatch.fnmatchcase(rel, p):
                return True
        elif any(fnmatch.fnmatchcase(part, p) for part in parts):
            return True
    return False


def _walk(root: str, rel: str, patterns: list[str], ignored: set[str]) -> Any:
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        child = f"{rel}/{e.name}" if rel else e.name
        if "./" + child in ignored or e.name.startswith(SCRATCH_PREFIX) or _excluded(child, patterns):
            continue
        st = e.stat(follow_symlinks=False)
        yield child, e.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, child, patterns, ignored)


class _Padded:
    """Exactly `size` bytes of a file: zeros if it shrank while read (the header is written), the first
    `size` bytes if it grew."""

    def __init__(self, f: Any, size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        if len(data) < n:
            data += b"\0" * (n - len(data))
        self.left -= len(data)
        return bytes(data)


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.mtime = int(st.st_mtime)
    return ti


def create(root: str, ignored_file: str, patterns: list[str]) -> None:
    ignored: set[str] = set()
    if ignored_file:
        with open(ignored_file, encoding="utf-8", errors="surrogateescape") as f:
            ignored = {n for n in f.read().split("\n") if n}
    out = sys.stdout.buffer
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        top = _info(".", os.stat(root))
        top.type = tarfile.DIRTYPE
        tar.addfile(top)
        for rel, path, st in _walk(root, "", patterns, ignored):
            ti = _info("./" + rel, st)
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            elif stat.S_ISREG(st.st_mode):
                ti.size = st.st_size
                try:
                    src = open(path, "rb")  # noqa: SIM115 - closed right after
                except FileNotFoundError:
                    continue  # deleted while we walked
                with src:
                    tar.addfile(ti, _Padded(src, st.st_size))
            elif stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(path)
                tar.addfile(ti)
            elif stat.S_ISFIFO(st.st_mode):
                ti.type = tarfile.FIFOTYPE
                tar.addfile(ti)
            # sockets and device files are not kept: they mean nothing outside the running sandbox


def extract(dest: str) -> None:
    kw: dict[str, Any] = {"numeric_owner": True}
    if hasattr(tarfile, "fully_trusted_filter"):
        kw["filter"] = "fully_trusted"  # modes and links stay as archived, as GNU tar keeps them
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
        dirs = []
        for member in tar:
            name = member.name
            if name.startswith("/") or ".." in name.split("/") or member.isdev():
                continue
            if name.rstrip("/") in (".", ""):
                dirs.append(member)
                continue
            if member.isdir():
                dirs.append(member)
            tar.extract(member, dest, set_attrs=not member.isdir(), **kw)
    # directories last, deepest first, so writing into them does not undo their mtime (as tar does)
    for member in sorted(dirs, key=lambda m: m.name.count("/"), reverse=True):
        path = os.path.join(dest, member.name)
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
        os.chmod(path, member.mode)
        os.utime(path, (member.mtime, member.mtime))


if __name__ == "__main__":
    if sys.argv[1] == "c":
        create(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        extract(sys.argv[2])
