"""What a binding's sandboxes leave on disk: token folders, their meta.json and config.json, id claims.

On disk (under state_home(), so it outlives `ploy dev`):
  <home>/s/<token>/            meta.json, lock: host-only
  <home>/s/<token>/run/        the only host folder the container sees (at /run/ploy): a.sock, config.json.
                               The sandbox can write there, so the host never follows links in it.
  <home>/projects/<key>/sandboxes/<binding>/<id> -> ../../../../s/<token>   (a symlink: the id's claim)
Claiming an id is one atomic symlink(2), so two processes racing for a new id agree on one container.
Nothing here runs Podman (containers.py does).
"""

from __future__ import annotations

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
from bindings.sandbox.options import SandboxOptions

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def validate_id(sandbox_id: object) -> str:
    if not isinstance(sandbox_id, str) or not ID_RE.match(sandbox_id):
        raise InvalidArgument(
            f"invalid sandbox id {sandbox_id!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return sandbox_id


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
        }
        (d / "meta.json").write_text(json.dumps(meta))

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

    def read_claim(self, sandbox_id: str) -> str | None:
        try:
            return Path(os.readlink(self.ids_dir / sandbox_id)).name
        except FileNotFoundError:
            return None

    def claim(self, sandbox_id: str, token: str) -> bool:
        self.ids_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(self.token_dir(token), self.ids_dir / sandbox_id)
            return True
        except FileExistsError:
            return False

    def unclaim(self, sandbox_id: str) -> None:
        os.unlink(self.ids_dir / sandbox_id)

    def claimed_ids(self) -> list[str]:
        return sorted(p.name for p in self.ids_dir.iterdir()) if self.ids_dir.is_dir() else []
