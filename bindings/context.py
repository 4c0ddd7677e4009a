"""What a binding knows about the project it serves: identity, where its state lives on disk, its logger."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def state_home() -> Path:
    """Where ploy keeps state that must outlive `ploy dev` (sandbox sockets, gateway logs, caches)."""
    if os.environ.get("PLOY_HOME"):
        return Path(os.environ["PLOY_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ploy"


def config_home() -> Path:
    """Where user settings and credentials live (`ploy login`)."""
    if os.environ.get("PLOY_CONFIG_HOME"):
        return Path(os.environ["PLOY_CONFIG_HOME"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ploy"


def write_private_json(path: Path, data: object) -> None:
    """Replace `path` with `data` as JSON, readable by its owner only (credentials, hosts): the file is
    created 0600 from the start, so a secret in it is never readable by others, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)  # an older .tmp left by a crash keeps its mode through O_CREAT
    os.replace(tmp, path)


def project_key(root: Path) -> str:
    """A short stable id for a project folder; sandboxes and tokens are namespaced by it."""
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]


@dataclass
class BindingContext:
    project_root: Path
    project_name: str
    project_key: str
    state_dir: Path = field(default_factory=state_home)
    # Extra environment every sandbox command of this project gets (the AI gateway credentials
    # when ai: true and signed in). A callable so tokens can be re-minted and a `ploy login` reaches
    # running sandboxes: the sandbox backend rewrites a sandbox's config when its value changes.
    sandbox_env: Callable[[], dict[str, str]] | None = None
    # Told (binding name, sandbox id) when this process first uses a sandbox, so the binding that injects
    # env can say what a new sandbox got (the AI gateway: "not signed in: run ploy login").
    on_sandbox: Callable[[str, str], None] | None = None
    # host[:port] the dev server answers on ("localhost:8787"), which preview URLs are made under
    dev_host: str | None = None

    @classmethod
    def for_project(cls, root: Path, name: str | None = None) -> BindingContext:
        root = root.resolve()
        return cls(project_root=root, project_name=name or root.name, project_key=project_key(root))

    @property
    def project_state(self) -> Path:
        return self.state_dir / "projects" / self.project_key

    @staticmethod
    def logger(binding: str) -> logging.Logger:
        """Where a binding says things to the developer: `ploy dev` routes every `ploy.*` logger to its
        one output sink (runtime/log.py), the CLI to stderr."""
        return logging.getLogger(f"ploy.{binding}")
