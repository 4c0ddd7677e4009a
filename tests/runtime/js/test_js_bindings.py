"""Binding objects reach JS as proxies built generically from their ObjectSpec.

A tiny spec'd Python class stands in for a real binding: sync methods returning child objects,
async methods with JSON and bytes, stream methods (pulled on demand, cancellable), PloyError codes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.errors import NotFound, PloyError
from bindings.spec import REGISTRY, Method, ObjectSpec, register
from runtime.workers.base import WorkerError
from tests.runtime.js.harness import Harness, write_module

pytestmark = pytest.mark.asyncio

CHILD = ObjectSpec(
    "TestChild",
    methods=(
        Method("hello", "async"),
        Method("echoBytes", "async"),
        Method("count", "stream"),
        Method("fail", "async"),
        Method("sink", "async", stream_args=(1,)),
    ),
    props=("name", "upper"),
)
_get = Method("get", "sync", returns="TestChild", props_from_args=("name",))
BINDING = ObjectSpec(
    "TestBinding",
    methods=(
        _get,
        Method("create", "async", returns="TestChild"),
        Method("calls", "async"),
    ),
)


class Child:
    __ploy_spec__ = CHILD

    def __init__(self, owner: Binding, name: str) -> None:
        self.owner = owner
        self.name = name
        self.upper = name.upper()  # a prop JS only learns when the host has run get()

    async def hello(self, greeting: str = "hello", options: dict[str, Any] | None = None) -> dict[str, Any]:
        self.owner.log.append(f"hello:{self.name}")
        await asyncio.sleep(0.01)
        return {"text": f"{greeting} from {self.name}", "options": options, "n": None}

    async def echoBytes(self, data: bytes) -> bytes:  # noqa: N802
        assert isinstance(data, bytes)
        return data[::-1]

    async def count(self, upto: int) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            try:
                for i in range(upto):
                    self.owner.log.append(f"yield:{i}")
                    yield f"{i}\n".encode()
                    await asyncio.sleep(0.005)
            finally:
                self.owner.log.append("closed")

        return gen()

    async def sink(self, how: str, data: Any) -> dict[str, Any]:
        """Reads a stream argument: all of it, or (how="fail") nothing before failing, or one chunk."""
        if how == "fail":
            raise PloyError("refused before reading", code="INVALID_ARGUMENT")
        if isinstance(data, (bytes, str)):
            return {"plain": data if isinstance(data, str) else list(data)}
        sizes = []
        async for chunk in data:
            assert isinstance(chunk, bytes)
            self.owner.log.append(f"got:{len(chunk)}")
            sizes.append(len(chunk))
            if how == "one":
                break
            self.owner.log.append(hashlib.sha256(chunk).hexdigest()[:16])
        return {"chunks": len(sizes), "bytes": sum(sizes), "type": type(data).__name__}

    async def fail(self, code: str) -> None:
        if code == "NOT_FOUND":
            raise NotFound("no such thing", path="/x")
        if code == "BUG":
            raise RuntimeError("kaput")
        raise PloyError("custom", code=code)


class Binding:
    __ploy_spec__ = BINDING

    def __init__(self) -> None:
        self.log: list[str] = []

    def get(self, name: str) -> Child:
        if not name:
            raise PloyError("a name is required", code="INVALID_ARGUMENT")
        self.log.append(f"get:{name}")
        return Child(self, name)

    async def create(self, name: str) -> Child:
        return Child(self, name)

    async def calls(self) -> list[str]:
        return self.log


WORKER = """
export default {
  async fetch(request, env) {
    const p = new URL(request.url).pathname;
    if (p === "/sync") {
      const child = env.TEST.get("alpha");
      const before = child.name;              // known at once: the spec says `name` is get's argument
      const upperBefore = child.upper;        // not derivable from the arguments: arrives a tick later
      const res = await child.hello("hi", { cwd: "/tmp", bytes: false });
      return Response.json({ before: before ?? null, after: child.name, upperBefore: upperBefore ?? null, upper: child.upper,
                             res, tag: Object.prototype.toString.call(child) });
    }
    if (p === "/create") {
      const child = await env.TEST.create("beta");
      return Response.json({ name: child.name, res: await child.hello() });
    }
    if (p === "/bytes") {
      const out = await env.TEST.get("b").echoBytes(new Uint8Array([1, 2, 3]));
      return Response.json({ isU8: out instanceof Uint8Array, out: Array.from(out) });
    }
    if (p === "/errors") {
      const child = env.TEST.get("e");
      const out = {};
      for (const code of ["NOT_FOUND", "TIMEOUT", "BUG"]) {
        try { await child.fail(code); } catch (e) { out[code] = { isError: e instanceof Error, name: e.name, code: e.code, message: e.message, path: e.path }; }
      }
      try { await env.TEST.get("").hello(); } catch (e) { out.sync = e.code; }
      try { await child.fail(); } catch (e) { out.missing = { code: e.code, message: e.message }; }
      try { await child.fail("A", "B", "C"); } catch (e) { out.extra = e.code; }
      return Response.json(out);
    }
    if (p === "/stream") {
      return new Response(await env.TEST.get("s").count(3));
    }
    if (p === "/stream-js") {
      const stream = await env.TEST.get("s").count(5);
      const reader = stream.getReader();
      const first = await reader.read();
      await reader.cancel();
      return Response.json({ first: new TextDecoder().decode(first.value), isStream: stream instanceof ReadableStream });
    }
    if (p === "/sink") {
      const child = env.TEST.get("k");
      const out = {};
      let pulled = 0;
      const rs = () => new ReadableStream({
        pull(c) { if (pulled++ < 4) c.enqueue(new Uint8Array(1000).fill(pulled)); else c.close(); },
      });
      out.readable = await child.sink("all", rs());
      out.pulledAll = pulled;
      async function* gen() { yield "text"; yield new Uint8Array(3); yield new Uint16Array(2); }
      out.generator = await child.sink("all", gen());
      out.plain = await child.sink("all", "just a string");
      // a big chunk (taken as base64, not in the op's JSON) with every byte value, NULs included
      const big = new Uint8Array(70000).map((_, i) => (i * 31) & 255);
      out.big = await child.sink("all", (async function* () { yield big; })());
      // a method that fails before reading: the stream is cancelled, not left locked and pulled later
      let cancelled = null;
      const refused = new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(1)); }, cancel(r) { cancelled = String(r && r.name); } });
      try { await child.sink("fail", refused); } catch (e) { out.failCode = e.code; }
      await new Promise((r) => setTimeout(r, 10));
      out.cancelled = cancelled;
      // the method stops after one chunk: the rest is never produced
      pulled = 0;
      out.one = await child.sink("one", rs());
      await new Promise((r) => setTimeout(r, 10));
      out.pulledOne = pulled;
      // a host stream handed back untouched: its bytes never enter JS
      out.passthrough = await child.sink("all", await env.TEST.get("s").count(3));
      try { await child.sink("all", (async function* () { yield 42; })()); } catch (e) { out.badChunk = { name: e.name, message: e.message }; }
      const locked = rs(); locked.getReader();
      try { await child.sink("all", locked); } catch (e) { out.locked = e.name; }
      return Response.json(out);
    }
    if (p === "/calls") return Response.json(await env.TEST.calls());
    return Response.json({ keys: Object.keys(env), plain: env.PLAIN, type: typeof env.TEST.get });
  },
};
"""


@pytest.fixture
def specs() -> Iterator[None]:
    register(CHILD, BINDING)
    yield
    REGISTRY.pop(CHILD.name, None)
    REGISTRY.pop(BINDING.name, None)


async def _harness(tmp_path: Path) -> tuple[Harness, Binding]:
    binding = Binding()
    h = await Harness.load(write_module(tmp_path, WORKER), env={"TEST": binding, "PLAIN": "a string var"})
    return h, binding


async def test_env_has_plain_vars_and_proxies(tmp_path: Path, specs: None) -> None:
    h, _ = await _harness(tmp_path)
    try:
        assert await (await h.request("/")).json() == {
            "keys": ["TEST", "PLAIN"],
            "plain": "a string var",
            "type": "function",
        }
    finally:
        await h.close()


async def test_sync_method_returns_a_lazy_child_proxy(tmp_path: Path, specs: None) -> None:
    h, binding = await _harness(tmp_path)
    try:
        out = await (await h.request("/sync")).json()
        assert out["before"] == "alpha" and out["after"] == "alpha"
        assert out["upperBefore"] is None and out["upper"] == "ALPHA"
        assert out["res"] == {"text": "hi from alpha", "options": {"cwd": "/tmp", "bytes": False}, "n": None}
        assert out["tag"] == "[object TestChild]"
        assert binding.log == ["get:alpha", "hello:alpha"]
        out = await (await h.request("/create")).json()
        assert out == {
            "name": "beta",
            "res": {"text": "hello from beta", "options": None, "n": None},
        }  # async: all props
    finally:
        await h.close()


async def test_bytes_cross_both_ways(tmp_path: Path, specs: None) -> None:
    h, _ = await _harness(tmp_path)
    try:
        assert await (await h.request("/bytes")).json() == {"isU8": True, "out": [3, 2, 1]}
    finally:
        await h.close()


async def test_errors_keep_their_code(tmp_path: Path, specs: None) -> None:
    h, _ = await _harness(tmp_path)
    try:
        out = await (await h.request("/errors")).json()
        assert out["NOT_FOUND"] == {
            "isError": True, "name": "PloyError", "code": "NOT_FOUND", "message": "no such thing", "path": "/x",
        }  # fmt: skip
        assert out["TIMEOUT"]["code"] == "TIMEOUT"
        assert out["BUG"]["code"] == "INTERNAL" and "kaput" in out["BUG"]["message"]
        assert out["sync"] == "INVALID_ARGUMENT"  # a failing sync call rejects the first async use
        # Wrong arity is the caller's mistake, not a ploy bug: INVALID_ARGUMENT naming the method.
        assert out["missing"]["code"] == "INVALID_ARGUMENT" and "fail()" in out["missing"]["message"]
        assert out["extra"] == "INVALID_ARGUMENT"
    finally:
        await h.close()


async def test_stream_method_is_pulled_on_demand(tmp_path: Path, specs: None) -> None:
    h, binding = await _harness(tmp_path)
    try:
        resp = await h.request("/stream")
        body = resp._body
        assert binding.log == ["get:s"]  # nothing produced before the server reads
        chunks = [c async for c in body]  # type: ignore[union-attr]
        assert b"".join(chunks) == b"0\n1\n2\n"
        assert binding.log[-1] == "closed"

        binding.log.clear()
        out = await (await h.request("/stream-js")).json()
        assert out == {"first": "0\n", "isStream": True}
        await asyncio.sleep(0.05)
        # one chunk read, then cancel closed the Python iterator: not all 5 were produced
        assert binding.log == ["get:s", "yield:0", "closed"]
    finally:
        await h.close()


async def test_stream_arguments_are_pulled_by_the_host(tmp_path: Path, specs: None) -> None:
    """A spec'd stream argument (a ReadableStream or an async iterable) reaches the method as an async
    iterator of bytes the host pulls chunk by chunk; one the method leaves unread is cancelled."""
    h, binding = await _harness(tmp_path)
    try:
        out = await (await h.request("/sink")).json()
        assert out["readable"] == {"chunks": 4, "bytes": 4000, "type": "JsBodyStream"}
        assert out["pulledAll"] == 5
        assert out["generator"] == {"chunks": 3, "bytes": 4 + 3 + 4, "type": "JsBodyStream"}
        assert out["plain"] == {"plain": "just a string"}
        assert out["big"] == {"chunks": 1, "bytes": 70000, "type": "JsBodyStream"}
        big = bytes((i * 31) & 255 for i in range(70000))
        assert hashlib.sha256(big).hexdigest()[:16] in binding.log
        assert out["failCode"] == "INVALID_ARGUMENT" and out["cancelled"] == "AbortError"
        assert out["one"]["chunks"] == 1 and out["pulledOne"] <= 3  # not all 4 and the close
        assert out["passthrough"] == {"chunks": 3, "bytes": 6, "type": "HostStream"}
        # the stream's own error rejects the call, as JS threw it (not as a ploy bug)
        assert out["badChunk"]["name"] == "TypeError"
        assert out["badChunk"]["message"].startswith("TestChild.sink: a stream chunk must be")
        assert out["locked"] == "TypeError"
    finally:
        await h.close()


UNCAUGHT = """export default {
  async fetch(request, env) {
    const child = env.TEST.get("e");
    await child.fail("NOT_FOUND");
    return new Response("unreachable");
  },
};
"""


async def test_uncaught_binding_error_points_at_the_calling_line(tmp_path: Path, specs: None) -> None:
    """The 500's stack must lead the user to their own `await sandbox.x()` line, not ploy's bridge."""
    h = await Harness.load(write_module(tmp_path, UNCAUGHT, "app.js"), env={"TEST": Binding()})
    try:
        with pytest.raises(WorkerError) as info:
            await h.request("/")
        assert "no such thing" in info.value.stack
        assert "app.js:4" in info.value.stack, info.value.stack
    finally:
        await h.close()
