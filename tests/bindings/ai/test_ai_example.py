"""The docs' AI coding-agent example, as written, under `ploy dev`: a real sandbox runs soulforge,
which reaches the gateway `ploy dev` started, which forwards to a fake upstream provider."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bindings.ai.fake_upstream import FakeUpstream, Text, ToolCall
from bindings.ai.testing import BackgroundLoop
from bindings.context import project_key
from tests.conftest import REPO, DevServer, copy_example

pytestmark = pytest.mark.podman


def _remove_containers(project: Path) -> None:
    ids = subprocess.run(["podman", "ps", "-aq", "--filter", f"label=ploy.project={project_key(project)}"],
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    if ids:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *ids], capture_output=True)


@pytest.mark.parametrize("name", ["ai-agent", "ai-agent-py"])
def test_docs_agent_example_streams_soulforge_through_the_gateway(
    name: str, tmp_path: Path, dev_server: type[DevServer], upstream_loop: tuple[BackgroundLoop, FakeUpstream]
) -> None:
    bg, up = upstream_loop
    project = copy_example(name, tmp_path)

    async def script() -> None:
        up.requests.clear()
        up.script = [
            ToolCall("run_shell", {"command": "echo repo-$((6 * 7))"}),
            ToolCall("list_files", {"path": "/usr/local/bin"}),
            Text("Summary: this sandbox has {tool_result}"),
        ]

    bg.run(script())
    env = {"PLOY_CONFIG_HOME": str(tmp_path / "config"), "PLOY_OPENAI_API_KEY": up.openai_key,
           "PLOY_OPENAI_BASE_URL": up.openai_base_url}  # fmt: skip
    server = dev_server(project, env=env).start(timeout=120)
    try:
        with httpx.stream("GET", server.url + "/", timeout=240) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            text = r.read().decode()
        assert "[soulforge] $ echo repo-$((6 * 7))" in text and "| repo-42" in text, text
        assert "Summary: this sandbox has" in text and "soulforge" in text.split("Summary:")[1]
        # The sandbox's soulforge asked for openai/gpt-5.5; the gateway sent gpt-5.5 with the real key.
        assert [q.body["model"] for q in up.requests] == ["gpt-5.5"] * 3
        assert all(q.headers["authorization"] == f"Bearer {up.openai_key}" for q in up.requests)
        logs = subprocess.run([sys.executable, "-m", "runtime.cli", "ai", "logs", str(project), "--json"],
                              capture_output=True, text=True, cwd=REPO, env=server.env, timeout=60)  # fmt: skip
        entries = [json.loads(line) for line in logs.stdout.splitlines()]
        assert [(e["model"], e["status"], e["stream"]) for e in entries] == [
            ("openai/gpt-5.5", 200, True)
        ] * 3
    finally:
        server.stop()
        _remove_containers(project)


@pytest.mark.parametrize("name", ["ai-agent", "ai-agent-py"])
def test_agent_example_not_signed_in_fails_as_the_docs_say_then_works_after_ploy_login(
    name: str, tmp_path: Path, dev_server: type[DevServer], upstream_loop: tuple[BackgroundLoop, FakeUpstream]
) -> None:
    """The docs' Local development paragraph: without `ploy login` the sandbox gets no gateway
    credentials and the agent "fails to authenticate (for example OPENAI_API_KEY is not set)"; ploy dev
    says which command to run; after `ploy login` the same running sandbox works, without a restart."""
    bg, up = upstream_loop
    project = copy_example(name, tmp_path)
    config = {"PLOY_CONFIG_HOME": str(tmp_path / "config")}
    env = {**config, "PLOY_OPENAI_API_KEY": "", "OPENAI_API_KEY": "", "PLOY_ANTHROPIC_API_KEY": "",
           "ANTHROPIC_API_KEY": "", "PLOY_AI_LOCAL_RULES": ""}  # fmt: skip
    server = dev_server(project, env=env).start(timeout=120)
    try:
        assert (
            "ai: not signed in to an AI provider" in server.output
            and "ploy login --provider openai" in server.output
        )
        text = httpx.get(server.url + "/", timeout=240).text
        assert "soulforge: OPENAI_API_KEY is not set" in text, text
        assert "ai: sandbox 'agent' (SANDBOX) gets no AI credentials: not signed in" in server.output

        async def script() -> None:
            up.requests.clear()
            up.script = [ToolCall("run_shell", {"command": "echo signed-in"}), Text("Done: {tool_result}")]

        bg.run(script())
        login = subprocess.run(
            [sys.executable, "-m", "runtime.cli", "login", "--provider", "openai", "--base-url", up.openai_base_url,
             "--api-key", up.openai_key],
            capture_output=True, text=True, cwd=REPO, env={**server.env, **config}, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        text = httpx.get(server.url + "/", timeout=240).text
        assert "Done: exit code 0\nsigned-in" in text, text
        assert [q.body["model"] for q in up.requests] == ["gpt-5.5"] * 2
    finally:
        server.stop()
        _remove_containers(project)
