"""`ai: true` inside real sandboxes: injected variables, the SDKs and soulforge reaching the gateway.

One fake upstream + gateway (listening on loopback and the Podman bridge) and one SANDBOX binding for
the module; the containers are destroyed at the end (and any left with this run's project label).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.ai.fake_upstream import Text, ToolCall
from bindings.ai.testing import AiStack, listening_addresses
from bindings.ai.tokens import TokenSigner, Verdict, load_or_create_secret
from bindings.context import BindingContext
from tests.conftest import isolated_homes

pytestmark = pytest.mark.podman

AI_VARS = ("PLOY_AI_URL", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "PLOY_AI_TOKEN", "ANTHROPIC_API_KEY",
           "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY")  # fmt: skip
WHEEL_CACHE = Path.home() / ".cache" / "ploy-test-wheels"


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with isolated_homes(tmp_path_factory.mktemp("ai-sbx")) as base:
        yield base


class Sandboxes:
    """The AI stack plus a SANDBOX binding for an `ai: true` project and one for a project without."""

    def __init__(self, homes: Path) -> None:
        from bindings.sandbox import SandboxBinding
        from bindings.sandbox.options import SandboxOptions

        (homes / "with-ai").mkdir()
        (homes / "without-ai").mkdir()
        self.stack = AiStack(homes / "with-ai", bridge="auto")
        self.stack.ctx.sandbox_env = self.stack.gateway.sandbox_env  # what `ploy dev` does for ai: true
        self.plain_ctx = BindingContext.for_project(homes / "without-ai")
        options = SandboxOptions(binding="SANDBOX", pool=0)

        async def make() -> tuple[Any, Any]:
            return SandboxBinding(self.stack.ctx, options), SandboxBinding(self.plain_ctx, options)

        self.with_ai, self.without_ai = self.stack.bg.run(make())
        self.ids: list[tuple[Any, str]] = []

    def run(self, coro: Any, timeout: float = 300) -> Any:
        return self.stack.bg.run(coro, timeout)

    def client(self, binding: Any, sandbox_id: str) -> Any:
        self.ids.append((binding, sandbox_id))
        return binding.get(sandbox_id)

    def exec(
        self, sandbox: Any, command: str, options: dict[str, Any] | None = None, timeout: float = 300
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.run(sandbox.exec(command, options), timeout)
        return result

    def close(self) -> None:
        for binding, sandbox_id in self.ids:
            try:
                self.run(binding.get(sandbox_id).destroy(), 60)
            except Exception:  # noqa: BLE001 - cleanup goes on; the label sweep below catches the rest
                pass
        self.run(self.with_ai.close())
        self.run(self.without_ai.close())
        self.stack.close()
        for key in (self.stack.ctx.project_key, self.plain_ctx.project_key):
            ids = subprocess.run(["podman", "ps", "-aq", "--filter", f"label=ploy.project={key}"],
                                 capture_output=True, text=True).stdout.split()  # fmt: skip
            if ids:
                subprocess.run(["podman", "rm", "-f", "-t", "0", *ids], capture_output=True)


@pytest.fixture(scope="module")
def sbx(homes: Path) -> Iterator[Sandboxes]:
    s = Sandboxes(homes)
    yield s
    s.close()


@pytest.fixture(scope="module")
def agent_box(sbx: Sandboxes) -> Any:
    """One sandbox of the ai: true project, shared by the tests that only read from it."""
    return sbx.client(sbx.with_ai, "ai-agent")


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "sbx" in request.fixturenames:
        request.getfixturevalue("sbx").stack.reset()


def env_of(sbx: Sandboxes, sandbox: Any, options: dict[str, Any] | None = None) -> dict[str, str]:
    out = sbx.exec(sandbox, "env -0", options)
    assert out["exitCode"] == 0, out
    return dict(item.split("=", 1) for item in out["stdout"].split("\0") if "=" in item)


# -- injection -------------------------------------------------------------------------------------


def test_ai_variables_are_injected_and_reach_the_gateway(sbx: Sandboxes, agent_box: Any) -> None:
    env = env_of(sbx, agent_box)
    gw = sbx.stack.gateway
    assert {k: env.get(k) for k in AI_VARS} == gw.sandbox_env()
    assert env["OPENAI_BASE_URL"] == env["ANTHROPIC_BASE_URL"] == env["PLOY_AI_URL"] + "/v1"
    assert env["PLOY_AI_URL"] == gw.sandbox_base_url and not gw.sandbox_base_url.startswith("http://127.")
    assert (
        TokenSigner(load_or_create_secret()).verify(env["PLOY_AI_TOKEN"], sbx.stack.ctx.project_key)
        is Verdict.OK
    )
    # Over the container network, with the injected token, to the gateway and on to the provider.
    out = sbx.exec(agent_box, 'curl -sS -H "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_BASE_URL/models"')
    assert out["exitCode"] == 0, out
    assert json.loads(out["stdout"])["data"][0]["id"] == "gpt-fake-1"
    denied = sbx.exec(
        agent_box,
        'curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer nope" "$OPENAI_BASE_URL/models"',
    )
    assert denied["stdout"] == "401"


def test_gateway_listens_on_loopback_and_the_bridge_only(sbx: Sandboxes) -> None:
    port = int(sbx.stack.gateway.base_url.rsplit(":", 1)[1])
    bridge = sbx.stack.gateway.sandbox_base_url.split("//")[1].rsplit(":", 1)[0]
    assert sorted(listening_addresses(port)) == sorted(["127.0.0.1", bridge])


def test_per_command_env_and_set_env_vars_override_the_injected_ones(sbx: Sandboxes) -> None:
    box = sbx.client(sbx.with_ai, "ai-override")
    assert env_of(sbx, box, {"env": {"OPENAI_API_KEY": "my-own-key"}})["OPENAI_API_KEY"] == "my-own-key"
    sbx.run(box.setEnvVars({"OPENAI_BASE_URL": "http://my-proxy/v1", "ANTHROPIC_API_KEY": "mine"}))
    env = env_of(sbx, box)
    assert (env["OPENAI_BASE_URL"], env["ANTHROPIC_API_KEY"]) == ("http://my-proxy/v1", "mine")
    assert env["OPENAI_API_KEY"] == sbx.stack.gateway.sandbox_env()["OPENAI_API_KEY"]  # the others stay


def test_no_ai_variable_without_ai_true(sbx: Sandboxes) -> None:
    box = sbx.client(sbx.without_ai, "no-ai")
    env = env_of(sbx, box)
    assert [k for k in AI_VARS if k in env] == []
    # The bundled agent then has no model access and says which variable is missing.
    out = sbx.exec(box, 'soulforge --headless --model openai/gpt-5.5 "summarize this repository"')
    assert out["exitCode"] == 1 and "OPENAI_API_KEY is not set" in out["stderr"]


def test_turning_ai_off_removes_the_variables_from_an_existing_sandbox(sbx: Sandboxes) -> None:
    """ai: true, then ploy dev restarted without it: the same container no longer carries the token."""
    from bindings.sandbox import SandboxBinding
    from bindings.sandbox.options import SandboxOptions

    box = sbx.client(sbx.with_ai, "ai-then-off")
    assert "PLOY_AI_TOKEN" in env_of(sbx, box)
    off_ctx = BindingContext.for_project(sbx.stack.ctx.project_root)  # same project, no sandbox_env

    async def make() -> Any:
        return SandboxBinding(off_ctx, SandboxOptions(binding="SANDBOX", pool=0))

    off = sbx.run(make())
    try:
        env = env_of(sbx, off.get("ai-then-off"))
        assert [k for k in AI_VARS if k in env] == []
    finally:
        sbx.run(off.close())


# -- the official SDKs inside the sandbox ----------------------------------------------------------


def sdk_bundle() -> bytes:
    """openai + anthropic and their dependencies for the image's Python 3.11, as one tar.gz of
    site-packages (the image has no pip: wheels are zip files, so unpacking them is installing them)."""
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    if not any(WHEEL_CACHE.glob("openai-*.whl")) or not any(WHEEL_CACHE.glob("anthropic-*.whl")):
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "openai", "anthropic", "--only-binary=:all:", "--python-version",
             "3.11", "--implementation", "cp", "--platform", "manylinux2014_x86_64", "-d", str(WHEEL_CACHE), "-q"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if got.returncode != 0:
            pytest.skip(f"cannot download the SDK wheels from the package index: {got.stderr[-400:]}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for wheel in sorted(WHEEL_CACHE.glob("*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    data = zf.read(info)
                    member = tarfile.TarInfo(info.filename)
                    member.size = len(data)
                    tar.addfile(member, io.BytesIO(data))
    return buf.getvalue()


SDK_SCRIPT = r"""
import json, os
import openai, anthropic
o = openai.OpenAI(max_retries=0)  # OPENAI_BASE_URL / OPENAI_API_KEY from the sandbox environment
done = o.chat.completions.create(model="openai/gpt-5.5", messages=[{"role": "user", "content": "from a sandbox"}])
streamed = "".join(c.choices[0].delta.content or "" for c in o.chat.completions.create(
    model="openai/gpt-5.5", messages=[{"role": "user", "content": "stream it"}], stream=True) if c.choices)
a = anthropic.Anthropic(max_retries=0)  # ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY likewise
msg = a.messages.create(model="anthropic/claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi claude"}])
with a.messages.stream(model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "a b"}]) as s:
    a_streamed = "".join(s.text_stream)
print(json.dumps({"openai": done.choices[0].message.content, "openaiStream": streamed,
                  "anthropic": msg.content[0].text, "anthropicStream": a_streamed,
                  "versions": [openai.__version__, anthropic.__version__]}))
"""


def test_official_sdks_inside_the_sandbox_work_unmodified(sbx: Sandboxes, agent_box: Any) -> None:
    bundle = sdk_bundle()
    sbx.run(agent_box.writeFile("/tmp/sdk.tar.gz", bundle))
    unpack = sbx.exec(
        agent_box, "mkdir -p /opt/sdk && tar -xzf /tmp/sdk.tar.gz -C /opt/sdk && rm /tmp/sdk.tar.gz"
    )
    assert unpack["exitCode"] == 0, unpack
    sbx.run(agent_box.writeFile("/tmp/sdk_check.py", SDK_SCRIPT))
    out = sbx.exec(agent_box, "python3 /tmp/sdk_check.py", {"env": {"PYTHONPATH": "/opt/sdk"}})
    assert out["exitCode"] == 0, out["stderr"][-2000:]
    result = json.loads(out["stdout"])
    assert result["openai"] == "echo: from a sandbox" and result["openaiStream"] == "echo: stream it"
    assert result["anthropic"] == "echo: hi claude" and result["anthropicStream"] == "echo: a b"
    assert [(q.provider, q.body["model"]) for q in sbx.stack.upstream.requests] == [
        ("openai", "gpt-5.5"), ("openai", "gpt-5.5"), ("anthropic", "claude-x"), ("anthropic", "claude-x")
    ]  # fmt: skip


# -- the bundled agent -----------------------------------------------------------------------------


def test_soulforge_in_the_sandbox_completes_a_task_needing_tool_calls(sbx: Sandboxes, agent_box: Any) -> None:
    sbx.run(agent_box.mkdir("/work/repo", {"recursive": True}))
    sbx.run(agent_box.writeFile("/work/repo/README.md", "# demo\nA tiny repository.\n"))
    sbx.stack.upstream.script = [
        ToolCall("list_files", {"path": "."}),
        ToolCall("read_file", {"path": "README.md"}),
        ToolCall("write_file", {"path": "SUMMARY.md", "content": "demo: a tiny repository\n"}),
        ToolCall("run_shell", {"command": "cat SUMMARY.md | tr a-z A-Z"}),
        Text("Summary written: {tool_result}"),
    ]

    async def stream_all() -> bytes:
        stream = await agent_box.execStream(
            'soulforge --headless --model openai/gpt-5.5 "summarize this repository"', {"cwd": "/work/repo"}
        )
        return b"".join([chunk async for chunk in stream])

    output = sbx.run(stream_all()).decode()
    assert "[soulforge] list ." in output and "[soulforge] read README.md" in output
    assert "[soulforge] $ cat SUMMARY.md | tr a-z A-Z" in output
    assert "Summary written: exit code 0\nDEMO: A TINY REPOSITORY" in output
    content = sbx.run(agent_box.readFile("/work/repo/SUMMARY.md"))["content"]
    assert content == "demo: a tiny repository\n"
    # Each step's tool result went back to the model: the README reached it through the gateway.
    last = sbx.stack.upstream.requests[-1].body["messages"]
    assert any(m.get("role") == "tool" and "A tiny repository." in m.get("content", "") for m in last)
    assert len(sbx.stack.upstream.requests) == 5
