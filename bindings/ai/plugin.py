"""The AI binding as a plugin: `ai:` in ploy.yaml gives `env.AI`, runs the AI gateway while `ploy dev`
runs, and injects the gateway's credentials into the project's sandboxes once you are signed in.

    ai: true                                   # the gateway, env.AI, credentials in sandboxes
    ai: {record: tests/ai-session.jsonl}       # the same, and every upstream call appended to the file
    ai: {replay: tests/ai-session.jsonl, replaySpeed: 0}   # answered from the file: no upstream, no keys

`ploy dev --ai-record FILE`, `--ai-replay FILE` and `--ai-replay-speed N` do the same from the command
line (a flag wins over the file). Imports only the options and the spec: the gateway's HTTP stack loads
when the service starts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from bindings.ai.spec import AI_BINDING
from bindings.context import BindingContext
from bindings.plugin import EnvMember, Plugin, ProjectLoader, Service, Subparsers
from bindings.yaml_reader import ConfigError, Reader, scalar_value, type_name

ENV_NAME = "AI"
KEYS = ("record", "replay", "replaySpeed")


@dataclass(frozen=True)
class AiOptions:
    enabled: bool = False
    record: Path | None = None  # append every upstream call to this file
    replay: Path | None = None  # answer every call from this file
    replay_speed: float = 1.0  # 1: the recorded pacing, 2: twice as fast, 0: at once


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError("must be 0 (at once) or more (1: as recorded)")
    return value


class AiPlugin(Plugin):
    field = "ai"
    order = 20

    def parse(self, reader: Reader, node: yaml.Node) -> AiOptions:
        if isinstance(node, yaml.MappingNode):
            options = self._parse_mapping(reader, node)
        elif isinstance(node, yaml.ScalarNode) and isinstance(scalar_value(node), bool):
            options = AiOptions(enabled=scalar_value(node))
        else:
            raise reader.error(
                node, "ai", f"expected true or false, or a mapping ({', '.join(KEYS)}), got {type_name(node)}"
            )
        if options.enabled:
            reader.env_name(node, "ai", ENV_NAME)
        return options

    def _parse_mapping(self, reader: Reader, node: yaml.Node) -> AiOptions:
        root = reader.path.parent
        values: dict[str, Any] = {"enabled": True}
        for key, key_node, value_node in reader.mapping(node, "ai"):
            name = f"ai.{key}"
            if key not in KEYS:
                raise reader.error(key_node, name, f"unknown option (allowed: {', '.join(KEYS)})")
            if key == "replaySpeed":
                speed = reader.scalar(value_node, name, int, float)
                if speed < 0:
                    raise reader.error(value_node, name, "must be 0 (at once) or more (1: as recorded)")
                values["replay_speed"] = float(speed)
                continue
            other = "replay" if key == "record" else "record"
            if other in values:
                raise reader.error(key_node, name, f"give either record or replay, not both ({other} is set)")
            path = root / reader.scalar(value_node, name, str)
            if key == "replay" and not path.is_file():
                raise reader.error(
                    value_node, name, f"no recording at {path} (make one with `record:` or --ai-record)"
                )
            values[key] = path
        return AiOptions(**values)

    def env_members(self, options: AiOptions) -> list[EnvMember]:
        return [EnvMember(ENV_NAME, AI_BINDING.name, "bindings.ai")] if options.enabled else []

    def add_dev_arguments(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("AI gateway (ai: true)")
        modes = group.add_mutually_exclusive_group()
        modes.add_argument("--ai-record", metavar="FILE", type=Path,
                           help="pass AI calls through to the providers and append each call to FILE (JSONL)")  # fmt: skip
        modes.add_argument("--ai-replay", metavar="FILE", type=Path,
                           help="answer AI calls from a recording: no provider, no credentials needed")  # fmt: skip
        group.add_argument("--ai-replay-speed", metavar="N", type=_speed,
                           help="replay pacing: 1 as recorded (default), 2 twice as fast, 0 at once")  # fmt: skip

    def dev_options(
        self, options: AiOptions | None, args: argparse.Namespace, config_path: Path
    ) -> AiOptions | None:
        record, replay, speed = (
            getattr(args, name, None) for name in ("ai_record", "ai_replay", "ai_replay_speed")
        )
        if record is None and replay is None and speed is None:
            return options
        flag = (
            "--ai-record"
            if record is not None
            else "--ai-replay"
            if replay is not None
            else "--ai-replay-speed"
        )
        if options is None or not options.enabled:
            raise ConfigError(config_path, None, "ai", f"{flag} needs `ai: true` in {config_path.name}")
        if record is not None:
            options = replace(options, record=record.resolve(), replay=None)
        if replay is not None:
            if not replay.is_file():
                raise ConfigError(
                    replay, None, "", "--ai-replay: no such recording (make one with --ai-record)"
                )
            options = replace(options, replay=replay.resolve(), record=None)
        if speed is not None:
            if options.replay is None:
                raise ConfigError(
                    config_path,
                    None,
                    "ai",
                    "--ai-replay-speed needs a recording to replay (--ai-replay FILE)",
                )
            options = replace(options, replay_speed=speed)
        return options

    async def service(
        self, ctx: BindingContext, options: AiOptions | None, running: Service | None
    ) -> Service | None:
        """The gateway, started when ai is turned on and stopped when it is turned off (also on reload);
        a change of record/replay on reload switches the running gateway (same port, same tokens)."""
        enabled = options is not None and options.enabled
        log = ctx.logger("ai")
        if enabled and running is None:
            assert options is not None
            from bindings.ai.gateway import Gateway

            gateway = await Gateway.start(ctx)
            try:
                await gateway.configure(options.record, options.replay, options.replay_speed)
            except BaseException:
                await gateway.close()
                raise
            log.info(f"gateway at {gateway.base_url}/v1")
            gateway.announce()
            return gateway
        if enabled and running is not None:
            assert options is not None
            from bindings.ai.gateway import Gateway

            assert isinstance(running, Gateway)
            if await running.configure(options.record, options.replay, options.replay_speed):
                running.announce()
            return running
        if not enabled and running is not None:
            await running.close()
            log.info("gateway stopped (ai is off)")
            return None
        return running

    async def build(self, ctx: BindingContext, options: AiOptions, service: Service | None) -> dict[str, Any]:
        if not options.enabled or service is None:
            return {}
        from bindings.ai.binding import AiBinding
        from bindings.ai.gateway import Gateway

        assert isinstance(service, Gateway)
        # Every sandbox of the project gets the gateway's credentials once you are signed in (the docs'
        # `ai: true` + `ploy login` rule); until then none, and each new sandbox says what to run.
        ctx.sandbox_env = service.sandbox_env
        ctx.on_sandbox = service.sandbox_opened
        return {ENV_NAME: AiBinding(service)}

    def register_cli(self, subparsers: Subparsers, load_project: ProjectLoader) -> None:
        from bindings.ai import cli

        cli.register(subparsers)


PLUGIN = AiPlugin()
