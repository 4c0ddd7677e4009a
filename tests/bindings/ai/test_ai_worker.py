"""`env.AI` in JS and Python workers under `ploy dev` (ai: true), against a fake upstream provider."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest

from bindings.ai.fake_upstream import FakeUpstream
from tests.conftest import DevServer

JS_WORKER = """
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const messages = [{ role: "user", content: url.searchParams.get("q") ?? "hi" }];
		if (url.pathname === "/chat") {
			const done = await env.AI.chat({ model: "openai/gpt-5.5", messages });
			return Response.json({ answer: done.choices[0].message.content, usage: done.usage });
		}
		if (url.pathname === "/stream") {
			const stream = await env.AI.chatStream({ model: "anthropic/claude-x", messages });
			return new Response(stream, { headers: { "Content-Type": "text/event-stream" } });
		}
		if (url.pathname === "/props") {
			return Response.json({ baseUrl: env.AI.baseUrl, apiKey: env.AI.apiKey });
		}
		try {
			await env.AI.chat({ model: "openai/gpt-5.5" });
			return new Response("no error");
		} catch (err) {
			return Response.json({ name: err.name, code: err.code, message: err.message });
		}
	},
} satisfies Ploy;
"""

PY_WORKER = """
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response
from bindings.errors import PloyError


async def fetch(request: Request, env: Any) -> Response:
    parts = urlsplit(request.url)
    q = parse_qs(parts.query).get("q", ["hi"])[0]
    messages = [{"role": "user", "content": q}]
    if parts.path == "/chat":
        done = await env.AI.chat({"model": "openai/gpt-5.5", "messages": messages})
        return Response.json({"answer": done["choices"][0]["message"]["content"], "usage": done["usage"]})
    if parts.path == "/stream":
        stream = await env.AI.chatStream({"model": "anthropic/claude-x", "messages": messages})
        return Response(stream, headers={"Content-Type": "text/event-stream"})
    if parts.path == "/props":
        return Response.json({"baseUrl": env.AI.baseUrl, "apiKey": env.AI.apiKey})
    try:
        await env.AI.chat({"model": "openai/gpt-5.5"})
        return Response("no error")
    except PloyError as err:
        return Response.json({"name": type(err).__name__, "code": err.code, "message": err.message})
"""


def make_project(root: Path, lang: str) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "ploy.yaml").write_text("kind: dynamic\nai: true\n")
    if lang == "js":
        (root / "src" / "index.ts").write_text(JS_WORKER)
    else:
        (root / "src" / "index.py").write_text(textwrap.dedent(PY_WORKER))
    return root


@pytest.mark.parametrize("lang", ["js", "py"])
def test_env_ai_chat_stream_and_props(
    lang: str, tmp_path: Path, dev_server: type[DevServer], upstream: FakeUpstream
) -> None:
    project = make_project(tmp_path / "proj", lang)
    env = {"PLOY_CONFIG_HOME": str(tmp_path / "config"), "PLOY_OPENAI_API_KEY": upstream.openai_key,
           "PLOY_OPENAI_BASE_URL": upstream.openai_base_url, "PLOY_ANTHROPIC_API_KEY": upstream.anthropic_key,
           "PLOY_ANTHROPIC_BASE_URL": upstream.anthropic_base_url}  # fmt: skip
    server = dev_server(project, env=env).start()
    assert "ai: gateway at http://127.0.0.1:" in server.output

    chat = server.get("/chat?q=from%20a%20worker")
    assert chat.status_code == 200, chat.text
    assert chat.json()["answer"] == "echo: from a worker" and chat.json()["usage"]["completion_tokens"] == 4

    with httpx.stream("GET", server.url + "/stream?q=s%20t", timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "echo: s t"

    props = server.get("/props").json()
    assert props["baseUrl"].startswith("http://127.0.0.1:") and props["baseUrl"].endswith("/v1")
    sdk = httpx.post(props["baseUrl"] + "/chat/completions", headers={"authorization": f"Bearer {props['apiKey']}"},
                     json={"model": "openai/gpt-x", "messages": [{"role": "user", "content": "sdk"}]})  # fmt: skip
    assert sdk.json()["choices"][0]["message"]["content"] == "echo: sdk"

    err = server.get("/error").json()
    assert err["code"] == "INVALID_ARGUMENT" and "messages" in err["message"]


@pytest.mark.parametrize("lang", ["js", "py"])
def test_env_ai_without_credentials_names_what_is_missing(
    lang: str, tmp_path: Path, dev_server: type[DevServer]
) -> None:
    project = make_project(tmp_path / "proj", lang)
    (project / "src" / ("index.ts" if lang == "js" else "index.py")).write_text(
        "export default { async fetch(request, env) { try { await env.AI.chat({ model: 'openai/gpt-5.5', "
        "messages: [{ role: 'user', content: 'x' }] }); return new Response('ok'); } catch (err) { "
        "return Response.json({ code: err.code, message: err.message }); } } } satisfies Ploy;\n"
        if lang == "js"
        else "from runtime.http import Response\nfrom bindings.errors import PloyError\n\n\n"
        "async def fetch(request, env):\n    try:\n        await env.AI.chat({'model': 'openai/gpt-5.5', "
        "'messages': [{'role': 'user', 'content': 'x'}]})\n        return Response('ok')\n"
        "    except PloyError as err:\n        return Response.json({'code': err.code, 'message': err.message})\n"
    )
    env = {"PLOY_CONFIG_HOME": str(tmp_path / "config"), "PLOY_OPENAI_API_KEY": "", "OPENAI_API_KEY": ""}
    server = dev_server(project, env=env).start()
    body = server.get("/").json()
    assert body["code"] == "AI_NOT_CONFIGURED"
    assert "ploy login --provider openai" in body["message"] and "PLOY_OPENAI_API_KEY" in body["message"]
