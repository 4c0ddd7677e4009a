"""The AI gateway against a fake upstream provider (real HTTP servers on loopback, no Podman)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bindings.ai.credentials import Credentials, save_provider
from bindings.ai.fake_upstream import HOLD_MARKER, Text, ToolCall
from bindings.ai.testing import AiStack, listening_addresses
from bindings.ai.tokens import TokenSigner, Verdict, load_or_create_secret
from tests.conftest import REPO


def auth(stack: AiStack) -> dict[str, str]:
    return {"authorization": f"Bearer {stack.gateway.mint_token()}"}


def chat(model: str, text: str = "hello", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def log_entries(stack: AiStack) -> list[dict[str, Any]]:
    stack.flush_log()
    path = stack.gateway.calllog.path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- routing ---------------------------------------------------------------------------------------


def test_prefixed_models_go_to_their_provider_under_the_bare_name(stack: AiStack) -> None:
    url = stack.gateway.base_url + "/v1/chat/completions"
    r1 = httpx.post(url, headers=auth(stack), json=chat("openai/gpt-5.5"))
    r2 = httpx.post(url, headers=auth(stack), json=chat("anthropic/claude-x"))
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    assert r1.json()["choices"][0]["message"]["content"] == "echo: hello"
    first, second = stack.upstream.requests
    assert (first.provider, first.path, first.body["model"]) == (
        "openai",
        "/openai/v1/chat/completions",
        "gpt-5.5",
    )
    assert (second.provider, second.path, second.body["model"]) == (
        "anthropic",
        "/anthropic/v1/chat/completions",
        "claude-x",
    )
    # The caller's gateway token is swapped for the provider key; it never reaches the provider.
    assert first.headers["authorization"] == f"Bearer {stack.upstream.openai_key}"
    assert second.headers["x-api-key"] == stack.upstream.anthropic_key


def test_bare_model_goes_to_the_default_provider(homes: Path) -> None:
    project = homes / "project-default-anthropic"
    project.mkdir()
    other = AiStack(project, default_provider="anthropic")
    try:
        r = httpx.post(
            other.gateway.base_url + "/v1/chat/completions", headers=auth(other), json=chat("some-model")
        )
        assert r.status_code == 200, r.text
        assert [(q.provider, q.body["model"]) for q in other.upstream.requests] == [
            ("anthropic", "some-model")
        ]
    finally:
        other.close()


def test_bare_model_on_shared_endpoint_uses_default_openai_and_slashes_stay(stack: AiStack) -> None:
    r = httpx.post(
        stack.gateway.base_url + "/v1/chat/completions", headers=auth(stack), json=chat("meta-llama/llama-3")
    )
    assert r.status_code == 200
    assert [(q.provider, q.body["model"]) for q in stack.upstream.requests] == [
        ("openai", "meta-llama/llama-3")
    ]


def test_messages_api_is_anthropic_and_rejects_openai_models(stack: AiStack) -> None:
    body = chat("claude-fake-1", max_tokens=50)
    headers = {"x-api-key": stack.gateway.mint_token(), "anthropic-version": "2023-06-01"}
    ok = httpx.post(stack.gateway.base_url + "/v1/messages", headers=headers, json=body)
    assert ok.status_code == 200 and ok.json()["content"][0]["text"] == "echo: hello"
    # ANTHROPIC_BASE_URL is the gateway's /v1 endpoint and Anthropic clients append /v1/messages.
    doubled = httpx.post(stack.gateway.base_url + "/v1/v1/messages", headers=headers, json=body)
    assert doubled.status_code == 200
    wrong = httpx.post(
        stack.gateway.base_url + "/v1/messages", headers=headers, json=chat("openai/gpt-5.5", max_tokens=5)
    )
    assert wrong.status_code == 400
    assert wrong.json()["type"] == "error" and "/v1/chat/completions" in wrong.json()["error"]["message"]
    assert [q.provider for q in stack.upstream.requests] == ["anthropic", "anthropic"]


# -- streaming -------------------------------------------------------------------------------------


def test_sse_events_pass_through_before_the_upstream_finishes(stack: AiStack) -> None:
    body = chat("openai/gpt-5.5", f"{HOLD_MARKER} tell me", stream=True)
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST", stack.gateway.base_url + "/v1/chat/completions", headers=auth(stack), json=body
        ) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            chunks = r.iter_raw()
            first = next(chunks)
            # The upstream is still parked after its first event: nothing could have been buffered whole.
            assert first.startswith(b"data: ") and b'"role": "assistant"' in first
            assert b"[DONE]" not in first
            stack.release_holds()
            rest = b"".join(chunks)
    events = [e for e in (first + rest).split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    text = "".join(
        (json.loads(e[6:])["choices"][0]["delta"].get("content") or "")
        for e in events[:-1]
        if json.loads(e[6:])["choices"]
    )
    assert text == f"echo: {HOLD_MARKER} tell me"
    # The usage chunk the gateway asked for (to log tokens) is not shown to a client that did not ask.
    assert all(json.loads(e[6:])["choices"] for e in events[:-1])
    assert stack.upstream.requests[0].body["stream_options"] == {"include_usage": True}
    entry = log_entries(stack)[-1]
    assert entry["stream"] is True and entry["inputTokens"] and entry["outputTokens"] == 4


def test_anthropic_stream_passes_through_with_usage_logged(stack: AiStack) -> None:
    headers = {"x-api-key": stack.gateway.mint_token(), "anthropic-version": "2023-06-01"}
    body = chat("anthropic/claude-fake-1", "one two three", max_tokens=50, stream=True)
    with httpx.stream("POST", stack.gateway.base_url + "/v1/messages", headers=headers, json=body) as r:
        raw = r.read()
    kinds = [line[7:] for line in raw.decode().splitlines() if line.startswith("event: ")]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "content_block_delta" in kinds
    entry = log_entries(stack)[-1]
    assert (entry["provider"], entry["model"], entry["outputTokens"]) == (
        "anthropic",
        "anthropic/claude-fake-1",
        4,
    )


# -- tokens ----------------------------------------------------------------------------------------


def test_a_token_lives_its_whole_ttl() -> None:
    """exp is whole seconds: rounded down, a 1 s token minted at .95 was dead 0.05 s later (the
    short-TTL re-mint test below failed on it now and then)."""
    signer = TokenSigner(b"s" * 32)
    token = signer.mint("proj", 1.0, now=100.95)
    assert signer.verify(token, "proj", now=101.9) is Verdict.OK
    assert signer.verify(token, "proj", now=102.0) is Verdict.EXPIRED


def test_token_scope_and_expiry(stack: AiStack) -> None:
    url = stack.gateway.base_url + "/v1/chat/completions"
    signer = TokenSigner(load_or_create_secret())
    good = stack.gateway.mint_token()
    cases = {
        "none": ({}, 401),
        "garbage": ({"authorization": "Bearer nope"}, 401),
        "tampered": (
            {"authorization": f"Bearer {good[:-3]}{'AAA' if not good.endswith('AAA') else 'BBB'}"},
            401,
        ),
        "other project": ({"authorization": f"Bearer {signer.mint('someotherproj', 600)}"}, 403),
        "expired": ({"authorization": f"Bearer {signer.mint(stack.ctx.project_key, -1)}"}, 401),
        "other secret": (
            {"authorization": f"Bearer {TokenSigner(b'x' * 32).mint(stack.ctx.project_key, 600)}"},
            401,
        ),
        "x-api-key": ({"x-api-key": good}, 200),
    }
    for name, (headers, status) in cases.items():
        r = httpx.post(url, headers=headers, json=chat("openai/gpt-5.5"))
        assert r.status_code == status, (name, r.text)
        if status != 200:
            assert r.json()["error"]["message"], name
    assert (
        "expired" in httpx.post(url, headers=cases["expired"][0], json=chat("m")).json()["error"]["message"]
    )
    # Only the one authorized call reached the provider.
    assert len(stack.upstream.requests) == 1


def test_tokens_and_keys_never_reach_the_log(stack: AiStack) -> None:
    token = stack.gateway.mint_token()
    httpx.post(
        stack.gateway.base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {token}"},
        json=chat("m"),
    )
    httpx.post(
        stack.gateway.base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {token}x"},
        json=chat("m"),
    )
    log_entries(stack)
    text = stack.gateway.calllog.path.read_text()
    for secret in (token, stack.upstream.openai_key, stack.upstream.anthropic_key, "ploy_ai_"):
        assert secret not in text


def test_secret_and_credentials_files_are_private(stack: AiStack, homes: Path) -> None:
    config = homes / "config"
    assert stat.S_IMODE((config / "ai-secret").stat().st_mode) == 0o600
    path = save_provider("anthropic", "http://example.invalid", "sk-ant-file")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["providers"]["anthropic"] == {"baseUrl": "http://example.invalid", "apiKey": "sk-ant-file"}
    from_file = Credentials.resolve(environ={})
    assert (
        from_file.upstream("anthropic").api_key == "sk-ant-file" and from_file.default_provider == "anthropic"
    )
    env_wins = Credentials.resolve(
        environ={"PLOY_ANTHROPIC_API_KEY": "sk-env", "PLOY_ANTHROPIC_BASE_URL": "http://e/"}
    )
    assert (env_wins.upstream("anthropic").api_key, env_wins.upstream("anthropic").base_url) == (
        "sk-env",
        "http://e",
    )
    path.unlink()


# -- missing credentials ---------------------------------------------------------------------------


def test_missing_provider_credentials_give_a_clear_error(homes: Path) -> None:
    project = homes / "project-no-anthropic"
    project.mkdir()
    other = AiStack(project, with_anthropic=False)
    try:
        r = httpx.post(
            other.gateway.base_url + "/v1/chat/completions",
            headers=auth(other),
            json=chat("anthropic/claude"),
        )
        assert r.status_code == 503 and r.headers["x-should-retry"] == "false"
        message = r.json()["error"]["message"]
        assert "ploy login --provider anthropic" in message and "PLOY_ANTHROPIC_API_KEY" in message
        assert other.upstream.requests == []
        entry = log_entries(other)[-1]
        assert (entry["status"], entry["provider"]) == (503, "anthropic")
    finally:
        other.close()


# -- logs and `ploy ai logs` -----------------------------------------------------------------------


def test_calls_are_logged_and_shown_by_ploy_ai_logs(stack: AiStack) -> None:
    httpx.post(
        stack.gateway.base_url + "/v1/chat/completions",
        headers=auth(stack),
        json=chat("openai/gpt-logged", "a b c"),
    )
    entry = log_entries(stack)[-1]
    assert entry["project"] == stack.ctx.project_name and entry["model"] == "openai/gpt-logged"
    assert entry["status"] == 200 and entry["provider"] == "openai" and entry["stream"] is False
    assert isinstance(entry["inputTokens"], int) and entry["outputTokens"] == 4 and entry["ms"] > 0
    assert entry["time"].endswith("+00:00")
    cmd = [sys.executable, "-m", "runtime.cli", "ai", "logs", str(stack.ctx.project_root)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=os.environ.copy(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "openai/gpt-logged" in out.stdout and " 200 " in out.stdout
    raw = subprocess.run(cmd + ["--json", "-n", "1"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert json.loads(raw.stdout)["model"] == "openai/gpt-logged"


def test_ploy_login_flags_store_credentials(homes: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PLOY_CONFIG_HOME": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "runtime.cli",
        "login",
        "--provider",
        "openai",
        "--base-url",
        "http://up/v1",
        "--api-key",
        "sk-1",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, env=env, stdin=subprocess.DEVNULL, timeout=60
    )
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "credentials.json").read_text())
    assert data == {
        "providers": {"openai": {"baseUrl": "http://up/v1", "apiKey": "sk-1"}},
        "default": "openai",
    }
    assert stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode) == 0o600
    assert "sk-1" not in out.stdout


# -- the official SDKs -----------------------------------------------------------------------------


def test_openai_sdk_works_through_the_gateway(stack: AiStack) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(
        base_url=stack.gateway.base_url + "/v1", api_key=stack.gateway.mint_token(), max_retries=0
    )
    done = client.chat.completions.create(
        model="openai/gpt-5.5", messages=[{"role": "user", "content": "sdk"}]
    )
    assert done.choices[0].message.content == "echo: sdk" and done.usage is not None
    stream = client.chat.completions.create(
        model="openai/gpt-5.5", messages=[{"role": "user", "content": "x y"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: x y"
    stack.upstream.script = [ToolCall("read_file", {"path": "README.md"}), Text("done")]
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
    called = client.chat.completions.create(
        model="openai/gpt-5.5", messages=[{"role": "user", "content": "go"}], tools=tools
    )
    call = called.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("read_file", {"path": "README.md"})
    assert (
        client.embeddings.create(model="openai/text-embedding-3-small", input=["ab", "c"])
        .data[1]
        .embedding[0]
        == 1.0
    )
    assert client.responses.create(model="openai/gpt-5.5", input="hi").output_text == "echo: hi"
    assert [m.id for m in client.models.list()] == ["gpt-fake-1"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=stack.gateway.base_url + "/v1", api_key="wrong", max_retries=0).models.list()


@pytest.mark.parametrize("suffix", ["", "/v1"])
def test_anthropic_sdk_works_through_the_gateway(stack: AiStack, suffix: str) -> None:
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.Anthropic(
        base_url=stack.gateway.base_url + suffix, api_key=stack.gateway.mint_token(), max_retries=0
    )
    msg = client.messages.create(
        model="anthropic/claude-x", max_tokens=64, messages=[{"role": "user", "content": "hey"}]
    )
    assert msg.content[0].text == "echo: hey" and msg.usage.output_tokens == 2
    with client.messages.stream(
        model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "s t"}]
    ) as s:
        assert "".join(s.text_stream) == "echo: s t"
    stack.upstream.script = [ToolCall("run_shell", {"command": "ls"})]
    tool_msg = client.messages.create(
        model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "go"}],
        tools=[{"name": "run_shell", "input_schema": {"type": "object"}}],
    )  # fmt: skip
    assert tool_msg.stop_reason == "tool_use" and tool_msg.content[0].input == {"command": "ls"}
    assert [q.body["model"] for q in stack.upstream.requests] == ["claude-x"] * 3
    token_client = anthropic.Anthropic(
        base_url=stack.gateway.base_url + suffix, auth_token=stack.gateway.mint_token(), api_key=None
    )
    assert token_client.messages.create(
        model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "t"}]
    ).content


# -- the AI binding --------------------------------------------------------------------------------


def test_ai_binding_chat_stream_and_sdk_props(stack: AiStack) -> None:
    from bindings.ai import AiBinding
    from bindings.errors import PloyError

    async def use() -> tuple[object, bytes, str]:
        ai = AiBinding(stack.gateway)
        try:
            done = await ai.chat(
                {"model": "openai/gpt-5.5", "messages": [{"role": "user", "content": "bind"}]}
            )
            stream = await ai.chatStream(
                model="anthropic/claude-x", messages=[{"role": "user", "content": "s"}]
            )
            raw = b"".join([chunk async for chunk in stream])
            try:
                await ai.chat({"model": "x"})
            except PloyError as exc:
                code = exc.code
            return done, raw, code
        finally:
            await ai.close()

    done, raw, code = stack.bg.run(use())
    assert done["choices"][0]["message"]["content"] == "echo: bind"  # type: ignore[index]
    assert raw.endswith(b"data: [DONE]\n\n") and b"echo:" in raw
    assert code == "INVALID_ARGUMENT"
    openai = pytest.importorskip("openai")
    from bindings.ai import AiBinding as Binding

    ai = Binding(stack.gateway)
    client = openai.OpenAI(base_url=ai.baseUrl, api_key=ai.apiKey, max_retries=0)
    assert client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "p"}]).choices


def test_ai_binding_names_missing_credentials(homes: Path) -> None:
    from bindings.ai import AiBinding
    from bindings.errors import PloyError

    project = homes / "project-nothing"
    project.mkdir()
    other = AiStack(project, with_openai=False, with_anthropic=False)

    async def use() -> PloyError:
        ai = AiBinding(other.gateway)
        try:
            await ai.chat({"model": "openai/gpt-5.5", "messages": [{"role": "user", "content": "x"}]})
        except PloyError as exc:
            return exc
        finally:
            await ai.close()
        raise AssertionError("chat() succeeded without credentials")

    try:
        err = other.bg.run(use())
        assert err.code == "AI_NOT_CONFIGURED" and "PLOY_OPENAI_API_KEY" in err.message
    finally:
        other.close()


# -- the bundled agent, run on the host against the gateway ----------------------------------------

SOULFORGE = REPO / "bindings" / "sandbox" / "image" / "bin" / "soulforge"


def soulforge_env(stack: AiStack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "PLOY_AI"))}
    gw = stack.gateway
    return env | {**gw.sandbox_env(), "PLOY_AI_URL": gw.base_url, "OPENAI_BASE_URL": gw.base_url + "/v1",
                  "ANTHROPIC_BASE_URL": gw.base_url + "/v1"}  # fmt: skip


@pytest.mark.parametrize("model", ["openai/gpt-5.5", "anthropic/claude-x"])
def test_soulforge_completes_a_task_with_two_tool_calls(stack: AiStack, tmp_path: Path, model: str) -> None:
    stack.upstream.script = [
        ToolCall("write_file", {"path": "notes/hello.txt", "content": "forged\nin fire\n"}),
        ToolCall("run_shell", {"command": "wc -l < notes/hello.txt"}),
        Text("The file has {tool_result} lines."),
    ]
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, str(SOULFORGE), "--headless", "--model", model, "write a file and count its lines"],
        capture_output=True, text=True, cwd=tmp_path, env=soulforge_env(stack), timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "notes" / "hello.txt").read_text() == "forged\nin fire\n"
    assert "[soulforge] $ wc -l < notes/hello.txt" in out.stdout
    # The count in the answer comes from the command soulforge really ran.
    assert "The file has exit code 0\n2\n lines." in out.stdout
    # soulforge keeps the provider prefix for the gateway, which routes on it and strips it.
    assert [q.body["model"] for q in stack.upstream.requests] == [model.split("/")[1]] * 3
    assert [e["model"] for e in log_entries(stack)[-3:]] == [model] * 3
    assert time.monotonic() - started < 30


def test_soulforge_without_credentials_names_the_missing_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    for model, var in (("openai/gpt-5.5", "OPENAI_API_KEY"), ("anthropic/claude-x", "ANTHROPIC_API_KEY")):
        out = subprocess.run([sys.executable, str(SOULFORGE), "--headless", "--model", model, "hi"],
                             capture_output=True, text=True, cwd=tmp_path, env=env, timeout=30)  # fmt: skip
        assert out.returncode == 1 and f"{var} is not set" in out.stderr


def test_soulforge_reports_gateway_errors(stack: AiStack, tmp_path: Path) -> None:
    env = soulforge_env(stack) | {"OPENAI_API_KEY": "not-a-token"}
    out = subprocess.run([sys.executable, str(SOULFORGE), "--headless", "--model", "openai/gpt-5.5", "hi"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=30)  # fmt: skip
    assert out.returncode == 1 and "HTTP 401" in out.stderr and "invalid ploy AI gateway token" in out.stderr


# -- listeners -------------------------------------------------------------------------------------


def test_gateway_never_listens_on_all_interfaces(stack: AiStack) -> None:
    port = int(stack.gateway.base_url.rsplit(":", 1)[1])
    assert listening_addresses(port) == ["127.0.0.1"]  # no bridge in this stack


def test_client_going_away_mid_stream_is_logged_and_frees_the_upstream(stack: AiStack) -> None:
    body = chat("openai/gpt-5.5", f"{HOLD_MARKER} long answer", stream=True)
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST", stack.gateway.base_url + "/v1/chat/completions", headers=auth(stack), json=body
        ) as r:
            next(r.iter_raw())
    deadline = time.monotonic() + 10
    while True:
        entries = [e for e in log_entries(stack) if e.get("error") == "client went away"]
        if entries or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert entries and entries[-1]["status"] == 200 and entries[-1]["stream"] is True
    stack.release_holds()


def test_sandbox_tokens_are_stable_then_re_minted_before_expiry(homes: Path) -> None:
    project = homes / "project-short-ttl"
    project.mkdir()
    short = AiStack(project, ttl_s=1.0)
    try:
        first = short.gateway.sandbox_env()
        assert short.gateway.sandbox_env() == first  # stable while more than half the TTL is left
        time.sleep(0.6)
        second = short.gateway.sandbox_env()["PLOY_AI_TOKEN"]
        assert second != first["PLOY_AI_TOKEN"]
        url = short.gateway.base_url + "/v1/models"
        assert httpx.get(url, headers={"authorization": f"Bearer {second}"}).status_code == 200
        time.sleep(2.05)  # exp is whole seconds, rounded up: a 1 s token lives 1-2 s
        expired = httpx.get(url, headers={"authorization": f"Bearer {second}"})
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    finally:
        short.close()


def test_ploy_login_prompts_when_interactive(tmp_path: Path) -> None:
    import pty
    import select

    master, slave = pty.openpty()
    env = {**os.environ, "PLOY_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "login"], cwd=REPO, env=env,
                            preexec_fn=lambda: os.login_tty(slave))  # fmt: skip  # noqa: PLW1509
    os.close(slave)
    answers = {b"Provider (openai/anthropic/local)": b"anthropic\n", b"Base URL": b"http://upstream.test\n",
               b"API key: ": b"sk-ant-typed\n"}  # fmt: skip
    transcript = b""
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            with contextlib.suppress(OSError):
                transcript += os.read(master, 4096)
        for prompt, answer in list(answers.items()):
            if prompt in transcript:
                os.write(master, answer)
                del answers[prompt]
    assert proc.wait(10) == 0, transcript
    os.close(master)
    assert not answers and b"sk-ant-typed" not in transcript.split(b"API key: ")[1]  # the key is not echoed
    data = json.loads((tmp_path / "credentials.json").read_text())
    assert data["providers"]["anthropic"] == {"baseUrl": "http://upstream.test", "apiKey": "sk-ant-typed"}
