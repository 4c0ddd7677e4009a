"""A sandbox's disk limit and the user namespace every sandbox runs in.

User namespace: root in a sandbox is uid USERNS_BASE on the host (and so on for 65,536 ids), for every
sandbox (`--uidmap`/`--gidmap`): what a sandbox writes into its bind-mounted run folder, or anywhere on
the host's disks, belongs to an unprivileged id, never to host root. Podman mounts the image's layers
idmapped (this kernel supports it), so the mapping costs no copy of the image.

Disk limit: Podman's overlay driver limits a container's size only on XFS with project quotas
(`--storage-opt size=` says "only supported for backingFS XFS" on this ext4 root). So a sandbox's
writable layer lives on a filesystem of its own: a sparse file of `disk` bytes in its token folder,
formatted ext4 (~10 ms) and loop-mounted at `<token folder>/disk`. The container is made with
`podman create`; before `podman start`, its layer folder in Podman's storage
(`overlay/<layer id>`: `diff`, `work`, `link`, `lower`, ...) is moved onto that filesystem and
replaced by a symlink to it. Podman keeps doing everything itself (start, stop, commit for snapshots,
cp for recreate, rm, image prune), the kernel resolves the link when it mounts the overlay, and writing
past the limit fails with ENOSPC inside the sandbox; `df /` there shows the limit. The file takes host
space only as the sandbox writes, and gives it back when files are deleted (`discard`).

Nothing is ever mounted inside Podman's storage: its own private bind mount of the overlay folder would
hide such a mount (and a mount on a layer folder makes `podman rm` fail with EBUSY for every user of the
store). `podman rm` removes only the link; ploy unmounts and deletes the disk with the token folder.
After a reboot the mount is gone: ploy mounts it again before it starts the container (ensure_mounted);
until then the link leads to an empty folder, so Podman fails loudly instead of starting the sandbox
without its files.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

from bindings.error_codes import PODMAN_ERROR
from bindings.errors import PloyError

USERNS_BASE = 2_000_000_000
USERNS_SIZE = 65536
USERNS_FLAGS = (
    "--uidmap",
    f"0:{USERNS_BASE}:{USERNS_SIZE}",
    "--gidmap",
    f"0:{USERNS_BASE}:{USERNS_SIZE}",
)
# as recorded in a sandbox's settings (item 12 names sandboxes made without it)
USERNS_SETTING = f"0:{USERNS_BASE}:{USERNS_SIZE}"

DISK_FILE = "disk.img"
MOUNT_DIR = "disk"
# -m 0: no blocks reserved for root (the sandbox's root is the only user); lazy init: mkfs writes only
# the superblocks and bitmaps, so the file stays sparse; nodiscard: nothing to discard in a new file.
MKFS = ("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard")
# discard: space freed in the sandbox is given back to the host's disk
MOUNT_OPTIONS = "loop,discard,nodev,nosuid"
MNT_DETACH = 2


class DiskError(PloyError):
    code = PODMAN_ERROR


def disk_file(d: Path) -> Path:
    return d / DISK_FILE


def mount_dir(d: Path) -> Path:
    return d / MOUNT_DIR


def _run(*argv: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise DiskError(
            f"{argv[0]} is not installed: a sandbox disk limit needs it (Debian: e2fsprogs, mount), "
            "or set `disk: 0` in ploy.yaml"
        ) from None
    if done.returncode != 0:
        raise DiskError(f"{argv[0]} failed: {(done.stderr or done.stdout).strip()[-500:]}")


def make(d: Path, size: int) -> None:
    """The sandbox's filesystem of `size` bytes, made and mounted (blocking: run it in a thread)."""
    img, mnt = disk_file(d), mount_dir(d)
    with open(img, "wb") as f:
        f.truncate(size)
    _run(*MKFS, str(img))
    mnt.mkdir(exist_ok=True)
    _run("mount", "-o", MOUNT_OPTIONS, str(img), str(mnt))


def ensure_mounted(d: Path) -> None:
    """Mount a sandbox's filesystem again if it has one and it is not mounted (after a reboot)."""
    img, mnt = disk_file(d), mount_dir(d)
    if img.is_file() and not os.path.ismount(mnt):
        mnt.mkdir(exist_ok=True)
        _run("mount", "-o", MOUNT_OPTIONS, str(img), str(mnt))


def has_disk(d: Path) -> bool:
    return disk_file(d).is_file()


def adopt(layer: Path, d: Path) -> None:
    """Move the container's layer folder (just made by `podman create`: empty folders and two small
    files) onto the sandbox's filesystem and leave a symlink in its place."""
    mnt = mount_dir(d)
    if layer.is_symlink():
        return
    st = os.lstat(layer)
    for entry in os.scandir(layer):
        src, dst = Path(entry.path), mnt / entry.name
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(src, dst, symlinks=True)
        elif entry.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
        for path, ref in _pairs(src, dst):
            s = os.lstat(path)
            os.lchown(ref, s.st_uid, s.st_gid)
    os.chown(mnt, st.st_uid, st.st_gid)
    os.chmod(mnt, st.st_mode & 0o7777)
    old = layer.with_name(layer.name + ".ploy-moved")
    os.rename(layer, old)
    os.symlink(mnt, layer)
    shutil.rmtree(old, ignore_errors=True)


def _pairs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    out = [(src, dst)]
    if src.is_dir() and not src.is_symlink():
        for root, dirs, files in os.walk(src):
            for name in dirs + files:
                p = Path(root) / name
                out.append((p, dst / p.relative_to(src)))
    return out


_libc = ctypes.CDLL(None, use_errno=True)


def _umount(path: str) -> None:
    # detached: nothing in the host uses these files, and a busy mount must not keep the disk
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount {path}: {os.strerror(err)}")


def release(d: Path) -> None:
    """Unmount a sandbox's filesystem (its loop device goes with it) and delete its file."""
    mnt = mount_dir(d)
    for _ in range(8):  # mounted more than once (two processes raced to mount it after a reboot)
        if not os.path.ismount(mnt):
            break
        _umount(str(mnt))
    disk_file(d).unlink(missing_ok=True)


def release_under(root: Path) -> int:
    """Unmount every mount below `root` (a whole PLOY_HOME: tests and benchmarks remove theirs with
    rmtree, which would otherwise empty mounted disks and leave their loop devices). How many."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return 0
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].encode().decode("unicode_escape")
            if point.startswith(prefix):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        _umount(point)
    return len(points)


def unshift_tree(path: str) -> int:
    """Give files owned by the sandboxes' host ids (USERNS_BASE + n) the container's ids (n) again,
    below `path` (a committed image layer). How many changed."""
    top = USERNS_BASE + USERNS_SIZE

    def fix(p: str) -> int:
        st = os.lstat(p)
        uid = st.st_uid - USERNS_BASE if USERNS_BASE <= st.st_uid < top else st.st_uid
        gid = st.st_gid - USERNS_BASE if USERNS_BASE <= st.st_gid < top else st.st_gid
        if (uid, gid) == (st.st_uid, st.st_gid):
            return 0
        os.lchown(p, uid, gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(p, stat.S_IMODE(st.st_mode))  # chown drops setuid/setgid bits
        return 1

    changed = fix(path)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            changed += fix(os.path.join(root, name))
    return changed


# ---- finding a container's layer folder -----------------------------------------------------------

_graph_root: Path | None = None


def set_graph_root(path: str) -> None:
    global _graph_root
    _graph_root = Path(path)


def graph_root_known() -> bool:
    return _graph_root is not None


def layer_dir(container_id: str) -> Path:
    """Podman's folder of the container's writable layer, read from its storage's containers.json
    (written atomically by Podman; reading it costs well under `podman inspect`'s ~100 ms)."""
    if _graph_root is None:
        raise DiskError("podman's storage root is not known")
    path = _graph_root / "overlay-containers" / "containers.json"
    for c in json.loads(path.read_text()):
        if c.get("id") == container_id and c.get("layer"):
            layer = _graph_root / "overlay" / str(c["layer"])
            if not (layer / "diff").is_dir():
                raise DiskError(f"a disk limit needs Podman's overlay storage; {layer} has no diff")
            return layer
    raise DiskError(f"container {container_id[:12]} is not in {path}")
