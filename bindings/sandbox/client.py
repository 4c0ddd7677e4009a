"""The objects workers get: SandboxBinding (env.SANDBOX), SandboxClient (one id), SandboxSession.

Calling convention is the JS one: positional arguments as in the docs, then the options object as a
dict; keyword arguments are accepted too (snake_case or camelCase) and merged into the options.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from bindings.context import BindingContext
from bindings.error_codes import SANDBOX_DESTROYED
from bindings.errors import InvalidArgument, PloyError
from bindings.sandbox.agent import args as check
from bindings.sandbox.agent import wire
from bindings.sandbox.agent_client import decode_output
from bindings.sandbox.manager import SandboxManager
from bindings.sandbox.options import SandboxOptions
from bindings.sandbox.spec import SANDBOX_BINDING, SANDBOX_CLIENT, SANDBOX_SESSION
from bindings.sandbox.state import validate_id


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


@contextlib.contextmanager
def _arguments() -> Iterator[None]:
    """Around checking a call's arguments (agent/args.py, the same checks the agent makes): a bad one
    is INVALID_ARGUMENT naming it, raised before anything reaches the sandbox."""
    try:
        yield
    except check.Invalid as exc:
        raise InvalidArgument(str(exc), argument=exc.argument) from None


def _command_fields(command: Any, o: dict[str, Any]) -> dict[str, Any]:
    """The fields of exec, execStream and startProcess, for a sandbox and a session alike."""
    with _arguments():
        fields = {**o, "command": check.command(command)}
        if "cwd" in o:
            check.path(o["cwd"], "cwd")
        if "env" in o:
            fields["env"] = check.env(o["env"])
        check.timeout_ms(o.get("timeoutMs"))
        check.output_limit(o.get("outputLimit"))
    return fields


def _path(path: Any, name: str = "path") -> str:
    with _arguments():
        return check.path(path, name)


def _content_bytes(content: Any, encoding: str | None) -> bytes:
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    if isinstance(content, str):
        if encoding == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except ValueError as exc:
                raise InvalidArgument(f"content is not valid base64: {exc}", argument="content") from None
        with _arguments():
            return check.content(content).encode("utf-8")
    raise InvalidArgument(
        f"content must be a string or bytes, got {type(content).__name__}", argument="content"
    )


async def _payloads(frames: AsyncIterator[tuple[bytes, bytes]]) -> AsyncIterator[bytes]:
    try:
        async for kind, data in frames:
            if kind != b"J" and data:
                yield data
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


_ENCODINGS = ("utf-8", "utf8", "text", "base64", "binary", "bytes", "buffer", "uint8array")


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

    async def exec(self, command: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        result, data = await self._call(wire.EXEC, _command_fields(command, _opts(options, kw)))
        if "stdout" in result:  # an agent from before output moved to frames (a container made earlier)
            return result
        stdout, stderr = decode_output(data)
        return {"stdout": stdout, "stderr": stderr, **result}

    async def execStream(
        self, command: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:  # noqa: N802
        return await self._stream(wire.EXEC_STREAM, _command_fields(command, _opts(options, kw)))

    async def writeFile(
        self, path: str, content: Any, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        o = _opts(options, kw)
        data = _content_bytes(content, o.get("encoding"))
        result, _ = await self._call(wire.WRITE_FILE, {"path": _path(path)}, upload=data)
        return result

    async def readFile(self, path: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        o = _opts(options, kw)
        encoding = str(o.get("encoding") or "utf-8").lower()
        if encoding not in _ENCODINGS:
            raise InvalidArgument(
                f"encoding {encoding!r} is unknown: use utf-8, base64 or binary", argument="encoding"
            )
        result, data = await self._call(wire.READ_FILE, {"path": _path(path)})
        raw = bytes(data.get(b"D", b""))
        content: str | bytes
        if encoding == "base64":
            content = base64.b64encode(raw).decode()
        elif encoding in ("binary", "bytes", "buffer", "uint8array"):
            content = raw
        else:
            content = raw.decode("utf-8", errors="replace")
            encoding = "utf-8"
        return {"content": content, "encoding": encoding, "path": result["path"], "size": len(raw)}

    async def deleteFile(self, path: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        return await self._result(wire.DELETE_FILE, **{**_opts(options, kw), "path": _path(path)})

    async def mkdir(self, path: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return await self._result(wire.MKDIR, **{**_opts(options, kw), "path": _path(path)})

    async def listFiles(
        self, path: str = ".", options: dict[str, Any] | None = None, **kw: Any
    ) -> list[dict[str, Any]]:  # noqa: N802
        return await self._result(wire.LIST_FILES, **{**_opts(options, kw), "path": _path(path)})

    async def gitCheckout(
        self, repoUrl: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802, N803
        o = _opts(options, kw)
        with _arguments():
            check.repo_url(repoUrl)
            if "branch" in o:
                check.branch(o["branch"])
            if "depth" in o:
                check.integer(o["depth"], "depth", 1, 2**31 - 1)
            if "targetDir" in o:
                check.path(o["targetDir"], "targetDir")
            check.timeout_ms(o.get("timeoutMs"))
        return await self._result(wire.GIT_CHECKOUT, repoUrl=repoUrl, **o)

    async def setEnvVars(self, vars: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802, A002
        given = {} if vars is None else vars
        if kw and isinstance(given, dict):
            given = {**given, **kw}
        with _arguments():
            merged = check.env(given, "vars", required=True)
        return await self._result(wire.SET_ENV_VARS, vars=merged)

    async def startProcess(
        self, command: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        return await self._result(wire.START_PROCESS, **_command_fields(command, _opts(options, kw)))

    async def listProcesses(self) -> list[dict[str, Any]]:  # noqa: N802
        return await self._result(wire.LIST_PROCESSES)

    async def getProcess(self, id: str | None) -> dict[str, Any] | None:  # noqa: N802, A002
        if id is not None:
            with _arguments():
                check.identifier(id, "id")
        return await self._result(wire.GET_PROCESS, id=id)

    async def getProcessLogs(self, id: str) -> dict[str, Any]:  # noqa: N802, A002
        with _arguments():
            check.identifier(id, "id")
        _, data = await self._call(wire.GET_PROCESS_LOGS, {"id": id})
        return {"logs": bytes(data.get(b"D", b"")).decode("utf-8", errors="replace")}

    async def streamProcessLogs(self, id: str) -> AsyncIterator[bytes]:  # noqa: N802, A002
        with _arguments():
            check.identifier(id, "id")
        return await self._stream(wire.STREAM_PROCESS_LOGS, {"id": id})

    async def killProcess(self, id: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802, A002
        o = _opts(options, kw)
        with _arguments():
            check.identifier(id, "id")
            check.grace_ms(o.get("graceMs"))
        return await self._result(wire.KILL_PROCESS, id=id, **o)


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
        o = _opts(options, kw)
        with _arguments():
            if "cwd" in o:
                check.path(o["cwd"], "cwd")
            if "env" in o:
                o["env"] = check.env(o["env"])
            if "id" in o:
                check.identifier(o["id"], "id")
        info = await self._result(wire.CREATE_SESSION, options=o)
        return SandboxSession(self, info["sessionId"], info)

    async def getSession(self, sessionId: str) -> SandboxSession:  # noqa: N802, N803
        with _arguments():
            check.identifier(sessionId, "sessionId")
        info = await self._result(wire.GET_SESSION, sessionId=sessionId)
        return SandboxSession(self, info["sessionId"], info)

    async def destroy(self) -> dict[str, Any]:
        self._check()
        existed = await self._mgr.destroy(self.id)
        self._destroyed = True
        return {"id": self.id, "destroyed": existed}

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

    async def close(self) -> None:
        await self.manager.close()
