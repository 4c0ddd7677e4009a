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
        """config.json in the token's run folder, written without following anything the sandbox planted."""
        run = d / "run"
        run.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.config(), sort_keys=True).encode()
        path = run / "config.json"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                if f.read() == data:
                    return
        except OSError:
            pass
        tmp = run / f".config.{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # rename replaces a planted link instead of writing through it

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
