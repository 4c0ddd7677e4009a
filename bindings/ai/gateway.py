"""The AI gateway: one `/v1` base speaking the OpenAI and Anthropic APIs, routed by model name.

It authenticates callers with project-scoped tokens (bindings/ai/tokens.py), swaps them for the real
provider key (bindings/ai/credentials.py), relays the response (server-sent events as each event
completes, never the whole stream) and logs one line per call (bindings/ai/calllog.py). It is its own
ASGI app on its own listeners (loopback and the Podman bridge address), apart from the worker server.

Besides the providers over HTTP, a call may be answered by the `local` scripted model
(bindings/ai/local_model.py) or, in replay mode, from a recording (bindings/ai/recording.py); in record
mode every answered call is also appended to the recording. Sandboxes get the gateway's credentials only
while you are signed in (a provider configured, or a recording to replay): see `sandbox_env`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route as StarletteRoute

from bindings.ai.calllog import CallLog, log_path
from bindings.ai.credentials import LOCAL, NOT_SIGNED_IN, CredentialsWatch, NotConfigured
from bindings.ai.embedded_server import EmbeddedServer
from bindings.ai.exchange import Answer, paced, wait_until
from bindings.ai.local_model import LocalModel, RulesError
from bindings.ai.network import listen_socket
from bindings.ai.recording import Call, Recorder, Replayer, ReplayMiss, normalise, upstream_model
from bindings.ai.routing import RouteError, route
from bindings.ai.tokens import TokenSigner, Verdict, load_or_create_secret
from bindings.ai.usage import Usage, relay_sse
from bindings.context import BindingContext
from bindings.error_codes import INVALID_ARGUMENT, UNAUTHORIZED, http_status
from bindings.podman.bridge import podman_bridge

DEFAULT_TTL_S = 6 * 3600.0  # long enough for agent runs of many minutes; PLOY_AI_TOKEN_TTL overrides
SIGN_IN_POLL_S = 1.0  # how often the gateway looks for a `ploy login` to say so (calls see it at once)
_DROP_REQUEST = {
    "host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade",
    "authorization", "x-api-key", "api-key", "accept-encoding", "cookie", "proxy-authorization",
}  # fmt: skip
_DROP_RESPONSE = {
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "set-cookie",
}


# Appends one answered call to the recording: (status, headers, whole body, or stream events, usage).
Record = Callable[
    [int, Mapping[str, str], bytes | None, list[tuple[float, bytes]] | None, tuple[int | None, int | None]],
    None,
]


def _recording(recorder: Recorder, call: Call, client_model: str | None, by_default: bool, request: Any,
               started: float) -> Record:  # fmt: skip
    def record(status: int, headers: Mapping[str, str], body: bytes | None, events: list[tuple[float, bytes]] | None,
               usage: tuple[int | None, int | None]) -> None:  # fmt: skip
        ms = (time.perf_counter() - started) * 1000
        recorder.add(call, client_model, by_default, request, status, dict(headers), body, events, ms, usage)

    return record


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
    def __init__(
        self, ctx: BindingContext, signer: TokenSigner, ttl_s: float, environ: Mapping[str, str] | None
    ) -> None:
        self.ctx = ctx
        self.ttl_s = ttl_s
        self._signer = signer
        self.credentials = CredentialsWatch(environ)
        self._cached_token: tuple[str, float] | None = None
        self.calllog = CallLog(log_path(ctx.project_state))
        self.log = ctx.logger("ai")
        self.local = LocalModel(ctx.project_root)
        self.recorder: Recorder | None = None
        self.replayer: Replayer | None = None
        self._signed_in_said: bool | None = None  # what was last said about signing in
        self._watch_task: asyncio.Task[None] | None = None
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
        gateway.credentials.current()
        gateway._server = EmbeddedServer(gateway.app, sockets)
        await gateway._server.start()
        gateway._watch_task = asyncio.create_task(gateway._watch_sign_in(), name="ploy-ai-sign-in")
        return gateway

    async def configure(self, record: Path | None, replay: Path | None, replay_speed: float = 1.0) -> bool:
        """Switch to recording to `record`, replaying `replay` (at `replay_speed`), or neither. A broken
        recording raises ConfigError and changes nothing. Returns whether the mode changed."""
        before = (self.recorder.path if self.recorder else None, self.replayer.path if self.replayer else None,
                  self.replayer.speed if self.replayer else None)  # fmt: skip
        if before == (record, replay, replay_speed if replay else None):
            return False
        replayer = await asyncio.to_thread(Replayer, replay, replay_speed) if replay is not None else None
        self.replayer = replayer
        self.recorder = Recorder(record) if record is not None else None
        return True

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
        if self._watch_task is not None:
            self._watch_task.cancel()
            self._watch_task = None
        if self.recorder is not None and self.recorder.count:
            self.log.info(f"recorded {self.recorder.count} call(s) to {self.recorder.path}")
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

    def signed_in(self) -> bool:
        """The docs' rule: sandboxes get credentials once you are signed in (`ploy login`, a provider key
        in the environment), and a recording to replay counts as signed in."""
        return self.replayer is not None or self.credentials.current().signed_in

    def sandbox_env(self) -> dict[str, str]:
        """The variables every sandbox of the project gets: none until you are signed in."""
        if not self.signed_in():
            return {}
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

    # -- saying what is going on -----------------------------------------------------------------

    def announce(self) -> None:
        """The mode and the sign-in state, for `ploy dev`'s output (at start, and when the mode changes)."""
        if self.replayer is not None:
            r = self.replayer
            pace = (
                "at once"
                if r.speed == 0
                else "at the recorded pace"
                if r.speed == 1
                else f"at {r.speed:g}x the recorded pace"
            )
            self.log.info(
                f"replaying {len(r.calls)} recorded call(s) from {r.path} ({pace}); no provider is called"
            )
        elif self.recorder is not None:
            self.log.info(f"recording every call to {self.recorder.path}")
        self._signed_in_said = self.signed_in()
        if not self._signed_in_said:
            self.log.warning(NOT_SIGNED_IN)
        if self.credentials.problem:
            self.log.warning(self.credentials.problem)

    def sandbox_opened(self, binding: str, sandbox_id: str) -> None:
        """A sandbox is used for the first time: without sign-in it has no AI credentials, so say so."""
        if not self.signed_in():
            self.log.warning(f"sandbox {sandbox_id!r} ({binding}) gets no AI credentials: {NOT_SIGNED_IN}")

    async def _watch_sign_in(self) -> None:
        """Say when a `ploy login` (or a logout) changed what sandboxes get; calls see it at once anyway."""
        while True:
            await asyncio.sleep(SIGN_IN_POLL_S)
            now = self.signed_in()
            if self._signed_in_said is None or now == self._signed_in_said:
                continue
            self._signed_in_said = now
            if now:
                providers = ", ".join(sorted(self.credentials.current().upstreams))
                self.log.info(
                    f"signed in ({providers}): sandboxes get the gateway's credentials from their next call"
                )
            else:
                self.log.warning(
                    f"signed out: sandboxes get no AI credentials from their next call; {NOT_SIGNED_IN}"
                )

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
            return fail(
                401,
                "missing ploy AI gateway token (send it as a Bearer token or x-api-key)",
                "authentication_error",
            )
        if verdict is Verdict.INVALID:
            return fail(http_status(UNAUTHORIZED), "invalid ploy AI gateway token", "authentication_error")
        if verdict is Verdict.EXPIRED:
            return fail(
                401, "expired ploy AI gateway token: get a fresh one (PLOY_AI_TOKEN)", "authentication_error"
            )
        if verdict is Verdict.WRONG_PROJECT:
            return fail(
                403,
                f"this token belongs to another project, not {self.ctx.project_name!r}",
                "permission_error",
            )

        body = await request.body()
        payload: Any = None
        if body and request.method == "POST":
            try:
                payload = json.loads(body)
            except ValueError:
                return fail(
                    http_status(INVALID_ARGUMENT), "request body is not valid JSON", "invalid_request_error"
                )
        model = payload.get("model") if isinstance(payload, dict) else None
        entry["model"] = model if isinstance(model, str) else None
        credentials = self.credentials.current()
        replayer, recorder = self.replayer, self.recorder
        if replayer is None and not credentials.signed_in:
            return fail(503, NOT_SIGNED_IN, "ploy_ai_not_configured")
        default = credentials.default_provider
        if replayer is not None:
            try:
                replayer.refresh()
            except Exception as exc:  # noqa: BLE001 - a broken recording is this call's answer, not a crash
                return fail(503, f"cannot replay: {exc}", "ploy_ai_not_configured")
            default = replayer.recorded_default or default
        try:
            chosen = route(subpath, entry["model"], default, anthropic_client)
            upstream = None if replayer is not None else credentials.upstream(chosen.provider)
        except RouteError as exc:
            return fail(http_status(exc.code), exc.message, "invalid_request_error")
        except NotConfigured as exc:
            entry["provider"] = exc.details.get("provider")
            return fail(http_status(exc.code), exc.message, "ploy_ai_not_configured")
        entry["provider"] = chosen.provider
        if chosen.model is not None and subpath.startswith("/models/"):
            subpath = "/models/" + chosen.model

        call: Call | None = None
        if replayer is not None or recorder is not None:
            endpoint = subpath + ("?" + request.url.query if request.url.query else "")
            call = Call(
                chosen.provider, request.method, endpoint, upstream_model(entry["model"]), normalise(payload)
            )
        if replayer is not None:
            assert call is not None
            entry["mode"] = "replay"
            try:
                recorded = replayer.answer(call)
            except ReplayMiss as exc:
                self.log.warning(f"replay: {exc}")
                return fail(404, str(exc), "ploy_replay_miss")
            return await self._send(recorded.answer(), started, replayer.speed, finish, entry)
        assert upstream is not None
        record: Record | None = None
        if recorder is not None and call is not None:
            entry["mode"] = "record"
            recorder.secrets = [u.api_key for u in credentials.upstreams.values() if u.api_key]
            request_body = json.loads(body) if payload is not None else None
            record = _recording(recorder, call, entry["model"], chosen.by_default, request_body, started)
        if chosen.provider == LOCAL:
            try:
                answer = self.local.answer(
                    request.method, subpath, payload, chosen.model, upstream.rules, anthropic_client
                )
            except RulesError as exc:
                self.log.warning(f"local model: {exc}")
                return fail(503, str(exc), "ploy_ai_not_configured")
            if record is not None:
                record(answer.status, answer.headers, answer.body, answer.events, answer.usage)
            return await self._send(answer, started, 0, finish, entry)

        rewrite = False
        if chosen.renamed and isinstance(payload, dict):
            payload["model"] = chosen.model
            rewrite = True
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
            upstream_request = self.http.build_request(
                request.method, url, headers=headers, content=body or None
            )
            resp = await self.http.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            return fail(
                502, f"{chosen.provider} upstream unreachable at {base}: {exc!r}", "api_error", retry=True
            )

        out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _DROP_RESPONSE}
        usage = Usage()
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            entry["stream"] = True
            return StreamingResponse(
                self._stream(resp, usage, drop_usage, finish, started, entry, record),
                status_code=resp.status_code,
                headers=out_headers,
            )
        try:
            content = await resp.aread()
        except httpx.HTTPError as exc:
            return fail(
                502, f"{chosen.provider} upstream failed mid-response: {exc!r}", "api_error", retry=True
            )
        finally:
            await resp.aclose()
        usage.absorb_json(content)
        error = None if resp.status_code < 400 else content[:300].decode("utf-8", "replace")
        finish(resp.status_code, error, usage)
        if record is not None:
            record(resp.status_code, out_headers, content, None, (usage.input_tokens, usage.output_tokens))
        return Response(content, status_code=resp.status_code, headers=out_headers)

    async def _send(
        self, answer: Answer, started: float, speed: float, finish: Any, entry: dict[str, Any]
    ) -> Response:
        """An answer made here (the local model, a replay) as the response, paced by `speed`."""
        usage = Usage(*answer.usage)
        if answer.events is None:
            await wait_until(answer.ms, started, speed)
            finish(answer.status, answer.error, usage)
            return Response(answer.body, status_code=answer.status, headers=answer.headers)
        entry["stream"] = True
        events = answer.events

        async def body() -> AsyncIterator[bytes]:
            error: str | None = None
            try:
                async for chunk in paced(events, started, speed):
                    if "ttfbMs" not in entry:
                        entry["ttfbMs"] = round((time.perf_counter() - started) * 1000, 2)
                    yield chunk
            except asyncio.CancelledError:
                error = "client went away"
                raise
            finally:
                finish(answer.status, error, usage)

        return StreamingResponse(body(), status_code=answer.status, headers=answer.headers)

    async def _stream(
        self, resp: httpx.Response, usage: Usage, drop_usage: bool, finish: Any, started: float, entry: dict[str, Any],
        record: Record | None = None,
    ) -> AsyncIterator[bytes]:  # fmt: skip
        error: str | None = None
        events: list[tuple[float, bytes]] = []
        try:
            async for block in relay_sse(resp.aiter_raw(), usage, drop_usage):
                ms = (time.perf_counter() - started) * 1000
                if "ttfbMs" not in entry:
                    entry["ttfbMs"] = round(ms, 2)
                if record is not None:
                    events.extend((ms, e + b"\n\n") for e in block.split(b"\n\n")[:-1])
                    if not block.endswith(b"\n\n"):  # an unterminated last piece, kept as it came
                        events.append((ms, block.rsplit(b"\n\n", 1)[-1]))
                yield block
        except httpx.HTTPError as exc:
            error = f"upstream stream broke: {exc!r}"
        except asyncio.CancelledError:
            error = "client went away"
            raise
        finally:
            await resp.aclose()
            finish(resp.status_code, error, usage)
            if record is not None:
                if error is None:
                    record(
                        resp.status_code,
                        dict(resp.headers),
                        None,
                        events,
                        (usage.input_tokens, usage.output_tokens),
                    )
                else:
                    self.log.info(f"a call was not recorded: {error}")
