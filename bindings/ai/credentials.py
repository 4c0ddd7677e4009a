"""Upstream provider credentials: `ploy login` stores them, the environment overrides them.

File: `config_home()/credentials.json` (mode 0600)::

    {"default": "openai",
     "providers": {"openai": {"baseUrl": "https://api.openai.com/v1", "apiKey": "sk-..."}}}

Environment (wins over the file): PLOY_OPENAI_API_KEY / PLOY_ANTHROPIC_API_KEY (falling back to the
standard OPENAI_API_KEY / ANTHROPIC_API_KEY), PLOY_OPENAI_BASE_URL / PLOY_ANTHROPIC_BASE_URL and
PLOY_AI_DEFAULT_PROVIDER. Base URLs follow each provider's own SDK convention: OpenAI's includes `/v1`
(paths after `/v1` are appended), Anthropic's does not (the full `/v1/...` path is appended), so a
user can paste what their SDK already uses.

The `local` provider is the scripted model of bindings/ai/local_model.py: no key, no network. `ploy login
--provider local [--rules FILE]` stores `{"local": {"rules": "/abs/rules.yaml"}}` (no rules: the project's
`ai-rules.yaml`); PLOY_AI_LOCAL_RULES=FILE does the same from the environment.

Signed in means at least one provider is configured; without that the gateway gives sandboxes no
credentials at all (the docs' "ai: true and signed in with ploy login" rule) and says NOT_SIGNED_IN.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindings.context import config_home, write_private_json
from bindings.error_codes import AI_NOT_CONFIGURED, INVALID_ARGUMENT
from bindings.errors import PloyError

API_PROVIDERS = ("openai", "anthropic")  # reached over HTTP with an API key
LOCAL = "local"  # the scripted model, answered inside the gateway
PROVIDERS = (*API_PROVIDERS, LOCAL)
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
NOT_SIGNED_IN = (
    "not signed in to an AI provider, so sandboxes get no AI credentials and AI calls fail: run "
    "`ploy login --provider openai` (or anthropic), or set PLOY_OPENAI_API_KEY (or PLOY_ANTHROPIC_API_KEY) "
    "where `ploy dev` runs; to work offline: `ploy login --provider local` (a scripted model) or "
    "`ploy dev --ai-replay FILE`"
)


class NotConfigured(PloyError):
    code = AI_NOT_CONFIGURED


@dataclass(frozen=True)
class Upstream:
    provider: str
    base_url: str
    api_key: str
    rules: str | None = None  # local: the rules file (None: the project's ai-rules.yaml)


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


def save_provider(
    provider: str,
    base_url: str | None,
    api_key: str,
    make_default: bool | None = None,
    rules: str | None = None,
) -> Path:
    """Store one provider's credentials (mode 0600, written atomically). Returns the file's path.
    `local` takes no key: only its rules file (absolute), or nothing for the project's ai-rules.yaml."""
    if provider not in PROVIDERS:
        raise PloyError(
            f"unknown provider {provider!r} (expected one of {', '.join(PROVIDERS)})", INVALID_ARGUMENT
        )
    path = credentials_path()
    data = load_file(path)
    providers = data.setdefault("providers", {})
    if provider == LOCAL:
        providers[provider] = {"rules": rules} if rules else {}
    else:
        providers[provider] = {
            "baseUrl": (base_url or DEFAULT_BASE_URLS[provider]).rstrip("/"),
            "apiKey": api_key,
        }
    if make_default or (make_default is None and data.get("default") not in providers):
        data["default"] = provider
    write_private_json(path, data)
    return path


@dataclass(frozen=True)
class Credentials:
    """A snapshot of what the gateway may use: one Upstream per configured provider plus the default."""

    upstreams: Mapping[str, Upstream]
    default_provider: str

    @classmethod
    def resolve(
        cls, environ: Mapping[str, str] | None = None, file_data: Mapping[str, Any] | None = None
    ) -> Credentials:
        env = os.environ if environ is None else environ
        data = load_file() if file_data is None else file_data
        stored = data.get("providers") or {}
        upstreams: dict[str, Upstream] = {}
        for provider in API_PROVIDERS:
            entry = stored.get(provider) or {}
            upper = provider.upper()
            key = env.get(f"PLOY_{upper}_API_KEY") or env.get(f"{upper}_API_KEY") or entry.get("apiKey")
            base = env.get(f"PLOY_{upper}_BASE_URL") or entry.get("baseUrl") or DEFAULT_BASE_URLS[provider]
            if key:
                upstreams[provider] = Upstream(provider, str(base).rstrip("/"), str(key))
        local = stored.get(LOCAL)
        rules = env.get("PLOY_AI_LOCAL_RULES") or (local.get("rules") if isinstance(local, dict) else None)
        if rules or isinstance(local, dict):
            upstreams[LOCAL] = Upstream(LOCAL, "", "", str(rules) if rules else None)
        default = env.get("PLOY_AI_DEFAULT_PROVIDER") or data.get("default")
        if default not in PROVIDERS:
            default = next(iter(upstreams), "openai")
        return cls(upstreams, str(default))

    @property
    def signed_in(self) -> bool:
        return bool(self.upstreams)

    def upstream(self, provider: str) -> Upstream:
        if provider in self.upstreams:
            return self.upstreams[provider]
        upper = provider.upper()
        if provider == LOCAL:
            raise NotConfigured(
                "the AI gateway has no local model: run `ploy login --provider local [--rules FILE]` "
                "or set PLOY_AI_LOCAL_RULES where `ploy dev` runs",
                provider=provider,
            )
        raise NotConfigured(
            f"the AI gateway has no {provider} credentials: run `ploy login --provider {provider}` "
            f"or set PLOY_{upper}_API_KEY (or {upper}_API_KEY) where `ploy dev` runs",
            provider=provider,
        )


class CredentialsWatch:
    """The credentials as they are now: re-resolved when credentials.json changes (one stat per call),
    so a `ploy login` while `ploy dev` runs takes effect on the next call. `environ` replaces os.environ
    (tests); the environment itself is read once, as it cannot change under a running process."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._path = credentials_path()
        self._stamp: tuple[int, int, int] | None | bool = False  # False: never read
        self._current: Credentials | None = None
        self.problem: str | None = None  # why the file could not be read, if it could not

    def current(self) -> Credentials:
        try:
            st = os.stat(self._path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp != self._stamp or self._current is None:
            try:
                self._current, self.problem = Credentials.resolve(self._environ), None
            except NotConfigured as exc:  # unreadable file: as if it were not there, and say why
                self._current, self.problem = Credentials.resolve(self._environ, {}), exc.message
            self._stamp = stamp
        return self._current
