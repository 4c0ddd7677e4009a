"""`ploy login` (upstream provider credentials) and `ploy ai logs` / `ploy ai status`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

from bindings.ai.calllog import log_path, read_entries
from bindings.ai.credentials import (
    DEFAULT_BASE_URLS,
    LOCAL,
    NOT_SIGNED_IN,
    PROVIDERS,
    Credentials,
    NotConfigured,
    credentials_path,
    save_provider,
)
from bindings.context import BindingContext


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = subparsers.add_parser(
        "login",
        help="store AI provider credentials for the AI gateway (prompts, or use the flags)",
        description=(
            "Store the upstream credentials the AI gateway uses (file mode 0600 in ploy's config folder). "
            "Environment overrides: PLOY_OPENAI_API_KEY / PLOY_ANTHROPIC_API_KEY (or OPENAI_API_KEY / "
            "ANTHROPIC_API_KEY), PLOY_OPENAI_BASE_URL / PLOY_ANTHROPIC_BASE_URL, PLOY_AI_DEFAULT_PROVIDER. "
            "`--provider local` signs in with the scripted offline model (no key): it answers from --rules FILE, "
            "else the project's ai-rules.yaml, else echoes (PLOY_AI_LOCAL_RULES=FILE does the same)."
        ),
    )
    login.add_argument("--provider", choices=PROVIDERS, help="which provider these credentials are for")
    login.add_argument(
        "--base-url", help="the provider's base URL, as its own SDK takes it (default: the official API)"
    )
    login.add_argument("--api-key", help="the provider API key (omit to be prompted, or pipe it on stdin)")
    login.add_argument("--default", action="store_true", help="route bare model names to this provider")
    login.add_argument(
        "--rules", metavar="FILE", help="local only: the rules file the scripted model answers from"
    )
    login.set_defaults(func=_login)

    ai = subparsers.add_parser("ai", help="the AI gateway: call logs and configuration")
    ai_sub = ai.add_subparsers(dest="ai_command", required=True)
    logs = ai_sub.add_parser("logs", help="show the AI gateway's calls for a project")
    logs.add_argument("dir", nargs="?", default=".", help="project folder (default: the current one)")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many of the latest calls (0: all)")
    logs.add_argument("--json", action="store_true", help="print the raw JSON lines")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new calls as they happen")
    logs.set_defaults(func=_logs)
    status = ai_sub.add_parser("status", help="which providers are configured (keys masked)")
    status.set_defaults(func=_status)


def _ask(prompt: str, default: str | None = None) -> str:
    suffix = f" [{default}]" if default else ""
    answer = input(f"{prompt}{suffix}: ").strip()
    return answer or (default or "")


def _login(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty()
    provider = args.provider
    if provider is None:
        if not interactive:
            print("ploy login: --provider is required when not run interactively", file=sys.stderr)
            return 2
        provider = _ask(f"Provider ({'/'.join(PROVIDERS)})", "openai").lower()
        if provider not in PROVIDERS:
            print(f"ploy login: unknown provider {provider!r}", file=sys.stderr)
            return 2
    if provider == LOCAL:
        return _login_local(args)
    if args.rules:
        print("ploy login: --rules is for --provider local", file=sys.stderr)
        return 2
    base_url = args.base_url
    if base_url is None and interactive and args.api_key is None:
        base_url = _ask("Base URL", DEFAULT_BASE_URLS[provider])
    key = args.api_key
    if key is None:
        key = getpass.getpass(f"{provider} API key: ") if interactive else sys.stdin.readline()
    key = key.strip()
    if not key:
        print(f"ploy login: no API key given for {provider}", file=sys.stderr)
        return 2
    path = save_provider(provider, base_url or None, key, make_default=True if args.default else None)
    creds = Credentials.resolve(environ={}, file_data=json.loads(path.read_text()))
    print(f"Saved {provider} credentials to {path} (mode 0600); default provider: {creds.default_provider}")
    return 0


def _login_local(args: argparse.Namespace) -> int:
    if args.api_key or args.base_url:
        print(
            "ploy login: the local model takes no --api-key or --base-url (only --rules FILE)",
            file=sys.stderr,
        )
        return 2
    rules = None
    if args.rules:
        rules_path = Path(args.rules).expanduser().resolve()
        if not rules_path.is_file():
            print(f"ploy login: no rules file at {rules_path}", file=sys.stderr)
            return 2
        from bindings.ai.local_model import RulesError, parse_rules

        try:
            parse_rules(rules_path.read_text(encoding="utf-8"), rules_path)
        except RulesError as exc:
            print(f"ploy login: {exc}", file=sys.stderr)
            return 2
        rules = str(rules_path)
    path = save_provider(LOCAL, None, "", make_default=True if args.default else None, rules=rules)
    creds = Credentials.resolve(environ={}, file_data=json.loads(path.read_text()))
    source = rules or "the project's ai-rules.yaml (echoes the last user message when there is none)"
    print(f"Signed in with the local scripted model (models local/NAME), answering from {source}; "
          f"default provider: {creds.default_provider}")  # fmt: skip
    return 0


def _mask(key: str) -> str:
    return key[:4] + "…" + key[-4:] if len(key) > 12 else "…"


def _status(args: argparse.Namespace) -> int:
    creds = Credentials.resolve()
    print(f"credentials file: {credentials_path()}")
    print(f"signed in: {'yes' if creds.signed_in else 'no: ' + NOT_SIGNED_IN}")
    print(f"default provider: {creds.default_provider}")
    for provider in PROVIDERS:
        try:
            up = creds.upstream(provider)
            if provider == LOCAL:
                print(f"  {provider:<10} scripted model, rules: {up.rules or 'the project ai-rules.yaml'}")
            else:
                print(f"  {provider:<10} {up.base_url}  key {_mask(up.api_key)}")
        except NotConfigured as exc:
            print(f"  {provider:<10} not configured ({exc.message})")
    return 0


def _row(e: dict[str, Any]) -> str:
    tokens = f"{e.get('inputTokens') if e.get('inputTokens') is not None else '-'}/" + (
        f"{e.get('outputTokens') if e.get('outputTokens') is not None else '-'}"
    )
    line = (
        f"{str(e.get('time', ''))[:23]:<23}  {e.get('status', ''):>3}  {str(e.get('provider') or '-'):<9}  "
        f"{str(e.get('model') or '-'):<28}  {tokens:>11}  {e.get('ms', 0):>9.1f}ms  {'stream ' if e.get('stream') else ''}"
        f"{e.get('method', '')} {e.get('path', '')}"
    )
    return line + (f"  ! {e['error']}" if e.get("error") else "")


def _logs(args: argparse.Namespace) -> int:
    ctx = BindingContext.for_project(Path(args.dir))
    path = log_path(ctx.project_state)
    entries = list(read_entries(path))
    if not entries and not args.follow:
        print(f"no AI gateway calls recorded for {ctx.project_root} (log: {path})")
        return 0
    shown = entries[-args.lines :] if args.lines > 0 else entries
    header = f"{'time (UTC)':<23}  {'st':>3}  {'provider':<9}  {'model':<28}  {'tokens i/o':>11}  {'ms':>11}  request"
    if not args.json:
        print(header)
    for e in shown:
        print(json.dumps(e) if args.json else _row(e))
    if args.follow:
        seen = len(entries)
        try:
            while True:
                time.sleep(0.5)
                entries = list(read_entries(path))
                for e in entries[seen:]:
                    print(json.dumps(e) if args.json else _row(e), flush=True)
                seen = len(entries)
        except KeyboardInterrupt:
            return 0
    return 0
