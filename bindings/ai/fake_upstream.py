"""A small, real HTTP server that speaks the OpenAI and Anthropic wire formats, for tests and benches.

One server, two providers: OpenAI at `{url}/openai/v1`, Anthropic at `{url}/anthropic` (each SDK's own
base-URL convention). It checks the provider key like the real APIs, records every request, streams
server-sent events event by event, and answers from a script of steps (text or tool calls) so an agent
loop can be driven deterministically; with no script it echoes the last user message.

Run standalone (bench, manual tries): `python -m bindings.ai.fake_upstream --port 8787`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bindings.ai.embedded_server import EmbeddedServer
from bindings.ai.network import listen_socket

HOLD_MARKER = "[hold]"  # a user message containing it makes a stream pause after its first event


@dataclass(frozen=True)
class Text:
    """Answer with this text; `{tool_result}` is replaced by the last tool result in the conversation."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


Step = Text | ToolCall


@dataclass
class Recorded:
    provider: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstream:
    openai_key: str = "sk-fake-openai"
    anthropic_key: str = "sk-ant-fake"
    script: list[Step] = field(default_factory=list)
    chunk_delay_s: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    _server: EmbeddedServer | None = None

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/openai/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"{self.url}/anthropic"

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> FakeUpstream:
        sock = listen_socket("127.0.0.1", port)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = Starlette(
            routes=[
                Route("/openai/v1/chat/completions", self._openai_chat, methods=["POST"]),
                Route("/openai/v1/responses", self._openai_responses, methods=["POST"]),
                Route("/openai/v1/embeddings", self._openai_embeddings, methods=["POST"]),
                Route("/openai/v1/models", self._models, methods=["GET"]),
                Route("/anthropic/v1/messages", self._anthropic_messages, methods=["POST"]),
                Route("/anthropic/v1/chat/completions", self._openai_chat, methods=["POST"]),
                Route("/anthropic/v1/models", self._models, methods=["GET"]),
            ]
        )
        self._server = EmbeddedServer(app, [sock])
        await self._server.start()
        return self

    async def close(self) -> None:
        self.release.set()
        if self._server is not None:
            await self._server.stop()
            self._server = None

    # -- shared ----------------------------------------------------------------------------------

    def _auth_error(self, request: Request, provider: str) -> Response | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        want = self.openai_key if provider == "openai" else self.anthropic_key
        bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
        ok = bearer == want if provider == "openai" else want in (headers.get("x-api-key"), bearer)
        if not ok:
            msg = f"fake {provider}: invalid API key"
            if provider == "anthropic" and request.url.path.endswith("/messages"):
                body = {"type": "error", "error": {"type": "authentication_error", "message": msg}}
            else:
                body = {"error": {"message": msg, "type": "invalid_request_error", "code": "invalid_api_key"}}
            return JSONResponse(body, status_code=401)
        return None

    async def _record(self, request: Request, provider: str) -> tuple[Any, Response | None]:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Recorded(provider, request.method, request.url.path, headers, body))
        return body, self._auth_error(request, provider)

    def _next_step(self, assistant_turns: int, last_user: str, tool_result: str) -> Step:
        if assistant_turns < len(self.script):
            step = self.script[assistant_turns]
            return Text(step.text.replace("{tool_result}", tool_result)) if isinstance(step, Text) else step
        if self.script:
            return Text(f"(script finished) {tool_result}")
        return Text(f"echo: {last_user}")

    async def _pause(self, last_user: str) -> None:
        if HOLD_MARKER in last_user:
            await self.release.wait()
        elif self.chunk_delay_s:
            await asyncio.sleep(self.chunk_delay_s)

    async def _models(self, request: Request) -> Response:
        provider = request.url.path.split("/")[1]
        _, err = await self._record(request, provider)
        if err:
            return err
        if provider == "anthropic":
            data = [
                {
                    "type": "model",
                    "id": "claude-fake-1",
                    "display_name": "Claude Fake",
                    "created_at": "2025-01-01T00:00:00Z",
                }
            ]
            return JSONResponse(
                {"data": data, "has_more": False, "first_id": "claude-fake-1", "last_id": "claude-fake-1"}
            )
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": "gpt-fake-1", "object": "model", "created": 0, "owned_by": "fake"}],
            }
        )

    # -- OpenAI ----------------------------------------------------------------------------------

    async def _openai_chat(self, request: Request) -> Response:
        provider = request.url.path.split("/")[1]
        body, err = await self._record(request, provider)
        if err:
            return err
        messages = body.get("messages") or []
        last_user, tool_result = "", ""
        for m in messages:
            content = m.get("content")
            text = (
                content
                if isinstance(content, str)
                else " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
            )
            if m.get("role") == "user":
                last_user = text
            elif m.get("role") == "tool":
                tool_result = text
        turns = sum(1 for m in messages if m.get("role") == "assistant")
        step = self._next_step(turns, last_user, tool_result)
        usage = {"prompt_tokens": max(1, len(json.dumps(messages)) // 4), "completion_tokens": 0}
        cid, model, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", body.get("model"), int(time.time())
        if isinstance(step, Text):
            words = step.text.split(" ")
            usage["completion_tokens"] = len(words)
            message: dict[str, Any] = {"role": "assistant", "content": step.text}
            finish = "stop"
        else:
            call = {"id": f"call_{uuid.uuid4().hex[:10]}", "type": "function",
                    "function": {"name": step.name, "arguments": json.dumps(step.arguments)}}  # fmt: skip
            usage["completion_tokens"] = 12
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            return JSONResponse({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage,
            })  # fmt: skip
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]}  # fmt: skip
            if include_usage:
                obj["usage"] = None
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        async def events() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            if isinstance(step, Text):
                for i, word in enumerate(step.text.split(" ")):
                    await self._pause(last_user)
                    yield chunk({"content": word if i == 0 else " " + word})
            else:
                args = message["tool_calls"][0]["function"]["arguments"]
                head = {"index": 0, "id": message["tool_calls"][0]["id"], "type": "function",
                        "function": {"name": step.name, "arguments": ""}}  # fmt: skip
                yield chunk({"tool_calls": [head]})
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    await self._pause(last_user)
                    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            yield chunk({}, finish)
            if include_usage:
                tail = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": [], "usage": usage}  # fmt: skip
                yield b"data: " + json.dumps(tail).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _openai_responses(self, request: Request) -> Response:
        body, err = await self._record(request, "openai")
        if err:
            return err
        prompt = body.get("input")
        text = f"echo: {prompt if isinstance(prompt, str) else json.dumps(prompt)}"
        usage = {"input_tokens": max(1, len(json.dumps(prompt)) // 4), "output_tokens": len(text.split(" "))}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        rid = f"resp_{uuid.uuid4().hex[:12]}"
        item = {"type": "message", "id": f"msg_{uuid.uuid4().hex[:8]}", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip
        resp: dict[str, Any] = {"id": rid, "object": "response", "created_at": int(time.time()), "status": "completed",
                "model": body.get("model"), "output": [item], "usage": usage}  # fmt: skip
        if not body.get("stream"):
            return JSONResponse(resp)

        async def events() -> AsyncIterator[bytes]:
            steps: list[tuple[str, dict[str, Any]]] = [
                ("response.created", {"response": {**resp, "status": "in_progress", "output": [], "usage": None}}),
                ("response.output_text.delta", {"item_id": item["id"], "output_index": 0, "content_index": 0, "delta": text}),
                ("response.completed", {"response": resp}),
            ]  # fmt: skip
            for n, (kind, data) in enumerate(steps):
                yield f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': n, **data})}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _openai_embeddings(self, request: Request) -> Response:
        body, err = await self._record(request, "openai")
        if err:
            return err
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(x))), 0.5, -0.5]}
            for i, x in enumerate(items)
        ]
        tokens = sum(len(str(x).split()) for x in items)
        return JSONResponse({"object": "list", "data": data, "model": body.get("model"),
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})  # fmt: skip

    # -- Anthropic -------------------------------------------------------------------------------

    async def _anthropic_messages(self, request: Request) -> Response:
        body, err = await self._record(request, "anthropic")
        if err:
            return err
        messages = body.get("messages") or []
        last_user, tool_result = "", ""
        for m in messages:
            content = m.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            for b in blocks:
                if b.get("type") == "text" and m.get("role") == "user":
                    last_user = b.get("text", "")
                elif b.get("type") == "tool_result":
                    inner = b.get("content")
                    tool_result = (
                        inner
                        if isinstance(inner, str)
                        else " ".join(x.get("text", "") for x in inner or [] if isinstance(x, dict))
                    )
        turns = sum(1 for m in messages if m.get("role") == "assistant")
        step = self._next_step(turns, last_user, tool_result)
        mid, model = f"msg_{uuid.uuid4().hex[:12]}", body.get("model")
        in_tokens = max(1, len(json.dumps(messages)) // 4)
        if isinstance(step, Text):
            block: dict[str, Any] = {"type": "text", "text": step.text}
            stop, out_tokens = "end_turn", len(step.text.split(" "))
        else:
            block = {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:10]}",
                "name": step.name,
                "input": step.arguments,
            }
            stop, out_tokens = "tool_use", 12
        message = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [block],
                   "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens}}  # fmt: skip
        if not body.get("stream"):
            return JSONResponse(message)

        def event(kind: str, data: dict[str, Any]) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

        async def events() -> AsyncIterator[bytes]:
            start = dict(
                message, content=[], stop_reason=None, usage={"input_tokens": in_tokens, "output_tokens": 1}
            )
            yield event("message_start", {"message": start})
            if isinstance(step, Text):
                yield event(
                    "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
                )
                for i, word in enumerate(step.text.split(" ")):
                    await self._pause(last_user)
                    piece = word if i == 0 else " " + word
                    yield event(
                        "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}
                    )
            else:
                head = {**block, "input": {}}
                yield event("content_block_start", {"index": 0, "content_block": head})
                args = json.dumps(step.arguments)
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    await self._pause(last_user)
                    yield event(
                        "content_block_delta",
                        {"index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}},
                    )
            yield event("content_block_stop", {"index": 0})
            yield event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                          "usage": {"output_tokens": out_tokens}})  # fmt: skip
            yield event("message_stop", {})

        return StreamingResponse(events(), media_type="text/event-stream")


async def _main(port: int, openai_key: str, anthropic_key: str) -> None:
    upstream = await FakeUpstream(openai_key=openai_key, anthropic_key=anthropic_key).start(port)
    print(f"openai {upstream.openai_base_url}\nanthropic {upstream.anthropic_base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await upstream.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--openai-key", default="sk-fake-openai")
    parser.add_argument("--anthropic-key", default="sk-ant-fake")
    opts = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(opts.port, opts.openai_key, opts.anthropic_key))
