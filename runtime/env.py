"""Builds the `env` a worker receives: vars from ploy.yaml, .env and .dev.vars, and the declared bindings.

Vars only ever live on `env`: they are not put into os.environ, so child processes never inherit them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bindings.context import BindingContext
from bindings.plugin import Service
from runtime.config import ProjectConfig
from runtime.plugins import plugins

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines; '#' comments, optional `export`, single quotes literal, double quotes with escapes."""
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        key, value = m.groups()
        if value[:1] in ("'", '"'):
            quote = value[0]
            body = value[1:]
            while quote not in body:  # a quoted value may span lines
                nxt = next(lines, None)
                if nxt is None:
                    break
                body += "\n" + nxt
            body = body[: body.index(quote)] if quote in body else body
            if quote == '"':
                body = body.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
            value = body
        else:
            value = re.sub(r"\s+#.*$", "", value)
        out[key] = value
    return out


def load_vars(cfg: ProjectConfig) -> dict[str, str]:
    values = dict(cfg.vars)
    for name in (".env", ".dev.vars"):  # .dev.vars wins, as in wrangler
        path = cfg.root / name
        if path.is_file():
            values.update(parse_dotenv(path.read_text(encoding="utf-8")))
    return values


@dataclass
class WorkerEnv:
    """The env plus what must be closed when the project's bindings are torn down."""

    values: dict[str, Any]
    closers: list[Any] = field(default_factory=list)

    async def close(self) -> None:
        for obj in reversed(self.closers):
            await obj.close()


async def build_env(
    cfg: ProjectConfig, services: dict[str, Service | None] | None = None, dev_host: str | None = None
) -> WorkerEnv:
    """Vars, then each plugin's objects (a binding name never equals a var name: config checks it).
    `dev_host` is where `ploy dev` answers (preview URLs are made under it)."""
    ctx = BindingContext.for_project(cfg.root, cfg.name)
    ctx.dev_host = dev_host
    env = WorkerEnv(dict(load_vars(cfg)))
    try:
        for plugin in plugins():
            if plugin.field in cfg.sections:
                service = (services or {}).get(plugin.field)
                objects = await plugin.build(ctx, cfg.sections[plugin.field], service)
                env.values.update(objects)
                env.closers.extend(objects.values())
    except BaseException:
        await env.close()
        raise
    return env
