"""Upstream provider credentials: `ploy login` stores them, the environment overrides them.

File: `config_home()/credentials.json` (mode 0600)::

    {"default": "openai",
     "providers": {"openai": {"baseUrl": "https://api.openai.com/v1", "apiKey": "sk-..."}}}

Environment (wins over the file): PLOY_OPENAI_API_KEY / PLOY_ANTHROPIC_API_KEY (falling back to the
standard OPENAI_API_KEY / ANTHROPIC_API_KEY), PLOY_OPENAI_BASE_URL / PLOY_ANTHROPIC_BASE_URL and
PLOY_AI_DEFAULT_PROVIDER. Base URLs follow each provider's own SDK convention: OpenAI's includes `/v1`
(paths after `/v1` are appended), Anthropic's does not (the full `/v1/...` path is appended), so a
user can paste what their SDK already uses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindings.context import config_home
from bindings.error_codes import AI_NOT_CONFIGURED, INVALID_ARGUMENT
from bindings.errors import PloyError

PROVIDERS = ("openai", "anthropic")
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


class NotConfigured(PloyError):
    code = AI_NOT_CONFIGURED


@dataclass(frozen=True)
class Upstream:
    provider: str
    base_url: str
    api_key: str


def credentials_path() -> Path:
    return config_home() / "credentials.json"


def load_file(path: Path | None = None) -> dict[str, Any]:
    path = path or credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise NotConfigured(f"cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def save_provider(provider: str, base_url: str | None, api_key: str, make_default: bool | None = None) -> Path:
    """Store one provider's credentials (mode 0600, written atomically). Returns the file's path."""
    if provider not in PROVIDERS:
        raise PloyError(f"unknown provider {provider!r} (expected one of {', '.join(PROVIDERS)})", INVALID_ARGUMENT)
    path = credentials_path()
    data = load_file(path)
    providers = data.setdefault("providers", {})
    providers[provider] = {"baseUrl": (base_url or DEFAULT_BASE_URLS[provider]).rstrip("/"), "apiKey": api_key}
    if make_default or (make_default is None and data.get("default") not in providers):
        data["default"] = provider
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # Created 0600 from the start so the key is never readable by others, even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Credentials:
    """A snapshot of what the gateway may use: one Upstream per configured provider plus the default."""

    upstreams: Mapping[str, Upstream]
    default_provider: str

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, file_data: Mapping[str, Any] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        data = load_file() if file_data is None else file_data
        stored = data.get("providers") or {}
        upstreams: dict[str, Upstream] = {}
        for provider in PROVIDERS:
            entry = stored.get(provider) or {}
            upper = provider.upper()
            key = env.get(f"PLOY_{upper}_API_KEY") or env.get(f"{upper}_API_KEY") or entry.get("apiKey")
            base = env.get(f"PLOY_{upper}_BASE_URL") or entry.get("baseUrl") or DEFAULT_BASE_URLS[provider]
            if key:
                upstreams[provider] = Upstream(provider, str(base).rstrip("/"), str(key))
        default = env.get("PLOY_AI_DEFAULT_PROVIDER") or data.get("default")
        if default not in PROVIDERS:
            default = next(iter(upstreams), "openai")
        return cls(upstreams, str(default))

    def upstream(self, provider: str) -> Upstream:
        if provider in self.upstreams:
            return self.upstreams[provider]
        upper = provider.upper()
        raise NotConfigured(
            f"the AI gateway has no {provider} credentials: run `ploy login --provider {provider}` "
            f"or set PLOY_{upper}_API_KEY (or {upper}_API_KEY) where `ploy dev` runs",
            provider=provider,
        )
