"""The `local` provider: a scripted model from a rules file, signed in with `ploy login --provider
local`, driving the official SDKs and the bundled agent through whole tool loops. No network, no Podman."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bindings.ai.credentials import Credentials
from bindings.ai.local_model import RulesError, parse_rules
from bindings.ai.routing import route
from bindings.ai.testing import AiStack
from tests.conftest import REPO

SOULFORGE = REPO / "bindings" / "sandbox" / "image" / "bin" / "soulforge"

RULES = r"""
rules:
  - match: summarize
    steps:
      - tool: read_file
        arguments: {path: README.md}
      - tool: write_file
        arguments: {path: SUMMARY.md, content: "Summary: {{tool_result}}"}
      - text: Wrote SUMMARY.md.
  - regex: '^say (?P<word>\w+)'
    text: "{{word}}, {{word}}!"
  - match: weather
    tools:
      - {name: get_weather, arguments: {city: Paris}}
      - {name: get_weather, arguments: {city: Oslo}}
  - match: weather
    text: never reached
  - model: "loud-*"
    text: "LOUD: {{user}}"
"""


@pytest.fixture(scope="module")
def stack(homes: Path) -> Iterator[AiStack]:
    project = homes / "project"
    project.mkdir()
    rules = homes / "rules.yaml"
    rules.write_text(RULES)
    s = AiStack(
        project, with_openai=False, with_anthropic=False, extra_environ={"PLOY_AI_LOCAL_RULES": str(rules)}
    )
    yield s
    s.close()


def sdks(stack: AiStack) -> tuple[Any, Any]:
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    base, token = stack.gateway.base_url + "/v1", stack.gateway.mint_token()
    return openai.OpenAI(base_url=base, api_key=token, max_retries=0), anthropic.Anthropic(
        base_url=base, api_key=token, max_retries=0
    )


# -- the rules file --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("rules:\n  - match: x\n    txet: hi\n", 3, "rules[0].txet: unknown key"),
        ("rules:\n  - match: x\n", 2, "a step needs text, a tool or tools"),
        ("rules:\n  - regex: '('\n    text: x\n", 2, "not a regular expression"),
        ("rules:\n  - steps: []\n", 2, "expected a list of steps"),
        ("rules:\n  - steps: [{text: a}]\n    text: b\n", 2, "either steps or text"),
        ("rules:\n  - arguments: {a: 1}\n", 2, "arguments need a `tool`"),
        ("rules: [\n", 2, "invalid YAML"),
        ("rulez: []\n", 1, "expected `rules:`"),
    ],
)
def test_rules_file_errors_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(text, tmp_path / "ai-rules.yaml")
    assert info.value.line == line and words in str(info.value) and "ai-rules.yaml" in str(info.value)


def test_a_bare_list_of_rules_is_fine(tmp_path: Path) -> None:
    rules = parse_rules("- text: hi\n- match: x\n  tool: t\n", tmp_path / "r.yaml")
    assert [r.line for r in rules] == [1, 2] and rules[1].steps[0].tools[0].name == "t"


def test_local_routes_on_both_wire_formats_and_takes_bare_names_when_default() -> None:
    assert route("/messages", "local/x", "openai", True).provider == "local"
    assert route("/chat/completions", "local/x", "openai", False).model == "x"
    assert route("/messages", "claude-x", "local", True).provider == "local"
    assert route("/messages", "claude-x", "openai", True).provider == "anthropic"
    assert route("/models", None, "local", True).provider == "local"
    with pytest.raises(Exception, match="local scripted model"):
        route("/embeddings", "local/x", "openai", False)


# -- answering -------------------------------------------------------------------------------------


def test_openai_sdk_through_a_whole_tool_loop(stack: AiStack, homes: Path) -> None:
    client, _ = sdks(stack)
    (homes / "README.md").write_text("# demo\nA tiny repository.\n")
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("read_file", "write_file")
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "please summarize this repository"}]
    calls = 0
    while calls < 5:
        calls += 1
        done = client.chat.completions.create(model="local/scripted", messages=messages, tools=tools)
        message = done.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            args = json.loads(call.function.arguments)
            if call.function.name == "read_file":
                result = (homes / args["path"]).read_text()
            else:
                (homes / args["path"]).write_text(args["content"])
                result = "ok"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    assert calls == 3 and message.content == "Wrote SUMMARY.md." and done.choices[0].finish_reason == "stop"
    assert (homes / "SUMMARY.md").read_text() == "Summary: # demo\nA tiny repository.\n"
    # streamed, with the usage chunk asked for
    stream = client.chat.completions.create(model="local/x", messages=[{"role": "user", "content": "say hi"}], stream=True,
                                            stream_options={"include_usage": True})  # fmt: skip
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hi, hi!"
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_anthropic_sdk_through_a_whole_tool_loop_streamed(stack: AiStack) -> None:
    _, client = sdks(stack)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "what is the weather?"}]
    with client.messages.stream(model="local/scripted", max_tokens=100, messages=messages,
                                tools=[{"name": "get_weather", "input_schema": {"type": "object"}}]) as s:  # fmt: skip
        first = s.get_final_message()
    assert first.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in first.content] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    messages += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id, "content": "sunny"} for b in first.content]}]  # fmt: skip
    final = client.messages.create(model="local/scripted", max_tokens=100, messages=messages)
    assert final.stop_reason == "end_turn" and final.content[0].text == "done"  # the rule's one step is over
    loud = client.messages.create(
        model="local/loud-1", max_tokens=10, messages=[{"role": "user", "content": "hey"}]
    )
    assert loud.content[0].text == "LOUD: hey"


def test_answers_are_deterministic_and_misses_are_errors(stack: AiStack) -> None:
    url = stack.gateway.base_url + "/v1/chat/completions"
    headers = {"authorization": f"Bearer {stack.gateway.mint_token()}"}
    body = {"model": "local/x", "stream": True, "messages": [{"role": "user", "content": "say again"}]}
    first, second = httpx.post(url, headers=headers, json=body), httpx.post(url, headers=headers, json=body)
    assert first.status_code == 200 and first.content == second.content
    miss = httpx.post(
        url,
        headers=headers,
        json={"model": "local/x", "messages": [{"role": "user", "content": "unscripted"}]},
    )
    assert (
        miss.status_code == 400
        and "no rule in" in miss.json()["error"]["message"]
        and "'unscripted'" in miss.json()["error"]["message"]
    )


def test_a_broken_rules_file_is_said_and_a_fixed_one_picked_up(homes: Path) -> None:
    project = homes / "broken"
    project.mkdir()
    (project / "ai-rules.yaml").write_text("rules:\n  - match: x\n    txet: hi\n")
    s = AiStack(project, with_openai=False, with_anthropic=False)
    try:
        from bindings.ai.credentials import save_provider

        save_provider("local", None, "")  # `ploy login --provider local`: the project's ai-rules.yaml
        url = s.gateway.base_url + "/v1/chat/completions"
        headers = {"authorization": f"Bearer {s.gateway.mint_token()}"}
        body = {"model": "local/x", "messages": [{"role": "user", "content": "x"}]}
        broken = httpx.post(url, headers=headers, json=body)
        assert (
            broken.status_code == 503
            and "ai-rules.yaml:3: rules[0].txet: unknown key" in broken.json()["error"]["message"]
        )
        (project / "ai-rules.yaml").write_text("rules:\n  - match: x\n    text: fixed now\n")
        assert (
            httpx.post(url, headers=headers, json=body).json()["choices"][0]["message"]["content"]
            == "fixed now"
        )
        (project / "ai-rules.yaml").unlink()  # no rules file: it echoes
        assert (
            httpx.post(url, headers=headers, json=body).json()["choices"][0]["message"]["content"]
            == "echo: x"
        )
    finally:
        (homes / "config" / "credentials.json").unlink(missing_ok=True)
        s.close()


def test_soulforge_runs_a_task_against_the_local_model(stack: AiStack, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# demo\n")
    gw = stack.gateway
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "PLOY_AI"))}
    env |= {
        "PLOY_AI_URL": gw.base_url,
        "OPENAI_BASE_URL": gw.base_url + "/v1",
        "OPENAI_API_KEY": gw.mint_token(),
    }
    out = subprocess.run([sys.executable, str(SOULFORGE), "--headless", "--model", "local/scripted", "summarize this repository"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "[soulforge] read README.md" in out.stdout and "[soulforge] write SUMMARY.md" in out.stdout
    assert out.stdout.rstrip().endswith("Wrote SUMMARY.md.")
    assert (tmp_path / "SUMMARY.md").read_text() == "Summary: # demo\n"


# -- ploy login --provider local -------------------------------------------------------------------


def test_ploy_login_local_stores_the_rules_file_and_status_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PLOY_CONFIG_HOME": str(tmp_path / "cfg"), "PLOY_OPENAI_API_KEY": "", "OPENAI_API_KEY": "",
           "PLOY_ANTHROPIC_API_KEY": "", "ANTHROPIC_API_KEY": "", "PLOY_AI_LOCAL_RULES": ""}  # fmt: skip

    def ploy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True, cwd=tmp_path,
                              env=env, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip

    status = ploy("ai", "status")
    assert "signed in: no: not signed in to an AI provider" in status.stdout
    (tmp_path / "bad.yaml").write_text("rules:\n  - nope: 1\n")
    bad = ploy("login", "--provider", "local", "--rules", "bad.yaml")
    assert bad.returncode == 2 and "bad.yaml:2: rules[0].nope: unknown key" in bad.stderr
    assert ploy("login", "--provider", "local", "--api-key", "sk-x").returncode == 2
    (tmp_path / "rules.yaml").write_text(RULES)
    ok = ploy("login", "--provider", "local", "--rules", "rules.yaml")
    assert ok.returncode == 0, ok.stderr
    data = json.loads((tmp_path / "cfg" / "credentials.json").read_text())
    assert data == {"providers": {"local": {"rules": str(tmp_path / "rules.yaml")}}, "default": "local"}
    creds = Credentials.resolve(environ={}, file_data=data)
    assert (
        creds.signed_in
        and creds.default_provider == "local"
        and creds.upstream("local").rules == str(tmp_path / "rules.yaml")
    )
    status = ploy("ai", "status")
    assert (
        "signed in: yes" in status.stdout
        and f"local      scripted model, rules: {tmp_path / 'rules.yaml'}" in status.stdout
    )
