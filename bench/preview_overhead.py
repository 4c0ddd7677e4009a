"""What proxyToSandbox costs inside ploy, without HTTP in front and without a container behind: a JS
worker's fetch called directly (as bench/js_overhead.py does), forwarding with the previews' own
HttpForwarder to node's http server on loopback. The figure to watch is `proxied - forward_only -
hello`: the JS <-> host bridge of one proxied request (request out, Response back).

Prints `name value unit` lines, medians of ROUNDS sequential runs of 2,000 requests each.
Usage: python bench/preview_overhead.py [rounds]   (needs node)
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bindings.http_proxy import HttpForwarder  # noqa: E402
from bindings.sandbox.spec import SANDBOX_BINDING  # noqa: E402
from bindings.web import RequestLike, WebResponse  # noqa: E402
from runtime.http import Request  # noqa: E402
from runtime.workers.base import Limits  # noqa: E402
from runtime.workers.js_worker import JsWorker  # noqa: E402

WORKER = """export default {
  async fetch(request, env) {
    const proxied = await proxyToSandbox(request, env);
    if (proxied) return proxied;
    return new Response("ok");
  },
};
"""
PREVIEW_HOST = "8080-bench-0123456789abcdef.localhost:8787"
N = 2000


class Previews:
    """The part of SandboxBinding proxyToSandbox uses (preview_fetch), forwarding to one fixed port: the
    route lookup (three stat calls) is left out, the forwarder is the real one."""

    __ploy_spec__ = SANDBOX_BINDING

    def __init__(self, port: int) -> None:
        self.port = port
        self.forwarder = HttpForwarder()

    async def preview_fetch(self, request: RequestLike, client_host: str | None = None) -> WebResponse:
        return await self.forwarder.forward(request, "127.0.0.1", self.port, client_host)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def per_request_us(call: Any) -> float:
    started = time.perf_counter()
    for _ in range(N):
        await call()
    return (time.perf_counter() - started) / N * 1e6


async def main(rounds: int) -> None:
    port = free_port()
    script = f"require('http').createServer((q, r) => r.end('hello')).listen({port}, '127.0.0.1')"
    node = subprocess.Popen(["node", "-e", script])
    try:
        await asyncio.sleep(0.5)
        target = Previews(port)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "worker.js"
            path.write_text(WORKER)
            worker = await JsWorker.load(path, {"SANDBOX": target}, Limits(), print)

            async def through_worker(host: str, expect: bytes) -> None:
                r = await worker.fetch(Request(f"http://{host}/", "GET", headers={"host": host}), "[bench]")
                body = bytes(await r.arrayBuffer())
                assert body == expect, body

            forwarder = HttpForwarder()

            async def forward_only() -> None:
                host = PREVIEW_HOST
                r = await forwarder.forward(
                    Request(f"http://{host}/", "GET", headers={"host": host}), "127.0.0.1", port
                )
                assert r.body == b"hello", r.body

            cases = {
                "hello": lambda: through_worker("localhost:8787", b"ok"),
                "forward_only": forward_only,
                "proxied": lambda: through_worker(PREVIEW_HOST, b"hello"),
            }
            figures: dict[str, list[float]] = {name: [] for name in cases}
            for call in cases.values():
                await per_request_us(call)  # warm-up: connections pooled, code paths hot
            for _ in range(rounds):
                for name, call in cases.items():
                    figures[name].append(await per_request_us(call))
            medians = {name: statistics.median(v) for name, v in figures.items()}
            for name, value in medians.items():
                print(f"preview_overhead_{name} {value:.1f} us")
            bridge = medians["proxied"] - medians["forward_only"] - medians["hello"]
            print(f"preview_overhead_bridge {bridge:.1f} us")
            await worker.close()
            forwarder.close()
            target.forwarder.close()
    finally:
        node.kill()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
