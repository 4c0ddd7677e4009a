"""Which upstream a gateway request goes to, and under which model name.

`openai/gpt-5.5` goes to OpenAI as `gpt-5.5`, `anthropic/claude-x` to Anthropic as `claude-x`. A bare
name goes to the default provider, except on endpoints only one provider speaks (the Messages API is
Anthropic's; Responses and Embeddings are OpenAI's). Other slashes (`meta-llama/llama-3`) are part of
the name: only the known provider prefixes are stripped.

The `local` provider (the scripted model) speaks both wire formats, so `local/x` is served on Chat
Completions and Messages alike, and when it is the default provider it takes bare names on both too.
"""

from __future__ import annotations

from dataclasses import dataclass

from bindings.ai.credentials import LOCAL, PROVIDERS
from bindings.error_codes import INVALID_ARGUMENT
from bindings.errors import PloyError

# Endpoints (below /v1) that only one provider implements.
_ANTHROPIC_ONLY = ("/messages", "/complete")
_OPENAI_ONLY = ("/responses", "/embeddings", "/completions", "/images", "/audio", "/moderations")
_LOCAL = ("/chat/completions", "/messages", "/models")  # what the local model answers


class RouteError(PloyError):
    code = INVALID_ARGUMENT


@dataclass(frozen=True)
class Route:
    provider: str
    model: str | None  # the name to send upstream; None when the request names no model
    renamed: bool  # True when the body must be rewritten (a provider prefix was stripped)
    by_default: bool = False  # the provider is the default one (nothing in the request named it)


def split_model(model: str) -> tuple[str | None, str]:
    prefix, sep, rest = model.partition("/")
    if sep and prefix in PROVIDERS and rest:
        return prefix, rest
    return None, model


def _only_provider(subpath: str) -> str | None:
    if subpath.startswith("/chat/completions"):
        return None
    if subpath.startswith(_ANTHROPIC_ONLY):
        return "anthropic"
    if subpath.startswith(_OPENAI_ONLY):
        return "openai"
    return None


def route(subpath: str, model: str | None, default_provider: str, anthropic_client: bool) -> Route:
    """Pick the upstream for a request to `/v1{subpath}`.

    `anthropic_client` is True when the caller sent `anthropic-version` (the Anthropic SDKs always do),
    which settles model-less calls like `GET /v1/models`."""
    only = _only_provider(subpath)
    local_serves = subpath.startswith(_LOCAL)
    local_default = default_provider == LOCAL and local_serves  # it takes bare names on both wire formats
    if model is None:
        if subpath.startswith("/models/"):
            prefix, name = split_model(subpath[len("/models/") :])
            if prefix:
                return Route(prefix, name, False)
        if local_default:
            return Route(LOCAL, None, False, by_default=True)
        if only or anthropic_client:
            return Route(only or "anthropic", None, False)
        return Route(default_provider, None, False, by_default=True)
    prefix, name = split_model(model)
    if prefix is None:
        if only and not local_default:
            return Route(only, model, False)
        return Route(default_provider, model, False, by_default=True)
    if prefix == LOCAL:
        if not local_serves:
            raise RouteError(f"model {model!r} is the local scripted model, which answers /v1/chat/completions "
                             f"and /v1/messages, not /v1{subpath}")  # fmt: skip
        return Route(prefix, name, True)
    if only and only != prefix:
        raise RouteError(
            f"model {model!r} is served by {prefix}, which does not implement /v1{subpath}; "
            + (
                "use /v1/chat/completions"
                if prefix == "openai"
                else "use /v1/messages or /v1/chat/completions"
            )
        )
    return Route(prefix, name, True)
