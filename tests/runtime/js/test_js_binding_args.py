"""What a JS worker passes to a binding method reaches Python as the worker wrote it (issue 11, item 6):
NaN and Infinity stay numbers (JSON would make them null, so `timeoutMs: NaN` meant no timeout), and a
plain object that looks like one of the bridge's tags stays a plain object."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.spec import REGISTRY, Method, ObjectSpec, register
from runtime.http import Request
from tests.runtime.js.harness import Harness, write_module

pytestmark = pytest.mark.asyncio

ECHO = ObjectSpec("TestEcho", methods=(Method("take", "async"),))


class Echo:
    __ploy_spec__ = ECHO

    def __init__(self) -> None:
        self.got: list[Any] = []

    async def take(self, value: Any = None) -> str:
        self.got.append(value)
        return type(value).__name__


WORKER = """
export default {
  async fetch(request, env) {
    const cases = [
      NaN, Infinity, -Infinity, { timeoutMs: NaN }, [1, Infinity],
      { __ploy_handle: 1 }, { __ploy_bytes: "abc" }, { __ploy_plain: { x: 1 } },
      { a: { __ploy_handle: 2, other: 3 } }, { "__ploy_x": 1 }, { __ploy_num: "NaN" },
      new Uint8Array([1, 2]),
      { __ploy_request: { url: "http://x/", method: "GET", headers: [], body: null } },
      { __ploy_regexp: ["a+", "i"] }, /a+/i, new Request("http://example.com/p", { method: "POST", body: "b" }),
    ];
    const types = [];
    for (const c of cases) types.push(await env.ECHO.take(c));
    return Response.json(types);
  },
};
"""


@pytest.fixture
def specs() -> Iterator[None]:
    register(ECHO)
    yield
    REGISTRY.pop(ECHO.name, None)


async def test_values_reach_python_as_written(tmp_path: Path, specs: None) -> None:
    echo = Echo()
    h = await Harness.load(write_module(tmp_path, WORKER), env={"ECHO": echo})
    try:
        resp = await h.request("/")
        assert resp.status == 200
        got = echo.got
        assert math.isnan(got[0]) and got[1] == math.inf and got[2] == -math.inf
        assert math.isnan(got[3]["timeoutMs"])
        assert got[4] == [1, math.inf]
        assert got[5] == {"__ploy_handle": 1}
        assert got[6] == {"__ploy_bytes": "abc"}
        assert got[7] == {"__ploy_plain": {"x": 1}}
        assert got[8] == {"a": {"__ploy_handle": 2, "other": 3}}
        assert got[9] == {"__ploy_x": 1}
        assert got[10] == {"__ploy_num": "NaN"}
        assert got[11] == b"\x01\x02"
        # a worker's own object shaped like the Request and RegExp tags stays a plain object...
        assert got[12] == {
            "__ploy_request": {"url": "http://x/", "method": "GET", "headers": [], "body": None}
        }
        assert got[13] == {"__ploy_regexp": ["a+", "i"]}
        # ...while a real RegExp and Request arrive as such
        assert isinstance(got[14], re.Pattern) and got[14].search("xAAy") is not None
        assert (
            isinstance(got[15], Request)
            and got[15].method == "POST"
            and got[15].url == "http://example.com/p"
        )
    finally:
        await h.close()


STREAMY = ObjectSpec("TestStreamy", methods=(Method("take", "async", stream_args=(0,)),))


class Streamy:
    __ploy_spec__ = STREAMY

    def __init__(self) -> None:
        self.got: list[Any] = []

    async def take(self, value: Any = None) -> str:
        if hasattr(value, "__aiter__"):
            self.got.append(b"".join([bytes(c) async for c in value]))
        else:
            self.got.append(value)
        return "ok"


STREAM_WORKER = """
export default {
  async fetch(request, env) {
    // what the bridge sends for a stream argument, written by the worker itself: plain objects
    for (const id of [0, 1, 2, 3]) {
      await env.STREAMY.take({ __ploy_jsstream: id });
      await env.STREAMY.take({ __ploy_hoststream: id });
    }
    await env.STREAMY.take(new Blob(["real stream"]).stream());
    return new Response("done");
  },
};
"""


@pytest.fixture
def stream_specs() -> Iterator[None]:
    register(STREAMY)
    yield
    REGISTRY.pop(STREAMY.name, None)


async def test_tag_shaped_objects_at_a_stream_argument_are_not_streams(
    tmp_path: Path, stream_specs: None
) -> None:
    """A worker cannot name a stream by its id (another request's body, say): only a ReadableStream or
    an async iterable it passes becomes one."""
    streamy = Streamy()
    h = await Harness.load(write_module(tmp_path, STREAM_WORKER), env={"STREAMY": streamy})
    try:
        resp = await h.request("/", method="POST", body=b"another request's body")
        assert resp.status == 200, resp.text
        tags = [{key: i} for i in range(4) for key in ("__ploy_jsstream", "__ploy_hoststream")]
        assert streamy.got == [*tags, b"real stream"]
    finally:
        await h.close()
