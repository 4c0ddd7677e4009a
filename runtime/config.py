"""ploy.yaml: parsing and validation, with errors that name the file, line and field.

Nothing starts when the file is wrong: `load_config` raises `ConfigError` and the CLI exits with 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from bindings.sandbox.options import OPTION_FIELDS, SandboxOptions
from runtime.workers.base import Limits

CONFIG_NAME = "ploy.yaml"
JS_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
# Names a binding cannot take because JS would not let user code reach them as env.NAME cleanly.
RESERVED_WORDS = {
    "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do", "else",
    "export", "extends", "false", "finally", "for", "function", "if", "import", "in", "instanceof", "new",
    "null", "return", "super", "switch", "this", "throw", "true", "try", "typeof", "var", "void", "while",
    "with", "yield", "let", "static", "enum", "await", "implements", "package", "protected", "interface",
    "private", "public",
}  # fmt: skip
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
MEMORY = re.compile(r"^\s*\d+(?:\.\d+)?\s*[kmgKMG]?[bB]?\s*$")


class ConfigError(Exception):
    """A problem in ploy.yaml, located at file:line and naming the field."""

    def __init__(self, path: Path | str, line: int | None, field_name: str, message: str) -> None:
        self.path, self.line, self.field, self.message = Path(path), line, field_name, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {field_name}: {message}" if field_name else f"{where}: {message}")


@dataclass
class ProjectConfig:
    root: Path
    path: Path
    name: str
    kind: str = "dynamic"
    main: str | None = None
    build: str | None = None
    out: str | None = None
    ai: bool = False
    sandbox: dict[str, SandboxOptions] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)  # from ploy.yaml `vars:`; .dev.vars/.env added by env.py
    limits: Limits = field(default_factory=Limits)

    def binding_names(self) -> list[str]:
        names = list(self.sandbox)
        if self.ai:
            names.append("AI")
        return names


def _type_name(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = _scalar(node)
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", type(None): "nothing"}[
        type(value)
    ]


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node
    return yaml.SafeLoader("").construct_object(node)


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, node: yaml.Node | None, field_name: str, message: str) -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1 if node is not None else None, field_name, message)

    def mapping(self, node: yaml.Node, field_name: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, field_name, f"expected a mapping, got {_type_name(node)}")
        seen: dict[str, int] = {}
        out = []
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str):
                raise self.error(key_node, field_name, f"keys must be strings, got {key!r}")
            full = f"{field_name}.{key}" if field_name else key
            if key in seen:
                raise self.error(key_node, full, f"defined twice (first on line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
            out.append((key, key_node, value_node))
        return out

    def scalar(self, node: yaml.Node, field_name: str, *types: type) -> Any:
        value = _scalar(node)
        if isinstance(node, yaml.ScalarNode) and isinstance(value, types) and not (
            isinstance(value, bool) and bool not in types
        ):
            return value
        wanted = " or ".join({str: "a string", bool: "true or false", int: "a number", float: "a number"}[t] for t in types)
        raise self.error(node, field_name, f"expected {wanted}, got {_type_name(node)}")


def parse_duration(text: str | int | float) -> float:
    """Seconds from 600, '30s', '10m', '1h', '500ms'."""
    if isinstance(text, (int, float)):
        return float(text)
    m = DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 1h)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def _sandbox_options(r: _Reader, name: str, node: yaml.Node) -> SandboxOptions:
    field_name = f"sandbox.{name}"
    if isinstance(node, yaml.ScalarNode):
        return SandboxOptions(binding=name, template=r.scalar(node, field_name, str))
    values: dict[str, Any] = {"binding": name}
    for key, key_node, value_node in r.mapping(node, field_name):
        sub = f"{field_name}.{key}"
        if key not in OPTION_FIELDS:
            raise r.error(key_node, sub, f"unknown option (allowed: {', '.join(OPTION_FIELDS)})")
        attr, types = OPTION_FIELDS[key]
        value = r.scalar(value_node, sub, *types)
        if key == "sleepAfter":
            try:
                value = parse_duration(value)
            except ValueError as e:
                raise r.error(value_node, sub, str(e)) from None
        if key == "memory" and not MEMORY.match(str(value)):
            raise r.error(value_node, sub, f"not a memory size: {value!r} (use e.g. 512m, 2g)")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise r.error(value_node, sub, "must not be negative")
        values[attr] = str(value) if key == "memory" else value
    if "image" in values and "containerfile" in values:
        raise r.error(node, field_name, "give either image or containerfile, not both")
    known = {f.name for f in fields(SandboxOptions)}
    return SandboxOptions(**{k: v for k, v in values.items() if k in known})


def _binding_name(r: _Reader, key_node: yaml.Node, field_name: str, name: str) -> None:
    if not JS_IDENTIFIER.match(name) or name in RESERVED_WORDS:
        raise r.error(key_node, field_name, f"binding name {name!r} is not a valid JavaScript identifier")


def parse_config(text: str, path: Path, root: Path | None = None) -> ProjectConfig:
    r = _Reader(path)
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(path, mark.line + 1 if mark else None, "", f"invalid YAML: {getattr(e, 'problem', e)}") from None
    root = root or path.parent
    cfg = ProjectConfig(root=root, path=path, name=root.resolve().name)
    if node is None:
        return cfg
    owners: dict[str, str] = {}

    def claim(name: str, key_node: yaml.Node, field_name: str) -> None:
        if name in owners:
            raise r.error(key_node, field_name, f"binding name {name!r} is already used by {owners[name]}")
        owners[name] = field_name

    for key, key_node, value in r.mapping(node, ""):
        if key in ("name", "kind", "main", "build", "out"):
            setattr(cfg, key, r.scalar(value, key, str))
        elif key == "ai":
            cfg.ai = r.scalar(value, key, bool)
            if cfg.ai:
                claim("AI", key_node, "ai")
        elif key == "sandbox":
            if _scalar(value) is None:
                continue
            for name, name_node, opt_node in r.mapping(value, "sandbox"):
                _binding_name(r, name_node, f"sandbox.{name}", name)
                claim(name, name_node, f"sandbox.{name}")
                cfg.sandbox[name] = _sandbox_options(r, name, opt_node)
        elif key == "vars":
            for name, name_node, v in r.mapping(value, "vars"):
                _binding_name(r, name_node, f"vars.{name}", name)
                claim(name, name_node, f"vars.{name}")
                val = r.scalar(v, f"vars.{name}", str, int, float, bool)
                cfg.vars[name] = str(val).lower() if isinstance(val, bool) else str(val)
        elif key == "limits":
            lim = {}
            for lk, lk_node, lv in r.mapping(value, "limits"):
                if lk not in ("cpu_ms", "memory_mb"):
                    raise r.error(lk_node, f"limits.{lk}", "unknown option (allowed: cpu_ms, memory_mb)")
                n = r.scalar(lv, f"limits.{lk}", int)
                if n <= 0:
                    raise r.error(lv, f"limits.{lk}", "must be a positive number")
                lim[lk] = n
            cfg.limits = Limits(**lim)
        else:
            allowed = "name, kind, main, build, out, ai, sandbox, vars, limits"
            raise r.error(key_node, key, f"unknown field (allowed: {allowed})")
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
