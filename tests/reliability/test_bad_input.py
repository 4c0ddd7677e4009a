"""Bad input through the binding API is INVALID_ARGUMENT naming the argument, changes nothing, and the
next call works (issue 11, items 3 and 6). Session exec and plain exec are checked the same way."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient
from bindings.sandbox.client import SandboxSession

Run = Callable[..., Any]
Target = SandboxClient | SandboxSession

# (case, call, the argument the message must name)
CASES: list[tuple[str, Callable[[Target], Coroutine[Any, Any, Any]], str]] = [
    ("NUL in a command", lambda t: t.exec("echo a\0b"), "command"),
    ("NUL in a streamed command", lambda t: t.execStream("echo a\0b"), "command"),
    ("NUL in a process command", lambda t: t.startProcess("echo a\0b"), "command"),
    ("a command over 128 KiB", lambda t: t.exec("echo " + "x" * 140_000), "command"),
    ("a lone surrogate in a command", lambda t: t.exec("echo \ud800"), "command"),
    ("an env name with =", lambda t: t.exec("true", {"env": {"A=B": "x"}}), "env"),
    ("an env name with a newline", lambda t: t.exec("true", {"env": {"A\nB": "x"}}), "env"),
    ("NUL in a per-command env value", lambda t: t.exec("true", {"env": {"V": "a\0b"}}), "env.V"),
    ("NUL in a process env value", lambda t: t.startProcess("true", {"env": {"V": "a\0b"}}), "env.V"),
    ("an object as an env value", lambda t: t.exec("true", {"env": {"V": {"a": 1}}}), "env.V"),
    ("env as a list", lambda t: t.exec("true", {"env": ["A"]}), "env"),
    ("outputLimit 'abc'", lambda t: t.exec("true", {"outputLimit": "abc"}), "outputLimit"),
    ("outputLimit above its ceiling", lambda t: t.exec("true", {"outputLimit": 1 << 40}), "outputLimit"),
    ("timeoutMs NaN", lambda t: t.exec("true", {"timeoutMs": float("nan")}), "timeoutMs"),
    ("timeoutMs Infinity", lambda t: t.exec("true", {"timeoutMs": float("inf")}), "timeoutMs"),
    ("timeoutMs 'abc'", lambda t: t.startProcess("true", {"timeoutMs": "abc"}), "timeoutMs"),
    ("graceMs 'abc'", lambda t: t.killProcess("proc_0", {"graceMs": "abc"}), "graceMs"),
    ("a 2,100-level path", lambda t: t.writeFile("/".join(["a"] * 2100), "x"), "path"),
    ("a 2,100-level mkdir", lambda t: t.mkdir("d/" * 2100, {"recursive": True}), "path"),
    ("a lone surrogate in content", lambda t: t.writeFile("s.txt", "\ud800"), "content"),
    ("a lone surrogate in a path", lambda t: t.readFile("\udc00.txt"), "path"),
    ("NUL in a path", lambda t: t.listFiles("a\0b"), "path"),
    ("setEnvVars(5)", lambda t: t.setEnvVars(5), "vars"),  # type: ignore[arg-type]
    ("setEnvVars(['A'])", lambda t: t.setEnvVars(["A"]), "vars"),  # type: ignore[arg-type]
    ("NUL in a setEnvVars value", lambda t: t.setEnvVars({"V": "a\0b"}), "vars.V"),
    ("an object as a setEnvVars value", lambda t: t.setEnvVars({"X": {"a": 1}}), "vars.X"),
    ("a setEnvVars name with =", lambda t: t.setEnvVars({"A=B": "x"}), "vars"),
    ("a git depth 'abc'", lambda t: t.gitCheckout("git://h/r.git", {"depth": "abc"}), "depth"),
    ("a process id that is a number", lambda t: t.getProcessLogs(5), "id"),  # type: ignore[arg-type]
    # the operations and options of API parity (issue 13) go through the same checks
    ("an unknown signal", lambda t: t.killProcess("proc_0", "SIGFOO"), "signal"),
    ("a signal that is an object", lambda t: t.killProcess("proc_0", {"signal": {"a": 1}}), "signal"),
    ("killAll with an unknown signal", lambda t: t.killAllProcesses({"signal": "NOPE"}), "signal"),
    ("killAll graceMs NaN", lambda t: t.killAllProcesses({"graceMs": float("nan")}), "graceMs"),
    ("a processId with a slash", lambda t: t.startProcess("true", {"processId": "../x"}), "processId"),
    ("NUL in a processId", lambda t: t.startProcess("true", {"processId": "p\0"}), "processId"),
    ("NUL in exists", lambda t: t.exists("a\0b"), "path"),
    ("NUL in renameFile's new path", lambda t: t.renameFile("a.txt", "b\0.txt"), "newPath"),
    ("a deep moveFile destination", lambda t: t.moveFile("a.txt", "/".join(["a"] * 2100)), "destinationPath"),
    ("NUL in readFileStream", lambda t: t.readFileStream("a\0b"), "path"),
    ("a lone surrogate in exec stdin", lambda t: t.exec("cat", {"stdin": "\ud800"}), "stdin"),
    ("a lone surrogate in process stdin", lambda t: t.startProcess("cat", {"stdin": "\ud800"}), "stdin"),
    ("a writeStdin id that is a number", lambda t: t.writeStdin(5, "x"), "id"),  # type: ignore[arg-type]
    ("a lone surrogate in writeStdin", lambda t: t.writeStdin("proc_0", "\ud800"), "data"),
    ("NUL in a closeStdin id", lambda t: t.closeStdin("p\0"), "id"),
    ("NUL in a sessionId option", lambda t: t.exec("true", {"sessionId": "s\0"}), "sessionId"),
    (
        "a cloneTimeoutMs NaN",
        lambda t: t.gitCheckout("git://h/r.git", {"cloneTimeoutMs": float("nan")}),
        "cloneTimeoutMs",
    ),
    (
        "an execStream timeoutMs Infinity",
        lambda t: t.execStream("true", {"timeoutMs": float("inf")}),
        "timeoutMs",
    ),
]


@pytest.fixture(scope="module")
def session(run: Run, shared: SandboxClient) -> SandboxSession:
    return run(shared.createSession({"id": f"bad-input-{uuid.uuid4().hex[:6]}"}))


@pytest.mark.parametrize("scope", ["sandbox", "session"])
@pytest.mark.parametrize(("case", "call", "argument"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_invalid_argument_and_the_next_call_works(
    run: Run,
    shared: SandboxClient,
    session: SandboxSession,
    scope: str,
    case: str,
    call: Callable[[Target], Coroutine[Any, Any, Any]],
    argument: str,
) -> None:
    target: Target = shared if scope == "sandbox" else session
    with pytest.raises(PloyError) as info:

        async def go() -> None:
            result = await call(target)
            if hasattr(result, "__aiter__"):  # a stream: its first read
                async for _ in result:
                    break

        run(go())
    assert info.value.code == "INVALID_ARGUMENT", (case, info.value.code, info.value.message)
    assert info.value.message.startswith(argument), (case, info.value.message)
    assert run(target.exec("echo ok; echo ${V-unset}"))["stdout"] == "ok\nunset\n"


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda c: c.createSession({"commandTimeoutMs": float("nan")}), "commandTimeoutMs"),
        (lambda c: c.createSession({"commandTimeoutMs": "abc"}), "commandTimeoutMs"),
        (lambda c: c.createSession({"name": "a\0b"}), "name"),
        (lambda c: c.createSession({"cwd": "/".join(["a"] * 2100)}), "cwd"),
        (lambda c: c.getSession("s\0"), "sessionId"),
        (lambda c: c.deleteSession(5), "sessionId"),
    ],
)
def test_session_arguments_are_checked(
    run: Run,
    shared: SandboxClient,
    call: Callable[[SandboxClient], Coroutine[Any, Any, Any]],
    argument: str,
) -> None:
    with pytest.raises(PloyError) as info:
        run(call(shared))
    assert info.value.code == "INVALID_ARGUMENT", info.value.message
    assert info.value.message.startswith(argument), info.value.message
    assert run(shared.exec("echo ok"))["stdout"] == "ok\n"


def test_a_rejected_env_value_leaves_every_operation_working(run: Run, shared: SandboxClient) -> None:
    """A NUL in setEnvVars used to be stored, after which every exec, execStream, gitCheckout and
    startProcess failed with INTERNAL (and in a session, not even unsetting it recovered)."""
    for target in (shared, run(shared.createSession())):
        with pytest.raises(PloyError):
            run(target.setEnvVars({"BAD": "a\0b", "GOOD": "1"}))
        assert run(target.exec("echo ${GOOD-none}"))["stdout"] == "none\n"  # nothing of it was applied

        async def stream(t: SandboxClient | SandboxSession) -> bytes:
            return b"".join([c async for c in await t.execStream("echo streamed")])

        assert run(stream(target)) == b"streamed\n"
        proc = run(target.startProcess("echo started"))
        assert proc["status"] in ("running", "completed")


@pytest.mark.parametrize(
    ("request_", "argument"),
    [
        ({"op": "exec", "command": "echo a\0b"}, "command"),
        ({"op": "exec", "command": "true", "env": {"A=B": "1"}}, "env"),
        ({"op": "exec", "command": "true", "timeoutMs": "5"}, "timeoutMs"),
        ({"op": "exec", "command": "true", "outputLimit": "abc"}, "outputLimit"),
        ({"op": "setEnvVars", "vars": {"V": "a\0b"}}, "vars.V"),
        ({"op": "setEnvVars", "vars": ["A"]}, "vars"),
        ({"op": "mkdir", "path": "d/" * 2100, "recursive": True}, "path"),
        ({"op": "killProcess", "id": "proc_0", "graceMs": "abc"}, "graceMs"),
        ({"op": "createSession", "options": {"env": {"V": "a\0b"}}}, "env.V"),
        ({"op": "createSession", "options": {"commandTimeoutMs": "5"}}, "commandTimeoutMs"),
        ({"op": "killProcess", "id": "proc_0", "signal": "SIGFOO"}, "signal"),
        ({"op": "killAllProcesses", "graceMs": -1}, "graceMs"),
        ({"op": "startProcess", "command": "true", "processId": "../x"}, "processId"),
        ({"op": "startProcess", "command": "cat", "stdin": "\ud800"}, "stdin"),
        ({"op": "exec", "command": "cat", "stdin": "\ud800"}, "stdin"),
        ({"op": "renameFile", "oldPath": "a", "newPath": "b\0"}, "newPath"),
        ({"op": "moveFile", "sourcePath": "a\0", "destinationPath": "b"}, "sourcePath"),
    ],
)
def test_the_agent_checks_what_it_receives_the_same_way(
    run: Run, shared: SandboxClient, request_: dict[str, Any], argument: str
) -> None:
    """Requests that did not come through the client's checks (another host version, a bug) meet the
    same checks in the agent: INVALID_ARGUMENT, never INTERNAL."""
    mgr = shared._mgr
    with pytest.raises(PloyError) as info:
        run(mgr.call(shared.id, dict(request_)))
    assert info.value.code == "INVALID_ARGUMENT", info.value.message
    assert info.value.message.startswith(argument), info.value.message
    assert run(shared.exec("echo ok"))["stdout"] == "ok\n"


def test_a_deep_but_valid_path_works(run: Run, shared: SandboxClient) -> None:
    """2,000 levels fit in PATH_MAX: creating, writing and deleting them must work (the agent's
    makedirs and rmtree recursed, and 1,000 levels raised RecursionError: INTERNAL)."""
    base = f"/workspace/deep-{uuid.uuid4().hex[:6]}"
    deep = base + "/d" * 1990
    run(shared.mkdir(deep, {"recursive": True}))
    run(shared.writeFile(deep + "/f.txt", "x"))
    assert run(shared.readFile(deep + "/f.txt"))["content"] == "x"
    run(shared.deleteFile(base, {"recursive": True}))
    assert run(shared.exec(f"test -e {base} && echo left || echo gone"))["stdout"] == "gone\n"
