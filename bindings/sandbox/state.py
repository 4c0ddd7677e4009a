"""What a binding's sandboxes leave on disk: token folders, their meta.json and config.json, id claims.

On disk (under state_home(), so it outlives `ploy dev`):
  <home>/s/<token>/            meta.json, lock: host-only; disk.img and its mount disk/ (disks.py)
  <home>/s/<token>/run/        the only host folder the container sees (at /run/ploy): a.sock, config.json.
                               The sandbox can write there, so the host never follows links in it.
  <home>/projects/<key>/sandboxes/<binding>/~<hash of id> -> <home>/s/<token>   (a symlink: the id's claim)
Claiming an id is one atomic symlink(2), so two processes racing for a new id agree on one container.
The claim is named by a hash of the id, so any id (an email, `tenant/42:job`, spaces, any script, up
to 1024 characters) is a safe file name, and ids differing in case or by a slash never meet; the id
itself is in the token folder's meta.json (what `ploy sandbox list` shows). Claims that ploy made
before ids were hashed are named by the plain id: they are renamed to the hashed name when found.
Nothing here runs Podman (containers.py does).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path
from typing import Any

from bindings.context import BindingContext
from bindings.errors import InvalidArgument
from bindings.sandbox import disks
from bindings.sandbox.options import SandboxOptions

MAX_ID_LENGTH = 1024
# The ids ploy accepted before any id was, and the names their claims still have on disk until renamed.
LEGACY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
CLAIM_PREFIX = "~"  # no legacy id starts with it, so a hashed claim never takes a legacy one's name


def validate_id(sandbox_id: object) -> str:
    """Any non-empty string of up to 1024 characters without NUL."""
    if not isinstance(sandbox_id, str):
        raise InvalidArgument(f"sandbox id must be a string, got {type(sandbox_id).__name__}")
    if not sandbox_id:
        raise InvalidArgument("sandbox id must not be empty")
    if len(sandbox_id) > MAX_ID_LENGTH:
        raise InvalidArgument(f"sandbox id is {len(sandbox_id)} characters long; at most {MAX_ID_LENGTH}")
    if "\0" in sandbox_id:
        raise InvalidArgument("sandbox id must not contain NUL")
    return sandbox_id


def claim_name(sandbox_id: str) -> str:
    """The id's claim (a file name): a hash, whatever characters the id has."""
    digest = hashlib.sha256(sandbox_id.encode("utf-8", "surrogatepass")).hexdigest()
    return CLAIM_PREFIX + digest[:40]


def hostname(sandbox_id: str | None) -> str:
    """The container's hostname: the id when it is one (a-z, 0-9, '-'), else a cleaned-up form of it."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", sandbox_id or "").strip("-")[:63].strip("-")
    return name or "sandbox"


def container_name(token: str) -> str:
    return f"ploy-{token}"


def _holds(path: Path, data: bytes) -> bool:
    """Whether `path` is a regular file containing exactly `data`, found out without following a link,
    blocking on a FIFO or reading more than len(data) bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(data):
            return False
        return os.read(fd, len(data) + 1) == data
    except OSError:
        return False
    finally:
        os.close(fd)


class SandboxState:
    def __init__(self, ctx: BindingContext, options: SandboxOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.home = ctx.state_dir
        self.ids_dir = ctx.project_state / "sandboxes" / options.binding

    # ---- token folders ------------------------------------------------------------------------

    def token_dir(self, token: str) -> Path:
        return self.home / "s" / token

    def socket_path(self, token: str) -> Path:
        return self.token_dir(token) / "run" / "a.sock"

    def new_token_dir(self, sandbox_id: str | None) -> tuple[str, Path]:
        token = secrets.token_hex(5)
        d = self.token_dir(token)
        d.mkdir(parents=True)
        self.write_meta(d, token, sandbox_id)
        self.write_config(d)
        return token, d

    def remove_token_dir(self, token: str) -> None:
        # its disk first: rmtree would empty a mounted one and leave its loop device behind
        disks.release(self.token_dir(token))
        shutil.rmtree(self.token_dir(token), ignore_errors=True)

    def write_meta(self, d: Path, token: str, sandbox_id: str | None) -> None:
        meta = {
            "id": sandbox_id,
            "token": token,
            "container": container_name(token),
            "project": self.ctx.project_key,
            "projectName": self.ctx.project_name,
            "binding": self.options.binding,
            "createdAt": time.time(),
            # what the container is made with, so a change in ploy.yaml can be told (manager.outdated)
            "settings": self.options.settings(),
        }
        (d / "meta.json").write_text(json.dumps(meta))

    def read_meta(self, d: Path) -> dict[str, Any]:
        try:
            data = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # ---- config.json: what the agent reads ----------------------------------------------------

    def sandbox_env(self) -> dict[str, str]:
        return dict(self.ctx.sandbox_env() or {}) if self.ctx.sandbox_env else {}

    def config(self) -> dict[str, Any]:
        return {
            "sleepAfterS": self.options.sleep_after_s,
            "outputLimit": self.options.output_limit,
            "processLogLimit": self.options.process_log_limit,
            "sandboxEnv": self.sandbox_env(),
        }

    def write_config(self, d: Path) -> None:
        """config.json in the token's run folder, written without following anything the sandbox planted.

        The sandbox can put anything at that name (a FIFO, a link, a folder, a sparse 64 GB file): it is
        opened without following links and without blocking, judged by fstat on the open descriptor, read
        only when it is a regular file of the expected size, and otherwise replaced by a rename."""
        run = d / "run"
        run.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.config(), sort_keys=True).encode()
        path = run / "config.json"
        if _holds(path, data):
            return
        tmp = run / f".config.{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.replace(tmp, path)  # rename replaces a planted link instead of writing through it
        except OSError:
            # a folder in the way (rename cannot replace one): move it aside, the sandbox's own junk
            os.replace(path, run / f".planted.{secrets.token_hex(6)}")
            os.replace(tmp, path)

    # ---- id claims ----------------------------------------------------------------------------

    def claim_path(self, sandbox_id: str) -> Path:
        return self.ids_dir / claim_name(sandbox_id)

    def read_claim(self, sandbox_id: str) -> str | None:
        path = self.claim_path(sandbox_id)
        try:
            return Path(os.readlink(path)).name
        except FileNotFoundError:
            pass
        if LEGACY_ID_RE.match(sandbox_id) and self._migrate(sandbox_id):
            try:
                return Path(os.readlink(path)).name
            except FileNotFoundError:
                return None
        return None

    def _migrate(self, legacy: str) -> bool:
        """Rename a claim made before ids were hashed (named by the plain id) to its hashed name. A hard
        link of the symlink, then an unlink: never replaces a hashed claim, and two processes doing it
        at once agree. True when the hashed claim exists now."""
        old, new = self.ids_dir / legacy, self.claim_path(legacy)
        try:
            os.link(old, new, follow_symlinks=False)
        except FileExistsError:
            pass
        except FileNotFoundError:
            return new.is_symlink()
        try:
            os.unlink(old)
        except FileNotFoundError:
            pass
        return True

    def claim(self, sandbox_id: str, token: str) -> bool:
        self.ids_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(self.token_dir(token), self.claim_path(sandbox_id))
            return True
        except FileExistsError:
            return False

    def unclaim(self, sandbox_id: str) -> None:
        os.unlink(self.claim_path(sandbox_id))

    def reclaim(self, sandbox_id: str, token: str) -> None:
        """Point the id's claim at another token in one step (rename over it): `ploy sandbox recreate`."""
        tmp = self.ids_dir / f".{claim_name(sandbox_id)}.{secrets.token_hex(4)}"
        os.symlink(self.token_dir(token), tmp)
        os.replace(tmp, self.claim_path(sandbox_id))

    def claimed_ids(self) -> list[str]:
        """The ids (as given to get()) of every claim, old claims renamed first."""
        if not self.ids_dir.is_dir():
            return []
        for p in list(self.ids_dir.iterdir()):
            if LEGACY_ID_RE.match(p.name) and p.is_symlink():
                self._migrate(p.name)
        ids = []
        for p in self.ids_dir.iterdir():
            if not p.name.startswith(CLAIM_PREFIX):
                continue
            try:
                meta = json.loads((self.home / "s" / Path(os.readlink(p)).name / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            sandbox_id = meta.get("id") if isinstance(meta, dict) else None
            if isinstance(sandbox_id, str) and claim_name(sandbox_id) == p.name:
                ids.append(sandbox_id)
        return sorted(ids)

    # ---- what the agent left in the run folder ------------------------------------------------

    def recorded_state(self, token: str) -> dict[str, str] | None:
        """run/state.json: whether the sandbox went to sleep (idle) and when, written by its agent.
        The sandbox can write there: read without following links, small, and checked."""
        try:
            fd = os.open(self.token_dir(token) / "run" / "state.json", os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                data = json.loads(f.read(4096))
        except (OSError, ValueError):
            return None
        if (
            isinstance(data, dict)
            and data.get("status") in ("running", "sleeping")
            and isinstance(data.get("since"), str)
            and len(data["since"]) <= 40
        ):
            return {"status": data["status"], "since": data["since"]}
        return None
