"""The request path's own formats: a response crosses to the host as a text op (lines, the body
JSON-quoted or, for Response.json, as it is); a long one is a rope string that the host takes through
take(); a UTF-8 request body is decoded by the host, other bytes cross as latin-1; a streamed body is
read on while its stream has chunks ready and reaches the host in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.runtime.js.harness import Harness, write_module

pytestmark = pytest.mark.asyncio

ECHO = """
export default {
  async fetch(request) {
    const u = new URL(request.url);
    const n = Number(u.searchParams.get("n") || 0);
    if (u.pathname === "/text") return new Response("x".repeat(n) + "\\u00e9\\0\\ud800", { headers: { "X-Long": "v".repeat(n) } });
    if (u.pathname === "/json") return Response.json({ s: "y".repeat(n), nul: "\\0", lone: "\\ud800" }, { status: 201 });
    if (u.pathname === "/body") {
      const bytes = new Uint8Array(await request.clone().arrayBuffer());
      return Response.json({ text: await request.text(), bytes: Array.from(bytes) });
    }
    if (u.pathname === "/bytes") {
      // every byte value, chunks of several sizes and kinds, one buffer refilled by every pull
      const reused = new Uint8Array(300);
      const parts = [];
      return new Response(new ReadableStream({
        pull(c) {
          if (parts.length === n) { c.close(); return; }
          const k = parts.length;
          reused.fill(k % 256);
          const all = Uint8Array.from({ length: 256 + k * 997 }, (_, j) => (j * 7 + k) % 256);
          c.enqueue(reused); c.enqueue(all); c.enqueue("é\\0" + k); c.enqueue(new Uint16Array([k, 65535]));
          c.enqueue(new Uint8Array(0)); c.enqueue(all.subarray(3, 9).buffer.slice(0));
          parts.push(k);
        },
      }));
    }
    if (u.pathname === "/stream") {
      let i = 0;
      const chunk = new TextEncoder().encode("chunk\\n");
      return new Response(new ReadableStream({ pull(c) { if (i++ < n) c.enqueue(chunk); else c.close(); } }));
    }
    return new Response("?", { status: 404 });
  },
};
"""


@pytest_asyncio.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness.load(write_module(tmp_path, ECHO))
    yield harness
    await harness.close()


@pytest.mark.parametrize("n", [0, 100, 511, 513, 9000, 100_000])
async def test_text_bodies_and_headers_of_any_length_cross_whole(h: Harness, n: int) -> None:
    resp = await h.request(f"/text?n={n}")
    assert await resp.arrayBuffer() == ("x" * n + "\u00e9\0\ud800").encode("utf-8", "surrogatepass")
    assert resp.headers.get("x-long") == "v" * n
    assert resp.headers.get("content-type") == "text/plain;charset=UTF-8"


@pytest.mark.parametrize("n", [0, 600, 100_000])
async def test_response_json_crosses_as_it_is(h: Harness, n: int) -> None:
    resp = await h.request(f"/json?n={n}")
    assert resp.status == 201 and resp.headers.get("content-type") == "application/json"
    assert await resp.arrayBuffer() == ('{"s":"' + "y" * n + '","nul":"\\u0000","lone":"\\ud800"}').encode()


@pytest.mark.parametrize("body", ['{"a": "é"}'.encode(), b"\xff\x00\xfe", "\ufeffbom".encode()])
async def test_request_bodies_read_the_same_whether_utf8_or_not(h: Harness, body: bytes) -> None:
    resp = await h.request("/body", method="POST", body=body)
    out = await resp.json()
    assert out["bytes"] == list(body)
    assert out["text"] == body.decode("utf-8", "replace").removeprefix("\ufeff")


def _expected_bytes(n: int) -> bytes:
    out = bytearray()
    for k in range(n):
        every = bytes((j * 7 + k) % 256 for j in range(256 + k * 997))
        out += bytes([k % 256]) * 300 + every + f"é\0{k}".encode() + k.to_bytes(2, "little") + b"\xff\xff"
        out += every  # a buffer slice of 6 bytes from offset 3 is whole ArrayBuffer, not the view
    return bytes(out)


@pytest.mark.parametrize("fast", [True, False], ids=["hooks", "no-hooks"])
async def test_streamed_bytes_cross_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """Bytes leave JS through the QuickJS hooks (one copy) or, on a binding without them, as latin-1:
    either way every byte value arrives as enqueued, also from a buffer the source refills on its next pull."""
    from runtime.workers import quickjs_hooks

    if not fast:
        monkeypatch.setattr(quickjs_hooks, "KNOWN_BINDINGS", ("9.9.",))
    harness = await Harness.load(write_module(tmp_path, ECHO))
    try:
        assert (harness.worker._ctx is not None and harness.worker._ctx.hooks is not None) == fast
        resp = await harness.request("/bytes?n=40")
        assert await resp.arrayBuffer() == _expected_bytes(40)
    finally:
        await harness.close()


async def test_a_stream_of_small_chunks_reaches_the_host_in_batches(h: Harness) -> None:
    resp = await h.request("/stream?n=1000")
    batches = [chunk async for chunk in resp._body]  # type: ignore[union-attr]
    assert b"".join(batches) == b"chunk\n" * 1000
    assert len(batches) < 10  # not one crossing per chunk
