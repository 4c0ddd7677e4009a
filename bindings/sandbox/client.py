"""The objects workers get: SandboxBinding (env.SANDBOX), SandboxClient (one id), SandboxSession.

Calling convention is the JS one: positional arguments as in the docs, then the options object as a
dict; keyword arguments are accepted too (snake_case or camelCase) and merged into the options.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

from bindings.context import BindingContext
from bindings.error_codes import SANDBOX_DESTROYED
from bindings.errors import InvalidArgument, PloyError
from bindings.sandbox import backups, forks
from bindings.sandbox.agent import wire
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
    ) -> dict[str, Any]:  # noqa: N802
        o = _opts(options, kw)
        return await self._result(wire.START_PROCESS, command=self._command(command), **o)

    async def listProcesses(self) -> list[dict[str, Any]]:  # noqa: N802
        return await self._result(wire.LIST_PROCESSES)

    async def getProcess(self, id: str | None) -> dict[str, Any] | None:  # noqa: N802, A002
        return await self._result(wire.GET_PROCESS, id=id)

    async def getProcessLogs(self, id: str) -> dict[str, Any]:  # noqa: N802, A002
        _, data = await self._call(wire.GET_PROCESS_LOGS, {"id": id})
        return {"logs": bytes(data.get(b"D", b"")).decode("utf-8", errors="replace")}

    async def streamProcessLogs(self, id: str) -> AsyncIterator[bytes]:  # noqa: N802, A002
        return await self._stream(wire.STREAM_PROCESS_LOGS, {"id": id})

    async def killProcess(self, id: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802, A002
        return await self._result(wire.KILL_PROCESS, id=id, **_opts(options, kw))


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

    # ---- backups and snapshots (kept by the host: backups.py, snapshots.py) ----------------------

    async def createBackup(self, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        self._check()
        opts = backups.create_options(_opts(options, kw))
        request = {"op": wire.ARCHIVE_DIR.name, "dir": opts["dir"], "excludes": opts["excludes"]}
        request["gitignore"] = opts["gitignore"]
        frames = await self._mgr.stream(self.id, request)
        return await self._mgr.backups.create(frames, opts, self.id)

    async def restoreBackup(
        self, backup: Any, options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        self._check()
        o = _opts(options, kw)
        target = o.get("targetDir")
        if target is None and isinstance(backup, dict) and backup.get("dir") is not None:
            target = backup["dir"]  # Cloudflare's form: restoreBackup({id, dir})
        if target is not None:
            target = backups.check_dir(target, "targetDir")
        self._mgr.backups.valid(backup)  # a bad id starts no container
        return await self._mgr.restore_backup(await self._mgr.entry(self.id), backup, target)

    async def listBackups(self) -> list[dict[str, Any]]:  # noqa: N802
        self._check()
        return self._mgr.backups.live()

    async def deleteBackup(self, id: Any) -> dict[str, Any]:  # noqa: N802, A002
        self._check()
        return self._mgr.backups.delete(id)

    async def snapshot(self, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        self._check()
        o = _opts(options, kw)
        entry = await self._mgr.entry(self.id)
        return await self._mgr.snapshots.take(entry.container, self.id, o)

    async def listSnapshots(self) -> list[dict[str, Any]]:  # noqa: N802
        self._check()
        return await self._mgr.snapshots.live()

    async def deleteSnapshot(self, id: Any) -> dict[str, Any]:  # noqa: N802, A002
        self._check()
        return await self._mgr.snapshots.delete(id)

    # ---- file watching ----------------------------------------------------------------------------

    async def watch(
        self, path: str = ".", options: dict[str, Any] | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:
        return await self._stream(wire.WATCH, {"path": path, **_opts(options, kw)})

    async def checkChanges(
        self, path: str = ".", options: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:  # noqa: N802
        return await self._result(wire.CHECK_CHANGES, path=path, **_opts(options, kw))

    # ---- code interpreter -------------------------------------------------------------------------

    async def createCodeContext(self, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:  # noqa: N802
        return await self._result(wire.CREATE_CODE_CONTEXT, options=_opts(options, kw))

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
        return await self._result(wire.RUN_CODE, **self._run_fields(code, _opts(options, kw)))

    async def runCodeStream(
        self, code: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> AsyncIterator[bytes]:  # noqa: N802
        return await self._stream(wire.RUN_CODE_STREAM, self._run_fields(code, _opts(options, kw)))

    async def listCodeContexts(self) -> list[dict[str, Any]]:  # noqa: N802
        return await self._result(wire.LIST_CODE_CONTEXTS)

    async def deleteCodeContext(self, contextId: Any) -> dict[str, Any]:  # noqa: N802, N803
        if isinstance(contextId, dict):
            contextId = contextId.get("id")
        return await self._result(wire.DELETE_CODE_CONTEXT, contextId=contextId)

    def __repr__(self) -> str:
        return f"<SandboxClient {self.id}>"


class SandboxBinding:
    __ploy_spec__ = SANDBOX_BINDING

    def __init__(self, ctx: BindingContext, options: SandboxOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.manager = SandboxManager(ctx, options)

    def get(self, id: str, options: dict[str, Any] | None = None, **kw: Any) -> SandboxClient:  # noqa: A002
        client = SandboxClient(self.manager, validate_id(id))
        source = _opts(options, kw).get("from")
        if source is not None:
            origin = forks.parse_from(source)
            if not self.manager.exists(client.id):
                self.manager.origins[client.id] = origin
        self.manager.pool.kick()
        return client

    async def close(self) -> None:
        await self.manager.close()
