"""The objects workers get: SandboxBinding (env.SANDBOX), SandboxClient (one id), SandboxSession.

Calling convention is the JS one: positional arguments as in the docs, then the options object as a
dict; keyword arguments are accepted too (snake_case or camelCase) and merged into the options.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import json
import mimetypes
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import Any

from bindings.context import BindingContext
from bindings.error_codes import PORT_UNREACHABLE, PROCESS_EXITED_BEFORE_READY, TIMEOUT
from bindings.errors import InvalidArgument, PloyError
from bindings.sandbox import backups, forks
from bindings.sandbox.agent import args as check
from bindings.sandbox.agent import wire
from bindings.sandbox.agent_client import decode_output
from bindings.sandbox.manager import SandboxManager, Upload
from bindings.sandbox.options import SandboxOptions
from bindings.sandbox.preview import check_port
from bindings.sandbox.spec import SANDBOX_BINDING, SANDBOX_CLIENT, SANDBOX_PROCESS, SANDBOX_SESSION
from bindings.sandbox.state import validate_id
from bindings.sandbox.terminal import TerminalSocket
from bindings.spec import check_options
from bindings.web import RequestLike, WebResponse, is_websocket_upgrade
from bindings.yaml_reader import parse_duration

TEXT_ENCODINGS = ("utf-8", "utf8", "text")
BYTES_ENCODINGS = ("binary", "bytes", "buffer", "uint8array")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _opts(options: Any, kw: dict[str, Any]) -> dict[str, Any]:
    if options is None:
        out: dict[str, Any] = {}
    elif isinstance(options, dict):
        out = dict(options)
    elif isinstance(options, str):
        out = {"sessionId": options}  # Cloudflare's positional form: exists(path, sessionId)
    else:
        raise InvalidArgument(f"options must be an object, got {type(options).__name__}")
    out.update({_camel(k): v for k, v in kw.items()})
    return {k: v for k, v in out.items() if v is not None}


@contextlib.contextmanager
def _arguments() -> Iterator[None]:
    """Around checking a call's arguments (agent/args.py, the same checks the agent makes): a bad one
    is INVALID_ARGUMENT naming it, raised before anything reaches the sandbox."""
    try:
        yield
    except check.Invalid as exc:
        raise InvalidArgument(str(exc), argument=exc.argument) from None


def _stdin(value: Any, name: str) -> Any:
    """exec's stdin text (any characters with a UTF-8 form) or bytes; startProcess's may be a boolean."""
    if isinstance(value, str):
        check.content(value, name)
    return value


# Each option any method takes that reaches a command, a path, the environment, a signal or a clock,
# checked by its kind's function (check_options has already refused names the method does not take).
_OPTION_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "cwd": check.path,
    "targetDir": check.path,
    "env": check.env,
    "timeoutMs": check.timeout_ms,
    "timeout": check.timeout_ms,  # Cloudflare's name for it (runCode, waitFor*)
    "cloneTimeoutMs": check.timeout_ms,
    "commandTimeoutMs": check.timeout_ms,
    "outputLimit": check.output_limit,
    "graceMs": check.grace_ms,
    "signal": check.signal_number,
    "processId": check.process_id,
    "sessionId": check.identifier,
    "branch": check.branch,
    "depth": lambda v, n: check.integer(v, n, 1, 2**31 - 1),
    "stdin": _stdin,
    "name": lambda v, n: check.text(v, n, empty_ok=True, max_bytes=check.ID_MAX),
    "intervalMs": check.duration_ms,
    "shell": lambda v, n: check.command(v, n),
}


def _check_options(o: dict[str, Any], own: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options with each known one checked (env normalised: numbers as strings); `own` are names
    the method checks itself, with errors of its own (a backup's name: INVALID_BACKUP_CONFIG)."""
    with _arguments():
        for name, value in o.items():
            checker = _OPTION_CHECKS.get(name) if name not in own else None
            if checker is not None:
                checked = checker(value, name)
                if name == "env":
                    o[name] = checked
    return o


def _path(path: Any, name: str = "path") -> str:
    with _arguments():
        return check.path(path, name)


def _id(value: Any, name: str = "id") -> str:
    with _arguments():
        return check.identifier(value, name)


def _encoding(value: Any, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    name = str(value).lower() if isinstance(value, str) else None
    if name not in allowed:
        raise InvalidArgument(f"unknown encoding {value!r}: use {', '.join(allowed)}", option="encoding")
    return name


def _content_bytes(content: Any, encoding: str | None, name: str = "content") -> bytes:
    if isinstance(content, (bytes, bytearray, memoryview)):
        data = bytes(content)
        if encoding != "base64":
            return data
        content = data.decode("ascii", errors="replace")
    if isinstance(content, str):
        if encoding == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except ValueError as exc:
                raise InvalidArgument(f"{name} is not valid base64: {exc}", argument=name) from None
        with _arguments():
            return check.content(content, name).encode("utf-8")
    raise InvalidArgument(
        f"{name} must be a string, bytes or a stream of bytes, got {type(content).__name__}",
        argument=name,
    )


async def _chunks(source: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    """A stream argument's chunks as bytes (text as UTF-8); anything else ends the upload with an error."""
    async for chunk in source:
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            if chunk:
                yield bytes(chunk)
        elif isinstance(chunk, str):
            if chunk:
                with _arguments():
                    check.content(chunk, "content")
                yield chunk.encode("utf-8")
        else:
            raise InvalidArgument(f"a stream chunk must be bytes or a string, got {type(chunk).__name__}")


def _text_arg(value: Any, name: str) -> str:
    """A string for the agent's JSON; bytes pass through as surrogate escapes (the agent re-encodes them
    with surrogateescape, so any bytes arrive as they were)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    raise InvalidArgument(f"{name} must be a string, got {type(value).__name__}", option=name)


def _is_binary(raw: bytes) -> bool:
    """Not text: not valid UTF-8, or a NUL byte (which text files do not have)."""
    if b"\0" in raw:
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


async def _exec_events(frames: AsyncIterator[tuple[bytes, bytes]], command: str) -> AsyncIterator[bytes]:
    """execStream(cmd, {format: "sse"}): Cloudflare's ExecEvent stream (`data: {json}` events of type
    start, stdout, stderr, complete {exitCode}, error), text decoded as UTF-8 across chunk borders."""
    decoders = {
        b"O": codecs.getincrementaldecoder("utf-8")("replace"),
        b"E": codecs.getincrementaldecoder("utf-8")("replace"),
    }
    names = {b"O": "stdout", b"E": "stderr"}
    yield _sse({"type": "start", "timestamp": _now(), "command": command})
    try:
        async for kind, data in frames:
            if kind == b"J":
                result = json.loads(data).get("result") or {}
                for k, decoder in decoders.items():
                    rest = decoder.decode(b"", final=True)
                    if rest:
                        yield _sse({"type": names[k], "timestamp": _now(), "data": rest})
                code = result.get("exitCode")
                yield _sse(
                    {
                        "type": "complete",
                        "timestamp": _now(),
                        "exitCode": code,
                        "result": {"exitCode": code, "success": code == 0, "command": command},
                    }
                )
                return
            text = decoders[kind].decode(data) if kind in decoders else ""
            if text:
                yield _sse({"type": names[kind], "timestamp": _now(), "data": text})
    except PloyError as exc:
        # the command's end as an event, so a client reading the stream over HTTP learns it too
        yield _sse({"type": "error", "timestamp": _now(), "error": exc.message, "code": exc.code})
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


async def _payloads(frames: AsyncIterator[tuple[bytes, bytes]]) -> AsyncIterator[bytes]:
    try:
        async for kind, data in frames:
            if kind != b"J" and data:
                yield data
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


def _sleep_after_seconds(duration: object) -> float:
    if isinstance(duration, bool) or not isinstance(duration, (str, int, float)):
        raise InvalidArgument("sleepAfter must be a duration: seconds, or e.g. '30s', '10m', '1h'")
    try:
        seconds = parse_duration(duration.strip() if isinstance(duration, str) else duration)
    except ValueError as exc:
        raise InvalidArgument(f"sleepAfter: {exc}") from None
    if seconds < 0:
        raise InvalidArgument("sleepAfter must not be negative (0: never sleep)")
    return seconds


def _flag(value: object, name: str, **detail: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be true or false, got {value!r}", **detail)
    return value


def _bool_option(o: dict[str, Any], name: str) -> bool | None:
    value = o.get(name)
    return None if value is None else _flag(value, name, option=name)


class _Commands:
    """The methods a sandbox client and a session share; `_session` scopes them to a session."""

    _mgr: SandboxManager
    _sandbox_id: str
    _session: str | None = None
    _spec = SANDBOX_SESSION
    # Settings given to `get` (keepAlive, sleepAfter): sent before this client's first op reaches the
    # agent, so that `get` itself starts nothing (as Cloudflare's getSandbox)
    _pending: list[tuple[wire.Op, dict[str, Any]]] | None = None

    async def _apply_pending(self) -> None:
        # cleared once sent: an op that failed is tried again with the next call (they are idempotent)
        for op, fields in self._pending or ():
            await self._mgr.call(self._sandbox_id, self._request(op, fields, None), None)
        self._pending = None

    def _options(
        self, method: str, options: Any, kw: dict[str, Any], own: tuple[str, ...] = ()
    ) -> tuple[dict[str, Any], str | None]:
        """The checked options (INVALID_ARGUMENT for a name the method does not take) without
        `sessionId`, and the session the call runs in."""
        o = _opts(options, kw)
        check_options(self._spec.method(method), o)
        _check_options(o, own)
        session = o.pop("sessionId", None)
        if session is not None:
            if self._session is not None and session != self._session:
                raise InvalidArgument(
                    f"sessionId {session!r}: this is session {self._session!r}", option="sessionId"
                )
        return o, session or self._session

    @staticmethod
    def _request(op: wire.Op, fields: dict[str, Any], session: str | None) -> dict[str, Any]:
        request = {"op": op.name, **fields}
        if session is not None:
            request["session"] = session
        return request

    async def _call(
        self, op: wire.Op, fields: dict[str, Any], session: str | None, upload: Upload | None = None
    ) -> tuple[Any, dict[bytes, bytearray]]:
        if self._pending is not None:
            await self._apply_pending()
        return await self._mgr.call(self._sandbox_id, self._request(op, fields, session), upload)

    async def _result(self, op: wire.Op, session: str | None, **fields: Any) -> Any:
        result, _ = await self._call(op, fields, session)
        return result

    async def _frames(
        self, op: wire.Op, fields: dict[str, Any], session: str | None
    ) -> AsyncIterator[tuple[bytes, bytes]]:
        if self._pending is not None:
            await self._apply_pending()
        return await self._mgr.stream(self._sandbox_id, self._request(op, fields, session))

    async def _stream(self, op: wire.Op, fields: dict[str, Any], session: str | None) -> AsyncIterator[bytes]:
        return _payloads(await self._frames(op, fields, session))

    @staticmethod
    def _command(command: Any) -> str:
        with _arguments():
            return check.command(command)

    async def exec(self, command: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        o, session = self._options("exec", options, kw)
        command = self._command(command)
        if "stdin" in o:
            o["stdin"] = _text_arg(o["stdin"], "stdin")
        result, data = await self._call(wire.EXEC, {"command": command, **o}, session)
        if "stdout" in result:  # an agent from before output moved to frames (a container made earlier)
            return result
        stdout, stderr = decode_output(data)
        return {"stdout": stdout, "stderr": stderr, **result}

    async def execStream(
        self, command: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:  # noqa: N802
        o, session = self._options("execStream", options, kw)
        fmt = o.pop("format", "raw")
        if fmt not in ("raw", "sse"):
            raise InvalidArgument(
                f"format must be 'raw' (the output's bytes) or 'sse' (events), got {fmt!r}", option="format"
            )
        if "stdin" in o:
            o["stdin"] = _text_arg(o["stdin"], "stdin")
        command = self._command(command)
        if fmt == "raw":
            return await self._stream(wire.EXEC_STREAM, {"command": command, **o}, session)
        # what fails before the command runs (a missing cwd) rejects, as in the raw format
        frames = await self._frames(wire.EXEC_STREAM, {"command": command, "split": True, **o}, session)
        return _exec_events(frames, command)

    async def writeFile(
        self, path: str, content: Any, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        o, session = self._options("writeFile", options, kw)
        encoding = _encoding(o.get("encoding"), ("utf-8", "utf8", "base64"))
        upload: Upload
        if hasattr(content, "__aiter__") and not isinstance(content, (str, bytes)):
            if encoding == "base64":
                raise InvalidArgument(
                    "a stream is written as its bytes: encoding 'base64' is for text content"
                )
            upload = _chunks(content)
        else:
            upload = _content_bytes(content, encoding)
        result, _ = await self._call(wire.WRITE_FILE, {"path": _path(path)}, session, upload=upload)
        return result

    async def readFile(self, path: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        o, session = self._options("readFile", options, kw)
        asked = _encoding(o.get("encoding"), (*TEXT_ENCODINGS, "base64", *BYTES_ENCODINGS))
        result, data = await self._call(wire.READ_FILE, {"path": _path(path)}, session)
        raw = bytes(data.get(b"D", b""))
        binary = _is_binary(raw)
        encoding = asked or ("base64" if binary else "utf-8")
        content: str | bytes
        if encoding == "base64":
            content = base64.b64encode(raw).decode()
        elif encoding in BYTES_ENCODINGS:
            content = raw
        else:
            content = raw.decode("utf-8", errors="replace")
            encoding = "utf-8"
        mime = mimetypes.guess_type(result["path"])[0]
        return {
            "content": content,
            "encoding": encoding,
            "path": result["path"],
            "size": len(raw),
            "isBinary": binary,
            "mimeType": mime or ("application/octet-stream" if binary else "text/plain"),
        }

    async def deleteFile(
        self, path: str, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        o, session = self._options("deleteFile", options, kw)
        return await self._result(wire.DELETE_FILE, session, **o, path=_path(path))

    async def mkdir(self, path: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        o, session = self._options("mkdir", options, kw)
        return await self._result(wire.MKDIR, session, **o, path=_path(path))

    async def listFiles(
        self, path: str = ".", options: dict[str, Any] | None = None, **kw: Any
    ) -> list[dict[str, Any]]:  # noqa: N802
        o, session = self._options("listFiles", options, kw)
        return await self._result(wire.LIST_FILES, session, **o, path=_path(path))

    async def gitCheckout(
        self, repoUrl: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802, N803
        o, session = self._options("gitCheckout", options, kw)
        with _arguments():
            check.repo_url(repoUrl)
        if "cloneTimeoutMs" in o:  # Cloudflare's name for it
            clone = o.pop("cloneTimeoutMs")
            o.setdefault("timeoutMs", clone)
        return await self._result(wire.GIT_CHECKOUT, session, repoUrl=repoUrl, **o)

    async def setEnvVars(self, vars: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802, A002
        given = {} if vars is None else vars
        if kw and isinstance(given, dict):
            given = {**given, **kw}
        with _arguments():
            merged = check.env(given, "vars", required=True)
        return await self._result(wire.SET_ENV_VARS, self._session, vars=merged)

    async def startProcess(
        self, command: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> SandboxProcess:  # noqa: N802
        o, session = self._options("startProcess", options, kw)
        command = self._command(command)
        if "stdin" in o and o["stdin"] is not True:
            if o["stdin"] is False:
                del o["stdin"]
            else:
                o["stdin"] = _text_arg(o["stdin"], "stdin")
        record = await self._result(wire.START_PROCESS, session, command=command, **o)
        return SandboxProcess(self, record)

    async def listProcesses(
        self, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> list[SandboxProcess]:  # noqa: N802
        _, session = self._options("listProcesses", options, kw)
        return [SandboxProcess(self, p) for p in await self._result(wire.LIST_PROCESSES, session)]

    async def getProcess(
        self, id: str | None, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> SandboxProcess | None:  # noqa: N802, A002
        _, session = self._options("getProcess", options, kw)
        if id is not None:
            _id(id)
        record = await self._result(wire.GET_PROCESS, session, id=id)
        return None if record is None else SandboxProcess(self, record)

    async def getProcessLogs(
        self, id: str, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802, A002
        _, session = self._options("getProcessLogs", options, kw)
        _id(id)
        result, data = await self._call(wire.GET_PROCESS_LOGS, {"id": id}, session)

        def text(kind: bytes) -> str:
            return bytes(data.get(kind, b"")).decode("utf-8", errors="replace")

        logs = text(b"D")
        if "stdout" not in (result or {}):  # an agent from before stdout and stderr were kept apart
            return {"logs": logs, "stdout": logs, "stderr": "", "processId": id}
        return {"logs": logs, "stdout": text(b"O"), "stderr": text(b"E"), "processId": id}

    async def streamProcessLogs(
        self, id: str, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:  # noqa: N802, A002
        _, session = self._options("streamProcessLogs", options, kw)
        _id(id)
        return await self._stream(wire.STREAM_PROCESS_LOGS, {"id": id}, session)

    async def killProcess(
        self,
        id: str,  # noqa: A002
        signal: str | int | dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:  # noqa: N802
        if isinstance(signal, dict):  # killProcess(id, {graceMs}): the options in second place
            if options is not None:
                raise InvalidArgument("killProcess(id, signal, options): options given twice")
            signal, options = None, signal
        o, session = self._options("killProcess", options, kw)
        _id(id)
        if signal is not None:
            with _arguments():
                check.signal_number(signal)
            if "signal" in o and o["signal"] != signal:
                raise InvalidArgument("killProcess: signal given twice", option="signal")
            o["signal"] = signal
        return await self._result(wire.KILL_PROCESS, session, id=id, **o)

    # ---- added for parity with Cloudflare's Sandbox SDK (issue 13) ----

    async def exists(
        self, path: str, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> dict[str, Any]:
        _, session = self._options("exists", options, kw)
        return await self._result(wire.EXISTS, session, path=_path(path))

    async def renameFile(
        self, oldPath: str, newPath: str, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802, N803
        _, session = self._options("renameFile", options, kw)
        return await self._result(
            wire.RENAME_FILE, session, oldPath=_path(oldPath, "oldPath"), newPath=_path(newPath, "newPath")
        )

    async def moveFile(
        self, sourcePath: str, destinationPath: str, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802, N803
        _, session = self._options("moveFile", options, kw)
        return await self._result(
            wire.MOVE_FILE,
            session,
            sourcePath=_path(sourcePath, "sourcePath"),
            destinationPath=_path(destinationPath, "destinationPath"),
        )

    async def readFileStream(
        self, path: str, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:  # noqa: N802
        _, session = self._options("readFileStream", options, kw)
        return await self._stream(wire.READ_FILE_STREAM, {"path": _path(path)}, session)

    async def killAllProcesses(self, options: dict[str, Any] | str | None = None, **kw: Any) -> int:  # noqa: N802
        o, session = self._options("killAllProcesses", options, kw)
        return int((await self._result(wire.KILL_ALL_PROCESSES, session, **o))["count"])

    async def cleanupCompletedProcesses(self, options: dict[str, Any] | str | None = None, **kw: Any) -> int:  # noqa: N802
        _, session = self._options("cleanupCompletedProcesses", options, kw)
        return int((await self._result(wire.CLEANUP_COMPLETED_PROCESSES, session))["count"])

    async def writeStdin(
        self, id: str, data: str | bytes, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802, A002
        o, session = self._options("writeStdin", options, kw)
        _id(id)
        encoding = _encoding(o.get("encoding"), ("utf-8", "utf8", "base64"))
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise InvalidArgument(
                f"data must be a string or bytes, got {type(data).__name__}", argument="data"
            )
        result, _ = await self._call(
            wire.WRITE_STDIN, {"id": id}, session, upload=_content_bytes(data, encoding, "data")
        )
        return {"id": id, **result}

    async def closeStdin(
        self, id: str, options: dict[str, Any] | str | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802, A002
        _, session = self._options("closeStdin", options, kw)
        _id(id)
        return await self._result(wire.CLOSE_STDIN, session, id=id)

    async def terminal(
        self, request: RequestLike, options: dict[str, Any] | None = None, **kw: Any
    ) -> WebResponse:
        """A 101 response whose WebSocket is an interactive shell in the sandbox (terminal.py's protocol)."""
        if not is_websocket_upgrade(request):
            raise InvalidArgument("terminal() needs a WebSocket upgrade request (header Upgrade: websocket)")
        o, session = self._options("terminal", options, kw)
        duplex = await self._mgr.duplex(self._sandbox_id, self._request(wire.TERMINAL, o, session))
        return WebResponse(101, [], None, TerminalSocket(duplex))


def _timeout_option(options: Any, kw: dict[str, Any], what: str) -> dict[str, Any]:
    """Cloudflare passes a bare number of milliseconds; the docs' style is {timeoutMs}."""
    if isinstance(options, (int, float)) and not isinstance(options, bool):
        options = {"timeoutMs": options}
    o = _opts(options, kw)
    if "timeout" in o and "timeoutMs" not in o:
        o["timeoutMs"] = o.pop("timeout")
    with _arguments():
        check.duration_ms(o.get("timeoutMs"), "timeoutMs")
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
        check_options(SANDBOX_PROCESS.method("waitForPort"), o)
        with _arguments():
            check.duration_ms(o.get("intervalMs"), "intervalMs")
        fields = {k: v for k, v in o.items() if k in wire.WAIT_FOR_PORT.fields}
        return await self._commands._result(
            wire.WAIT_FOR_PORT, None, port=check_port(port), processId=self["id"], **fields
        )

    async def waitForLog(
        self, pattern: str | re.Pattern[str], options: Any = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        """Resolves with {line} (and {match}: the groups, for a pattern) for the first log line, from the
        start of the log, that contains `pattern` (a string) or matches it (a compiled pattern)."""
        o = _timeout_option(options, kw, "waitForLog")
        check_options(SANDBOX_PROCESS.method("waitForLog"), o)
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
        stream = await self._commands._stream(wire.STREAM_PROCESS_LOGS, {"id": self["id"]}, None)
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
        record = await self._commands._result(wire.GET_PROCESS, None, id=self["id"])
        code = record.get("exitCode") if record else None
        raise PloyError(
            f"process {self['id']} exited ({code}) before a log line matched {_shown(pattern)}",
            code=PROCESS_EXITED_BEFORE_READY,
            exitCode=code,
        )

    async def waitForExit(self, options: Any = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        """The process's final record ({exitCode, status, ...}) once it has ended; TIMEOUT after `timeoutMs`."""
        o = _timeout_option(options, kw, "waitForExit")
        check_options(SANDBOX_PROCESS.method("waitForExit"), o)
        fields = {k: v for k, v in o.items() if k in wire.WAIT_FOR_EXIT.fields}
        return await self._commands._result(wire.WAIT_FOR_EXIT, None, id=self["id"], **fields)

    async def kill(
        self,
        signal: str | int | dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """killProcess(this id, ...): one implementation, so the two cannot disagree. No signal: SIGTERM,
        then SIGKILL after graceMs; a given signal is sent as it is, never escalated."""
        return await self._commands.killProcess(self["id"], signal, options, **kw)

    async def getStatus(self) -> str:  # noqa: N802
        record = await self._commands._result(wire.GET_PROCESS, None, id=self["id"])
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

    def __repr__(self) -> str:
        return f"<SandboxSession {self._sandbox_id}/{self.sessionId}>"


class SandboxClient(_Commands):
    """After destroy() the same client starts a fresh sandbox on its next call (Cloudflare's behaviour)."""

    __ploy_spec__ = SANDBOX_CLIENT
    _spec = SANDBOX_CLIENT

    def __init__(self, mgr: SandboxManager, sandbox_id: str) -> None:
        self._mgr = mgr
        self._sandbox_id = sandbox_id
        self.id = sandbox_id

    async def createSession(self, options: dict[str, Any] | None = None, **kw: Any) -> SandboxSession:  # noqa: N802
        o = _opts(options, kw)
        check_options(SANDBOX_CLIENT.method("createSession"), o)
        _check_options(o)
        if "id" in o:
            _id(o["id"])
        info = await self._result(wire.CREATE_SESSION, None, options=o)
        return SandboxSession(self, info["sessionId"], info)

    async def getSession(self, sessionId: str) -> SandboxSession:  # noqa: N802, N803
        _id(sessionId, "sessionId")
        info = await self._result(wire.GET_SESSION, None, sessionId=sessionId)
        return SandboxSession(self, info["sessionId"], info)

    async def destroy(self) -> dict[str, Any]:
        existed = await self._mgr.destroy(self.id)
        return {"id": self.id, "destroyed": existed}

    # ---- added for parity (issue 13) ----

    async def deleteSession(self, sessionId: str) -> dict[str, Any]:  # noqa: N802, N803
        _id(sessionId, "sessionId")
        return await self._result(wire.DELETE_SESSION, None, sessionId=sessionId)

    async def setSleepAfter(self, duration: str | float) -> dict[str, Any]:  # noqa: N802
        return await self._result(wire.SET_SLEEP_AFTER, None, seconds=_sleep_after_seconds(duration))

    async def setKeepAlive(self, keepAlive: bool) -> dict[str, Any]:  # noqa: N802, N803
        return await self._result(wire.SET_KEEP_ALIVE, None, keepAlive=_flag(keepAlive, "keepAlive"))

    async def getState(self) -> dict[str, Any]:  # noqa: N802
        return await self._mgr.state_of(self.id)

    async def getMetrics(self) -> dict[str, Any]:  # noqa: N802
        return await self._mgr.metrics(self.id)

    # ---- reaching what runs inside: preview URLs and WebSockets (preview.py) ----

    def _host(self, o: dict[str, Any]) -> str:
        host = o.get("hostname") or self._mgr.ctx.dev_host or "localhost"
        if not isinstance(host, str) or not re.match(r"^[A-Za-z0-9.-]+(:\d{1,5})?$", host):
            raise InvalidArgument(f"hostname must be a host name (with an optional :port), got {host!r}")
        return host

    async def exposePort(self, port: int, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        """{url, port, name}: `url` reaches `port` of this sandbox through the dev server (proxyToSandbox)."""
        o = _opts(options, kw)
        check_options(SANDBOX_CLIENT.method("exposePort"), o)
        return await self._mgr.previews.expose(
            self.id, check_port(port), o.get("name"), o.get("token"), self._host(o)
        )

    async def unexposePort(self, port: int) -> None:  # noqa: N802
        await self._mgr.previews.unexpose(self.id, check_port(port))

    async def getExposedPorts(self, hostname: str | None = None) -> list[dict[str, Any]]:  # noqa: N802
        """The exposures that forward now (made in the container's current start); never wakes the sandbox."""
        return self._mgr.previews.exposed(self.id, self._host({"hostname": hostname}))

    async def isPortExposed(self, port: int) -> bool:  # noqa: N802
        port = check_port(port)
        return any(p["port"] == port for p in self._mgr.previews.exposed(self.id, "localhost"))

    async def validatePortToken(self, port: int, token: str) -> bool:  # noqa: N802
        """Whether `token` is the port's preview token: for a worker that routes previews its own way."""
        port = check_port(port)
        if not isinstance(token, str):
            raise InvalidArgument(f"token must be a string, got {type(token).__name__}")
        return self._mgr.previews.token_matches(self.id, port, token)

    async def wsConnect(self, request: RequestLike, port: int) -> WebResponse:  # noqa: N802
        """Connect the client's WebSocket upgrade to the WebSocket server on `port` in this sandbox."""
        if not is_websocket_upgrade(request):
            raise InvalidArgument("wsConnect() needs a WebSocket upgrade request (header Upgrade: websocket)")
        port = check_port(port)
        from bindings.http_proxy import UpstreamError

        address, dial = await self._mgr.previews.target(self.id)
        try:
            return await self._mgr.previews.forwarder.forward(request, address, port, dial=dial)
        except UpstreamError as e:
            return WebResponse.json(
                502, {"error": f"wsConnect to port {port}: {e}", "code": PORT_UNREACHABLE}
            )

    # ---- sandbox state (issue 14): backups and snapshots (kept by the host: backups.py, snapshots.py)

    async def createBackup(self, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        o, _ = self._options("createBackup", options, kw, own=("name",))
        opts = backups.create_options(o)
        request = {"op": wire.ARCHIVE_DIR.name, "dir": opts["dir"], "excludes": opts["excludes"]}
        request["gitignore"] = opts["gitignore"]
        frames = await self._mgr.stream(self.id, request)
        return await self._mgr.backups.create(frames, opts, self.id)

    async def restoreBackup(
        self, backup: Any, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        o, _ = self._options("restoreBackup", options, kw)
        target = o.get("targetDir")
        if target is None and isinstance(backup, dict) and backup.get("dir") is not None:
            target = backup["dir"]  # Cloudflare's form: restoreBackup({id, dir})
        if target is not None:
            target = backups.check_dir(target, "targetDir")
        self._mgr.backups.valid(backup)  # a bad id starts no container
        return await self._mgr.restore_backup(await self._mgr.entry(self.id), backup, target)

    async def listBackups(self) -> list[dict[str, Any]]:  # noqa: N802
        return self._mgr.backups.live()

    async def deleteBackup(self, id: Any) -> dict[str, Any]:  # noqa: N802, A002
        return self._mgr.backups.delete(id)

    async def snapshot(self, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        o, _ = self._options("snapshot", options, kw)
        entry = await self._mgr.entry(self.id)
        await self._mgr.containers.ensure_disk(entry.dir)  # a sleeping sandbox's disk after a reboot
        return await self._mgr.snapshots.take(entry.container, self.id, o)

    async def listSnapshots(self) -> list[dict[str, Any]]:  # noqa: N802
        return await self._mgr.snapshots.live()

    async def deleteSnapshot(self, id: Any) -> dict[str, Any]:  # noqa: N802, A002
        return await self._mgr.snapshots.delete(id)

    # ---- file watching ----------------------------------------------------------------------------

    async def watch(
        self, path: str = ".", options: dict[str, Any] | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:
        o, _ = self._options("watch", options, kw)
        return await self._stream(wire.WATCH, {"path": path, **o}, None)

    async def checkChanges(
        self, path: str = ".", options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        o, _ = self._options("checkChanges", options, kw)
        return await self._result(wire.CHECK_CHANGES, None, path=path, **o)

    # ---- code interpreter -------------------------------------------------------------------------

    async def createCodeContext(self, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        o, _ = self._options("createCodeContext", options, kw)
        return await self._result(wire.CREATE_CODE_CONTEXT, None, options=o)

    @staticmethod
    def _run_fields(code: Any, o: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(code, str):
            raise InvalidArgument("code must be a string")
        context = o.get("context")
        if isinstance(context, dict):
            context = context.get("id")
        if "timeoutMs" not in o and "timeout" in o:
            o["timeoutMs"] = o["timeout"]  # Cloudflare's name for it
        fields = {
            "code": code,
            "context": context,
            "language": o.get("language"),
            "timeoutMs": o.get("timeoutMs"),
        }
        return {k: v for k, v in fields.items() if v is not None}

    async def runCode(self, code: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        o, _ = self._options("runCode", options, kw)
        return await self._result(wire.RUN_CODE, None, **self._run_fields(code, o))

    async def runCodeStream(
        self, code: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:  # noqa: N802
        o, _ = self._options("runCodeStream", options, kw)
        return await self._stream(wire.RUN_CODE_STREAM, self._run_fields(code, o), None)

    async def listCodeContexts(self) -> list[dict[str, Any]]:  # noqa: N802
        return await self._result(wire.LIST_CODE_CONTEXTS, None)

    async def deleteCodeContext(self, contextId: Any) -> dict[str, Any]:  # noqa: N802, N803
        if isinstance(contextId, dict):
            contextId = contextId.get("id")
        return await self._result(wire.DELETE_CODE_CONTEXT, None, contextId=contextId)

    def __repr__(self) -> str:
        return f"<SandboxClient {self.id}>"


def _get_settings(o: dict[str, Any]) -> list[tuple[wire.Op, dict[str, Any]]]:
    """Checks the options Cloudflare's getSandbox takes besides normalizeId; returns the settings ops
    they ask for."""
    transport = o.get("transport")
    if transport is not None and transport not in ("http", "websocket", "rpc"):
        raise InvalidArgument(
            f"transport must be 'http', 'websocket' or 'rpc', got {transport!r}", option="transport"
        )
    if _bool_option(o, "enableDefaultSession"):
        raise InvalidArgument(
            "enableDefaultSession: true is not how ploy runs commands: a call without a session runs in a"
            " fresh shell (enableDefaultSession: false); createSession() gives commands a shared shell",
            option="enableDefaultSession",
        )
    settings: list[tuple[wire.Op, dict[str, Any]]] = []
    keep = _bool_option(o, "keepAlive")
    if keep is not None:
        settings.append((wire.SET_KEEP_ALIVE, {"keepAlive": keep}))
    if "sleepAfter" in o:
        settings.append((wire.SET_SLEEP_AFTER, {"seconds": _sleep_after_seconds(o["sleepAfter"])}))
    return settings


class SandboxBinding:
    __ploy_spec__ = SANDBOX_BINDING

    def __init__(self, ctx: BindingContext, options: SandboxOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.manager = SandboxManager(ctx, options)

    def get(self, id: str, options: dict[str, Any] | None = None, **kw: Any) -> SandboxClient:  # noqa: A002
        o = _opts(options, kw)
        check_options(SANDBOX_BINDING.method("get"), o)
        sandbox_id = validate_id(id)
        if _bool_option(o, "normalizeId"):  # Cloudflare's: preview host names are case-insensitive
            sandbox_id = sandbox_id.lower()
        client = SandboxClient(self.manager, sandbox_id)
        client._pending = _get_settings(o) or None
        source = o.get("from")
        if source is not None:
            origin = forks.parse_from(source)
            if not self.manager.exists(client.id):
                self.manager.origins[client.id] = origin
        self.manager.pool.kick()
        return client

    async def preview_fetch(self, request: RequestLike, client_host: str | None = None) -> WebResponse | None:
        """proxyToSandbox's hook: the response for a preview host name of this project, else None."""
        return await self.manager.previews.route(request, client_host)

    async def close(self) -> None:
        await self.manager.close()
