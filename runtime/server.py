"""`ploy dev`: serves one project's worker over HTTP, reloading it when its files change.

A raw ASGI app under uvicorn rather than Starlette routing: there is exactly one route (everything goes to
the worker), and skipping the router keeps the hot path short (see bench/hello.py). uvicorn runs it with
its httptools protocol, writes batched per loop turn (runtime/protocol.py).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindings.context import BindingContext
from bindings.plugin import Service
from bindings.web import WebSocketClosed
from runtime.config import ConfigError, ProjectConfig, load_config
from runtime.entry import Entry, EntryError, resolve_entry
from runtime.env import WorkerEnv, build_env
from runtime.error_page import error_response
from runtime.http import Headers, Request, Response
from runtime.log import log, route_loggers
from runtime.plugins import plugins
from runtime.protocol import BatchingHttpToolsProtocol
from runtime.reload import Watcher
from runtime.watchdog import Watchdog
from runtime.workers.base import Limits, Worker, WorkerError


class PortInUse(Exception):
    pass


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so; without it a streamed
    # response's small writes wait ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is already in use: stop the other server or pass --port"
            ) from None
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class Generation:
    """One loaded version of the worker. Requests in flight finish on the generation they started on."""

    worker: Worker
    env: WorkerEnv
    entry: Entry
    inflight: int = 0
    retired: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def retire(self, close_env: bool) -> None:
        self.retired = True
        if self.inflight:
            await self.idle.wait()
        await self.worker.close()
        if close_env:
            await self.env.close()


async def load_worker(cfg: ProjectConfig, entry: Entry, env: WorkerEnv) -> Worker:
    if entry.language == "python":
        from runtime.workers.python_worker import PythonWorker

        return PythonWorker.load(entry.path, env.values, cfg.root)
    from runtime.workers.js_worker import JsWorker

    return await JsWorker.load(entry.path, env.values, cfg.limits, log)


class DevServer:
    def __init__(self, project: Path, host: str, port: int, args: argparse.Namespace | None = None) -> None:
        self.project, self.host, self.port = project, host, port
        self.args = args  # the `ploy dev` flags; plugins fold theirs into their options (Plugin.dev_options)
        self.cfg: ProjectConfig | None = None
        self.current: Generation | None = None
        self.services: dict[str, Service | None] = {}  # plugin field -> its running service
        self._reload_lock = asyncio.Lock()

    # -- loading -------------------------------------------------------------------------------------
    def _load_config(self) -> ProjectConfig:
        cfg = load_config(self.project)
        if self.args is not None:
            for plugin in plugins():
                options = plugin.dev_options(cfg.sections.get(plugin.field), self.args, cfg.path)
                if options is not None:
                    cfg.sections[plugin.field] = options
        return cfg

    async def _sync_services(self, cfg: ProjectConfig) -> None:
        """Start, keep or stop each plugin's long-lived service (the AI gateway) for this config."""
        ctx = BindingContext.for_project(cfg.root, cfg.name)
        for plugin in plugins():
            running = self.services.get(plugin.field)
            options = cfg.sections.get(plugin.field)
            self.services[plugin.field] = await plugin.service(ctx, options, running)

    async def start(self) -> None:
        self.cfg = self._load_config()
        await self._sync_services(self.cfg)
        env = await build_env(self.cfg, self.services, self.dev_host)
        try:
            entry = await resolve_entry(self.cfg)
            log(entry.how)
            worker = await load_worker(self.cfg, entry, env)
        except BaseException:
            await env.close()
            raise
        self.current = Generation(worker, env, entry)
        described = [
            text
            for p in plugins()
            if p.field in self.cfg.sections and (text := p.describe(self.cfg.sections[p.field]))
        ]
        if described:
            log(f"bindings: {', '.join(described)}")

    async def reload(self, changed: set[Path]) -> None:
        """Load the new version beside the old; swap only if it loads, so a broken edit keeps serving."""
        async with self._reload_lock:
            assert self.cfg is not None and self.current is not None
            old = self.current
            config_changed = self.cfg.path in changed or any(p.name in (".dev.vars", ".env") for p in changed)
            try:
                cfg = self._load_config() if config_changed else self.cfg
                if config_changed:
                    await self._sync_services(cfg)
                env = await build_env(cfg, self.services, self.dev_host) if config_changed else old.env
                try:
                    entry = await resolve_entry(cfg)
                    worker = await load_worker(cfg, entry, env)
                except BaseException:
                    if env is not old.env:
                        await env.close()
                    raise
            except (ConfigError, EntryError, WorkerError) as e:
                detail = e.stack if isinstance(e, WorkerError) else str(e)
                log(f"reload failed, still serving the previous version:\n{detail}")
                return
            self.cfg, self.current = cfg, Generation(worker, env, entry)
            names = ", ".join(sorted(p.name for p in changed))[:200]
            log(f"reloaded ({names})")
            asyncio.ensure_future(old.retire(close_env=env is not old.env))

    async def close(self) -> None:
        if self.current:
            await self.current.retire(close_env=True)
        for service in self.services.values():
            if service is not None:
                await service.close()
        self.services.clear()

    @property
    def dev_host(self) -> str:
        """host:port preview URLs are made under: `*.localhost` resolves to loopback in browsers and curl."""
        return f"localhost:{self.port}"

    def watched(self) -> set[Path]:
        assert self.current is not None and self.cfg is not None
        return set(self.current.entry.watch) | {self.cfg.path}

    # -- serving -------------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self.serve_websocket(scope, receive, send)
            return
        gen = self.current
        assert gen is not None
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        request = _to_request(scope)
        if method != "GET" and method != "HEAD":
            request._body = await _read_body(receive)
        gen.inflight += 1
        status = 500
        try:
            try:
                response = await gen.worker.fetch(request, f"[{method} {path}]")
            except WorkerError as e:
                log(e.log_line or f"[{method} {path}] uncaught error:\n{e.stack}")
                response = error_response(str(e), e.stack, request.headers.get("accept"))
            except Exception as e:  # a bug in ploy itself must not take the server down either
                import traceback

                stack = traceback.format_exc()
                log(f"[{method} {path}] internal error:\n{stack}")
                response = error_response(f"{type(e).__name__}: {e}", stack, request.headers.get("accept"))
            status = response.status
            await _send_response(response, send, receive, method == "HEAD", f"[{method} {path}]")
        finally:
            gen.inflight -= 1
            if gen.retired and gen.inflight == 0:
                gen.idle.set()
            ms = (time.perf_counter() - started) * 1000
            log(f"{method} {path} {status} {ms:.1f}ms")

    async def serve_websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A WebSocket upgrade reaches the worker as a GET with its Upgrade headers (as on Cloudflare);
        the webSocket of a 101 response is then bridged to the client, any other response is sent as
        the answer to the upgrade. The generation stays in use while the socket is open."""
        gen = self.current
        assert gen is not None
        started = time.perf_counter()
        path = scope["path"]
        request = _websocket_request(scope)
        gen.inflight += 1
        status = 500
        try:
            try:
                response = await gen.worker.fetch(request, f"[GET {path}]")
            except WorkerError as e:
                log(f"[GET {path}] uncaught error:\n{e.stack}")
                response = error_response(str(e), e.stack, request.headers.get("accept"))
            except Exception as e:  # a bug in ploy must not take the server down
                import traceback

                stack = traceback.format_exc()
                log(f"[GET {path}] internal error:\n{stack}")
                response = error_response(f"{type(e).__name__}: {e}", stack, request.headers.get("accept"))
            status = response.status
            log(f"GET {path} {status} {(time.perf_counter() - started) * 1000:.1f}ms")
            if response.webSocket is not None and status == 101:
                await bridge_websocket(response, receive, send)
            else:
                await _refuse_websocket(response, scope, send)
        finally:
            gen.inflight -= 1
            if gen.retired and gen.inflight == 0:
                gen.idle.set()


def _websocket_request(scope: dict[str, Any]) -> Request:
    headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
    host = headers.get("host") or f"{scope['server'][0]}:{scope['server'][1]}"
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    url = f"{scheme}://{host}{scope.get('raw_path', scope['path'].encode()).decode('latin-1')}"
    if scope.get("query_string"):
        url += "?" + scope["query_string"].decode("latin-1")
    return Request(url, "GET", headers, None)


# Close codes an endpoint may send (RFC 6455 7.4): 1005/1006 only report what happened.
def _sendable_code(code: int | None) -> int:
    if code is None or code in (1004, 1005, 1006, 1015) or not (1000 <= code <= 4999):
        return 1000
    return code


async def bridge_websocket(response: Response, receive: Any, send: Any) -> None:
    """Relays messages both ways between the client's connection and the response's WebSocket end
    until either closes. Each direction waits for the other side to take what it was given, so memory
    stays bounded (bindings/web.py)."""
    end = response.webSocket
    assert end is not None
    subprotocol = response.headers.get("sec-websocket-protocol")
    extra = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers.items()
        if k
        not in ("sec-websocket-protocol", "sec-websocket-accept", "upgrade", "connection", "content-length")
    ]
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": extra})
    if not end.accepted:
        end.accept()

    async def inbound() -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                data = message.get("text")
                try:
                    await end.send(data if data is not None else message.get("bytes") or b"")
                except WebSocketClosed:
                    return
            elif kind == "websocket.disconnect":
                await end.close(message.get("code") or 1005, message.get("reason") or "")
                return

    client = asyncio.ensure_future(inbound())
    try:
        async for message in end:
            if client.done():
                break
            if isinstance(message, str):
                await send({"type": "websocket.send", "text": message})
            else:
                await send({"type": "websocket.send", "bytes": bytes(message)})
        if not client.done():
            await send(
                {
                    "type": "websocket.close",
                    "code": _sendable_code(end.close_code),
                    "reason": end.close_reason,
                }
            )
    except OSError:
        pass  # the client went away mid-send (uvicorn's ClientDisconnected is one)
    finally:
        if not client.done():
            client.cancel()
        await end.close(1001, "the client went away")


async def _refuse_websocket(response: Response, scope: dict[str, Any], send: Any) -> None:
    """The worker answered the upgrade with a plain response: the client gets it as the HTTP answer."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    await send({"type": "websocket.http.response.start", "status": response.status, "headers": headers})
    body = response._body
    if body is None or isinstance(body, (bytes, bytearray, str)):
        data = body.encode() if isinstance(body, str) else bytes(body or b"")
        await send({"type": "websocket.http.response.body", "body": data})
        return
    iterator = body.__aiter__()
    try:
        async for chunk in iterator:
            await send({"type": "websocket.http.response.body", "body": bytes(chunk), "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b""})
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _to_request(scope: dict[str, Any]) -> Request:
    """The request without its body (_read_body's, awaited only when there can be one)."""
    headers = Headers.__new__(Headers)  # Headers.append's work in one comprehension
    headers._items = [(k.decode("latin-1").lower(), v.decode("latin-1").strip()) for k, v in scope["headers"]]
    host = headers.get("host") or f"{scope['server'][0]}:{scope['server'][1]}"
    url = f"{scope.get('scheme', 'http')}://{host}{scope.get('raw_path', scope['path'].encode()).decode('latin-1')}"
    if scope.get("query_string"):
        url += "?" + scope["query_string"].decode("latin-1")
    return Request(url, scope["method"], headers, None)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


class AbortResponse(Exception):
    """Raised into uvicorn to drop the connection when a streamed body fails after its headers were sent."""


class _QuietAbort(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], AbortResponse))


async def _send_response(response: Response, send: Any, receive: Any, head: bool, log_prefix: str) -> None:
    body = response._body
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    if isinstance(body, (bytes, bytearray, str)) or body is None:
        data = body.encode() if isinstance(body, str) else bytes(body or b"")
        if not response.headers.has("content-length"):
            headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else data})
        return
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    iterator = body.__aiter__()
    disconnected = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        while True:
            next_chunk = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({next_chunk, disconnected}, return_when=asyncio.FIRST_COMPLETED)
            if next_chunk not in done:  # the client went away: stop producing
                next_chunk.cancel()
                break
            try:
                chunk = next_chunk.result()
            except StopAsyncIteration:
                await send({"type": "http.response.body", "body": b""})
                break
            except Exception as e:
                # Headers are gone already: all we can do is say why and cut the connection, so the client
                # sees a failed transfer instead of a silently truncated body.
                stack = e.stack if isinstance(e, WorkerError) else f"{type(e).__name__}: {e}"
                log(f"{log_prefix} the response body stream failed:\n{stack}")
                raise AbortResponse() from None
            if chunk and not head:
                await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
    finally:
        disconnected.cancel()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:
                pass


async def _wait_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def serve(project: Path, host: str, port: int, args: argparse.Namespace | None = None) -> int:
    import uvicorn

    route_loggers()
    sock = bind_socket(host, port)
    server = DevServer(project, host, sock.getsockname()[1], args)
    uv: Any = None
    # Before the worker first loads: its import is guarded too
    watchdog = Watchdog(
        log,
        lambda: (server.cfg.limits.cpu_ms if server.cfg else Limits().cpu_ms) / 1000,
        lambda: bool(uv is not None and uv.should_exit),
    )
    watchdog.start(asyncio.get_running_loop())
    try:
        await server.start()
    except BaseException:
        watchdog.stop()
        raise
    watcher = Watcher(server.project, server.watched, server.reload)
    watcher.start()
    config = uvicorn.Config(
        server,
        http=BatchingHttpToolsProtocol,
        # WebSockets (serve_websocket) with the `websockets` library's sans-I/O protocol; no
        # per-message deflate: on a dev server's loopback it saves nothing, and each compressing
        # socket would hold ~300 KB of zlib state (1,000 idle sockets: bench/websocket_bench.py)
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_config=None,  # its records go to ploy's one sink (route_loggers), not to a format of its own
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        server_header=False,
        proxy_headers=False,  # a dev server faces the developer, not a proxy; saves a middleware per request
    )
    uv = uvicorn.Server(config)
    logging.getLogger("uvicorn.error").addFilter(_QuietAbort())
    log(f"ploy dev: serving {project} at http://{host}:{server.port}")
    # uvicorn re-raises the signal that stopped it once it has shut down; with SIGTERM's default action
    # that killed the process before the cleanup below (warm-pool containers, the AI gateway) ran
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        await uv.serve(sockets=[sock])
    finally:
        await watcher.stop()
        await server.close()
        watchdog.stop()
    return 0
