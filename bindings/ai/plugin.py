"""The AI binding as a plugin: `ai: true` in ploy.yaml gives `env.AI`, runs the AI gateway while
`ploy dev` runs, and injects the gateway's credentials into the project's sandboxes.

Imports only the options and the spec: the gateway's HTTP stack loads when the service starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from bindings.ai.spec import AI_BINDING
from bindings.context import BindingContext
from bindings.plugin import EnvMember, Plugin, ProjectLoader, Service, Subparsers
from bindings.yaml_reader import Reader

ENV_NAME = "AI"


@dataclass(frozen=True)
class AiOptions:
    enabled: bool = False


class AiPlugin(Plugin):
    field = "ai"
    order = 20

    def parse(self, reader: Reader, node: yaml.Node) -> AiOptions:
        options = AiOptions(enabled=reader.scalar(node, "ai", bool))
        if options.enabled:
            reader.env_name(node, "ai", ENV_NAME)
        return options

    def env_members(self, options: AiOptions) -> list[EnvMember]:
        return [EnvMember(ENV_NAME, AI_BINDING.name, "bindings.ai")] if options.enabled else []

    async def service(self, ctx: BindingContext, options: AiOptions | None, running: Service | None) -> Service | None:
        """The gateway, started when ai is turned on and stopped when it is turned off (also on reload)."""
        enabled = options is not None and options.enabled
        if enabled and running is None:
            from bindings.ai.gateway import Gateway

            gateway = await Gateway.start(ctx)
            ctx.logger("ai").info(f"gateway at {gateway.base_url}/v1")
            return gateway
        if not enabled and running is not None:
            await running.close()
            ctx.logger("ai").info("gateway stopped (ai is off)")
            return None
        return running

    async def build(self, ctx: BindingContext, options: AiOptions, service: Service | None) -> dict[str, Any]:
        if not options.enabled or service is None:
            return {}
        from bindings.ai.binding import AiBinding
        from bindings.ai.gateway import Gateway

        assert isinstance(service, Gateway)
        # every sandbox of the project gets the gateway's credentials (the docs' `ai: true` rule)
        ctx.sandbox_env = service.sandbox_env
        return {ENV_NAME: AiBinding(service)}

    def register_cli(self, subparsers: Subparsers, load_project: ProjectLoader) -> None:
        from bindings.ai import cli

        cli.register(subparsers)


PLUGIN = AiPlugin()
