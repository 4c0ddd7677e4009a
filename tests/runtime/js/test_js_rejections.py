"""Errors nobody catches are logged with their stack, as browsers and workerd report them: unhandled
promise rejections (through the engine's rejection tracker), and exceptions thrown by queueMicrotask
and timer callbacks. Also: the web API objects a worker builds expose no internal fields."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.runtime.js.harness import JS_DIR, Harness, write_module

pytestmark = pytest.mark.asyncio

WORKER = """
export default {
  async fetch(request) {
    const p = new URL(request.url).pathname;
    if (p === "/reject") Promise.reject(new Error("boom"));
    if (p === "/async-throw") (async () => { await null; throw new TypeError("later"); })();
    if (p === "/handled-later") { const x = Promise.reject(new Error("handled")); await null; x.catch(() => {}); }
    if (p === "/microtask") queueMicrotask(() => { throw new RangeError("micro"); });
    if (p === "/timer") { setTimeout(() => { throw new Error("timer"); }, 1); await new Promise((r) => setTimeout(r, 20)); }
    if (p === "/value") Promise.reject(42);
    return new Response("ok");
  },
};
"""


async def _logs_of(h: Harness, path: str) -> list[str]:
    before = len(h.logs)
    resp = await h.request(path, prefix=f"[GET {path}]")
    assert await resp.text() == "ok"
    await asyncio.sleep(0.05)
    return h.logs[before:]


async def test_uncaught_errors_are_logged_with_their_stack(tmp_path: Path) -> None:
    h = await Harness.load(write_module(tmp_path, WORKER))
    try:
        src = str(tmp_path / "worker.js")
        assert await _logs_of(h, "/reject") == [
            f"[GET /reject] Uncaught (in promise) Error: boom\n    at fetch ({src}:5:45)"
        ]
        [line] = await _logs_of(h, "/async-throw")
        assert (
            line.startswith("[GET /async-throw] Uncaught (in promise) TypeError: later\n    at ")
            and src in line
        )
        assert await _logs_of(h, "/handled-later") == []
        [line] = await _logs_of(h, "/microtask")
        assert line.startswith("[GET /microtask] Uncaught RangeError: micro\n    at ") and src in line
        [line] = await _logs_of(h, "/timer")
        assert line.startswith("[GET /timer] Uncaught Error: timer\n    at ") and src in line
        assert await _logs_of(h, "/value") == ["[GET /value] Uncaught (in promise) 42"]
    finally:
        await h.close()


async def test_the_runtime_itself_leaves_no_unhandled_rejection() -> None:
    """Promises the standards mark as handled (a reader's closed, a pipe's internals) are not reported."""
    h = await Harness.load(JS_DIR / "eval_worker.js")
    try:
        await h.eval("""
            const rs = new ReadableStream({ start(c) { c.error(new Error("x")); } });
            await rs.getReader().read().catch(() => {});
            const w = new TransformStream().writable.getWriter();
            w.abort(new Error("ab")).catch(() => {});
            await new ReadableStream({ pull() { throw new Error("pull"); } }).pipeTo(new WritableStream()).catch(() => {});
            const ac = new AbortController();
            const piped = new ReadableStream().pipeTo(new WritableStream(), { signal: ac.signal });
            ac.abort();
            await piped.catch(() => {});
            await new Response(new ReadableStream({ start(c) { c.error(new Error("body")); } })).text().catch(() => {});
            const [a] = new ReadableStream({ start(c) { c.error(new Error("tee")); } }).tee();
            await a.getReader().read().catch(() => {});
            await new WritableStream({ write() { throw new Error("w"); } }).getWriter().write("a").catch(() => {});
            return null;
        """)
        await asyncio.sleep(0.05)
        assert h.logs == []
    finally:
        await h.close()


async def test_request_response_and_url_expose_no_internal_fields() -> None:
    h = await Harness.load(JS_DIR / "eval_worker.js")
    try:
        out = await h.eval("""
            const objs = [new Response("x"), Response.json({}), new Request("http://a/", { method: "POST", body: "b" }),
                          new URL("http://a/b?c"), new URLSearchParams("a=1"), new Headers({ a: "1" })];
            return [objs.map((o) => Object.keys(o)), objs.map((o) => Object.getOwnPropertyNames(o)),
                    objs.map((o) => JSON.stringify(o)), Object.keys(await (async (r) => r)(new Response(null, { status: 201 })))];
        """)
        assert out == [[[]] * 6, [[]] * 6, ["{}", "{}", "{}", '"http://a/b?c"', "{}", "{}"], []]
    finally:
        await h.close()


async def test_on_an_unknown_binding_the_cpu_limit_falls_back_to_the_bindings_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.workers import quickjs_hooks
    from runtime.workers.base import Limits

    monkeypatch.setattr(quickjs_hooks, "KNOWN_BINDINGS", ("9.9.",))
    h = await Harness.load(
        write_module(
            tmp_path,
            'export default { fetch(r) { if (r.url.endsWith("/loop")) for (;;) {} return new Response("ok"); } };',
        ),
        limits=Limits(cpu_ms=200, memory_mb=64),
    )
    try:
        assert h.worker._ctx is not None and h.worker._ctx.hooks is None
        from runtime.workers.base import WorkerError

        with pytest.raises(WorkerError, match="CPU time limit"):
            await h.request("/loop")
        assert await (await h.request("/")).text() == "ok"
    finally:
        await h.close()
