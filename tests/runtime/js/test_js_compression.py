"""CompressionStream and DecompressionStream (the Compression Streams standard) over the host's zlib."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.http import Request
from tests.runtime.js.harness import Harness, write_module

pytestmark = pytest.mark.asyncio

WORKER = r"""
export default {
  async fetch(request) {
    const u = new URL(request.url);
    const fmt = u.searchParams.get("f");
    if (u.pathname === "/compress") return new Response(request.body.pipeThrough(new CompressionStream(fmt)));
    if (u.pathname === "/decompress") return new Response(request.body.pipeThrough(new DecompressionStream(fmt)));
    if (u.pathname === "/roundtrip") {
      const data = new TextEncoder().encode("héllo wörld ".repeat(20000));
      const squeezed = new Blob([data]).stream().pipeThrough(new CompressionStream(fmt));
      const back = new Uint8Array(await new Response(squeezed.pipeThrough(new DecompressionStream(fmt))).arrayBuffer());
      return Response.json({ same: back.length === data.length && back.every((b, i) => b === data[i]) });
    }
    if (u.pathname === "/errors") {
      const out = [];
      for (const f of ["br", "GZIP", undefined]) {
        try { new CompressionStream(f); out.push("ok"); } catch (e) { out.push(e.name); }
      }
      const cs = new CompressionStream("gzip");
      out.push(Object.prototype.toString.call(cs), cs.readable instanceof ReadableStream, cs.writable instanceof WritableStream);
      for (const bad of [new Uint8Array([1, 2, 3, 4, 5]), gzip_truncated(), gzip_with_trailer()]) {
        const ds = new DecompressionStream("gzip");
        const w = ds.writable.getWriter();
        w.write(bad).catch(() => {});
        w.close().catch(() => {});
        try { await new Response(ds.readable).arrayBuffer(); out.push("no error"); } catch (e) { out.push(e.name); }
      }
      const ds = new DecompressionStream("deflate");
      const r = ds.readable.getReader();
      const w = ds.writable.getWriter();
      const read = r.read();
      try { await w.write("not bytes"); out.push("no error"); } catch (e) { out.push(e.name); }
      try { await read; out.push("no error"); } catch (e) { out.push(e.name); }
      return Response.json(out);
    }
    return new Response("?", { status: 404 });
  },
};
function b64(s) { return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)); }
function gzip_truncated() { return b64("%s").slice(0, 10); }
function gzip_with_trailer() { const g = b64("%s"); const out = new Uint8Array(g.length + 3); out.set(g); out.set([1, 2, 3], g.length); return out; }
"""


@pytest_asyncio.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Harness]:
    import base64

    sample = base64.b64encode(gzip.compress(b"some text to squeeze " * 10)).decode()
    h = await Harness.load(write_module(tmp_path, WORKER % (sample, sample)))
    yield h
    await h.close()


async def body_of(h: Harness, url: str, data: bytes | None = None) -> bytes:
    resp = await h.worker.fetch(Request(url, method="POST" if data is not None else "GET", body=data), "[t]")
    return await resp.arrayBuffer()


@pytest.mark.parametrize(
    "fmt,decompress",
    [
        ("gzip", gzip.decompress),
        ("deflate", zlib.decompress),
        ("deflate-raw", lambda b: zlib.decompress(b, -15)),
    ],
)
async def test_compressed_output_is_what_zlib_reads(worker: Harness, fmt: str, decompress: object) -> None:
    data = b"hello compression " * 5000
    out = await body_of(worker, f"http://x/compress?f={fmt}", data)
    assert len(out) < len(data) // 20
    assert decompress(out) == data  # type: ignore[operator]


@pytest.mark.parametrize(
    "fmt,compress",
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate-raw", lambda b: zlib.compress(b)[2:-4]),
    ],
)
async def test_decompresses_what_zlib_wrote_even_when_large(
    worker: Harness, fmt: str, compress: object
) -> None:
    data = bytes(range(256)) * 12000  # 3 MB: reaches JS in several chunks
    assert await body_of(worker, f"http://x/decompress?f={fmt}", compress(data)) == data  # type: ignore[operator]
    assert worker.worker._ctx is not None and worker.worker._ctx.zlibs == {}


@pytest.mark.parametrize("fmt", ["gzip", "deflate", "deflate-raw"])
async def test_round_trip_inside_the_worker(worker: Harness, fmt: str) -> None:
    resp = await worker.request(f"/roundtrip?f={fmt}")
    assert await resp.json() == {"same": True}


async def test_bad_formats_and_bad_input_are_type_errors(worker: Harness) -> None:
    resp = await worker.request("/errors")
    assert await resp.json() == [
        "TypeError", "TypeError", "TypeError",
        "[object CompressionStream]", True, True,
        "TypeError", "TypeError", "TypeError",
        "TypeError", "TypeError",
    ]  # fmt: skip
    assert worker.worker._ctx is not None and worker.worker._ctx.zlibs == {}
