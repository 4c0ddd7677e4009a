"""The agent's ops are declared once (bindings/sandbox/agent/wire.py); the spec, the agent's handler
table and the host agree with that declaration. Fast: no Podman."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bindings.context import BindingContext
from bindings.errors import InvalidArgument
from bindings.sandbox import image
from bindings.sandbox.agent import wire
from bindings.sandbox.client import SandboxClient, SandboxProcess, SandboxSession
from bindings.sandbox.spec import SANDBOX_BINDING, SANDBOX_CLIENT, SANDBOX_PROCESS, SANDBOX_SESSION
from tests.conftest import REPO

HOST_MODULES = sorted(p for p in (REPO / "bindings" / "sandbox").glob("*.py"))


def test_every_spec_method_is_an_op_or_declared_host_only() -> None:
    methods = {m.name: m for spec in (SANDBOX_CLIENT, SANDBOX_SESSION) for m in spec.methods}
    for name, method in methods.items():
        if name in wire.HOST_ONLY:
            assert name not in wire.BY_NAME
            continue
        assert name in wire.BY_NAME, f"{name} has no agent op in wire.py (or add it to wire.HOST_ONLY)"
        assert (method.kind == "stream") == (wire.BY_NAME[name].moves == wire.STREAM), name
    all_methods = set(methods) | set(SANDBOX_BINDING.method_names)
    assert set(wire.HOST_ONLY) <= all_methods, "wire.HOST_ONLY names a method no spec has"
    assert set(SANDBOX_BINDING.method_names) <= set(wire.HOST_ONLY)


def test_session_scoped_ops_are_the_session_methods() -> None:
    assert {op.name for op in wire.OPS if op.session} == set(SANDBOX_SESSION.method_names)


def test_ops_are_declared_once() -> None:
    assert len({op.name for op in wire.OPS}) == len(wire.OPS)
    assert {op.moves for op in wire.OPS} <= {wire.CALL, wire.UPLOAD, wire.DOWNLOAD, wire.STREAM, wire.DUPLEX}
    declared = {v for k, v in vars(wire).items() if isinstance(v, wire.Op)}
    assert declared == set(wire.OPS)
    with pytest.raises(ValueError, match="missing"):
        wire.table({op: None for op in wire.OPS[1:]})


def test_the_shipped_agent_handles_exactly_the_declared_ops(tmp_path: Path) -> None:
    """Imports the agent as the image lays it out (its folder plus the shared modules), on this python."""
    agent = tmp_path / "agent"
    for dst, src in image._layer_files():
        if dst.startswith("agent/"):
            target = tmp_path / dst
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import server, wire; "
        "print(json.dumps([list(server.HANDLERS), [op.name for op in wire.OPS]]))"
    )
    env = {**os.environ, "PLOY_RUN_DIR": str(tmp_path / "run"), "PLOY_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run(
        [sys.executable, "-S", "-c", script, str(agent)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    handlers, ops = json.loads(out.stdout)
    assert handlers == ops == [op.name for op in wire.OPS]


class _Recorder:
    """Stands in for SandboxManager: records what the client sends and how."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], bytes | None]] = []

    async def call(
        self, sandbox_id: str, request: dict[str, Any], upload: Any = None
    ) -> tuple[Any, dict[bytes, bytearray]]:
        if upload is not None and not isinstance(upload, bytes):
            upload = b"".join([chunk async for chunk in upload])
        self.sent.append(("call", request, upload))
        if request["op"] == wire.LIST_PROCESSES.name:
            return [{"id": "p"}], {}
        return {"path": "/p", "sessionId": "s1", "cwd": "/", "count": 0, "id": "p"}, {b"D": bytearray(b"x")}

    async def stream(self, sandbox_id: str, request: dict[str, Any]) -> AsyncIterator[tuple[bytes, bytes]]:
        self.sent.append(("stream", request, None))

        async def frames() -> AsyncIterator[tuple[bytes, bytes]]:
            yield b"J", b"{}"

        return frames()

    async def duplex(self, sandbox_id: str, request: dict[str, Any]) -> Any:
        self.sent.append(("duplex", request, None))
        return None

    async def destroy(self, sandbox_id: str) -> bool:
        return True

    async def state_of(self, sandbox_id: str) -> dict[str, Any]:
        return {}

    async def metrics(self, sandbox_id: str) -> dict[str, Any]:
        return {}

    @property
    def previews(self) -> Any:
        return _HostPreviews()

    @property
    def ctx(self) -> Any:
        return BindingContext.for_project(Path("/tmp"))


class _HostPreviews:
    """The host-side preview records: what exposePort & co. use instead of agent ops."""

    forwarder = None

    async def expose(self, *args: Any) -> dict[str, Any]:
        return {"url": "http://x/", "port": args[1], "name": None}

    async def unexpose(self, *args: Any) -> None:
        return None

    def exposed(self, *args: Any) -> list[dict[str, Any]]:
        return []

    def token_matches(self, *args: Any) -> bool:
        return False

    async def target(self, sandbox_id: str) -> str:
        raise RuntimeError("not reached: the request below is no upgrade for the recorder")


class _Upgrade:
    method, url = "GET", "http://x/"
    headers = {"upgrade": "websocket"}

    async def arrayBuffer(self) -> bytes:  # noqa: N802
        return b""


ARGS: dict[str, tuple[Any, ...]] = {
    "exec": ("true",),
    "execStream": ("true",),
    "writeFile": ("f", "x"),
    "readFile": ("f",),
    "deleteFile": ("f",),
    "mkdir": ("d",),
    "listFiles": (".",),
    "gitCheckout": ("http://h/r.git",),
    "setEnvVars": ({"A": "1"},),
    "startProcess": ("true",),
    "listProcesses": (),
    "getProcess": ("p",),
    "getProcessLogs": ("p",),
    "streamProcessLogs": ("p",),
    "killProcess": ("p",),
    "createSession": (),
    "getSession": ("s1",),
    "destroy": (),
    "exists": ("f",),
    "renameFile": ("a", "b"),
    "moveFile": ("a", "d"),
    "readFileStream": ("f",),
    "killAllProcesses": (),
    "cleanupCompletedProcesses": (),
    "writeStdin": ("p", "x"),
    "closeStdin": ("p",),
    "deleteSession": ("s1",),
    "setSleepAfter": ("10m",),
    "setKeepAlive": (True,),
    "getState": (),
    "getMetrics": (),
    "exposePort": (8080,),
    "unexposePort": (8080,),
    "getExposedPorts": (),
    "isPortExposed": (8080,),
    "validatePortToken": (8080, "t"),
    "terminal": (_Upgrade(),),
    "watch": (".",),
    "checkChanges": (".",),
    "createCodeContext": (),
    "runCode": ("1+1",),
    "runCodeStream": ("1+1",),
    "listCodeContexts": (),
    "deleteCodeContext": ("ctx-1",),
}
# Host-only methods that need the host's backup store or Podman (and send helper ops, not their own
# name): test_sandbox_backups.py runs them against real containers.
NEEDS_HOST_STATE = {
    "createBackup",
    "restoreBackup",
    "listBackups",
    "deleteBackup",
    "snapshot",
    "listSnapshots",
    "deleteSnapshot",
}


@pytest.mark.parametrize("scope", ["client", "session"])
def test_every_request_the_client_sends_is_its_declared_op(scope: str) -> None:
    rec = _Recorder()
    client = SandboxClient(rec, "box")  # type: ignore[arg-type]
    target: SandboxClient | SandboxSession = client if scope == "client" else SandboxSession(client, "s1")
    spec = SANDBOX_CLIENT if scope == "client" else SANDBOX_SESSION

    async def each() -> None:
        for name in spec.method_names:
            if name == "wsConnect":
                continue  # host-only, and it needs a sandbox to connect to (test_sandbox_reach.py)
            if name in NEEDS_HOST_STATE:
                continue
            rec.sent.clear()
            result = await getattr(target, name)(*ARGS[name])
            if hasattr(result, "__aiter__"):
                async for _ in result:
                    pass
            if name in wire.HOST_ONLY:
                assert rec.sent == [], name
                continue
            op = wire.BY_NAME[name]
            assert len(rec.sent) == 1, name
            how, request, upload = rec.sent[0]
            assert request["op"] == name
            assert how == {wire.STREAM: "stream", wire.DUPLEX: "duplex"}.get(op.moves, "call"), name
            assert (upload is not None) == (op.moves == wire.UPLOAD), name
            assert ("session" in request) == (scope == "session"), name
            assert set(request) - {"op", "session"} <= set(op.fields), (name, request)

    asyncio.run(each())


OPTION_VALUES: dict[str, Any] = {
    "cwd": "/", "env": {"A": "1"}, "timeoutMs": 1000, "sessionId": "s1", "outputLimit": 10, "stdin": "x",
    "format": "sse", "encoding": "utf-8", "recursive": True, "includeHidden": True, "branch": "b", "depth": 1,
    "targetDir": "t", "cloneTimeoutMs": 5, "processId": "p1", "signal": "SIGTERM", "graceMs": 10, "id": "s2",
    "name": "n", "commandTimeoutMs": 100, "hostname": "h.localhost", "token": "tok", "cols": 100,
    "rows": 30, "shell": "/bin/sh", "mode": "tcp", "path": "/health", "status": 204, "intervalMs": 20,
    "include": ["*.ts"], "exclude": ["dist"], "since": "v1", "language": "python", "envVars": {"B": "2"},
    "context": "ctx-1", "timeout": 1000,
}  # fmt: skip
# options the host uses itself; they never reach the agent as fields of the same name
HOST_OPTIONS = {"sessionId", "format", "encoding", "cloneTimeoutMs"}
# other names of an option (Cloudflare's), sent under the option's own name
ALIASES = {"timeout": "timeoutMs"}


@pytest.mark.parametrize("scope", ["client", "session"])
def test_every_declared_option_is_accepted_and_sent_as_a_declared_field(scope: str) -> None:
    """With all its declared options given, a method still sends only fields wire.py declares, and
    each option the agent needs reaches it under its name (or as `session`)."""
    rec = _Recorder()
    client = SandboxClient(rec, "box")  # type: ignore[arg-type]
    target: SandboxClient | SandboxSession = client if scope == "client" else SandboxSession(client, "s1")
    spec = SANDBOX_CLIENT if scope == "client" else SANDBOX_SESSION

    async def each() -> None:
        for method in spec.methods:
            if not method.options or method.name in NEEDS_HOST_STATE:
                continue
            options = {name: OPTION_VALUES[name] for name in method.options}
            rec.sent.clear()
            result = await getattr(target, method.name)(*ARGS[method.name], options)
            if hasattr(result, "__aiter__"):
                async for _ in result:
                    pass
            if method.name in wire.HOST_ONLY:
                assert rec.sent == [], method.name
                continue
            _, request, _ = rec.sent[0]
            op = wire.BY_NAME.get(method.name)
            if op is None:
                continue
            assert set(request) - {"op", "session"} <= set(op.fields), (method.name, request)
            if op.session:
                assert request["session"] == "s1", method.name
            fields = request.get("options", request)  # createSession sends them as one object
            missing = {ALIASES.get(n, n) for n in method.options} - HOST_OPTIONS - set(fields)
            assert not missing, (method.name, missing)

    asyncio.run(each())


def test_the_process_objects_options_are_accepted_and_sent_as_declared_fields() -> None:
    """SandboxProcess's methods check their options as the client's do (Method.options), and what
    reaches the agent is declared in wire.py; kill is killProcess itself."""
    rec = _Recorder()
    proc = SandboxProcess(SandboxClient(rec, "box"), {"id": "p"})  # type: ignore[arg-type]
    args: dict[str, tuple[Any, ...]] = {"waitForPort": (8080,), "waitForExit": (), "kill": (None,)}

    async def each() -> None:
        for name, positional in args.items():
            method = SANDBOX_PROCESS.method(name)
            assert method.options is not None, name
            for given in method.options:
                rec.sent.clear()
                await getattr(proc, name)(*positional, {given: OPTION_VALUES.get(given, 1000)})
                _, request, _ = rec.sent[0]
                op = wire.BY_NAME[request["op"]]
                assert set(request) - {"op", "session"} <= set(op.fields), (name, request)
                if given not in HOST_OPTIONS:
                    assert ALIASES.get(given, given) in request, (name, given, request)
            with pytest.raises(InvalidArgument, match="unknown option 'timeoutMS'"):
                await getattr(proc, name)(*positional, {"timeoutMS": 5})
        with pytest.raises(InvalidArgument, match="unknown option"):
            await proc.waitForLog("x", {"intervalMs": 5})
        rec.sent.clear()
        await proc.kill("SIGINT", {"graceMs": 10})
        assert rec.sent[0][1] == {"op": "killProcess", "id": "p", "signal": "SIGINT", "graceMs": 10}

    asyncio.run(each())


def test_the_host_spells_no_op_name() -> None:
    """Host modules name ops through wire (wire.EXEC, wire.PING.name), never as string literals."""
    names = set(wire.BY_NAME)
    bad = []
    for path in HOST_MODULES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "op"
                        and isinstance(value, ast.Constant)
                    ):
                        bad.append(f"{path.name}:{node.lineno}: op {value.value!r}")
            elif isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Constant) and c.value in names for c in node.comparators
            ):
                bad.append(f"{path.name}:{node.lineno}: compares with an op name")
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "wire"
                and not hasattr(wire, node.attr)
            ):
                bad.append(f"{path.name}:{node.lineno}: wire.{node.attr} is not declared")
    assert not bad, "\n".join(bad)
