"""Reaching what runs in a sandbox (issue 12), each figure beside its direct path in the same run.

    python bench/reach_bench.py [--requests 2000] [--duration 5] [--sockets 1000]

Prints one figure per line (`name value unit`):
  preview_get_p50_direct / _proxied / _added     a small GET to node's http server in a sandbox, straight
                                                 to the container's address vs through a JS worker's
                                                 proxyToSandbox (keep-alive, one at a time); --python:
                                                 the same through a Python worker
  preview_wrk_direct / _proxied / _ratio         req/s under `wrk -t2 -c32`, both paths
  ws_echo_p50                                    a message's round trip through a JS WebSocketPair echo
  ws_idle_rss_per_1000                           ploy dev's RSS growth holding 1,000 idle sockets
  terminal_echo_p50                              a keystroke to its echo through sandbox.terminal
  wait_for_port_after_listen_p50                 from listen() in the sandbox to waitForPort resolving
Needs Podman (the sandbox image), Debian's wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bindings.context import BindingContext, project_key  # noqa: E402
from bindings.sandbox import SandboxBinding  # noqa: E402
from bindings.sandbox.options import SandboxOptions  # noqa: E402

WORKER = """
export default {
  async fetch(request, env) {
    const proxied = await proxyToSandbox(request, env);
    if (proxied) return proxied;
    const url = new URL(request.url);
    if (url.pathname === "/ws") {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.addEventListener("message", (e) => server.send(e.data));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname === "/term") return env.SANDBOX.get("bench").terminal(request);
    return new Response("ok");
  },
};
"""
WORKER_PY = """
import asyncio
from runtime.http import Response, WebSocketPair, proxy_to_sandbox

tasks = set()


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def fetch(request, env):
    proxied = await proxy_to_sandbox(request, env)
    if proxied is not None:
        return proxied
    if request.path == "/ws":
        client, server = WebSocketPair()
        server.accept()
        task = asyncio.ensure_future(echo(server))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return Response(None, status=101, webSocket=client)
    if request.path == "/term":
        return await env.SANDBOX.get("bench").terminal(request)
    return Response("ok")
"""
NODE_SERVER = "require('http').createServer((q, r) => r.end('hello')).listen(8080, '0.0.0.0')"
LISTENER = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "time.sleep(0.3); s.bind(('0.0.0.0', int(sys.argv[1]))); t = time.time(); s.listen()\n"
    "open('/tmp/listened-' + sys.argv[1], 'w').write(repr(t))\n"
    "time.sleep(30)\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def get_p50(host: str, port: int, header_host: str, n: int) -> float:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", "/", headers={"Host": header_host})
        body = conn.getresponse().read()
        times.append(time.perf_counter() - t)
        assert body == b"hello", body
    conn.close()
    return p50(times[n // 10 :])


def wrk(url: str, host: str, duration: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{duration}s", "-H", f"Host: {host}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert m and "Non-2xx" not in out, out
    return float(m.group(1))


def rss_mb(pid: int) -> float:
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


async def ws_figures(port: int, sockets: int, dev_pid: int) -> dict[str, float]:
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{port}/ws"
    figures: dict[str, float] = {}
    async with connect(url, proxy=None, compression=None) as ws:
        times = []
        for _i in range(2000):
            t = time.perf_counter()
            await ws.send("x")
            await ws.recv()
            times.append(time.perf_counter() - t)
        figures["ws_echo_p50"] = p50(times[200:])
    await asyncio.sleep(1)
    before = rss_mb(dev_pid)
    conns = []
    for _i in range(sockets):
        conns.append(await connect(url, proxy=None, compression=None, ping_interval=None))
    for c in conns[:: max(1, sockets // 50)]:  # they all still answer
        await c.send("still there")
        assert await c.recv() == "still there"
    await asyncio.sleep(2)
    figures["ws_idle_rss_per_1000"] = (rss_mb(dev_pid) - before) * 1000 / sockets
    await asyncio.gather(*(c.close() for c in conns))
    return figures


async def terminal_p50(port: int) -> float:
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/term", proxy=None, compression=None) as ws:
        await ws.recv()  # ready
        await ws.send(b"stty -echoctl; echo ready-$((1+1))\r")
        out = b""
        while b"ready-2" not in out:
            m = await ws.recv()
            out += m if isinstance(m, bytes) else m.encode()
        await asyncio.sleep(0.3)
        times = []
        for i in range(300):
            t = time.perf_counter()
            await ws.send(b"a")
            got = b""
            while b"a" not in got:
                m = await ws.recv()
                got += m if isinstance(m, bytes) else m.encode()
            times.append(time.perf_counter() - t)
            if i % 50 == 49:
                await ws.send(b"\x15")  # Ctrl-U: clear the line
                await asyncio.sleep(0.05)
                while True:
                    try:
                        await asyncio.wait_for(ws.recv(), 0.05)
                    except TimeoutError:
                        break
        return p50(times[30:])


async def wait_for_port_p50(sb: Any, rounds: int) -> float:
    await sb.writeFile("/tmp/listener.py", LISTENER)
    lags = []
    for i in range(rounds):
        port = 9100 + i
        proc = await sb.startProcess(f"python3 /tmp/listener.py {port}")
        await proc.waitForPort(port, {"mode": "tcp", "timeoutMs": 10000})
        resolved = time.time()
        stamp = ""
        while not stamp:  # written right after listen(): it may land a moment after the port answered
            stamp = (await sb.readFile(f"/tmp/listened-{port}"))["content"]
        lags.append(resolved - float(stamp))
        await proc.kill("SIGKILL")
    return statistics.median(lags) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--sockets", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--python", action="store_true", help="a Python worker instead of the JS one")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # 1,000 sockets both ends
    os.environ.setdefault("PLOY_IMAGE_PRUNE", "0")
    work = Path(tempfile.mkdtemp(prefix="ploy-reach-", dir="/tmp"))
    home = work / "h"
    project = work / "p"
    (project / "src").mkdir(parents=True)
    if args.python:
        (project / "src" / "index.py").write_text(WORKER_PY)
    else:
        (project / "src" / "index.js").write_text(WORKER)
    (project / "ploy.yaml").write_text("sandbox:\n  SANDBOX:\n    pool: 0\n")
    port = free_port()
    env = {**os.environ, "PLOY_HOME": str(home)}
    ctx = BindingContext(project.resolve(), "p", project_key(project), state_dir=home)
    ctx.dev_host = f"localhost:{port}"
    binding = SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", pool=0))
    loop = asyncio.new_event_loop()
    sb = binding.get("bench")
    dev = None
    try:
        loop.run_until_complete(sb.startProcess(f'node -e "{NODE_SERVER}"'))
        proc = loop.run_until_complete(sb.getProcess(loop.run_until_complete(sb.listProcesses())[0]["id"]))
        assert proc is not None
        loop.run_until_complete(proc.waitForPort(8080, {"timeoutMs": 20000}))
        url = loop.run_until_complete(sb.exposePort(8080))["url"]
        preview_host = url.split("//")[1].rstrip("/")
        address, _ = loop.run_until_complete(sb._mgr.previews.target("bench"))
        dev = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "dev", str(project), "--port", str(port)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if get_p50("127.0.0.1", port, preview_host, 1) >= 0:
                    break
            except (OSError, AssertionError, http.client.HTTPException):
                time.sleep(0.2)
        direct, proxied = [], []
        for _ in range(3):  # interleaved rounds: noise hits both paths alike
            direct.append(get_p50(address, 8080, f"{address}:8080", args.requests))
            proxied.append(get_p50("127.0.0.1", port, preview_host, args.requests))
        d, p = statistics.median(direct), statistics.median(proxied)
        print(f"preview_get_p50_direct {d:.3f} ms")
        print(f"preview_get_p50_proxied {p:.3f} ms")
        print(f"preview_get_p50_added {p - d:.3f} ms")
        if shutil.which("wrk"):
            wd = wrk(f"http://{address}:8080/", f"{address}:8080", args.duration)
            wp = wrk(f"http://127.0.0.1:{port}/", preview_host, args.duration)
            print(f"preview_wrk_direct {wd:.0f} req/s")
            print(f"preview_wrk_proxied {wp:.0f} req/s")
            print(f"preview_wrk_ratio {wp / wd * 100:.0f} %")
        for name, value in asyncio.run(ws_figures(port, args.sockets, dev.pid)).items():
            print(f"{name} {value:.3f} {'ms' if 'p50' in name else 'MB'}")
        print(f"terminal_echo_p50 {asyncio.run(terminal_p50(port)):.3f} ms")
        print(
            f"wait_for_port_after_listen_p50 {loop.run_until_complete(wait_for_port_p50(sb, args.rounds)):.1f} ms"
        )
    finally:
        if dev is not None:
            dev.send_signal(signal.SIGTERM)
            dev.wait(20)
        loop.run_until_complete(sb.destroy())
        loop.run_until_complete(binding.close())
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
