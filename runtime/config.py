"""ploy.yaml: parsing and validation, with errors that name the file, line and field.

The core fields (name, kind, main, build, out, vars, limits) are read here; every other field belongs
to a binding plugin (runtime/plugins.py), which parses its own section. Nothing starts when the file is
wrong: `load_config` raises `ConfigError` and the CLI exits with 2. Loads no binding backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindings.yaml_reader import ConfigError, Reader, compose, parse_duration
from runtime.plugins import plugins
from runtime.workers.base import Limits

__all__ = ["CONFIG_NAME", "ConfigError", "ProjectConfig", "load_config", "parse_config", "parse_duration"]

CONFIG_NAME = "ploy.yaml"
CORE_STRINGS = ("name", "kind", "main", "build", "out")
LIMITS = ("cpu_ms", "memory_mb")


@dataclass
class ProjectConfig:
    root: Path
    path: Path
    name: str
    kind: str = "dynamic"
    main: str | None = None
    build: str | None = None
    out: str | None = None
    vars: dict[str, str] = field(
        default_factory=dict
    )  # from ploy.yaml `vars:`; .dev.vars/.env added by env.py
    limits: Limits = field(default_factory=Limits)
    # plugin field (`sandbox`, `ai`) -> what that plugin parsed; a field not in the file is absent
    sections: dict[str, Any] = field(default_factory=dict)

    def binding_names(self) -> list[str]:
        return [
            m.name
            for p in plugins()
            if p.field in self.sections
            for m in p.env_members(self.sections[p.field])
        ]


def _fields() -> str:
    core = ", ".join(CORE_STRINGS)
    return f"{core}, {', '.join(sorted(p.field for p in plugins()))}, vars, limits"


def parse_config(text: str, path: Path, root: Path | None = None) -> ProjectConfig:
    r = Reader(path)
    node = compose(text, path)
    root = root or path.parent
    cfg = ProjectConfig(root=root, path=path, name=root.resolve().name)
    if node is None:
        return cfg
    by_field = {p.field: p for p in plugins()}
    for key, key_node, value in r.mapping(node, ""):
        if key in CORE_STRINGS:
            setattr(cfg, key, r.scalar(value, key, str))
        elif key in by_field:
            cfg.sections[key] = by_field[key].parse(r, value)
        elif key == "vars":
            for name, name_node, v in r.mapping(value, "vars"):
                r.env_name(name_node, f"vars.{name}", name)
                val = r.scalar(v, f"vars.{name}", str, int, float, bool)
                cfg.vars[name] = str(val).lower() if isinstance(val, bool) else str(val)
        elif key == "limits":
            lim = {}
            for lk, lk_node, lv in r.mapping(value, "limits"):
                if lk not in LIMITS:
                    raise r.error(lk_node, f"limits.{lk}", f"unknown option (allowed: {', '.join(LIMITS)})")
                n = r.scalar(lv, f"limits.{lk}", int)
                if n <= 0:
                    raise r.error(lv, f"limits.{lk}", "must be a positive number")
                lim[lk] = n
            cfg.limits = Limits(**lim)
        else:
            raise r.error(key_node, key, f"unknown field (allowed: {_fields()})")
    if cfg.main is not None and not (root / cfg.main).is_file():
        raise ConfigError(path, None, "main", f"entry file {cfg.main!r} not found in {root}")
    return cfg


def load_config(project_dir: Path) -> ProjectConfig:
    """Read PROJECT/ploy.yaml. A missing file is an error too: ploy dev needs to know the bindings."""
    project_dir = Path(project_dir).resolve()  # esbuild and builds run with cwd=project
    path = project_dir / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(path, None, "", "file not found (a project needs a ploy.yaml)")
    return parse_config(path.read_text(encoding="utf-8"), path, project_dir)
