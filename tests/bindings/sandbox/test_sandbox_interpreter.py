"""The code interpreter against real containers (issue 14, item 4): contexts, runCode, runCodeStream.
Cloudflare's e2e cases (tests/e2e/code-interpreter-workflow.test.ts there) are among them."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxClient
from tests.bindings.sandbox.helpers import containers

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


@pytest.fixture(scope="module")
def box(bindings: Any) -> SandboxClient:
    return bindings.make("interpreter").get("interpreter")


@pytest.fixture(scope="module")
def py(run: Run, box: SandboxClient) -> dict[str, Any]:
    return dict(run(box.createCodeContext({"language": "python"})))


@pytest.fixture(scope="module")
def js(run: Run, box: SandboxClient) -> dict[str, Any]:
    return dict(run(box.createCodeContext({"language": "javascript"})))


def text(execution: dict[str, Any]) -> str:
    assert "error" not in execution, execution
    return "".join(r.get("text", "") for r in execution["results"])


def code_of(run: Run, coro: Coroutine[Any, Any, Any]) -> str:
    with pytest.raises(PloyError) as info:
        run(coro)
    return info.value.code


def test_python_state_results_logs_and_errors(run: Run, box: SandboxClient, py: dict[str, Any]) -> None:
    assert set(py) == {"id", "language", "cwd", "createdAt", "lastUsed"} and py["cwd"] == "/workspace"
    first = run(box.runCode('print("Hello from Python!")', {"context": py}))
    assert first["logs"] == {"stdout": ["Hello from Python!\n"], "stderr": []} and first["results"] == []
    assert first["code"] == 'print("Hello from Python!")' and "error" not in first
    run(box.runCode("import math\nx = 41", {"context": py}))
    assert text(run(box.runCode("x + 1", {"context": py["id"]}))) == "42"  # an id works as the context too
    assert text(run(box.runCode("math.sqrt(16)", {"context": py}))) == "4.0"
    assert run(box.runCode("{'a': [1, 2]}", {"context": py}))["results"] == [
        {"json": {"a": [1, 2]}, "text": "{'a': [1, 2]}"}
    ]
    awaited = run(box.runCode("import asyncio\nawait asyncio.sleep(0.01)\n'awaited'", {"context": py}))
    assert text(awaited) == "'awaited'"
    err = run(box.runCode("import sys\nprint('before', file=sys.stderr)\nundefined_name", {"context": py}))
    assert err["logs"]["stderr"] == ["before\n"]
    assert err["error"]["name"] == "NameError" and "undefined_name" in err["error"]["value"]
    assert err["error"]["message"] == err["error"]["value"]
    assert err["error"]["traceback"][-1].startswith("NameError") and any(
        "<cell-" in t for t in err["error"]["traceback"]
    )
    assert not any("ctx_python" in line for line in err["error"]["traceback"])  # only the user's frames
    syntax = run(box.runCode("def f(:", {"context": py}))
    assert syntax["error"]["name"] == "SyntaxError"
    assert text(run(box.runCode("x", {"context": py}))) == "41"  # errors left the state alone


def test_python_rich_results(run: Run, box: SandboxClient, py: dict[str, Any]) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    code = (
        "class Chart:\n"
        "    def _repr_html_(self): return '<b>chart</b>'\n"
        f"    def _repr_png_(self): return {png!r}\n"
        "    def __repr__(self): return 'Chart()'\n"
        "display('shown first')\n"
        "Chart()"
    )
    results = run(box.runCode(code, {"context": py}))["results"]
    assert results[0] == {"text": "'shown first'"}
    assert results[1]["html"] == "<b>chart</b>" and results[1]["text"] == "Chart()"
    assert base64.b64decode(results[1]["png"]) == png


def test_javascript_state_await_promises_and_errors(run: Run, box: SandboxClient, js: dict[str, Any]) -> None:
    assert js["language"] == "javascript"
    first = run(box.runCode('console.log("Hello from JavaScript!");', {"context": js}))
    assert first["logs"]["stdout"] == ["Hello from JavaScript!\n"] and "error" not in first
    run(box.runCode("global.counter = 0;", {"context": js}))
    assert run(box.runCode("console.log(++global.counter);", {"context": js}))["logs"]["stdout"] == ["1\n"]
    assert (
        text(run(box.runCode("const result = await Promise.resolve(42);\nresult", {"context": js}))) == "42"
    )
    two = "const a = await Promise.resolve(10);\nconst b = await Promise.resolve(20);\na + b"
    assert text(run(box.runCode(two, {"context": js}))) == "30"
    assert (
        text(run(box.runCode("const a = 1; a", {"context": js}))) == "1"
    )  # re-running a cell's const is fine
    rejected = run(box.runCode('await Promise.reject(new Error("async error"))', {"context": js}))
    assert rejected["error"]["name"] == "Error" and rejected["error"]["value"] == "async error"
    data = run(box.runCode("const data = { status: 'success', value: 123 };\ndata", {"context": js}))
    assert data["results"][0]["json"] == {"status": "success", "value": 123}
    run(box.runCode("const persisted = await Promise.resolve(99);", {"context": js}))
    assert text(run(box.runCode("persisted", {"context": js}))) == "99"
    assert text(run(box.runCode("Promise.resolve(123)", {"context": js}))) == "123"
    iife = "(async () => { const v = await Promise.resolve('hello'); return v + ' world'; })()"
    assert text(run(box.runCode(iife, {"context": js}))) == "'hello world'"
    ref = run(box.runCode("console.log(undefinedVariable);", {"context": js}))
    assert ref["error"]["name"] == "ReferenceError" and ref["error"]["traceback"][0].startswith(
        "ReferenceError"
    )
    assert (
        text(run(box.runCode("function f() { return g() } function g() { return 7 } f()", {"context": js})))
        == "7"
    )
    assert (
        text(run(box.runCode("typeof fetch + ' ' + require('path').sep", {"context": js}))) == "'function /'"
    )


def test_javascript_contexts_start_from_the_images_node_snapshot(run: Run, box: SandboxClient) -> None:
    # the image made a startup snapshot of ctx_node.js with its own node, and records which node
    made_by = run(box.exec("cat /opt/ploy/ctx_node.blob.node"))["stdout"].strip()
    assert made_by == run(box.exec("readlink -f $(command -v node)"))["stdout"].strip()
    ctx = run(box.createCodeContext({"language": "javascript"}))
    # (a spare, if this context is one, has one argument more: its leash)
    probe = "[process.execArgv, process.argv[1].endsWith('/ctx_node.js'), process.argv[2].endsWith('.sock')]"
    exec_argv, script, socket = run(box.runCode(probe, {"context": ctx}))["results"][0]["json"]
    assert "--snapshot-blob" in exec_argv and script and socket  # argv as a script start has it
    # modules node 18 cannot snapshot load without a word on the cell's stderr; state and errors as ever
    loaded = run(
        box.runCode("const n = require('net'), h = require('http'); typeof n.createServer", {"context": ctx})
    )
    assert text(loaded) == "'function'" and loaded["logs"]["stderr"] == []
    assert text(run(box.runCode("typeof n", {"context": ctx}))) == "'object'"
    # each process from the snapshot seeds its own random numbers
    other = run(box.createCodeContext({"language": "javascript"}))
    draws = {text(run(box.runCode("Math.random()", {"context": c}))) for c in (ctx, other)}
    assert len(draws) == 2
    assert run(box.runCode("null.x", {"context": ctx}))["error"]["name"] == "TypeError"


def test_a_javascript_context_starts_without_the_snapshot_when_it_does_not_fit(
    run: Run, bindings: Any
) -> None:
    sb = bindings.make("ctx-nosnap").get("ctx-nosnap")
    probe = "process.execArgv.includes('--snapshot-blob') + ' ' + (1 + 1)"
    # made by another node (one installed later, say): not even tried
    run(sb.exec("echo /usr/local/bin/another-node > /opt/ploy/ctx_node.blob.node"))
    ctx = run(sb.createCodeContext({"language": "javascript"}))
    assert text(run(sb.runCode(probe, {"context": ctx}))) == "'false 2'"
    # recorded for this node but unusable (a node upgraded in place): the start falls back to a plain one
    run(
        sb.exec(
            "readlink -f $(command -v node) > /opt/ploy/ctx_node.blob.node && echo broken > /opt/ploy/ctx_node.blob"
        )
    )
    ctx = run(sb.createCodeContext({"language": "javascript", "env": {"NODE_X": "1"}}))  # no spare
    assert text(run(sb.runCode(probe, {"context": ctx}))) == "'false 2'"
    run(sb.destroy())


def test_default_contexts_per_language(run: Run, box: SandboxClient) -> None:
    run(box.runCode("shared_default = 5"))
    assert text(run(box.runCode("shared_default * 2"))) == "10"  # python by default, state kept
    assert text(run(box.runCode("1 + 1", {"language": "javascript"}))) == "2"
    ids = {c["id"] for c in run(box.listCodeContexts())}
    assert {"default-python", "default-javascript"} <= ids


def test_stream_sends_output_as_it_happens(run: Run, box: SandboxClient, py: dict[str, Any]) -> None:
    async def go() -> list[tuple[float, dict[str, Any]]]:
        stream = await box.runCodeStream(
            "import time\nfor i in range(3):\n    print(f'Step {i}', flush=True)\n    time.sleep(0.3)\n{'done': True}",
            {"context": py},
        )
        t0 = time.monotonic()
        out = []
        async for chunk in stream:
            for block in chunk.decode().split("\n\n"):
                if block.startswith("data: "):
                    out.append((time.monotonic() - t0, json.loads(block[6:])))
        return out

    events = run(go())
    kinds = [e["type"] for _, e in events]
    assert kinds == ["stdout", "stdout", "stdout", "result", "execution_complete"]
    assert [e["text"] for _, e in events[:3]] == ["Step 0\n", "Step 1\n", "Step 2\n"]
    assert events[0][0] < 0.25 and events[-1][0] > 0.5  # the first line came before the run was over
    assert events[3][1]["json"] == {"done": True}


def test_cancelling_a_stream_interrupts_the_code_and_keeps_the_context(
    run: Run, box: SandboxClient, py: dict[str, Any]
) -> None:
    async def go() -> None:
        stream = await box.runCodeStream(
            "import time\nkept = 1\nprint('go', flush=True)\ntime.sleep(60)", {"context": py}
        )
        await anext(aiter(stream))
        await stream.aclose()  # type: ignore[attr-defined]

    t = time.monotonic()
    run(go())
    assert text(run(box.runCode("kept + 1", {"context": py}))) == "2"
    assert time.monotonic() - t < 10


def test_timeouts_are_error_results_and_the_context_keeps_its_state(
    run: Run, box: SandboxClient, py: dict[str, Any], js: dict[str, Any]
) -> None:
    run(box.runCode("survivor = 'still here'", {"context": py}))
    t = time.monotonic()
    r = run(box.runCode("while True: pass", {"context": py, "timeoutMs": 500}))
    assert time.monotonic() - t < 5
    assert r["error"]["name"] == "TimeoutError" and "keeps its state" in r["error"]["value"]
    assert text(run(box.runCode("survivor", {"context": py}))) == "'still here'"
    run(box.runCode("var jsSurvivor = 3", {"context": js}))
    r = run(box.runCode("while (true) {}", {"context": js, "timeout": 500}))  # Cloudflare's option name
    assert r["error"]["name"] == "TimeoutError"
    assert text(run(box.runCode("jsSurvivor", {"context": js}))) == "3"


def test_contexts_are_isolated_parallel_and_each_runs_in_order(run: Run, box: SandboxClient) -> None:
    a, b = run(box.createCodeContext()), run(box.createCodeContext({"language": "python"}))
    run(box.runCode("only_in_a = 1", {"context": a}))
    assert run(box.runCode("only_in_a", {"context": b}))["error"]["name"] == "NameError"

    async def parallel() -> float:
        t = time.monotonic()
        await asyncio.gather(
            box.runCode("import time; time.sleep(1)", {"context": a}),
            box.runCode("import time; time.sleep(1)", {"context": b}),
        )
        return time.monotonic() - t

    assert run(parallel()) < 1.8
    # Cloudflare's bug #235: state leaked between JS contexts from the 11th on
    for i in range(12):
        ctx = run(box.createCodeContext({"language": "javascript"}))
        assert "error" not in run(box.runCode("const value = 2;", {"context": ctx})), i
        run(box.deleteCodeContext(ctx))
    counter = run(box.createCodeContext({"language": "javascript"}))
    run(box.runCode("let counter = 0;", {"context": counter}))

    async def increments() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(box.runCode("counter++; counter;", {"context": counter}) for _ in range(5))
            )
        )

    assert sorted(int(text(r)) for r in run(increments())) == [1, 2, 3, 4, 5]


def test_options_list_delete_and_errors(run: Run, box: SandboxClient) -> None:
    run(box.mkdir("/workspace/ctx-cwd"))
    ctx = run(
        box.createCodeContext({"language": "python", "cwd": "/workspace/ctx-cwd", "env": {"GREETING": "hi"}})
    )
    assert ctx["cwd"] == "/workspace/ctx-cwd"
    assert text(
        run(box.runCode("import os; os.getcwd() + ' ' + os.environ['GREETING']", {"context": ctx}))
    ) == ("'/workspace/ctx-cwd hi'")
    assert ctx["id"] in [c["id"] for c in run(box.listCodeContexts())]
    assert run(box.deleteCodeContext(ctx["id"])) == {"id": ctx["id"], "deleted": True}
    assert ctx["id"] not in [c["id"] for c in run(box.listCodeContexts())]
    assert code_of(run, box.runCode("1", {"context": ctx})) == "CONTEXT_NOT_FOUND"
    assert code_of(run, box.runCode("1", {"context": "fake-context-id-12345"})) == "CONTEXT_NOT_FOUND"
    assert code_of(run, box.deleteCodeContext("fake-id-99999")) == "CONTEXT_NOT_FOUND"
    assert code_of(run, box.createCodeContext({"language": "invalid-lang"})) == "INVALID_ARGUMENT"
    assert code_of(run, box.createCodeContext({"cwd": "/no/such/dir"})) == "NOT_FOUND"
    assert code_of(run, box.runCode(42)) == "INVALID_ARGUMENT"  # type: ignore[arg-type]


def test_a_context_survives_a_restarted_ploy_dev_and_says_when_it_is_lost(run: Run, bindings: Any) -> None:
    first = bindings.make("ctx-restart")
    ctx = run(first.get("ctx-restart").createCodeContext())
    run(first.get("ctx-restart").runCode("memory = [1, 2, 3]", {"context": ctx}))
    run(first.close())
    again = bindings.make("ctx-restart").get("ctx-restart")  # nothing of the old ploy dev in memory
    assert text(run(again.runCode("sum(memory)", {"context": ctx}))) == "6"
    run(again.runCode("default_state = 1"))
    # the sandbox stops (idle suspension, a crash): the processes and their state are gone, and it says so
    name = containers("ploy.id", "ctx-restart")[0].split()[0]
    subprocess.run(["podman", "stop", "-t", "0", name], check=True, capture_output=True)
    with pytest.raises(PloyError) as info:
        run(again.runCode("memory", {"context": ctx}))
    assert info.value.code == "CONTEXT_NOT_FOUND" and info.value.details["lost"] is True
    assert "lost" in info.value.message
    fresh_default = run(again.runCode("1"))
    assert "default python context was lost" in "".join(fresh_default["logs"]["stderr"])
    assert ctx["id"] not in [c["id"] for c in run(again.listCodeContexts())]


@pytest.mark.slow
def test_matplotlib_figures_become_png_results(run: Run, bindings: Any) -> None:
    """Needs Debian's mirror and PyPI from inside the sandbox (through the host's CA bundle): skipped
    when they cannot be reached. The default image has no pip; apt brings it (~3 s), pip matplotlib (~7 s)."""
    sb = bindings.make("matplotlib").get("matplotlib")
    install = run(
        sb.exec(
            "(command -v pip || (apt-get update -q && apt-get install -y -q --no-install-recommends python3-pip))"
            " >/dev/null && pip install --quiet --break-system-packages matplotlib",
            {"timeoutMs": 240000, "env": {"DEBIAN_FRONTEND": "noninteractive"}},
        ),
        timeout=300,
    )
    if install["exitCode"] != 0:
        pytest.skip(f"installing matplotlib failed (offline?): {install['stderr'][-300:]}")
    r = run(
        sb.runCode(
            "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('squares')\nplt.show()"
        )
    )
    pngs = [res["png"] for res in r["results"] if "png" in res]
    assert "error" not in r and len(pngs) == 1
    assert base64.b64decode(pngs[0]).startswith(b"\x89PNG\r\n\x1a\n")
