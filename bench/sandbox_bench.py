"""Sandbox benchmarks against real Podman. Prints one `name value unit` line per figure.

    python bench/sandbox_bench.py            # everything (~2 min on 2 cores)
    python bench/sandbox_bench.py --quick    # skip the HTTP and 50-sandbox parts

Targets (issues 3 and 4): exec p50 <= 3 ms and >= 50x faster than `podman exec`; first exec on a new
id <= 250 ms without a pool, <= 25 ms with one; execStream >= 200 MB/s; idle sandbox <= 20 MB host RSS;
startProcess <= 5 ms p50; a log line reaches streamProcessLogs <= 20 ms after it is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bindings.context import BindingContext, project_key  # noqa: E402
from bindings.sandbox import SandboxBinding  # noqa: E402
from bindings.sandbox import image as images  # noqa: E402
from bindings.sandbox.containers import home_label  # noqa: E402
from bindings.sandbox.options import SandboxOptions  # noqa: E402


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def timed(n: int, fn: Callable[[], Awaitable[Any]]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Bench:
    def __init__(self, home: Path, project: Path) -> None:
        self.home, self.project = home, project

    def binding(self, **opts: Any) -> SandboxBinding:
        ctx = BindingContext(
            project_root=self.project,
            project_name="bench",
            project_key=project_key(self.project),
            state_dir=self.home,
        )
        opts.setdefault("pool", 0)
        return SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", **opts))

    async def exec_latency(self, image: str) -> None:
        b = self.binding()
        sb = b.get("exec")
        await sb.exec("true")
        for _ in range(50):
            await sb.exec("echo hello")
        times = await timed(1000, lambda: sb.exec("echo hello"))
        emit("exec_p50", pct(times, 50), "ms")
        emit("exec_p99", pct(times, 99), "ms")
        name = b.manager.entries["exec"].container
        pod = []
        for _ in range(20):
            t = time.perf_counter()
            subprocess.run(["podman", "exec", name, "echo", "hello"], capture_output=True, check=True)
            pod.append((time.perf_counter() - t) * 1000)
        emit("podman_exec_p50", pct(pod, 50), "ms")
        emit("exec_speedup_vs_podman_exec", pct(pod, 50) / pct(times, 50), "x")

        # throughput of a 200 MB stream
        async def drain() -> int:
            n = 0
            async for chunk in await sb.execStream("head -c 200000000 /dev/zero"):
                n += len(chunk)
            return n

        t = time.perf_counter()
        n = await drain()
        emit("execStream_200MB_throughput", n / 1e6 / (time.perf_counter() - t), "MB/s")

        # background processes
        starts = await timed(200, lambda: sb.startProcess("true"))
        emit("startProcess_p50", pct(starts, 50), "ms")
        emit("startProcess_p99", pct(starts, 99), "ms")
        proc = await sb.startProcess("for i in $(seq 40); do date +%s.%N; sleep 0.05; done")
        lat = []
        buf = b""
        async for chunk in await sb.streamProcessLogs(proc["id"]):
            now = time.time()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            lat += [(now - float(line)) * 1000 for line in lines if line.strip()]
        emit("streamProcessLogs_line_latency_p50", pct(lat, 50), "ms")
        emit("streamProcessLogs_line_latency_p99", pct(lat, 99), "ms")

        # resource cost of an idle sandbox: host processes (conmon) and inside (init + agent)
        pid = int(
            subprocess.run(
                ["podman", "inspect", "--format", "{{.State.ConmonPid}}", name],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        emit("idle_sandbox_host_rss_conmon", rss_kib(pid) / 1024, "MB")
        inside = await sb.exec("ps -o rss= -p 1; pgrep -f agent/server.py | xargs ps -o rss= -p")
        emit("idle_sandbox_in_container_rss", sum(int(x) for x in inside["stdout"].split()) / 1024, "MB")
        await b.close()

    async def cold_start(self, image: str) -> None:
        b = self.binding()
        times = []
        for i in range(8):
            sb = b.get(f"cold-{i}")
            t = time.perf_counter()
            await sb.exec("echo hi")
            times.append((time.perf_counter() - t) * 1000)
        emit("cold_start_no_pool_p50", pct(times, 50), "ms")
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run(
                [
                    "podman",
                    "run",
                    "--rm",
                    "--runtime",
                    "runc",
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=1024:1024",
                    image,
                    "true",
                ],
                capture_output=True,
                check=True,
            )
            runs.append((time.perf_counter() - t) * 1000)
        emit("podman_run_rm_true_p50", pct(runs, 50), "ms")

        pooled = self.binding(pool=1)
        pool = pooled.manager.pool
        times = []
        for i in range(6):
            pool.kick()
            deadline = time.monotonic() + 60
            while not pool._tokens() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if pool._task is not None:
                await pool._task  # let the refill finish so it does not compete with the measurement
            sb = pooled.get(f"warm-{i}")
            t = time.perf_counter()
            await sb.exec("echo hi")
            times.append((time.perf_counter() - t) * 1000)
        emit("cold_start_with_pool_p50", pct(times, 50), "ms")
        await pooled.close()
        await b.close()

    async def fifty(self) -> None:
        b = self.binding(memory="256m")
        clients = [b.get(f"many-{i}") for i in range(50)]
        t = time.perf_counter()
        for c in clients:  # created one by one: 50 parallel `podman run` would only thrash 2 cores
            await c.startProcess("while true; do sleep 1; done")
        emit("fifty_sandboxes_created_with_process", time.perf_counter() - t, "s")
        t = time.perf_counter()
        results = await asyncio.gather(*(c.exec("echo ok") for c in clients))
        emit("fifty_sandboxes_exec_all_answered", sum(r["stdout"] == "ok\n" for r in results), "count")
        emit("fifty_sandboxes_exec_all_wall", (time.perf_counter() - t) * 1000, "ms")
        lat = [statistics.median(await timed(5, lambda c=c: c.exec("echo ok"))) for c in clients[:10]]  # type: ignore[misc]
        emit("fifty_sandboxes_exec_p50_under_load", statistics.median(lat), "ms")
        await b.close()


def http_bench(home: Path, tmp: Path) -> None:
    import httpx

    for name in ("basic", "basic-py"):
        project = tmp / name
        shutil.copytree(REPO / "examples" / name, project)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "PLOY_HOME": str(home)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "dev", str(project), "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get("/exec").raise_for_status()
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                times = []
                for _ in range(300):
                    t = time.perf_counter()
                    client.get("/exec")
                    times.append((time.perf_counter() - t) * 1000)
            emit(f"http_exec_{name.replace('-', '_')}_p50", pct(times, 50), "ms")
            emit(f"http_exec_{name.replace('-', '_')}_p99", pct(times, 99), "ms")
        finally:
            proc.terminate()
            proc.wait(10)


async def main(quick: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ploy-b-"))
    home = tmp / "h"
    project = tmp / "bench"
    project.mkdir()
    try:
        image = await images.ensure_image()
        bench = Bench(home, project)
        await bench.exec_latency(image)
        await bench.cold_start(image)
        if not quick:
            await bench.fifty()
            await asyncio.to_thread(http_bench, home, tmp)
    finally:
        subprocess.run(
            f"podman ps -aq --filter label=ploy.home={home_label(home)} | xargs -r podman rm -f -t 0",
            shell=True,
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()  # what `ploy dev` runs on
    except ImportError:
        pass
    asyncio.run(main(args.quick))
