"""Each binding is one plugin: config, env, types, services and CLI come from the registered plugins,
and reading ploy.yaml loads no binding backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bindings.plugin import Plugin
from runtime.config import ConfigError, parse_config
from runtime.plugins import plugins
from tests.conftest import REPO

BINDINGS = REPO / "bindings"

# Modules that may load when ploy.yaml is read: the plugin, options and spec modules, nothing more.
OPTIONS_ONLY = {"plugin", "options", "spec", "__init__"}


def test_every_binding_folder_is_a_plugin_and_fields_are_unique() -> None:
    found = {type(p).__module__ for p in plugins()}
    folders = {f"bindings.{d.name}.plugin" for d in BINDINGS.iterdir() if (d / "plugin.py").is_file()}
    assert found == folders and {"bindings.sandbox.plugin", "bindings.ai.plugin"} <= found
    fields = [p.field for p in plugins()]
    assert len(fields) == len(set(fields))
    assert all(isinstance(p, Plugin) for p in plugins())


def test_reading_ploy_yaml_loads_no_backend() -> None:
    """`import runtime.config` and parsing a config with every binding stays clear of Podman, the AI
    gateway's HTTP stack and QuickJS."""
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from runtime.config import parse_config\n"
        "cfg = parse_config('ai: true\\nsandbox:\\n  SANDBOX: {memory: 2g}\\n', Path('ploy.yaml'))\n"
        "assert cfg.binding_names() == ['SANDBOX', 'AI'], cfg.binding_names()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    ours = [m for m in loaded if m.split(".")[0] == "bindings" and m.count(".") >= 2]
    assert ours and all(m.rsplit(".", 1)[1] in OPTIONS_ONLY for m in ours), ours
    heavy = {
        "httpx",
        "starlette",
        "uvicorn",
        "quickjs",
        "bindings.sandbox.podman",
        "bindings.sandbox.manager",
    }
    assert heavy.isdisjoint(loaded), heavy & set(loaded)


def test_unknown_field_lists_every_plugin_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("sandboxes: {}\n", Path("ploy.yaml"))
    message = str(info.value)
    assert all(f" {p.field}," in message or message.endswith(p.field) for p in plugins()), message


def test_binding_names_follow_plugin_order_whatever_the_file_order() -> None:
    a = parse_config("ai: true\nsandbox:\n  BOX: default\n", Path("ploy.yaml"))
    b = parse_config("sandbox:\n  BOX: default\nai: true\n", Path("ploy.yaml"))
    assert a.binding_names() == b.binding_names() == ["BOX", "AI"]


def test_cli_commands_come_from_plugins() -> None:
    from runtime.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None
    assert {"dev", "types", "sandbox", "image", "login", "ai"} <= set(commands)
