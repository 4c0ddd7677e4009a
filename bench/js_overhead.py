"""JsWorker.fetch calls per second for a hello worker, called directly (no HTTP); and where the time
of bench/hello.py's JSON API case goes: the case's worker beside one that ignores the same POST, both
called directly, and the case's JSON work alone in a bare QuickJS context (no ploy code at all).

Prints `name value unit` lines. Usage: python bench/js_overhead.py [seconds]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hello import order_json  # noqa: E402
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


POST_IGNORED = 'export default { async fetch(request) { return new Response("ok"); } };\n'
JSON_API = Path(__file__).resolve().parent / "workers" / "json-api" / "src" / "index.js"
# The JSON API worker's own work, step by step. The transform is cut out of the worker itself (what
# follows `await request.json();`, returning what it hands Response.json), so the two cannot drift.
ENGINE_STEPS = """
const BODY = %s;
const ORDER = JSON.parse(BODY);
function transform(order) {%s  return %s;
}
const OUT = transform(ORDER);
globalThis.steps = {
  parse: (n) => { for (let i = 0; i < n; i++) JSON.parse(BODY); },
  transform: (n) => { for (let i = 0; i < n; i++) transform(ORDER); },
  stringify: (n) => { for (let i = 0; i < n; i++) JSON.stringify(OUT); },
};
"""


def engine_steps(body: bytes) -> str:
    import json
    import re

    m = re.search(r"await request\.json\(\);(.*)return Response\.json\((.*)\);", JSON_API.read_text(), re.S)
    if m is None:
        raise RuntimeError(f"{JSON_API} no longer reads request.json() and returns Response.json(...)")
    return ENGINE_STEPS % (json.dumps(body.decode()), m.group(1), m.group(2))


async def cpu_per_call(worker: JsWorker, body: bytes, calls: int) -> float:
    """CPU µs of one JsWorker.fetch of a POST of `body`, the response read."""
    headers = {"host": "localhost:8787", "content-type": "application/json"}
    started = time.process_time()
    for _ in range(calls):
        resp = await worker.fetch(
            Request("http://localhost:8787/", method="POST", headers=headers, body=body), ""
        )
        await resp.arrayBuffer()
    return (time.process_time() - started) / calls * 1e6


async def json_case(tmp: str, rounds: int = 5, calls: int = 2000) -> None:
    import quickjs

    body = order_json()
    bare = quickjs.Context()
    bare.eval(engine_steps(body))
    workers = {}
    for name, src in (("post_ignored", POST_IGNORED), ("json_api", JSON_API.read_text())):
        path = Path(tmp) / f"{name}.js"
        path.write_text(src)
        workers[name] = await JsWorker.load(path, {}, Limits(), print)
    figures: dict[str, list[float]] = {}
    for _ in range(rounds):  # alternated, so that the machine's noise falls on all alike
        for name, worker in workers.items():
            figures.setdefault(f"js_{name}_cpu", []).append(await cpu_per_call(worker, body, calls))
        for step in ("parse", "transform", "stringify"):
            started = time.process_time()
            bare.eval(f"steps.{step}({calls})")
            figures.setdefault(f"quickjs_json_{step}", []).append(
                (time.process_time() - started) / calls * 1e6
            )
    med = {name: statistics.median(v) for name, v in figures.items()}
    for name, value in med.items():
        print(f"{name} {value:.1f} us")
    print(f"js_json_api_added {med['js_json_api_cpu'] - med['js_post_ignored_cpu']:.1f} us")
    engine = sum(med[f"quickjs_json_{s}"] for s in ("parse", "transform", "stringify"))
    print(f"quickjs_json_engine_total {engine:.1f} us")
    for worker in workers.values():
        await worker.close()


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
        await json_case(tmp)


if __name__ == "__main__":
    asyncio.run(main())
