"""Token usage out of provider responses, for the gateway's call log.

Both wire formats are covered: OpenAI (`usage.prompt_tokens/completion_tokens`, or `input_tokens/
output_tokens` in the Responses API, nested under `response`) and Anthropic (`usage.input_tokens/
output_tokens`, in `message_start.message.usage` then cumulatively in `message_delta.usage`). For
streams the last value seen wins, which is the final count in both formats.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

_IN_KEYS = ("input_tokens", "prompt_tokens")
_OUT_KEYS = ("output_tokens", "completion_tokens")


@dataclass
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None

    def absorb(self, obj: Any) -> None:
        """Take the usage of a response object or stream event, if it carries one."""
        if not isinstance(obj, dict):
            return
        usage = obj.get("usage")
        for nested in ("message", "response"):
            inner = obj.get(nested)
            if usage is None and isinstance(inner, dict):
                usage = inner.get("usage")
        if not isinstance(usage, dict):
            return
        for key in _IN_KEYS:
            if isinstance(usage.get(key), int):
                self.input_tokens = usage[key]
                break
        for key in _OUT_KEYS:
            if isinstance(usage.get(key), int):
                self.output_tokens = usage[key]
                break

    def absorb_json(self, body: bytes) -> None:
        try:
            self.absorb(json.loads(body))
        except ValueError:
            pass


def _data_of(event: bytes) -> bytes | None:
    for line in event.splitlines():
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None


def _mentions_usage(event: bytes) -> bool:
    # Cheap pre-check so only the (few) events that carry counts are parsed.
    return b'"usage"' in event and b'"usage":null' not in event and b'"usage": null' not in event


async def relay_sse(
    chunks: AsyncIterator[bytes], usage: Usage, drop_usage_only_chunks: bool = False
) -> AsyncIterator[bytes]:
    """Pass server-sent events through as each one completes, noting usage on the way.

    Events are forwarded the moment their terminating blank line arrives (never waiting for more), so
    the client sees each event as soon as the upstream finished sending it. `drop_usage_only_chunks`
    removes the final `choices: []` usage chunk of an OpenAI stream when the gateway asked for it
    (`stream_options.include_usage`) on the client's behalf, so the client sees the stream it asked for.
    """
    pending = b""
    async for chunk in chunks:
        pending += chunk.replace(b"\r\n", b"\n")
        cut = pending.rfind(b"\n\n")
        if cut < 0:
            continue
        ready, pending = pending[: cut + 2], pending[cut + 2 :]
        if _mentions_usage(ready) or drop_usage_only_chunks:
            ready = _inspect(ready, usage, drop_usage_only_chunks)
        if ready:
            yield ready
    if pending:
        if _mentions_usage(pending):
            _inspect(pending, usage, False)
        yield pending


def _inspect(block: bytes, usage: Usage, drop: bool) -> bytes:
    kept: list[bytes] = []
    for event in block.split(b"\n\n"):
        if not event:
            continue
        if _mentions_usage(event):
            data = _data_of(event)
            try:
                obj = json.loads(data) if data else None
            except ValueError:
                obj = None
            usage.absorb(obj)
            if drop and isinstance(obj, dict) and obj.get("choices") == [] and obj.get("usage"):
                continue
        kept.append(event + b"\n\n")
    return b"".join(kept)
