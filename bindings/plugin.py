"""What a binding plugin is: everything about one binding, held by one object in the binding's folder.

A plugin owns one top-level field of ploy.yaml (`sandbox:`, `ai:`). From it, the runtime asks:
  parse         validate that field's YAML (line-numbered errors) into the plugin's options object;
  env_members   the env names those options give, with their TypeScript and Python types (`ploy types`);
  service       a long-lived service to keep while `ploy dev` runs (the AI gateway), started, kept or
                stopped as the options change on reload;
  build         the objects a worker gets on `env` (each has `async close()`);
  register_cli  its `ploy` subcommands;
  add_dev_arguments / dev_options
                its own `ploy dev` flags (`--ai-replay FILE`), and how they fold into its options after
                each load of ploy.yaml (a flag wins over the file).
runtime/config.py, runtime/env.py, runtime/server.py, runtime/types_cmd.py and runtime/cli.py are each
one loop over the registered plugins (runtime/plugins.py finds them). Adding a binding is adding a
folder `bindings/NAME/` whose `plugin.py` defines `PLUGIN`.

A plugin module imports only its options and spec: the backend (Podman, HTTP servers) is imported
inside `service`/`build`/`register_cli`, so reading ploy.yaml loads none of it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeAlias

import yaml

from bindings.context import BindingContext
from bindings.yaml_reader import Reader


@dataclass(frozen=True)
class EnvMember:
    """One name on `env` and its type, as `ploy types` writes it."""

    name: str
    ts_type: str  # a type exported by @meetploy/types (typings/)
    py_module: str  # where the Python class of the same name is imported from, for ploy_env.py


class Service(Protocol):
    async def close(self) -> None: ...


class ProjectView(Protocol):
    """What a plugin's CLI reads of a project: runtime/config.py's ProjectConfig satisfies it."""

    root: Path
    name: str
    sections: dict[str, Any]


# Loads DIR/ploy.yaml for a plugin's CLI; raises ConfigError (from bindings.yaml_reader) when it is wrong.
ProjectLoader = Callable[[Path], ProjectView]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Plugin:
    field: ClassVar[str]  # the ploy.yaml field this plugin owns
    # Where its env members come in `ploy types` and in env (lower first), so generated files are stable.
    order: ClassVar[int] = 100

    def parse(self, reader: Reader, node: yaml.Node) -> Any:
        """The options for this field's YAML `node`; claims env names with reader.env_name()."""
        raise NotImplementedError

    def env_members(self, options: Any) -> list[EnvMember]:
        return []

    def describe(self, options: Any) -> str | None:
        """One phrase for `ploy dev`'s start-up line, or None to say nothing."""
        return None

    async def service(self, ctx: BindingContext, options: Any, running: Service | None) -> Service | None:
        """The service to keep for these options (None: this field is absent or off). `running` is the
        one kept so far: return it to keep it; a plugin that replaces or drops it closes it first."""
        if running is not None:
            await running.close()
        return None

    async def build(self, ctx: BindingContext, options: Any, service: Service | None) -> dict[str, Any]:
        """The env objects; each must have `async close()`, called when the env is retired."""
        return {}

    def register_cli(self, subparsers: Subparsers, load_project: ProjectLoader) -> None:
        pass

    def add_dev_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this plugin's `ploy dev` flags, named after its field (`--ai-record`)."""

    def dev_options(self, options: Any, args: argparse.Namespace, config_path: Path) -> Any:
        """This field's options with the `ploy dev` flags in `args` folded in; called after every load of
        ploy.yaml (`options` is None when the field is absent: return None to keep it absent). Raise
        ConfigError (bindings.yaml_reader) when a flag cannot apply to this project."""
        return options
