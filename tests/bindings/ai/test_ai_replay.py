"""Record and replay: `ai: {record|replay}` / `ploy dev --ai-record|--ai-replay`, the file format, the
matching rule and the misses. Real gateways and a fake upstream provider on loopback; no Podman."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from bindings.ai.fake_upstream import FakeUpstream, Text, ToolCall
from bindings.ai.recording import Call, Recorder, Replayer, ReplayMiss, differences, load, normalise
from bindings.ai.testing import AiStack, BackgroundLoop
from runtime.config import ConfigError, parse_config
from tests.conftest import REPO, DevServer

SOULFORGE = REPO / "bindings" / "sandbox" / "image" / "bin" / "soulforge"
NO_KEYS = {"PLOY_OPENAI_API_KEY": "", "OPENAI_API_KEY": "", "PLOY_ANTHROPIC_API_KEY": "", "ANTHROPIC_API_KEY": "",
           "PLOY_AI_LOCAL_RULES": ""}  # fmt: skip


def auth(stack: AiStack) -> dict[str, str]:
    return {"authorization": f"Bearer {stack.gateway.mint_token()}"}


def anthropic_auth(stack: AiStack) -> dict[str, str]:
    return {"x-api-key": stack.gateway.mint_token(), "anthropic-version": "2023-06-01"}


# -- ploy.yaml and the flags -----------------------------------------------------------------------


def test_ai_field_takes_true_false_or_record_replay(tmp_path: Path) -> None:
    (tmp_path / "calls.jsonl").write_text("")
    path = tmp_path / "ploy.yaml"
    assert parse_config("ai: true\n", path).sections["ai"].enabled is True
    assert parse_config("ai: false\n", path).sections["ai"].enabled is False
    rec = parse_config("ai:\n  record: out/calls.jsonl\n", path).sections["ai"]
    assert (rec.enabled, rec.record, rec.replay) == (True, tmp_path / "out" / "calls.jsonl", None)
    rep = parse_config("ai: {replay: calls.jsonl, replaySpeed: 0}\n", path).sections["ai"]
    assert (rep.enabled, rep.replay, rep.replay_speed) == (True, tmp_path / "calls.jsonl", 0.0)
    assert parse_config("ai: {}\n", path).binding_names() == ["AI"]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("ai:\n  record: a.jsonl\n  replay: calls.jsonl\n", 3, "ai.replay", "either record or replay"),
        ("ai:\n  replay: missing.jsonl\n", 2, "ai.replay", "no recording at"),
        ("ai:\n  replaySpeed: -1\n", 2, "ai.replaySpeed", "0 (at once) or more"),
        ("ai:\n  replaySpeed: fast\n", 2, "ai.replaySpeed", "expected a number"),
        ("ai:\n  recrod: a.jsonl\n", 2, "ai.recrod", "unknown option"),
        ("ai: [record]\n", 1, "ai", "true or false, or a mapping"),
        ("ai: maybe\n", 1, "ai", "true or false"),
    ],
)
def test_ai_field_errors_name_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    (tmp_path / "calls.jsonl").write_text("")
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "ploy.yaml")
    assert (info.value.line, info.value.field) == (line, field) and words in str(info.value)


def test_ai_flags_are_the_plugins_and_need_ai_true(tmp_path: Path, dev_server: type[DevServer]) -> None:
    from runtime.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["dev"].format_help()  # type: ignore[union-attr,index]
    assert (
        "--ai-record FILE" in help_text
        and "--ai-replay FILE" in help_text
        and "--ai-replay-speed N" in help_text
    )
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.py").write_text(
        "from runtime.http import Response\n\nasync def fetch(r, env):\n    return Response('x')\n"
    )
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\n")
    (tmp_path / "calls.jsonl").write_text("")
    cmd = [
        sys.executable,
        "-m",
        "runtime.cli",
        "dev",
        str(tmp_path),
        "--ai-replay",
        str(tmp_path / "calls.jsonl"),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2 and "--ai-replay needs `ai: true` in ploy.yaml" in out.stderr
    both = subprocess.run(
        cmd + ["--ai-record", "x.jsonl"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\nai: true\n")
    speed = subprocess.run(
        [*cmd[:5], "--ai-replay-speed", "0"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert speed.returncode == 2 and "--ai-replay-speed needs a recording" in speed.stderr
    missing = subprocess.run(
        [*cmd[:5], "--ai-replay", "nope.jsonl"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert missing.returncode == 2 and "nope.jsonl: --ai-replay: no such recording" in missing.stderr


# -- the matching rule -----------------------------------------------------------------------------


def test_normalising_ignores_form_but_not_content() -> None:
    a = {"model": "openai/gpt-5.5", "temperature": 1.0, "stream": False, "tools": None,
         "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    b = {
        "messages": [{"content": [{"type": "text", "text": "hi"}], "role": "user"}],
        "temperature": 1,
        "model": "x",
    }
    assert normalise(a) == normalise(b)
    assert normalise({"system": "be brief", "messages": []}) == normalise(
        {"system": [{"type": "text", "text": "be brief"}]} | {"messages": []}
    )
    assert normalise({"messages": [{"role": "user", "content": "hi"}]}) != normalise(
        {"messages": [{"role": "user", "content": "hi!"}]}
    )
    assert normalise({"stream": True}) != normalise({})


def test_differences_point_at_what_changed() -> None:
    recorded = {"messages": [{"role": "user", "content": "list the files"}], "max_tokens": 5}
    sent = {"messages": [{"role": "user", "content": "list all files"}, {"role": "user", "content": "x"}]}
    found = differences(recorded, sent)
    assert [path for path, _, _ in found] == ["max_tokens", "messages[0].content", "messages"]
    assert found[1][1:] == ("list the files", "list all files") and found[2][1:] == ("1 items", "2 items")


def _line(provider: str, endpoint: str, model: str | None, request: Any, content: str, **extra: Any) -> str:
    response = {
        "status": 200,
        "ms": 1.0,
        "headers": {"content-type": "application/json"},
        "json": {"answer": content},
    }
    return json.dumps({"provider": provider, "method": "POST", "endpoint": endpoint, "model": model, "request": request,
                       "response": response, **extra})  # fmt: skip


def test_identical_requests_replay_in_order_then_from_the_start(tmp_path: Path) -> None:
    body = {"model": "openai/gpt-5.5", "messages": [{"role": "user", "content": "again"}]}
    path = tmp_path / "calls.jsonl"
    path.write_text(
        "\n".join(_line("openai", "/chat/completions", "openai/gpt-5.5", body, f"#{n}") for n in (1, 2, 3))
        + "\n"
    )
    replayer = Replayer(path, 0)
    call = Call("openai", "POST", "/chat/completions", "gpt-5.5", normalise(body))
    answers = [json.loads(replayer.answer(call).answer().body or b"")["answer"] for _ in range(5)]
    assert answers == ["#1", "#2", "#3", "#1", "#2"]
    # The file changed: read again, cursors from the start.
    path.write_text(_line("openai", "/chat/completions", "gpt-5.5", body, "new") + "\n")
    replayer.refresh()
    assert json.loads(replayer.answer(call).answer().body or b"")["answer"] == "new"


def test_a_miss_names_the_closest_recorded_call_and_what_differs(tmp_path: Path) -> None:
    turn = [{"role": "user", "content": "list the files in the repository"}]
    path = tmp_path / "calls.jsonl"
    path.write_text(
        _line("anthropic", "/messages", "claude-x", {"model": "claude-x", "max_tokens": 5, "messages": turn}, "a") + "\n"
        + _line("openai", "/chat/completions", "openai/gpt-5.5", {"messages": turn}, "b") + "\n"
        + _line("openai", "/chat/completions", "openai/gpt-4o", {"messages": turn}, "c") + "\n"
    )  # fmt: skip
    replayer = Replayer(path, 0)
    sent = [{"role": "user", "content": "list all the files in the repository"}]
    with pytest.raises(ReplayMiss) as info:
        replayer.answer(Call("openai", "POST", "/chat/completions", "gpt-5.5", normalise({"messages": sent})))
    message = str(info.value)
    assert (
        f"no recorded call in {path} matches POST /v1/chat/completions (openai, model 'gpt-5.5')" in message
    )
    assert "Closest: line 2," in message
    assert (
        'messages[0].content[0].text: recorded "list the files in the repository" but got "list all the files'
        in message
    )
    # Two recordings differ from it in the model only: the first in the file is named.
    with pytest.raises(
        ReplayMiss,
        match=r"Closest: line 2, .* which differs in model: recorded \"gpt-5.5\" but got \"gpt-9\"$",
    ):
        replayer.answer(Call("openai", "POST", "/chat/completions", "gpt-9", normalise({"messages": turn})))


def test_a_broken_recording_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text(_line("openai", "/models", None, None, "x") + "\n{not json\n")
    with pytest.raises(ConfigError, match=r"calls.jsonl:2: not a recorded call"):
        load(path)


def test_recorded_bodies_and_events_come_back_byte_for_byte(tmp_path: Path) -> None:
    """Compact, spaced, indented, non-ASCII, ASCII-escaped JSON; events with and without names; an
    event in a form that is not plain lines; non-JSON data ([DONE])."""
    path = tmp_path / "calls.jsonl"
    rec = Recorder(path)
    bodies = [
        b'{"a":1,"b":"\xc3\xa9"}',
        b'{"a": 1, "b": "\\u00e9"}',
        b'{\n  "a": [\n    1\n  ]\n}',
        b"plain text",
        b"\xff\xfe",
    ]
    for n, body in enumerate(bodies):
        rec.add(
            Call("openai", "POST", f"/x{n}", None, None),
            None,
            False,
            None,
            200,
            {"content-type": "x"},
            body,
            None,
            1.0,
            (None, None),
        )
    events = [(1.0, b'event: message_start\ndata: {"type": "message_start"}\n\n'), (2.5, b'data: {"x":"\xc3\xa9"}\n\n'),
              (3.0, b"data: [DONE]\n\n"), (4.0, b": keep-alive\n\n"), (5.0, b"id: 7\ndata: {}\n\n")]  # fmt: skip
    rec.add(
        Call("openai", "POST", "/s", None, None),
        None,
        False,
        None,
        200,
        {"content-type": "text/event-stream"},
        None,
        events,
        5.0,
        (3, 4),
    )
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["response"]["json"] == {"a": 1, "b": "é"} and "style" not in lines[0]["response"]
    assert lines[1]["response"]["style"] == "spaced-ascii" and lines[2]["response"]["style"] == "indent"
    assert lines[3]["response"]["text"] == "plain text" and "base64" in lines[4]["response"]
    stream = lines[5]["response"]
    assert stream["events"][0] == {"ms": 1.0, "event": "message_start", "data": {"type": "message_start"}}
    assert stream["events"][2] == {"ms": 3.0, "data": "[DONE]"} and "raw" in stream["events"][3]
    assert lines[5]["usage"] == {"input": 3, "output": 4}
    replayed = load(path)
    assert [r.answer().body for r in replayed[:5]] == bodies
    assert replayed[5].answer().events == events and replayed[5].answer().usage == (3, 4)


def test_keys_and_tokens_are_never_written(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    token = "ploy_ai_eyJwIjoiYWJjIiwiZXhwIjoxfQ.c2lnbmF0dXJlc2lnbmF0dXJl"
    request = {
        "messages": [{"role": "user", "content": f"my key is sk-proj-abcdefghijklmnopqrstuvwx and {token}"}]
    }
    Recorder(path, secrets=["custom-secret-1234"]).add(
        Call("openai", "POST", "/chat/completions", None, None), None, False, request, 200,
        {"content-type": "application/json", "set-cookie": "s=1", "authorization": "Bearer custom-secret-1234"},
        b'{"echo": "custom-secret-1234 sk-ant-api03-abcdefghijklmnop"}', None, 1.0, (None, None),
    )  # fmt: skip
    text = path.read_text()
    for secret in ("sk-proj-abc", token, "custom-secret-1234", "sk-ant-api03", "set-cookie", "authorization"):
        assert secret not in text
    assert text.count("[redacted]") == 4


# -- through the gateway ---------------------------------------------------------------------------


def _calls(stack: AiStack) -> list[bytes]:
    """Both wire formats, streamed and not, plus a model list: the raw response bodies."""
    base = stack.gateway.base_url + "/v1"
    out = []
    with httpx.Client(timeout=30) as client:
        for stream in (False, True):
            r = client.post(base + "/chat/completions", headers=auth(stack),
                            json={"model": "openai/gpt-5.5", "stream": stream, "messages": [{"role": "user", "content": "héllo wörld"}]})  # fmt: skip
            out.append(r.content)
            r = client.post(base + "/v1/messages", headers=anthropic_auth(stack),
                            json={"model": "claude-x", "max_tokens": 9, "stream": stream, "messages": [{"role": "user", "content": "a b"}]})  # fmt: skip
            out.append(r.content)
        out.append(client.get(base + "/models", headers=auth(stack)).content)
    assert all(b'"error"' not in body for body in out), out
    return out


def test_record_then_replay_without_upstream_or_keys(stack: AiStack, homes: Path) -> None:
    recording = homes / "gateway.jsonl"
    stack.configure(record=recording)
    recorded = _calls(stack)
    assert len(stack.upstream.requests) == 5
    stack.flush_log()
    entries = [json.loads(x) for x in stack.gateway.calllog.path.read_text().splitlines()[-5:]]
    assert {e.get("mode") for e in entries} == {"record"}
    lines = [json.loads(x) for x in recording.read_text().splitlines()]
    assert [(x["provider"], x["endpoint"], x["model"]) for x in lines] == [
        ("openai", "/chat/completions", "openai/gpt-5.5"), ("anthropic", "/messages", "claude-x"),
        ("openai", "/chat/completions", "openai/gpt-5.5"), ("anthropic", "/messages", "claude-x"),
        ("openai", "/models", None),
    ]  # fmt: skip
    assert lines[2]["response"]["events"][0]["ms"] <= lines[2]["response"]["ms"]
    assert lines[4].get("byDefault") is True and "byDefault" not in lines[0]
    text = recording.read_text()
    assert (
        stack.upstream.openai_key not in text
        and stack.upstream.anthropic_key not in text
        and "ploy_ai_" not in text
    )

    # A gateway with no credentials at all and no upstream: replay counts as signed in.
    project = homes / "replaying"
    project.mkdir()
    offline = AiStack(project, with_openai=False, with_anthropic=False, default_provider="anthropic")
    try:
        offline.bg.run(offline.upstream.close())
        assert offline.gateway.sandbox_env() == {}
        offline.configure(replay=recording, speed=0)
        assert offline.gateway.sandbox_env()["OPENAI_API_KEY"].startswith("ploy_ai_")
        # byDefault: the bare-model GET /models goes to the provider that was the default when recording
        assert _calls(offline) == recorded
        assert offline.upstream.requests == []
        offline.flush_log()
        entries = [json.loads(x) for x in offline.gateway.calllog.path.read_text().splitlines()]
        assert [e["mode"] for e in entries] == ["replay"] * 5 and entries[0]["outputTokens"] == lines[0][
            "usage"
        ]["output"]
        miss = httpx.post(offline.gateway.base_url + "/v1/chat/completions", headers=auth(offline),
                          json={"model": "openai/gpt-5.5", "messages": [{"role": "user", "content": "hello world"}]})  # fmt: skip
        assert miss.status_code == 404 and miss.headers["x-should-retry"] == "false"
        assert (
            "Closest: line 1" in miss.json()["error"]["message"]
            and '"héllo wörld"' in miss.json()["error"]["message"]
        )
    finally:
        offline.close()


def test_official_sdks_record_and_replay(stack: AiStack, homes: Path) -> None:
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    recording = homes / "sdk.jsonl"

    def run(s: AiStack) -> list[Any]:
        o = openai.OpenAI(base_url=s.gateway.base_url + "/v1", api_key=s.gateway.mint_token(), max_retries=0)
        a = anthropic.Anthropic(
            base_url=s.gateway.base_url + "/v1", api_key=s.gateway.mint_token(), max_retries=0
        )
        tools = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
        done = o.chat.completions.create(
            model="openai/gpt-5.5", messages=[{"role": "user", "content": "go"}], tools=tools
        )
        chunks = o.chat.completions.create(
            model="openai/gpt-5.5", messages=[{"role": "user", "content": "x y z"}], stream=True
        )
        msg = a.messages.create(
            model="anthropic/claude-x", max_tokens=64, messages=[{"role": "user", "content": "hey"}]
        )
        with a.messages.stream(
            model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "s t"}]
        ) as st:
            streamed = "".join(st.text_stream)
        return [done.model_dump(), [c.model_dump() for c in chunks], msg.model_dump(), streamed]

    stack.upstream.script = [ToolCall("read_file", {"path": "README.md"})]
    stack.configure(record=recording)
    first = run(stack)
    project = homes / "sdk-replay"
    project.mkdir()
    offline = AiStack(project, with_openai=False, with_anthropic=False)
    try:
        offline.configure(replay=recording, speed=0)
        assert run(offline) == first
        assert first[0]["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "read_file"
    finally:
        offline.close()


def soulforge(
    gateway_url: str, token: str, cwd: Path, prompt: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "PLOY_AI"))}
    env |= {"PLOY_AI_URL": gateway_url, "OPENAI_BASE_URL": gateway_url + "/v1", "OPENAI_API_KEY": token,
            "ANTHROPIC_BASE_URL": gateway_url + "/v1", "ANTHROPIC_API_KEY": token}  # fmt: skip
    return subprocess.run([sys.executable, str(SOULFORGE), "--headless", *extra, prompt],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)  # fmt: skip


@pytest.mark.parametrize("model", ["openai/gpt-5.5", "anthropic/claude-x"])
def test_a_50_turn_agent_session_replays_to_the_same_output(stack: AiStack, homes: Path, model: str) -> None:
    recording = homes / f"session-{model.split('/')[0]}.jsonl"
    stack.upstream.script = [
        ToolCall("run_shell", {"command": f"echo turn {n} > turn.txt && cat turn.txt"}) for n in range(49)
    ]
    stack.upstream.script.append(Text("All 50 turns done; last said {tool_result}"))
    work = homes / f"agent-work-{model.split('/')[0]}"  # the same folder both times: it is in the prompt
    work.mkdir()
    stack.configure(record=recording)
    gw = stack.gateway
    recorded = soulforge(
        gw.base_url, gw.mint_token(), work, "take fifty turns", "--model", model, "--max-steps", "60"
    )
    assert recorded.returncode == 0, recorded.stderr
    assert "All 50 turns done; last said exit code 0\nturn 48" in recorded.stdout
    assert len(stack.upstream.requests) == 50 and len(recording.read_text().splitlines()) == 50
    (work / "turn.txt").unlink()
    stack.configure(replay=recording, speed=0)
    stack.reset()
    replayed = soulforge(
        gw.base_url, gw.mint_token(), work, "take fifty turns", "--model", model, "--max-steps", "60"
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout and stack.upstream.requests == []
    # The agent asks for something else: the miss says what changed, and the agent reports it.
    missed = soulforge(
        gw.base_url, gw.mint_token(), work, "take sixty turns", "--model", model, "--max-steps", "60"
    )
    assert missed.returncode == 1 and "HTTP 404" in missed.stderr and "no recorded call" in missed.stderr
    assert 'recorded "take fifty turns" but got "take sixty turns"' in missed.stderr


# -- under ploy dev --------------------------------------------------------------------------------

WORKER = """
from urllib.parse import parse_qs, urlsplit

from bindings.errors import PloyError
from runtime.http import Response


async def fetch(request, env):
    parts = urlsplit(request.url)
    q = parse_qs(parts.query).get("q", ["hi"])[0]
    body = {"model": "openai/gpt-5.5", "messages": [{"role": "user", "content": q}]}
    try:
        if parts.path == "/stream":
            return Response(await env.AI.chatStream(body), headers={"content-type": "text/event-stream"})
        return Response.json(await env.AI.chat(body))
    except PloyError as err:
        return Response.json({"code": err.code, "message": err.message}, status=500)
"""


def test_ploy_dev_records_then_replays_offline(tmp_path: Path, dev_server: type[DevServer],
                                               upstream_loop: tuple[BackgroundLoop, FakeUpstream]) -> None:  # fmt: skip
    bg, up = upstream_loop
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "index.py").write_text(textwrap.dedent(WORKER))
    (project / "ploy.yaml").write_text("kind: dynamic\nai:\n  record: tests/ai-calls.jsonl\n")
    config = {"PLOY_CONFIG_HOME": str(tmp_path / "config")}
    env = {
        **config,
        **NO_KEYS,
        "PLOY_OPENAI_API_KEY": up.openai_key,
        "PLOY_OPENAI_BASE_URL": up.openai_base_url,
    }
    server = dev_server(project, env=env).start()
    recording = project / "tests" / "ai-calls.jsonl"
    assert f"ai: recording every call to {recording}" in server.output
    chat, stream = server.get("/chat?q=one"), server.get("/stream?q=two%20words")
    assert chat.status_code == 200 and stream.status_code == 200, (chat.text, stream.text)
    server.stop()
    assert f"ai: recorded 2 call(s) to {recording}" in server.output
    assert len(recording.read_text().splitlines()) == 2

    # No upstream key, no upstream either (requests to it would fail): --ai-replay answers.
    (project / "ploy.yaml").write_text("kind: dynamic\nai: true\n")
    offline = dev_server(
        project, env={**config, **NO_KEYS}, args=["--ai-replay", str(recording), "--ai-replay-speed", "0"]
    ).start()
    assert (
        f"ai: replaying 2 recorded call(s) from {recording} (at once); no provider is called"
        in offline.output
    )
    assert "not signed in" not in offline.output
    before = len(up.requests)
    assert offline.get("/chat?q=one").content == chat.content
    assert offline.get("/stream?q=two%20words").content == stream.content
    assert len(up.requests) == before
    miss = offline.get("/chat?q=three")
    assert miss.status_code == 500 and miss.json()["code"] == "NOT_FOUND"
    assert (
        'Closest: line 1, POST /v1/chat/completions (openai, model \'gpt-5.5\'), which differs in messages[0].content[0].text: recorded "one" but got "three"'
        in miss.json()["message"]
    )
    offline.wait_output("ai: replay: no recorded call")


def test_a_broken_recording_stops_ploy_dev_and_a_reload_switches_modes(tmp_path: Path, dev_server: type[DevServer],
                                                                        upstream_loop: tuple[BackgroundLoop, FakeUpstream]) -> None:  # fmt: skip
    _, up = upstream_loop
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "index.py").write_text(textwrap.dedent(WORKER))
    (project / "broken.jsonl").write_text('{"provider": "openai"}\n')
    (project / "ploy.yaml").write_text("kind: dynamic\nai: {replay: broken.jsonl}\n")
    env = {**os.environ, "PLOY_CONFIG_HOME": str(tmp_path / "config"), **NO_KEYS}
    out = subprocess.run([sys.executable, "-m", "runtime.cli", "dev", str(project), "--port", "0"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=60)  # fmt: skip
    assert (
        out.returncode == 2 and f"{project / 'broken.jsonl'}:1: not a recorded call (KeyError" in out.stderr
    )

    (project / "ploy.yaml").write_text("kind: dynamic\nai: true\n")
    keys = {"PLOY_CONFIG_HOME": str(tmp_path / "config"), **NO_KEYS, "PLOY_OPENAI_API_KEY": up.openai_key,
            "PLOY_OPENAI_BASE_URL": up.openai_base_url}  # fmt: skip
    server = dev_server(project, env=keys).start()
    assert server.get("/chat?q=live").status_code == 200
    (project / "ploy.yaml").write_text("kind: dynamic\nai: {record: calls.jsonl}\n")
    server.wait_output(f"ai: recording every call to {project / 'calls.jsonl'}")
    server.wait_output("reloaded (ploy.yaml)")
    recorded = server.get("/chat?q=kept")
    assert recorded.status_code == 200
    (project / "ploy.yaml").write_text("kind: dynamic\nai: {replay: calls.jsonl, replaySpeed: 0}\n")
    # printed once the running gateway (the same port and tokens) has switched
    server.wait_output(f"ai: replaying 1 recorded call(s) from {project / 'calls.jsonl'} (at once)")
    before = len(up.requests)
    assert server.get("/chat?q=kept").content == recorded.content and len(up.requests) == before
