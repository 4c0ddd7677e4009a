"""JsWorker.fetch calls per second for a hello worker, called directly (no HTTP).

Prints `name value unit` lines. Usage: python bench/js_overhead.py [seconds]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.http import Request  # noqa: E402
from runtime.workers.base import Limits  # noqa: E402
from runtime.workers.js_worker import JsWorker  # noqa: E402

HELLO = 'export default { fetch(request, env) { return new Response("Hello World!"); } };\n'
HELLO_ASYNC = """export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return Response.json({ path: url.pathname, ua: request.headers.get("user-agent") });
  },
};
"""


async def measure(worker: JsWorker, seconds: float, concurrency: int) -> float:
    headers = {"host": "localhost:8787", "user-agent": "bench", "accept": "*/*"}
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            resp = await worker.fetch(Request("http://localhost:8787/", headers=headers), "[bench]")
            await resp.arrayBuffer()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in (("hello", HELLO), ("hello_json_async", HELLO_ASYNC)):
            path = Path(tmp) / f"{name}.js"
            path.write_text(src)
            t0 = time.perf_counter()
            worker = await JsWorker.load(path, {}, Limits(), print)
            load_ms = (time.perf_counter() - t0) * 1000
            await measure(worker, 0.3, 1)  # warm up
            print(f"js_{name}_load {load_ms:.1f} ms")
            print(f"js_{name}_fetch_sequential {await measure(worker, seconds, 1):.0f} calls/s")
            print(f"js_{name}_fetch_concurrent32 {await measure(worker, seconds, 32):.0f} calls/s")
            await worker.close()


if __name__ == "__main__":
    asyncio.run(main())
