"""The objects workers get: SandboxBinding (env.SANDBOX), SandboxClient (one id), SandboxSession.

Calling convention is the JS one: positional arguments as in the docs, then the options object as a
dict; keyword arguments are accepted too (snake_case or camelCase) and merged into the options.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import re
from collections.abc import AsyncIterator
from typing import Any

from bindings.context import BindingContext
from bindings.error_codes import PORT_UNREACHABLE, PROCESS_EXITED_BEFORE_READY, SANDBOX_DESTROYED, TIMEOUT
from bindings.errors import InvalidArgument, PloyError
from bindings.sandbox.agent import wire
from bindings.sandbox.manager import SandboxManager
from bindings.sandbox.options import SandboxOptions
from bindings.sandbox.preview import check_port
from bindings.sandbox.spec import SANDBOX_BINDING, SANDBOX_CLIENT, SANDBOX_PROCESS, SANDBOX_SESSION
from bindings.sandbox.state import validate_id
from bindings.sandbox.terminal import TerminalSocket
from bindings.web import RequestLike, WebResponse, is_websocket_upgrade


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _opts(options: Any, kw: dict[str, Any]) -> dict[str, Any]:
    if options is None:
        out: dict[str, Any] = {}
    elif isinstance(options, dict):
        out = dict(options)
    else:
        raise InvalidArgument(f"options must be an object, got {type(options).__name__}")
    out.update({_camel(k): v for k, v in kw.items()})
    return {k: v for k, v in out.items() if v is not None}


def _content_bytes(content: Any, encoding: str | None) -> bytes:
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    if isinstance(content, str):
        if encoding == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except ValueError as exc:
                raise InvalidArgument(f"content is not valid base64: {exc}") from None
        return content.encode("utf-8")
    raise InvalidArgument(f"content must be a string or bytes, got {type(content).__name__}")


async def _payloads(frames: AsyncIterator[tuple[bytes, bytes]]) -> AsyncIterator[bytes]:
    try:
        async for kind, data in frames:
            if kind != b"J" and data:
                yield data
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


class _Commands:
    """The methods a sandbox client and a session share; `_session` scopes them to a session."""

    _mgr: SandboxManager
    _sandbox_id: str
    _session: str | None = None

    def _check(self) -> None:
        pass

    def _request(self, op: wire.Op, fields: dict[str, Any]) -> dict[str, Any]:
        self._check()
        request = {"op": op.name, **fields}
        if self._session is not None:
            request["session"] = self._session
        return request

    async def _call(
        self, op: wire.Op, fields: dict[str, Any], upload: bytes | None = None
    ) -> tuple[Any, dict[bytes, bytearray]]:
        return await self._mgr.call(self._sandbox_id, self._request(op, fields), upload)

    async def _result(self, op: wire.Op, **fields: Any) -> Any:
        result, _ = await self._call(op, fields)
        return result

    async def _stream(self, op: wire.Op, fields: dict[str, Any]) -> AsyncIterator[bytes]:
        return _payloads(await self._mgr.stream(self._sandbox_id, self._request(op, fields)))

    @staticmethod
    def _command(command: Any) -> str:
        if not isinstance(command, str) or not command.strip():
            raise InvalidArgument("command must be a non-empty string")
        return command

    async def exec(self, command: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        o = _opts(options, kw)
        return await self._result(wire.EXEC, command=self._command(command), **o)

    async def execStream(
        self, command: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:  # noqa: N802
        o = _opts(options, kw)
        return await self._stream(wire.EXEC_STREAM, {"command": self._command(command), **o})

    async def writeFile(
        self, path: str, content: Any, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        o = _opts(options, kw)
        data = _content_bytes(content, o.get("encoding"))
        result, _ = await self._call(wire.WRITE_FILE, {"path": path}, upload=data)
        return result

    async def readFile(self, path: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        o = _opts(options, kw)
        encoding = str(o.get("encoding") or "utf-8").lower()
        result, data = await self._call(wire.READ_FILE, {"path": path})
        raw = bytes(data.get(b"D", b""))
        content: str | bytes
        if encoding == "base64":
            content = base64.b64encode(raw).decode()
        elif encoding in ("binary", "bytes", "buffer", "uint8array"):
            content = raw
        elif encoding in ("utf-8", "utf8", "text"):
            content = raw.decode("utf-8", errors="replace")
            encoding = "utf-8"
        else:
            raise InvalidArgument(f"unknown encoding {encoding!r}: use utf-8, base64 or binary")
        return {"content": content, "encoding": encoding, "path": result["path"], "size": len(raw)}

    async def deleteFile(self, path: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        return await self._result(wire.DELETE_FILE, path=path, **_opts(options, kw))

    async def mkdir(self, path: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return await self._result(wire.MKDIR, path=path, **_opts(options, kw))

    async def listFiles(
        self, path: str = ".", options: dict[str, Any] | None = None, **kw: Any
    ) -> list[dict[str, Any]]:  # noqa: N802
        return await self._result(wire.LIST_FILES, path=path, **_opts(options, kw))

    async def gitCheckout(
        self, repoUrl: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802, N803
        return await self._result(wire.GIT_CHECKOUT, repoUrl=repoUrl, **_opts(options, kw))

    async def setEnvVars(self, vars: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802, A002
        merged = dict(vars or {})
        merged.update(kw)
        return await self._result(wire.SET_ENV_VARS, vars=merged)

    async def startProcess(
        self, command: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> SandboxProcess:  # noqa: N802
        o = _opts(options, kw)
        return SandboxProcess(
            self, await self._result(wire.START_PROCESS, command=self._command(command), **o)
        )

    async def listProcesses(self) -> list[SandboxProcess]:  # noqa: N802
        return [SandboxProcess(self, p) for p in await self._result(wire.LIST_PROCESSES)]

    async def getProcess(self, id: str | None) -> SandboxProcess | None:  # noqa: N802, A002
        record = await self._result(wire.GET_PROCESS, id=id)
        return None if record is None else SandboxProcess(self, record)

    async def getProcessLogs(self, id: str) -> dict[str, Any]:  # noqa: N802, A002
        _, data = await self._call(wire.GET_PROCESS_LOGS, {"id": id})
        return {"logs": bytes(data.get(b"D", b"")).decode("utf-8", errors="replace")}

    async def streamProcessLogs(self, id: str) -> AsyncIterator[bytes]:  # noqa: N802, A002
        return await self._stream(wire.STREAM_PROCESS_LOGS, {"id": id})

    async def killProcess(self, id: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802, A002
        return await self._result(wire.KILL_PROCESS, id=id, **_opts(options, kw))

    async def terminal(
        self, request: RequestLike, options: dict[str, Any] | None = None, **kw: Any
    ) -> WebResponse:
        """A 101 response whose WebSocket is an interactive shell in the sandbox (terminal.py's protocol)."""
        if not is_websocket_upgrade(request):
            raise InvalidArgument("terminal() needs a WebSocket upgrade request (header Upgrade: websocket)")
        o = _opts(options, kw)
        duplex = await self._mgr.duplex(self._sandbox_id, self._request(wire.TERMINAL, o))
        return WebResponse(101, [], None, TerminalSocket(duplex))


def _timeout_option(options: Any, kw: dict[str, Any], what: str) -> dict[str, Any]:
    """Cloudflare passes a bare number of milliseconds; the docs' style is {timeoutMs}."""
    if isinstance(options, (int, float)) and not isinstance(options, bool):
        options = {"timeoutMs": options}
    o = _opts(options, kw)
    if "timeout" in o and "timeoutMs" not in o:
        o["timeoutMs"] = o.pop("timeout")
    ms = o.get("timeoutMs")
    if ms is not None and (isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0):
        raise InvalidArgument(f"{what}: timeoutMs must be a non-negative number, got {ms!r}")
    return o


class SandboxProcess(dict[str, Any]):
    """What startProcess/getProcess give: the process's record (a dict: json.dumps and Response.json give
    the same JSON as before; also readable as attributes, `proc.id`) plus methods to wait on it.

    The record is a snapshot of when it was fetched; getStatus() and waitForExit() ask again."""

    __ploy_spec__ = SANDBOX_PROCESS

    def __init__(self, commands: _Commands, record: dict[str, Any]) -> None:
        super().__init__(record)
        # process ops are the sandbox's, whatever session started it (the session may be gone)
        self._commands = commands._client if isinstance(commands, SandboxSession) else commands

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    async def waitForPort(
        self, port: int, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        """Resolves once `port` accepts connections (`mode: "tcp"`), or answers `path` (default "/") with
        `status` (default 200-399); PROCESS_EXITED_BEFORE_READY if the process ends first, TIMEOUT after
        `timeoutMs`."""
        o = _timeout_option(options, kw, "waitForPort")
        if "interval" in o and "intervalMs" not in o:
            o["intervalMs"] = o.pop("interval")
        fields = {k: v for k, v in o.items() if k in wire.WAIT_FOR_PORT.fields}
        return await self._commands._result(
            wire.WAIT_FOR_PORT, port=check_port(port), processId=self["id"], **fields
        )

    async def waitForLog(
        self, pattern: str | re.Pattern[str], options: Any = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        """Resolves with {line} (and {match}: the groups, for a pattern) for the first log line, from the
        start of the log, that contains `pattern` (a string) or matches it (a compiled pattern)."""
        o = _timeout_option(options, kw, "waitForLog")
        if isinstance(pattern, str):
            if not pattern:
                raise InvalidArgument("waitForLog: pattern must be a non-empty string or a pattern")
        elif not isinstance(pattern, re.Pattern):
            raise InvalidArgument(
                f"waitForLog: pattern must be a string or a pattern, got {type(pattern).__name__}"
            )
        timeout = o.get("timeoutMs")
        try:
            return await asyncio.wait_for(
                self._scan_log(pattern), None if timeout is None else timeout / 1000
            )
        except TimeoutError:
            raise PloyError(
                f"no log line of process {self['id']} matched {_shown(pattern)} within {timeout} ms",
                code=TIMEOUT,
                timeoutMs=timeout,
            ) from None

    async def _scan_log(self, pattern: str | re.Pattern[str]) -> dict[str, Any]:
        stream = await self._commands._stream(wire.STREAM_PROCESS_LOGS, {"id": self["id"]})
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        try:
            async for chunk in stream:
                pending += decoder.decode(chunk)
                *lines, pending = pending.split("\n")
                for line in lines:
                    found = _match(pattern, line.rstrip("\r"))
                    if found is not None:
                        return found
            last = _match(pattern, (pending + decoder.decode(b"", final=True)).rstrip("\r"))
            if last is not None:
                return last
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        record = await self._commands._result(wire.GET_PROCESS, id=self["id"])
        code = record.get("exitCode") if record else None
        raise PloyError(
            f"process {self['id']} exited ({code}) before a log line matched {_shown(pattern)}",
            code=PROCESS_EXITED_BEFORE_READY,
            exitCode=code,
        )

    async def waitForExit(self, options: Any = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        """The process's final record ({exitCode, status, ...}) once it has ended; TIMEOUT after `timeoutMs`."""
        o = _timeout_option(options, kw, "waitForExit")
        fields = {k: v for k, v in o.items() if k in wire.WAIT_FOR_EXIT.fields}
        return await self._commands._result(wire.WAIT_FOR_EXIT, id=self["id"], **fields)

    async def kill(
        self, signal: str | int | None = None, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        """SIGTERM (then SIGKILL after graceMs) by default; another signal is sent as it is."""
        o = _opts(options, kw)
        if signal is not None:
            o["signal"] = signal
        return await self._commands._result(wire.KILL_PROCESS, id=self["id"], **o)

    async def getStatus(self) -> str:  # noqa: N802
        record = await self._commands._result(wire.GET_PROCESS, id=self["id"])
        return "failed" if record is None else str(record["status"])

    async def getLogs(self) -> dict[str, Any]:  # noqa: N802
        return await self._commands.getProcessLogs(self["id"])


def _match(pattern: str | re.Pattern[str], line: str) -> dict[str, Any] | None:
    if isinstance(pattern, str):
        return {"line": line} if pattern in line else None
    m = pattern.search(line)
    return None if m is None else {"line": line, "match": [m.group(0), *m.groups()]}


def _shown(pattern: str | re.Pattern[str]) -> str:
    return repr(pattern) if isinstance(pattern, str) else f"/{pattern.pattern}/"


class SandboxSession(_Commands):
    __ploy_spec__ = SANDBOX_SESSION

    def __init__(self, client: SandboxClient, session_id: str, info: dict[str, Any] | None = None) -> None:
        self._client = client
        self._mgr = client._mgr
        self._sandbox_id = client.id
        self._session = session_id
        self.sessionId = session_id
        self.info = info or {}

    def _check(self) -> None:
        self._client._check()

    def __repr__(self) -> str:
        return f"<SandboxSession {self._sandbox_id}/{self.sessionId}>"


class SandboxClient(_Commands):
    __ploy_spec__ = SANDBOX_CLIENT

    def __init__(self, mgr: SandboxManager, sandbox_id: str) -> None:
        self._mgr = mgr
        self._sandbox_id = sandbox_id
        self.id = sandbox_id
        self._destroyed = False

    def _check(self) -> None:
        if self._destroyed:
            raise PloyError(f"sandbox {self.id} was destroyed", code=SANDBOX_DESTROYED, id=self.id)

    async def createSession(self, options: dict[str, Any] | None = None, **kw: Any) -> SandboxSession:  # noqa: N802
        info = await self._result(wire.CREATE_SESSION, options=_opts(options, kw))
        return SandboxSession(self, info["sessionId"], info)

    async def getSession(self, sessionId: str) -> SandboxSession:  # noqa: N802, N803
        info = await self._result(wire.GET_SESSION, sessionId=sessionId)
        return SandboxSession(self, info["sessionId"], info)

    async def destroy(self) -> dict[str, Any]:
        self._check()
        existed = await self._mgr.destroy(self.id)
        self._destroyed = True
        return {"id": self.id, "destroyed": existed}

    # ---- reaching what runs inside: preview URLs and WebSockets (preview.py) ----

    def _host(self, o: dict[str, Any]) -> str:
        host = o.get("hostname") or self._mgr.ctx.dev_host or "localhost"
        if not isinstance(host, str) or not re.match(r"^[A-Za-z0-9.-]+(:\d{1,5})?$", host):
            raise InvalidArgument(f"hostname must be a host name (with an optional :port), got {host!r}")
        return host

    async def exposePort(self, port: int, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        """{url, port, name}: `url` reaches `port` of this sandbox through the dev server (proxyToSandbox)."""
        self._check()
        o = _opts(options, kw)
        return await self._mgr.previews.expose(
            self.id, check_port(port), o.get("name"), o.get("token"), self._host(o)
        )

    async def unexposePort(self, port: int) -> None:  # noqa: N802
        self._check()
        await self._mgr.previews.unexpose(self.id, check_port(port))

    async def getExposedPorts(self, hostname: str | None = None) -> list[dict[str, Any]]:  # noqa: N802
        """The exposures that forward now (made in the container's current start); never wakes the sandbox."""
        self._check()
        return self._mgr.previews.exposed(self.id, self._host({"hostname": hostname}))

    async def isPortExposed(self, port: int) -> bool:  # noqa: N802
        self._check()
        port = check_port(port)
        return any(p["port"] == port for p in self._mgr.previews.exposed(self.id, "localhost"))

    async def wsConnect(self, request: RequestLike, port: int) -> WebResponse:  # noqa: N802
        """Connect the client's WebSocket upgrade to the WebSocket server on `port` in this sandbox."""
        self._check()
        if not is_websocket_upgrade(request):
            raise InvalidArgument("wsConnect() needs a WebSocket upgrade request (header Upgrade: websocket)")
        port = check_port(port)
        from bindings.http_proxy import UpstreamError

        address = await self._mgr.previews.target(self.id)
        try:
            return await self._mgr.previews.forwarder.forward(request, address, port)
        except UpstreamError as e:
            return WebResponse.json(
                502, {"error": f"wsConnect to port {port}: {e}", "code": PORT_UNREACHABLE}
            )

    def __repr__(self) -> str:
        return f"<SandboxClient {self.id}>"


class SandboxBinding:
    __ploy_spec__ = SANDBOX_BINDING

    def __init__(self, ctx: BindingContext, options: SandboxOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.manager = SandboxManager(ctx, options)

    def get(self, id: str) -> SandboxClient:  # noqa: A002
        client = SandboxClient(self.manager, validate_id(id))
        self.manager.pool.kick()
        return client

    async def preview_fetch(self, request: RequestLike, client_host: str | None = None) -> WebResponse | None:
        """proxyToSandbox's hook: the response for a preview host name of this project, else None."""
        return await self.manager.previews.route(request, client_host)

    async def close(self) -> None:
        await self.manager.close()
