"""`env.AI`: what a worker gets when ploy.yaml has `ai: true`.

Workers call the gateway like any other client, over HTTP with a project token, so their calls are
authenticated, routed and logged exactly like the SDKs' calls from sandboxes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from bindings.ai.gateway import Gateway
from bindings.ai.spec import AI_BINDING
from bindings.error_codes import (
    AI_NOT_CONFIGURED,
    INVALID_ARGUMENT,
    NOT_FOUND,
    UNAUTHORIZED,
    UNAVAILABLE,
    UPSTREAM_ERROR,
)
from bindings.errors import InvalidArgument, PloyError


def _request_of(request: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    body = {**(request or {}), **kwargs}
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidArgument("chat() needs a model, e.g. {model: 'openai/gpt-5.5', messages: [...]}")
    if not isinstance(body.get("messages"), list):
        raise InvalidArgument("chat() needs messages: [{role: 'user', content: '...'}]")
    return body


def _error_from(status: int, content: bytes) -> PloyError:
    message, code = content[:500].decode("utf-8", "replace"), UPSTREAM_ERROR
    try:
        err = httpx.Response(status, content=content).json().get("error") or {}
        message = err.get("message") or message
        if err.get("type") == "ploy_ai_not_configured":
            code = AI_NOT_CONFIGURED  # not signed in, or no key for this provider
        elif err.get("type") == "ploy_replay_miss":
            code = NOT_FOUND  # replaying, and no recorded call matches this one
    except (ValueError, AttributeError):
        pass
    if status in (401, 403):
        code = UNAUTHORIZED
    elif status == 400:
        code = INVALID_ARGUMENT
    return PloyError(f"AI gateway answered {status}: {message}", code, status=status)


class AiBinding:
    __ploy_spec__ = AI_BINDING

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._http = httpx.AsyncClient(base_url=gateway.base_url, timeout=httpx.Timeout(900.0, connect=10.0))

    @property
    def baseUrl(self) -> str:  # noqa: N802 - the spec's (JS) name
        """The gateway's /v1 endpoint, for the OpenAI and Anthropic SDKs' base URL."""
        return self._gateway.base_url + "/v1"

    @property
    def apiKey(self) -> str:  # noqa: N802
        """A project-scoped gateway token (re-minted when half its TTL is gone)."""
        return self._gateway.current_token()

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._gateway.current_token()}"}

    async def chat(self, request: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """OpenAI-style chat completion through the gateway; resolves with the completion JSON."""
        body = _request_of(request, kwargs)
        if body.get("stream"):
            raise InvalidArgument("chat() does not stream: use chatStream() for a stream")
        try:
            resp = await self._http.post("/v1/chat/completions", json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise PloyError(f"AI gateway unreachable: {exc!r}", UNAVAILABLE) from exc
        if resp.status_code >= 400:
            raise _error_from(resp.status_code, resp.content)
        return resp.json()

    async def chatStream(self, request: dict[str, Any] | None = None, **kwargs: Any) -> AsyncIterator[bytes]:  # noqa: N802
        """Same request as chat(); the server-sent events (`data: {chunk}`) as they arrive."""
        body = {**_request_of(request, kwargs), "stream": True}
        req = self._http.build_request("POST", "/v1/chat/completions", json=body, headers=self._headers())
        try:
            resp = await self._http.send(req, stream=True)
        except httpx.HTTPError as exc:
            raise PloyError(f"AI gateway unreachable: {exc!r}", UNAVAILABLE) from exc
        if resp.status_code >= 400:
            content = await resp.aread()
            await resp.aclose()
            raise _error_from(resp.status_code, content)
        return _chunks(resp)

    async def close(self) -> None:
        await self._http.aclose()


async def _chunks(resp: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.aiter_raw():
            yield chunk
    finally:
        await resp.aclose()
