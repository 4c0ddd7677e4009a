"""The default sandbox image: built locally (no registry is reachable), cached by a hash of its recipe.

Two layers, so that editing the agent does not redo the slow part:
  1. base  `localhost/ploy-sandbox-base:<hash>`: a Debian rootfs from debootstrap (the machine's mirror),
     imported with `podman import` (~50 s, once per recipe);
  2. image `localhost/ploy-sandbox:<hash>`: base + the agent, the host's CA bundle and image/bin/* (seconds).

A custom image (`image:` in ploy.yaml) or Containerfile gets the same thin layer 2 on top; it must contain
python3 (>= 3.9, stdlib only) and bash, because the agent and commands run with them.

Concurrent first uses (two tests, two processes) wait on one file lock instead of building twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from bindings import podman
from bindings.sandbox.locks import FileLock
from bindings.sandbox.progress import Progress, StderrProgress

HERE = Path(__file__).parent
AGENT_DIR = HERE / "agent"
# Modules of ploy's host side the agent imports too (by their bare name, beside its own modules).
AGENT_SHARED = (HERE.parent / "error_codes.py",)
BIN_DIR = HERE / "image" / "bin"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

SUITE = "bookworm"
PACKAGES = (
    "bash",
    "coreutils",
    "procps",
    "git",
    "curl",
    "ca-certificates",
    "python3",
    "less",
    "xz-utils",
    "vim-tiny",
)
# Installed with apt inside the new rootfs: debootstrap's own resolver cannot install npm's dependency
# tree. Node and npm are there so the docs' `npm install` / `npm run build` examples run as written, and
# python-is-python3 for the docs' `python worker.py`.
APT_PACKAGES = ("nodejs", "npm", "python-is-python3")
BASE_REPO = "localhost/ploy-sandbox-base"
IMAGE_REPO = "localhost/ploy-sandbox"

# Variables so that tools which do not read the system store (node) or bundle their own (requests)
# trust the CA bundle copied from the host (TLS interception proxies, see NOTES.md).
CA_ENV = (
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
    "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
    "CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
)


def _base_recipe() -> str:
    return (
        f"debootstrap --variant=minbase --include={','.join(PACKAGES)} {SUITE}\n"
        f"apt-get install --no-install-recommends {' '.join(APT_PACKAGES)}\n"
    )


def _layer_files() -> list[tuple[str, Path]]:
    """(path inside the build context, source) for every file of layer 2."""
    files = [
        (f"agent/{p.name}", p)
        for p in sorted(
            [*AGENT_DIR.glob("*.py"), *AGENT_DIR.glob("*.js"), *AGENT_SHARED], key=lambda p: p.name
        )
    ]
    if BIN_DIR.is_dir():
        files += [(f"bin/{p.name}", p) for p in sorted(BIN_DIR.iterdir()) if p.is_file()]
    if HOST_CA_BUNDLE.is_file():
        files.append(("ca-certificates.crt", HOST_CA_BUNDLE))
    return files


NODE_SNAPSHOT_RECIPE = (
    "node=$(command -v node) && cd /opt/ploy/agent"
    " && $node --expose-internals --snapshot-blob /opt/ploy/ctx_node.blob --build-snapshot ctx_node.js"
    " >/dev/null 2>&1 && readlink -f $node > /opt/ploy/ctx_node.blob.node || rm -f /opt/ploy/ctx_node.blob; true"
)


def _containerfile(base: str, files: list[tuple[str, Path]]) -> str:
    names = {dst.split("/", 1)[0] for dst, _ in files}
    lines = [f"FROM {base}"]
    if "ca-certificates.crt" in names:
        lines += [
            "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt",
            "COPY ca-certificates.crt /usr/local/share/ca-certificates/ploy-host-bundle.crt",
        ]
    lines.append("COPY agent/ /opt/ploy/agent/")
    if "bin" in names:
        lines.append("COPY bin/ /usr/local/bin/")
    lines += [
        "RUN python3 -m compileall -q /opt/ploy/agent && mkdir -p /workspace /var/lib/ploy",
        # A startup snapshot for javascript code contexts (see ctx_node.js), made by the image's own
        # node, which is recorded beside it: the agent uses it only with that node. An image without
        # node, or whose node cannot build one, simply has none.
        "RUN " + NODE_SNAPSHOT_RECIPE,
        "ENV LANG=C.UTF-8 " + " ".join(CA_ENV),
        "WORKDIR /workspace",
        # -S: the agent is stdlib only, skipping site-packages start-up shortens every cold start
        'CMD ["python3", "-S", "-u", "/opt/ploy/agent/init.py"]',
        # which base this layer is on, so pruning can tell a current custom-image layer from a stale one
        f"LABEL ploy.base={json.dumps(base)}",
    ]
    return "\n".join(lines) + "\n"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:16]


def base_tag() -> str:
    return f"{BASE_REPO}:{_digest(_base_recipe().encode())}"


def layer_tag(base: str) -> str:
    files = _layer_files()
    parts = [_containerfile(base, files).encode()]
    for dst, src in files:
        parts += [dst.encode(), src.read_bytes()]
    return f"{IMAGE_REPO}:{_digest(*parts)}"


def default_tag() -> str:
    return layer_tag(base_tag())


def _host_mirror() -> str | None:
    """The machine's Debian mirror (first `deb`/`URIs:` entry that is not the security archive)."""
    candidates: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        candidates += re.findall(r"^\s*URIs:\s*(\S+)", text, re.M)
        candidates += re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
    for uri in candidates:
        if "security" not in uri and uri.startswith(("http://", "https://", "file:")):
            return uri
    return None


def _lock_path() -> Path:
    # Images live in the machine-wide Podman store, so the lock is machine-wide too (not under PLOY_HOME).
    return Path(tempfile.gettempdir()) / f"ploy-image-build-{os.getuid()}.lock"


_PHASES = {
    "Retrieving": (0.02, 0.25),
    "Validating": (0.25, 0.3),
    "Extracting": (0.3, 0.38),
    "Unpacking": (0.38, 0.5),
    "Configuring": (0.5, 0.6),
}
_APT_PHASES = {"Get:": (0.6, 0.7), "Unpacking": (0.7, 0.8), "Setting": (0.8, 0.88)}


async def _build_base(tag: str, progress: Progress) -> None:
    progress(0.0, "debootstrap starting")
    with tempfile.TemporaryDirectory(prefix="ploy-rootfs-", dir="/var/tmp") as rootfs:
        args = ["--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, rootfs]
        mirror = _host_mirror()
        if mirror:
            args.append(mirror)
        proc = await asyncio.create_subprocess_exec(
            "debootstrap", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        assert proc.stdout is not None
        counts: dict[str, int] = {}
        tail: list[str] = []
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            tail = (tail + [line])[-20:]
            m = re.match(r"I: (\w+) (\S+)", line)
            if m and m.group(1) in _PHASES:
                lo, hi = _PHASES[m.group(1)]
                n = counts[m.group(1)] = counts.get(m.group(1), 0) + 1
                progress(lo + (hi - lo) * (1 - 1 / (1 + n / 40)), f"{m.group(1).lower()} {m.group(2)}")
        if await proc.wait() != 0:
            raise podman.PodmanError("debootstrap failed:\n" + "\n".join(tail))
        progress(0.6, "apt-get install " + " ".join(APT_PACKAGES))
        apt = await asyncio.create_subprocess_exec(
            "chroot",
            rootfs,
            "sh",
            "-c",
            "apt-get update -q && apt-get install -y -q --no-install-recommends " + " ".join(APT_PACKAGES),
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert apt.stdout is not None
        counts.clear()
        async for raw in apt.stdout:
            line = raw.decode(errors="replace").strip()
            tail = (tail + [line])[-20:]
            word = line.split(" ", 1)[0]
            if word in _APT_PHASES:
                lo, hi = _APT_PHASES[word]
                n = counts[word] = counts.get(word, 0) + 1
                progress(lo + (hi - lo) * (1 - 1 / (1 + n / 60)), line[:60])
        if await apt.wait() != 0:
            raise podman.PodmanError("apt-get install in the new rootfs failed:\n" + "\n".join(tail))
        progress(0.9, "importing rootfs into podman")
        # apt lists and caches are not needed in the image: keep it small.
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in Path(rootfs, sub).glob("*"):
                if p.is_file():
                    p.unlink()
        tar = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            f'tar -C "$1" -c . | {podman.PODMAN} import - "$2"',
            "sh",
            rootfs,
            tag,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await tar.communicate()
        if tar.returncode != 0:
            raise podman.PodmanError("podman import failed: " + err.decode(errors="replace"))


async def _build_layer(base: str, tag: str, progress: Progress) -> None:
    progress(0.95, "adding the ploy agent layer")
    files = _layer_files()
    with tempfile.TemporaryDirectory(prefix="ploy-image-ctx-") as ctx:
        for dst, src in files:
            target = Path(ctx, dst)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            target.chmod(0o755 if dst.startswith("bin/") else 0o644)
        Path(ctx, "Containerfile").write_text(_containerfile(base, files))
        await podman.run(
            "build",
            *podman.RUNTIME_FLAGS,
            *podman.ULIMIT_FLAGS,
            "--pull=never",
            "-q",
            "-t",
            tag,
            "-f",
            str(Path(ctx, "Containerfile")),
            ctx,
        )


async def ensure_base(progress: Progress | None = None) -> str:
    """The debootstrap base's tag, built if missing (a layer on it may exist while its name was removed)."""
    tag = base_tag()
    if not await podman.image_exists(tag):
        async with FileLock(_lock_path()):
            if not await podman.image_exists(tag):
                await _build_base(tag, progress or StderrProgress("ploy: building sandbox base image"))
    return tag


async def ensure_image(
    custom_base: str | None = None, progress: Progress | None = None, force: bool = False
) -> str:
    """The image tag to run, building what is missing. `custom_base` replaces the debootstrap base."""
    base = custom_base or base_tag()
    tag = layer_tag(base)
    if not force and await podman.image_exists(tag):
        return tag
    report = progress or StderrProgress("ploy: building sandbox image")
    async with FileLock(_lock_path()):
        if not force and await podman.image_exists(tag):
            return tag  # another process built it while we waited
        if custom_base is None and (force or not await podman.image_exists(base)):
            await _build_base(base, report)
        elif custom_base is not None and not await podman.image_exists(custom_base):
            raise podman.PodmanError(f"image {custom_base!r} not found in local podman storage")
        await _build_layer(base, tag, report)
        report(1.0, f"built {tag}")
        if os.environ.get("PLOY_IMAGE_PRUNE", "1") != "0":
            try:
                # best effort: a build must never fail because of it. Images built in the last hour are
                # left: another ploy version on this machine (a second checkout, a CI run) may be using
                # its own, and removing it would have the two rebuild each other's images all day.
                await prune_stale_images(min_age_s=AUTO_PRUNE_MIN_AGE_S)
            except Exception:
                pass
    return tag


AUTO_PRUNE_MIN_AGE_S = 3600


async def prune_stale_images(min_age_s: float = 0) -> list[str]:
    """Remove the names of ploy's own images that the current recipe no longer builds; return them.

    Only `localhost/ploy-sandbox:*` and `localhost/ploy-sandbox-base:*` names are looked at. Kept: the
    current default image and base, and a layer on a custom image (`image:`, `template:`, Containerfile)
    whose tag is what this recipe gives for that image while the image exists. A stale name of an image
    that has other names is only untagged; the last name of an image any container (running or stopped)
    uses is kept, and `podman rmi` without --force refuses it too, as it refuses a base that layers
    still need. Layers go first, so a stale base they held can go in the same run. An image built less
    than `min_age_s` ago keeps all its names (untagging a stale extra name of a kept image is harmless
    and always done)."""
    res = await podman.run("images", "--format", "json")
    found = json.loads(res.stdout or b"[]")
    current_base = base_tag()
    current = {layer_tag(current_base), current_base}
    layers: list[str] = []
    bases: list[str] = []
    for img in found if isinstance(found, list) else []:
        names = [n for n in img.get("Names") or [] if isinstance(n, str)]
        stale = []
        for name in names:
            repo = name.rpartition(":")[0]
            if repo not in (IMAGE_REPO, BASE_REPO) or name in current:
                continue
            base = (img.get("Labels") or {}).get("ploy.base")
            if (
                repo == IMAGE_REPO
                and base
                and not base.startswith(f"{BASE_REPO}:")
                and name == layer_tag(base)
                and await podman.image_exists(base)
            ):
                continue  # the current layer of a custom image
            stale.append(name)
        whole_image = len(stale) == len(names)
        if not stale or (whole_image and img.get("Containers")):
            continue
        created = img.get("Created")
        if whole_image and isinstance(created, (int, float)) and time.time() - created < min_age_s:
            continue
        for name in stale:
            (bases if name.startswith(f"{BASE_REPO}:") else layers).append(name)
    removed = []
    for name in layers + bases:
        if (await podman.run("rmi", name, check=False)).returncode == 0:
            removed.append(name)
    return removed


async def ensure_containerfile_image(
    containerfile: Path, context: Path, progress: Progress | None = None
) -> str:
    """Build a user's Containerfile (tagged by its content), then add the agent layer on top."""
    digest = _digest(containerfile.read_bytes(), str(context.resolve()).encode())
    user_tag = f"localhost/ploy-user:{digest}"
    if not await podman.image_exists(user_tag):
        async with FileLock(_lock_path()):
            if not await podman.image_exists(user_tag):
                await podman.run(
                    "build",
                    *podman.RUNTIME_FLAGS,
                    *podman.ULIMIT_FLAGS,
                    "--pull=never",
                    "-t",
                    user_tag,
                    "-f",
                    str(containerfile),
                    str(context),
                )
    return await ensure_image(custom_base=user_tag, progress=progress)
