"""The AI gateway: one `/v1` base speaking the OpenAI and Anthropic APIs, routed by model name.

It authenticates callers with project-scoped tokens (bindings/ai/tokens.py), swaps them for the real
provider key (bindings/ai/credentials.py), relays the response (server-sent events as each event
completes, never the whole stream) and logs one line per call (bindings/ai/calllog.py). It is its own
ASGI app on its own listeners (loopback and the Podman bridge address), apart from the worker server.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route as StarletteRoute

from bindings.ai.calllog import CallLog, log_path
from bindings.ai.credentials import Credentials, NotConfigured
from bindings.ai.network import listen_socket
from bindings.ai.routing import RouteError, route
from bindings.ai.serving import EmbeddedServer
from bindings.ai.tokens import TokenSigner, Verdict, load_or_create_secret
from bindings.ai.usage import Usage, relay_sse
from bindings.context import BindingContext
from bindings.error_codes import INVALID_ARGUMENT, UNAUTHORIZED, UPSTREAM_ERROR, http_status
from bindings.podman.bridge import podman_bridge

DEFAULT_TTL_S = 6 * 3600.0  # long enough for agent runs of many minutes; PLOY_AI_TOKEN_TTL overrides
_CREDENTIALS_MAX_AGE_S = 2.0  # `ploy login` while `ploy dev` runs takes effect within this
_DROP_REQUEST = {
    "host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade",
    "authorization", "x-api-key", "api-key", "accept-encoding", "cookie", "proxy-authorization",
}  # fmt: skip
_DROP_RESPONSE = {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive", "set-cookie"}


def _caller_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key") or request.headers.get("api-key")


def _error(status: int, message: str, kind: str, anthropic: bool, retry: bool = False) -> JSONResponse:
    if anthropic:
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "code": kind}}
    # The official SDKs retry 5xx unless told otherwise; a missing setup will not fix itself.
    return JSONResponse(body, status_code=status, headers={"x-should-retry": "true" if retry else "false"})


class Gateway:
    def __init__(self, ctx: BindingContext, signer: TokenSigner, ttl_s: float, environ: Mapping[str, str] | None) -> None:
        self.ctx = ctx
        self.ttl_s = ttl_s
        self._signer = signer
        self._environ = environ
        self._credentials: Credentials | None = None
        self._credentials_at = 0.0
        self._cached_token: tuple[str, float] | None = None
        self.calllog = CallLog(log_path(ctx.project_state))
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=15.0, read=900.0, write=120.0, pool=30.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )
        self.app = Starlette(
            routes=[
                StarletteRoute("/", self._health, methods=["GET"]),
                # Anthropic clients append /v1/messages to ANTHROPIC_BASE_URL, which the docs set to the
                # gateway's /v1 endpoint: /v1/v1/... is the same API.
                StarletteRoute("/v1/v1/{rest:path}", self._proxy, methods=["GET", "POST", "DELETE"]),
                StarletteRoute("/v1/{rest:path}", self._proxy, methods=["GET", "POST", "DELETE"]),
            ]
        )
        self.base_url = ""
        self.sandbox_base_url = ""
        self._server: EmbeddedServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        ctx: BindingContext,
        port: int = 0,
        ttl_s: float | None = None,
        *,
        bridge: str | None = "auto",
        environ: Mapping[str, str] | None = None,
    ) -> Gateway:
        """Start serving on 127.0.0.1:port and on the Podman bridge address (same port).

        `bridge="auto"` detects the bridge; None serves loopback only. `environ` replaces os.environ
        for credential lookup (tests)."""
        if ttl_s is None:
            ttl_s = float(os.environ.get("PLOY_AI_TOKEN_TTL") or DEFAULT_TTL_S)
        secret = await asyncio.to_thread(load_or_create_secret)
        gateway = cls(ctx, TokenSigner(secret), ttl_s, environ)
        # The bridge's MAC is pinned by the sandbox backend whenever it starts a container (see
        # bindings/podman/bridge.py), so sandboxes keep reaching this listener.
        if bridge == "auto":
            found = await podman_bridge()
            host = found[0] if found else None
        else:
            host = bridge
        sockets = gateway._bind(port, host)
        gateway.calllog.start()
        await gateway._refresh_credentials(force=True)
        gateway._server = EmbeddedServer(gateway.app, sockets)
        await gateway._server.start()
        return gateway

    def _bind(self, port: int, bridge: str | None) -> list[Any]:
        for _ in range(20):
            local = listen_socket("127.0.0.1", port)
            actual = local.getsockname()[1]
            try:
                sockets = [local] + ([listen_socket(bridge, actual)] if bridge else [])
            except OSError:
                local.close()
                if port:  # the caller asked for this port: its bridge side is taken, say so
                    raise
                continue  # a random port free on loopback but not on the bridge: draw again
            self.base_url = f"http://127.0.0.1:{actual}"
            self.sandbox_base_url = f"http://{bridge}:{actual}" if bridge else self.base_url
            return sockets
        raise OSError("no port free on both loopback and the bridge address")

    async def close(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self.http.aclose()
        await self.calllog.close()

    # -- tokens and sandbox environment ----------------------------------------------------------

    def mint_token(self) -> str:
        return self._signer.mint(self.ctx.project_key, self.ttl_s)

    def current_token(self) -> str:
        """A token with at least half its TTL left (re-minted only then, so values stay stable)."""
        now = time.time()
        if self._cached_token is None or self._cached_token[1] - now < self.ttl_s / 2:
            self._cached_token = (self.mint_token(), now + self.ttl_s)
        return self._cached_token[0]

    def sandbox_env(self) -> dict[str, str]:
        token = self.current_token()
        v1 = self.sandbox_base_url + "/v1"
        return {
            "PLOY_AI_URL": self.sandbox_base_url,
            "ANTHROPIC_BASE_URL": v1,
            "OPENAI_BASE_URL": v1,
            "PLOY_AI_TOKEN": token,
            "ANTHROPIC_API_KEY": token,
            "ANTHROPIC_AUTH_TOKEN": token,
            "OPENAI_API_KEY": token,
        }

    # -- credentials -----------------------------------------------------------------------------

    async def _refresh_credentials(self, force: bool = False) -> Credentials:
        now = time.monotonic()
        if force or self._credentials is None or now - self._credentials_at > _CREDENTIALS_MAX_AGE_S:
            self._credentials = await asyncio.to_thread(Credentials.resolve, self._environ)
            self._credentials_at = now
        return self._credentials

    # -- HTTP ------------------------------------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "service": "ploy-ai-gateway", "project": self.ctx.project_name})

    async def _proxy(self, request: Request) -> Response:
        started = time.perf_counter()
        subpath = "/" + request.path_params["rest"]
        anthropic_client = "anthropic-version" in request.headers or subpath.startswith("/messages")
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "project": self.ctx.project_name,
            "method": request.method,
            "path": "/v1" + subpath,
            "model": None,
            "provider": None,
            "status": None,
            "inputTokens": None,
            "outputTokens": None,
            "ms": None,
            "stream": False,
        }

        def finish(status: int, error: str | None = None, usage: Usage | None = None) -> None:
            entry["status"] = status
            entry["ms"] = round((time.perf_counter() - started) * 1000, 2)
            if usage is not None:
                entry["inputTokens"], entry["outputTokens"] = usage.input_tokens, usage.output_tokens
            if error:
                entry["error"] = error
            self.calllog.record(entry)

        def fail(status: int, message: str, kind: str, retry: bool = False) -> Response:
            finish(status, message)
            return _error(status, message, kind, anthropic_client, retry)

        verdict = self._signer.verify(_caller_token(request), self.ctx.project_key)
        if verdict is Verdict.MISSING:
            return fail(http_status(UNAUTHORIZED), "missing ploy AI gateway token (send it as a Bearer token or x-api-key)", "authentication_error")
        if verdict is Verdict.INVALID:
            return fail(http_status(UNAUTHORIZED), "invalid ploy AI gateway token", "authentication_error")
        if verdict is Verdict.EXPIRED:
            return fail(http_status(UNAUTHORIZED), "expired ploy AI gateway token: get a fresh one (PLOY_AI_TOKEN)", "authentication_error")
        if verdict is Verdict.WRONG_PROJECT:
            return fail(403, f"this token belongs to another project, not {self.ctx.project_name!r}", "permission_error")

        body = await request.body()
        payload: Any = None
        if body and request.method == "POST":
            try:
                payload = json.loads(body)
            except ValueError:
                return fail(http_status(INVALID_ARGUMENT), "request body is not valid JSON", "invalid_request_error")
        model = payload.get("model") if isinstance(payload, dict) else None
        entry["model"] = model if isinstance(model, str) else None
        credentials = await self._refresh_credentials()
        try:
            chosen = route(subpath, entry["model"], credentials.default_provider, anthropic_client)
            upstream = credentials.upstream(chosen.provider)
        except RouteError as exc:
            return fail(http_status(exc.code), exc.message, "invalid_request_error")
        except NotConfigured as exc:
            entry["provider"] = exc.details.get("provider")
            return fail(http_status(exc.code), exc.message, "ploy_ai_not_configured")
        entry["provider"] = chosen.provider

        rewrite = False
        if chosen.renamed and isinstance(payload, dict):
            payload["model"] = chosen.model
            rewrite = True
        if chosen.model is not None and subpath.startswith("/models/"):
            subpath = "/models/" + chosen.model
        drop_usage = False
        if (
            chosen.provider == "openai"
            and subpath == "/chat/completions"
            and isinstance(payload, dict)
            and payload.get("stream") is True
            and "stream_options" not in payload
        ):
            # Ask for the usage chunk so streamed calls are logged with token counts; relay_sse
            # removes it again since this client did not ask for it.
            payload["stream_options"] = {"include_usage": True}
            rewrite = drop_usage = True
        if rewrite:
            body = json.dumps(payload, separators=(",", ":")).encode()

        base = upstream.base_url
        if chosen.provider == "anthropic":
            url = f"{base}/v1{subpath}" if not base.endswith("/v1") else f"{base}{subpath}"
        else:
            url = base + subpath
        if request.url.query:
            url += "?" + request.url.query
        headers = {k: v for k, v in request.headers.items() if k not in _DROP_REQUEST}
        headers["accept-encoding"] = "identity"  # relay bytes as they come, no re-encoding
        if chosen.provider == "anthropic":
            headers["x-api-key"] = upstream.api_key
            headers.setdefault("anthropic-version", "2023-06-01")
            if not subpath.startswith(("/messages", "/complete")):
                headers["authorization"] = f"Bearer {upstream.api_key}"
        else:
            headers["authorization"] = f"Bearer {upstream.api_key}"

        try:
            upstream_request = self.http.build_request(request.method, url, headers=headers, content=body or None)
            resp = await self.http.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            return fail(http_status(UPSTREAM_ERROR), f"{chosen.provider} upstream unreachable at {base}: {exc!r}", "api_error", retry=True)

        out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _DROP_RESPONSE}
        usage = Usage()
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            entry["stream"] = True
            return StreamingResponse(
                self._stream(resp, usage, drop_usage, finish, started, entry),
                status_code=resp.status_code,
                headers=out_headers,
            )
        try:
            content = await resp.aread()
        except httpx.HTTPError as exc:
            return fail(http_status(UPSTREAM_ERROR), f"{chosen.provider} upstream failed mid-response: {exc!r}", "api_error", retry=True)
        finally:
            await resp.aclose()
        usage.absorb_json(content)
        error = None if resp.status_code < 400 else content[:300].decode("utf-8", "replace")
        finish(resp.status_code, error, usage)
        return Response(content, status_code=resp.status_code, headers=out_headers)

    async def _stream(
        self, resp: httpx.Response, usage: Usage, drop_usage: bool, finish: Any, started: float, entry: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        error: str | None = None
        try:
            async for event in relay_sse(resp.aiter_raw(), usage, drop_usage):
                if "ttfbMs" not in entry:
                    entry["ttfbMs"] = round((time.perf_counter() - started) * 1000, 2)
                yield event
        except httpx.HTTPError as exc:
            error = f"upstream stream broke: {exc!r}"
        except asyncio.CancelledError:
            error = "client went away"
            raise
        finally:
            await resp.aclose()
            finish(resp.status_code, error, usage)
