"""The SANDBOX binding as a plugin: the `sandbox:` field of ploy.yaml, the env objects, types and CLI.

Imports only the options and the spec: the Podman backend loads when a binding is built or a
`ploy sandbox` command runs.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import yaml

from bindings.context import BindingContext
from bindings.plugin import EnvMember, Plugin, ProjectLoader, Service, Subparsers
from bindings.sandbox.options import (
    MAX_DISK,
    MIN_DISK,
    MIN_MEMORY,
    OPTION_FIELDS,
    RANGES,
    SandboxOptions,
    disk_bytes,
    machine_cpus,
    memory_bytes,
    parse_policy,
)
from bindings.sandbox.spec import SANDBOX_BINDING
from bindings.yaml_reader import Reader, parse_duration


def parse_binding(r: Reader, name: str, node: yaml.Node) -> SandboxOptions:
    """One binding's value: a template name (`SANDBOX: default`) or the extended mapping."""
    field_name = f"sandbox.{name}"
    if isinstance(node, yaml.ScalarNode):
        return SandboxOptions(binding=name, template=r.scalar(node, field_name, str))
    values: dict[str, Any] = {"binding": name}
    for key, key_node, value_node in r.mapping(node, field_name):
        sub = f"{field_name}.{key}"
        if key not in OPTION_FIELDS:
            raise r.error(key_node, sub, f"unknown option (allowed: {', '.join(OPTION_FIELDS)})")
        attr, types = OPTION_FIELDS[key]
        if key == "network":
            values[attr] = _network(r, value_node, sub)
            continue
        value = r.scalar(value_node, sub, *types)
        if key == "sleepAfter":
            try:
                value = parse_duration(value)
            except ValueError as e:
                raise r.error(value_node, sub, str(e)) from None
        if key == "memory":
            try:
                size = memory_bytes(str(value))
            except ValueError as e:
                raise r.error(value_node, sub, str(e)) from None
            if size < MIN_MEMORY:
                raise r.error(
                    value_node,
                    sub,
                    f"must be at least 64m (a sandbox's agent alone needs ~25 MB), got {value}",
                )
        if key == "disk":
            try:
                size = disk_bytes(str(value))
            except ValueError as e:
                raise r.error(value_node, sub, str(e)) from None
            if size and size < MIN_DISK:
                raise r.error(
                    value_node,
                    sub,
                    f"must be at least 64m (ext4's own metadata and a package install need room), or 0 "
                    f"for no limit, got {value}",
                )
            if size > MAX_DISK:
                raise r.error(value_node, sub, f"must be at most 16t, got {value}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise r.error(value_node, sub, "must not be negative")
        if key in RANGES:
            low, high = RANGES[key]
            if key == "cpus":
                high = machine_cpus()
            if low is not None and value < low:
                raise r.error(value_node, sub, f"must be at least {low}, got {value}")
            if high is not None and value > high:
                why = f" (this machine has {high} CPUs)" if key == "cpus" else ""
                raise r.error(value_node, sub, f"must be at most {high}{why}, got {value}")
        values[attr] = str(value) if key in ("memory", "disk") else value
    if "image" in values and "containerfile" in values:
        raise r.error(node, field_name, "give either image or containerfile, not both")
    known = {f.name for f in fields(SandboxOptions)}
    return SandboxOptions(**{k: v for k, v in values.items() if k in known})


def _network(r: Reader, node: yaml.Node, sub: str) -> str | tuple[str, ...]:
    """`network: open | default | none`, or a list: the allow-list (each entry checked, its line named)."""
    if isinstance(node, yaml.SequenceNode):
        if not node.value:
            raise r.error(node, sub, "an empty allow-list allows nothing: use network: none")
        for item in node.value:
            try:
                parse_policy([str(r.scalar(item, sub, str, int))])
            except ValueError as e:
                raise r.error(item, sub, str(e)) from None
        return parse_policy([str(r.scalar(item, sub, str, int)) for item in node.value])
    try:
        return parse_policy(r.scalar(node, sub, str))
    except ValueError as e:
        raise r.error(node, sub, str(e)) from None


def _say_outdated(ctx: BindingContext, binding: str, outdated: list[tuple[str, list[str]]]) -> None:
    """ploy.yaml changed what a container is made with: existing sandboxes keep what they were made
    with (their processes and files live in it), so say which, and how to apply the new settings."""
    if not outdated:
        return
    shown = "; ".join(f"{json.dumps(i, ensure_ascii=False)} ({', '.join(c)})" for i, c in outdated[:10])
    more = f"; and {len(outdated) - 10} more (ploy sandbox list)" if len(outdated) > 10 else ""
    ctx.logger("sandbox").warning(
        f"{binding}: {len(outdated)} sandbox(es) still run with the settings they were made with, not "
        f"ploy.yaml's: {shown}{more}. New sandboxes get ploy.yaml's; `ploy sandbox recreate ID` applies "
        "them to one (a new container, /workspace kept)"
    )


class SandboxPlugin(Plugin):
    field = "sandbox"
    order = 10

    def parse(self, reader: Reader, node: yaml.Node) -> dict[str, SandboxOptions]:
        """binding name -> its options (`sandbox:` with nothing under it declares none)."""
        if reader.is_empty(node):
            return {}
        out: dict[str, SandboxOptions] = {}
        for name, name_node, opt_node in reader.mapping(node, "sandbox"):
            reader.env_name(name_node, f"sandbox.{name}", name)
            out[name] = parse_binding(reader, name, opt_node)
        return out

    def env_members(self, options: dict[str, SandboxOptions]) -> list[EnvMember]:
        return [EnvMember(name, SANDBOX_BINDING.name, "bindings.sandbox") for name in options]

    def describe(self, options: dict[str, SandboxOptions]) -> str | None:
        parts = [f"{n} (sandbox: {o.image or o.containerfile or o.template})" for n, o in options.items()]
        return ", ".join(parts) or None

    async def build(
        self, ctx: BindingContext, options: dict[str, SandboxOptions], service: Service | None
    ) -> dict[str, Any]:
        if not options:
            return {}
        from bindings.sandbox.client import SandboxBinding

        built = {name: SandboxBinding(ctx, o) for name, o in options.items()}
        for name, b in built.items():
            _say_outdated(ctx, name, b.manager.outdated())
        return built

    def register_cli(self, subparsers: Subparsers, load_project: ProjectLoader) -> None:
        from bindings.sandbox import cli

        cli.register(subparsers, load_project)


PLUGIN = SandboxPlugin()
