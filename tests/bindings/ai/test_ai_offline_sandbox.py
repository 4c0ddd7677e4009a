"""Agents in real sandboxes, offline: the sign-in rule as a sandbox sees it, soulforge against the local
scripted model, and the official SDKs recorded against a fake upstream then replayed with it gone.

One sandbox for the module (the SDKs are unpacked into it once); each test starts its own gateway and
points the project's sandbox env at it, as `ploy dev` does, so the same running sandbox sees each switch.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.ai.credentials import NOT_SIGNED_IN, save_provider
from bindings.ai.fake_upstream import FakeUpstream, Text, ToolCall
from bindings.ai.gateway import Gateway
from bindings.ai.testing import BackgroundLoop
from bindings.context import BindingContext
from tests.bindings.ai.test_ai_sandbox import AI_VARS, sdk_bundle
from tests.conftest import isolated_homes

pytestmark = pytest.mark.podman

NO_KEYS = {"PLOY_OPENAI_API_KEY": "", "OPENAI_API_KEY": "", "PLOY_ANTHROPIC_API_KEY": "", "ANTHROPIC_API_KEY": "",
           "PLOY_AI_LOCAL_RULES": ""}  # fmt: skip


class Offline:
    """A project with one SANDBOX binding whose injected env comes from `self.gateway` (switchable)."""

    def __init__(self, base: Path) -> None:
        from bindings.sandbox import SandboxBinding
        from bindings.sandbox.options import SandboxOptions

        (base / "project").mkdir()
        self.bg = BackgroundLoop()
        self.ctx = BindingContext.for_project(base / "project")
        self.gateway: Gateway | None = None
        self.ctx.sandbox_env = lambda: self.gateway.sandbox_env() if self.gateway else {}
        self.ctx.on_sandbox = lambda binding, sid: (
            self.gateway.sandbox_opened(binding, sid) if self.gateway else None
        )

        async def make() -> Any:
            return SandboxBinding(self.ctx, SandboxOptions(binding="SANDBOX", pool=0))

        self.binding = self.bg.run(make())
        self.box: Any = None
        self.sdks = False

    def use(self, environ: dict[str, str], record: Path | None = None, replay: Path | None = None) -> Gateway:
        """A fresh gateway (closing the last) that the sandbox reaches over the Podman bridge."""
        self.close_gateway()

        async def start() -> Gateway:
            gw = await Gateway.start(self.ctx, bridge="auto", environ=environ)
            await gw.configure(record, replay, 0)
            return gw

        self.gateway = self.bg.run(start())
        return self.gateway

    def close_gateway(self) -> None:
        if self.gateway is not None:
            self.bg.run(self.gateway.close())
            self.gateway = None

    def sandbox(self) -> Any:
        if self.box is None:
            self.box = self.binding.get("offline")
        return self.box

    def exec(self, command: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.bg.run(self.sandbox().exec(command, options), 300)
        return result

    def env(self) -> dict[str, str]:
        out = self.exec("env -0")
        return dict(item.split("=", 1) for item in out["stdout"].split("\0") if "=" in item)

    def install_sdks(self) -> None:
        if not self.sdks:
            self.bg.run(self.sandbox().writeFile("/tmp/sdk.tar.gz", sdk_bundle()))
            out = self.exec("mkdir -p /opt/sdk && tar -xzf /tmp/sdk.tar.gz -C /opt/sdk && rm /tmp/sdk.tar.gz")
            assert out["exitCode"] == 0, out
            self.sdks = True

    def close(self) -> None:
        self.close_gateway()
        if self.box is not None:
            try:
                self.bg.run(self.box.destroy(), 60)
            except Exception:  # noqa: BLE001 - the label sweep below removes what is left
                pass
        self.bg.run(self.binding.close())
        self.bg.stop()
        ids = subprocess.run(["podman", "ps", "-aq", "--filter", f"label=ploy.project={self.ctx.project_key}"],
                             capture_output=True, text=True).stdout.split()  # fmt: skip
        if ids:
            subprocess.run(["podman", "rm", "-f", "-t", "0", *ids], capture_output=True)


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Offline]:
    with isolated_homes(tmp_path_factory.mktemp("ai-offline")) as base:
        o = Offline(base)
        yield o
        o.close()


@pytest.fixture(scope="module")
def upstream(offline: Offline) -> Iterator[FakeUpstream]:
    async def start() -> FakeUpstream:
        return await FakeUpstream().start()

    up = offline.bg.run(start())
    yield up
    offline.bg.run(up.close())


class Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_not_signed_in_the_sandbox_has_no_ai_variables_until_ploy_login(
    offline: Offline, upstream: FakeUpstream, tmp_path: Path
) -> None:
    said = Said()
    logging.getLogger("ploy.ai").addHandler(said)
    try:
        gw = offline.use(NO_KEYS)
        env = offline.env()  # the sandbox's first use: ploy dev says what it got
        assert [k for k in AI_VARS if k in env] == []
        assert f"sandbox 'offline' (SANDBOX) gets no AI credentials: {NOT_SIGNED_IN}" in said.lines
        out = offline.exec('soulforge --headless --model openai/gpt-5.5 "summarize this repository"')
        assert out["exitCode"] == 1 and "OPENAI_API_KEY is not set" in out["stderr"]

        save_provider(
            "openai", upstream.openai_base_url, upstream.openai_key
        )  # `ploy login`, ploy dev still running
        try:
            env = offline.env()  # the same sandbox, its next call
            assert {k: env.get(k) for k in AI_VARS} == gw.sandbox_env()

            async def script() -> None:
                upstream.script = [
                    ToolCall("run_shell", {"command": "echo $((40 + 2))"}),
                    Text("Answer: {tool_result}"),
                ]

            offline.bg.run(script())
            out = offline.exec('soulforge --headless --model openai/gpt-5.5 "summarize this repository"')
            assert out["exitCode"] == 0 and "Answer: exit code 0\n42" in out["stdout"], out
        finally:
            (Path(os.environ["PLOY_CONFIG_HOME"]) / "credentials.json").unlink()  # sign out
        assert [k for k in AI_VARS if k in offline.env()] == []  # signed out: gone again
    finally:
        logging.getLogger("ploy.ai").removeHandler(said)


def test_soulforge_in_a_sandbox_runs_a_whole_task_against_the_local_model(
    offline: Offline, tmp_path: Path
) -> None:
    rules = tmp_path / "ai-rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - match: document the config\n"
        "    steps:\n"
        "      - tool: read_file\n"
        "        arguments: {path: config.ini}\n"
        "      - tool: write_file\n"
        '        arguments: {path: CONFIG.md, content: "# Config\\n\\n{{tool_result}}"}\n'
        "      - text: Documented config.ini in CONFIG.md.\n"
    )
    offline.use({**NO_KEYS, "PLOY_AI_LOCAL_RULES": str(rules)})
    box = offline.sandbox()
    offline.bg.run(box.mkdir("/work/app", {"recursive": True}))
    offline.bg.run(box.writeFile("/work/app/config.ini", "[server]\nport = 8080\n"))
    out = offline.exec(
        'soulforge --headless --model local/scripted "document the config"', {"cwd": "/work/app"}
    )
    assert out["exitCode"] == 0, out
    assert "[soulforge] read config.ini" in out["stdout"] and "[soulforge] write CONFIG.md" in out["stdout"]
    assert out["stdout"].rstrip().endswith("Documented config.ini in CONFIG.md.")
    written = offline.bg.run(box.readFile("/work/app/CONFIG.md"))["content"]
    assert written == "# Config\n\n[server]\nport = 8080\n"


SDK_SCRIPT = r"""
import json
import anthropic, openai
o = openai.OpenAI(max_retries=0)  # OPENAI_BASE_URL / OPENAI_API_KEY from the sandbox
a = anthropic.Anthropic(max_retries=0)
tools = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
done = o.chat.completions.create(model="openai/gpt-5.5", messages=[{"role": "user", "content": "plain héllo"}])
tool = o.chat.completions.create(model="openai/gpt-5.5", tools=tools, messages=[  # the fake's 2nd step: a tool call
    {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "use a tool"}])
chunks = [c.model_dump() for c in o.chat.completions.create(
    model="openai/gpt-5.5", messages=[{"role": "user", "content": "stream these words"}], stream=True)]
msg = a.messages.create(model="anthropic/claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi claude"}])
with a.messages.stream(model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "a streamed reply"}]) as s:
    events = [e.model_dump() for e in s]
print(json.dumps({"openai": done.model_dump(), "tool": tool.model_dump(), "openaiStream": chunks,
                  "anthropic": msg.model_dump(), "anthropicStream": events}, sort_keys=True))
"""


def test_official_sdks_in_a_sandbox_record_then_replay_with_the_upstream_gone(
    offline: Offline, tmp_path: Path
) -> None:
    offline.install_sdks()
    offline.bg.run(offline.sandbox().writeFile("/tmp/sdk_record_replay.py", SDK_SCRIPT))
    recording = tmp_path / "sdk-calls.jsonl"

    async def start_upstream() -> FakeUpstream:
        up = await FakeUpstream().start()
        up.script = [Text("plain answer é"), ToolCall("read_file", {"path": "README.md"})]
        return up

    up = offline.bg.run(start_upstream())
    keys = {**NO_KEYS, "PLOY_OPENAI_API_KEY": up.openai_key, "PLOY_OPENAI_BASE_URL": up.openai_base_url,
            "PLOY_ANTHROPIC_API_KEY": up.anthropic_key, "PLOY_ANTHROPIC_BASE_URL": up.anthropic_base_url}  # fmt: skip
    offline.use(keys, record=recording)
    run = "python3 /tmp/sdk_record_replay.py"
    recorded = offline.exec(run, {"env": {"PYTHONPATH": "/opt/sdk"}})
    assert recorded["exitCode"] == 0, recorded["stderr"][-2000:]
    assert len(up.requests) == 5
    offline.bg.run(up.close())  # the upstream is gone
    lines = recording.read_text().splitlines()
    assert len(lines) == 5
    assert up.openai_key not in recording.read_text() and "ploy_ai_" not in recording.read_text()

    offline.use(NO_KEYS, replay=recording)  # no keys at all: replay counts as signed in
    replayed = offline.exec(run, {"env": {"PYTHONPATH": "/opt/sdk"}})
    assert replayed["exitCode"] == 0, replayed["stderr"][-2000:]
    assert replayed["stdout"] == recorded["stdout"]  # byte for byte, both wire formats, streamed and not
    result = json.loads(replayed["stdout"])
    assert result["openai"]["choices"][0]["message"]["content"] == "plain answer é"
    assert result["tool"]["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "read_file"
    assert "".join(
        c["choices"][0]["delta"].get("content") or "" for c in result["openaiStream"] if c["choices"]
    )
    assert result["anthropicStream"][-1]["type"] == "message_stop"
    offline.close_gateway()
