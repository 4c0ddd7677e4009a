"""The host ops JS sends and the table the host dispatches on stay in step: every op a runtime/js/*.js
file sends has a handler, declared in the module beside that file (`NN_<area>.js` -> `<area>.py`),
and every handler is for an op some file sends."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from collections import defaultdict
from pathlib import Path

import pytest

import runtime.js
from runtime.js import OP_MODULES, host_ops
from runtime.workers.js_source import JS_DIR
from tests.runtime.js.harness import Harness, write_module

# The functions that queue an op (00_bridge.js); a call with a literal name is an op sent.
SENDERS = ("hostCall", "hostCallText", "hostSend", "hostSendText", "emit")
SEND = re.compile(r"\b(hostCall|hostCallText|hostSend|hostSendText)\(\s*\"(\w+)\"|\bemit\(\[\s*\"(\w+)\"")
# The bridge's own forwarding of a caller's op; any other send without a literal name, or a sender
# passed around as a value, would hide its ops from this test.
FORWARDS = {
    ("00_bridge.js", "emit([op, id, ...args])"),
    ("00_bridge.js", "emit([op, ...args])"),
    ("00_bridge.js", 'hostSendText(op, id + "\\n" + text)'),
}
COMMENT = re.compile(r"(^|\s)//.*$", re.M)  # not the // of a URL in a string, which follows a ':'


def _code(path: Path) -> str:
    return COMMENT.sub(r"\1", path.read_text())


def _area(js_name: str) -> str:
    return js_name.split("_", 1)[1].removesuffix(".js")


def sent_ops() -> dict[str, set[str]]:
    """JS file -> the op names it sends."""
    ops: dict[str, set[str]] = defaultdict(set)
    for path in sorted(JS_DIR.glob("*.js")):
        code = _code(path)
        for m in SEND.finditer(code):
            ops[path.name].add(m.group(2) or m.group(3))
        for m in re.finditer(rf"\b({'|'.join(SENDERS)})\b", code):
            rest = code[m.end() :]
            if code[max(0, m.start() - 9) : m.start()] == "function ":
                continue  # its definition
            if SEND.match(code, m.start()):
                continue
            call = m.group(1) + rest[: rest.find(";")]
            assert (path.name, call) in FORWARDS, f"{path.name}: {call!r} sends an op this test cannot name"
    return ops


def test_every_op_js_sends_is_handled_beside_the_file_that_sends_it() -> None:
    sent = sent_ops()
    assert sum(len(v) for v in sent.values()) >= 18  # the scan finds them at all
    by_area = {m.__name__.rsplit(".", 1)[1]: m for m in OP_MODULES}
    for js_name, names in sent.items():
        module = by_area.get(_area(js_name))
        assert module is not None, (
            f"{js_name} sends {sorted(names)} but runtime/js/{_area(js_name)}.py is not an op module"
        )
        missing = names - set(module.HOST_OPS)
        assert not missing, f"{js_name} sends {sorted(missing)}, which {module.__name__} does not declare"


def test_every_handler_is_for_an_op_some_js_file_sends() -> None:
    sent = sent_ops()
    for module in OP_MODULES:
        area = module.__name__.rsplit(".", 1)[1]
        js_files = [p.name for p in JS_DIR.glob(f"[0-9][0-9]_{area}.js")]
        assert len(js_files) == 1, f"{module.__name__} has no NN_{area}.js beside it"
        unused = set(module.HOST_OPS) - sent.get(js_files[0], set())
        assert not unused, f"{module.__name__} declares {sorted(unused)}, which {js_files[0]} never sends"
    all_sent = set().union(*sent.values())
    assert set(host_ops()) == all_sent


def test_every_module_with_host_ops_is_in_the_table() -> None:
    for info in pkgutil.iter_modules(runtime.js.__path__):
        module = importlib.import_module(f"runtime.js.{info.name}")
        if hasattr(module, "HOST_OPS"):
            assert module in OP_MODULES, (
                f"runtime/js/{info.name}.py declares HOST_OPS but is not in OP_MODULES"
            )


@pytest.mark.asyncio
async def test_an_unknown_op_is_logged_and_the_worker_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = await Harness.load(
        write_module(tmp_path, 'export default { fetch() { return new Response("ok"); } };')
    )
    try:
        ctx = h.worker._ctx
        assert ctx is not None
        with caplog.at_level(logging.ERROR, logger="ploy.js"):
            ctx._dispatch(["noSuchOp", 1])
        assert [r.getMessage() for r in caplog.records] == ["ploy: unknown JS host op 'noSuchOp'"]
        assert await (await h.request("/")).text() == "ok"
    finally:
        await h.close()
