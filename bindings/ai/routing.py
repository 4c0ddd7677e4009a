"""Which upstream a gateway request goes to, and under which model name.

`openai/gpt-5.5` goes to OpenAI as `gpt-5.5`, `anthropic/claude-x` to Anthropic as `claude-x`. A bare
name goes to the default provider, except on endpoints only one provider speaks (the Messages API is
Anthropic's; Responses and Embeddings are OpenAI's). Other slashes (`meta-llama/llama-3`) are part of
the name: only the known provider prefixes are stripped.
"""

from __future__ import annotations

from dataclasses import dataclass

from bindings.ai.credentials import PROVIDERS
from bindings.error_codes import INVALID_ARGUMENT
from bindings.errors import PloyError

# Endpoints (below /v1) that only one provider implements.
_ANTHROPIC_ONLY = ("/messages", "/complete")
_OPENAI_ONLY = ("/responses", "/embeddings", "/completions", "/images", "/audio", "/moderations")


class RouteError(PloyError):
    code = INVALID_ARGUMENT


@dataclass(frozen=True)
class Route:
    provider: str
    model: str | None  # the name to send upstream; None when the request names no model
    renamed: bool  # True when the body must be rewritten (a provider prefix was stripped)


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
    if model is None:
        if subpath.startswith("/models/"):
            prefix, name = split_model(subpath[len("/models/") :])
            if prefix:
                return Route(prefix, name, False)
        provider = only or ("anthropic" if anthropic_client else default_provider)
        return Route(provider, None, False)
    prefix, name = split_model(model)
    if prefix is None:
        return Route(only or default_provider, model, False)
    if only and only != prefix:
        raise RouteError(
            f"model {model!r} is served by {prefix}, which does not implement /v1{subpath}; "
            + ("use /v1/chat/completions" if prefix == "openai" else "use /v1/messages or /v1/chat/completions")
        )
    return Route(prefix, name, True)
