"""The docs' rule: `ai: true` *and* signed in (`ploy login`) put the gateway credentials into sandboxes.
Not signed in: no variables, `ploy dev` says what to run, env.AI answers AI_NOT_CONFIGURED; a login
while `ploy dev` runs takes effect on the next call. Real gateways and `ploy dev`; no Podman here (the
sandbox side is in test_ai_offline_sandbox.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bindings.ai.credentials import NOT_SIGNED_IN, save_provider
from bindings.ai.fake_upstream import FakeUpstream
from bindings.ai.testing import AiStack
from bindings.errors import PloyError
from tests.conftest import REPO, DevServer, isolated_homes

NO_KEYS = {"PLOY_OPENAI_API_KEY": "", "OPENAI_API_KEY": "", "PLOY_ANTHROPIC_API_KEY": "", "ANTHROPIC_API_KEY": "",
           "PLOY_AI_LOCAL_RULES": ""}  # fmt: skip


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[Path]:
    with isolated_homes(tmp_path) as base:
        yield base


def test_not_signed_in_gives_sandboxes_nothing_until_a_login(homes: Path) -> None:
    from bindings.ai import AiBinding

    project = homes / "project"
    project.mkdir()
    stack = AiStack(project, with_openai=False, with_anthropic=False)
    try:
        gw = stack.gateway
        assert not gw.signed_in() and gw.sandbox_env() == {}
        url = gw.base_url + "/v1/chat/completions"
        body = {"model": "openai/gpt-5.5", "messages": [{"role": "user", "content": "x"}]}
        denied = httpx.post(url, headers={"authorization": f"Bearer {gw.mint_token()}"}, json=body)
        assert denied.status_code == 503 and denied.json()["error"]["message"] == NOT_SIGNED_IN

        async def chat() -> PloyError | dict[str, object]:
            ai = AiBinding(gw)
            try:
                return await ai.chat(body)
            except PloyError as exc:
                return exc
            finally:
                await ai.close()

        err = stack.bg.run(chat())
        assert isinstance(err, PloyError) and err.code == "AI_NOT_CONFIGURED" and NOT_SIGNED_IN in err.message

        # `ploy login` while the gateway runs: the very next look sees it, no restart.
        save_provider("openai", stack.upstream.openai_base_url, stack.upstream.openai_key)
        env = gw.sandbox_env()
        assert gw.signed_in() and sorted(env) == sorted(["PLOY_AI_URL", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
                                                          "PLOY_AI_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
                                                          "ANTHROPIC_AUTH_TOKEN"])  # fmt: skip
        done = stack.bg.run(chat())
        assert isinstance(done, dict) and done["choices"][0]["message"]["content"] == "echo: x"  # type: ignore[index]
        # and signing out takes them away again
        (homes / "config" / "credentials.json").unlink()
        assert gw.sandbox_env() == {}
    finally:
        stack.close()


def test_a_key_in_the_environment_counts_as_signed_in(homes: Path) -> None:
    project = homes / "project"
    project.mkdir()
    stack = AiStack(project, with_openai=False, with_anthropic=True)
    try:
        assert stack.gateway.signed_in() and "OPENAI_API_KEY" in stack.gateway.sandbox_env()
    finally:
        stack.close()


WORKER = """
from bindings.errors import PloyError
from runtime.http import Response


async def fetch(request, env):
    try:
        done = await env.AI.chat({"model": "openai/gpt-5.5", "messages": [{"role": "user", "content": "hi"}]})
        return Response(done["choices"][0]["message"]["content"])
    except PloyError as err:
        return Response.json({"code": err.code, "message": err.message}, status=503)
"""


def test_ploy_dev_says_what_to_run_then_picks_up_a_login(
    tmp_path: Path, dev_server: type[DevServer], upstream: FakeUpstream
) -> None:
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "index.py").write_text(textwrap.dedent(WORKER))
    (project / "ploy.yaml").write_text("kind: dynamic\nai: true\n")
    env = {"PLOY_CONFIG_HOME": str(tmp_path / "config"), **NO_KEYS}
    server = dev_server(project, env=env).start()
    assert server.output.count(f"ai: {NOT_SIGNED_IN}") == 1
    before = server.get("/")
    assert before.status_code == 503 and before.json()["code"] == "AI_NOT_CONFIGURED"
    assert "ploy login --provider openai" in before.json()["message"]

    login = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "login", "--provider", "openai", "--base-url", upstream.openai_base_url,
         "--api-key", upstream.openai_key],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **env}, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    after = server.get("/")  # the next call, without a restart
    assert after.status_code == 200 and after.text == "echo: hi"
    server.wait_output(
        "ai: signed in (openai): sandboxes get the gateway's credentials from their next call", timeout=10
    )
