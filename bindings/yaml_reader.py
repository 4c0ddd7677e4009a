"""Reading ploy.yaml with line numbers: what runtime/config.py and every binding plugin parse with.

Errors name the file, the line and the dotted field (`ploy.yaml:3: sandbox.A.pids: must not be
negative`). A plugin gets a `Reader` and the YAML node of its own section; it never sees the text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

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


class ConfigError(Exception):
    """A problem in ploy.yaml, located at file:line and naming the field."""

    def __init__(self, path: Path | str, line: int | None, field_name: str, message: str) -> None:
        self.path, self.line, self.field, self.message = Path(path), line, field_name, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {field_name}: {message}" if field_name else f"{where}: {message}")


def scalar_value(node: yaml.Node) -> Any:
    """The Python value of a scalar node (the node itself for mappings and lists)."""
    if not isinstance(node, yaml.ScalarNode):
        return node
    return yaml.SafeLoader("").construct_object(node)


def type_name(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = scalar_value(node)
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", type(None): "nothing"}[
        type(value)
    ]


def parse_duration(text: str | int | float) -> float:
    """Seconds from 600, '30s', '10m', '1h', '500ms'."""
    if isinstance(text, (int, float)):
        return float(text)
    m = DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 1h)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def compose(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree of a file's text (None when empty); a syntax error is a ConfigError at its line."""
    try:
        return yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(
            path, mark.line + 1 if mark else None, "", f"invalid YAML: {getattr(e, 'problem', e)}"
        ) from None


class Reader:
    """Typed access to the nodes of one ploy.yaml, raising ConfigError at the node's line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # env name -> the field that declared it: a name given twice (a var and a binding) is an error
        self._owners: dict[str, str] = {}

    def error(self, node: yaml.Node | None, field_name: str, message: str) -> ConfigError:
        return ConfigError(
            self.path, node.start_mark.line + 1 if node is not None else None, field_name, message
        )

    def mapping(self, node: yaml.Node, field_name: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping; keys must be strings and unique."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, field_name, f"expected a mapping, got {type_name(node)}")
        seen: dict[str, int] = {}
        out = []
        for key_node, value_node in node.value:
            key = scalar_value(key_node)
            if not isinstance(key, str):
                raise self.error(key_node, field_name, f"keys must be strings, got {key!r}")
            full = f"{field_name}.{key}" if field_name else key
            if key in seen:
                raise self.error(key_node, full, f"defined twice (first on line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
            out.append((key, key_node, value_node))
        return out

    def scalar(self, node: yaml.Node, field_name: str, *types: type) -> Any:
        value = scalar_value(node)
        if (
            isinstance(node, yaml.ScalarNode)
            and isinstance(value, types)
            and not (isinstance(value, bool) and bool not in types)
        ):
            return value
        wanted = " or ".join(
            {str: "a string", bool: "true or false", int: "a number", float: "a number"}[t] for t in types
        )
        raise self.error(node, field_name, f"expected {wanted}, got {type_name(node)}")

    def is_empty(self, node: yaml.Node) -> bool:
        """`field:` with nothing after it."""
        return isinstance(node, yaml.ScalarNode) and scalar_value(node) is None

    def env_name(self, key_node: yaml.Node, field_name: str, name: str) -> None:
        """Claim `name` on env for `field_name`: it must be a JS identifier and not taken already."""
        if not JS_IDENTIFIER.match(name) or name in RESERVED_WORDS:
            raise self.error(
                key_node, field_name, f"binding name {name!r} is not a valid JavaScript identifier"
            )
        if name in self._owners:
            raise self.error(
                key_node, field_name, f"binding name {name!r} is already used by {self._owners[name]}"
            )
        self._owners[name] = field_name
