"""Host ops of 55_compression.js: a CompressionStream's or DecompressionStream's zlib, one chunk at a time.

Each stream owns a (de)compressor here, in `ctx.zlibs` under the id JS gave it, made on its first chunk
and freed when it finishes or fails (or by zlibFree when JS cancels or collects the stream).
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.js.host import JsHost

ZLIB_WBITS = {"gzip": 31, "deflate": 15, "deflate-raw": -15}
ZLIB_OUT_CHUNK = 1 << 20  # decompressed output reaches JS in pieces of at most this size


def zlib_step(zlibs: dict[int, Any], zid: int, mode: str, fmt: str, data: bytes, final: bool) -> list[bytes]:
    """Feed one chunk to stream `zid`'s (de)compressor (made on first use); at `final`, finish it.
    Raises zlib.error or ValueError for corrupt, truncated or trailing input (JS: TypeError)."""
    wbits = ZLIB_WBITS[fmt]
    if mode == "compress":
        c = zlibs.get(zid) or zlibs.setdefault(zid, zlib.compressobj(wbits=wbits))
        piece = c.compress(data)
        if final:
            piece += c.flush()
            del zlibs[zid]
        return [piece] if piece else []
    d = zlibs.get(zid) or zlibs.setdefault(zid, zlib.decompressobj(wbits=wbits))
    out: list[bytes] = []
    while data:
        if d.eof:
            raise ValueError("data after the end of the compressed stream")
        out.append(d.decompress(data, ZLIB_OUT_CHUNK))
        data = d.unconsumed_tail or d.unused_data
    if final:
        del zlibs[zid]
        out.append(d.flush())
        if not d.eof:
            raise ValueError("the compressed stream ended early")
    return [c for c in out if c]


def zlib_chunk(ctx: JsHost, op: list[Any]) -> None:
    """One chunk through the stream; the chunks out settle the op now."""
    _, op_id, zid, mode, fmt, data, final = op
    try:
        chunks = zlib_step(ctx.zlibs, zid, mode, fmt, data.encode("latin-1"), final)
    except (zlib.error, ValueError) as e:
        ctx.zlibs.pop(zid, None)
        what = "compress" if mode == "compress" else "decompress"
        info = {"name": "TypeError", "message": f"{what} ({fmt}) failed: {e}"}
        ctx.call_js(ctx.js_settle, op_id, False, json.dumps(info), False)
        return
    ctx.resolve(op_id, chunks)


def zlib_free(ctx: JsHost, op: list[Any]) -> None:
    ctx.zlibs.pop(op[1], None)


HOST_OPS = {"zlib": zlib_chunk, "zlibFree": zlib_free}
