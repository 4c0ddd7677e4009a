"""Sandbox benchmarks against real Podman. Prints one `name value unit` line per figure.

    python bench/sandbox_bench.py            # everything (~2 min on 2 cores)
    python bench/sandbox_bench.py --quick    # skip the HTTP and 50-sandbox parts

Targets (issues 3 and 4): exec p50 <= 3 ms and >= 50x faster than `podman exec`; first exec on a new
id <= 250 ms without a pool, <= 25 ms with one; execStream >= 200 MB/s; idle sandbox <= 20 MB host RSS;
startProcess <= 5 ms p50; a log line reaches streamProcessLogs <= 20 ms after it is printed.
Issue 13: each call it added <= 3 ms p50 on a warm sandbox, getMetrics <= 5 ms p50; readFileStream and
a streamed writeFile of 1 GB >= 300 MB/s with the server's RSS growing <= 32 MB meanwhile (measured in
this process through the Python API, and under `ploy dev` from a JS worker: examples/files).

    python bench/sandbox_bench.py --parity   # only the issue 13 figures
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
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bindings.context import BindingContext, project_key  # noqa: E402
from bindings.sandbox import SandboxBinding  # noqa: E402
from bindings.sandbox import image as images  # noqa: E402
from bindings.sandbox.containers import SandboxContainers  # noqa: E402
from bindings.sandbox.disks import USERNS_FLAGS  # noqa: E402
from bindings.sandbox.leftovers import remove_leftovers  # noqa: E402
from bindings.sandbox.options import SandboxOptions  # noqa: E402

if TYPE_CHECKING:
    import httpx  # imported where used: only the HTTP figures need it


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def wait_until_serving(client: httpx.Client, path: str, within_s: float = 60) -> None:
    """Until `ploy dev` (starting in another process) answers `path` with a success."""
    import httpx

    deadline = time.monotonic() + within_s
    while True:
        try:
            client.get(path).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


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

    async def parity_calls(self) -> None:
        """p50 of each call issue 13 added, on a warm sandbox (setup outside the timed part)."""
        b = self.binding()
        sb = b.get("parity")
        await sb.exec("mkdir -p /workspace/p/sub && touch /workspace/p/a /workspace/p/sub/b /workspace/p/.h")
        await sb.writeFile("/workspace/p/blob", bytes(range(256)) * 16)
        n = 300

        async def p50(
            name: str,
            fn: Callable[[int], Awaitable[Any]],
            setup: Callable[[int], Awaitable[Any]] | None = None,
        ) -> None:
            for i in range(20):  # warm-up
                if setup:
                    await setup(-1 - i)
                await fn(-1 - i)
            times = []
            for i in range(n):
                if setup:
                    await setup(i)
                t = time.perf_counter()
                await fn(i)
                times.append((time.perf_counter() - t) * 1000)
            emit(f"{name}_p50", pct(times, 50), "ms")

        await p50(
            "exec_true_baseline", lambda i: sb.exec("true")
        )  # what a command costs, for the exec variants
        await p50("exists", lambda i: sb.exists("/workspace/p/a"))
        await p50(
            "renameFile",
            lambda i: sb.renameFile(f"/workspace/p/r{i}", f"/workspace/p/r{i}.renamed"),
            lambda i: sb.writeFile(f"/workspace/p/r{i}", "x"),
        )
        await p50(
            "moveFile",
            lambda i: sb.moveFile(f"/workspace/p/m{i}", "/workspace/p/sub"),
            lambda i: sb.writeFile(f"/workspace/p/m{i}", "x"),
        )
        await sb.exec("rm -f /workspace/p/sub/m* /workspace/p/r*")
        await p50(
            "listFiles_recursive_hidden",
            lambda i: sb.listFiles("/workspace/p", {"recursive": True, "includeHidden": True}),
        )
        await p50("readFile_binary_autodetect", lambda i: sb.readFile("/workspace/p/blob"))
        done = await sb.startProcess("echo out; echo err >&2")
        await asyncio.sleep(0.3)
        await p50("getProcessLogs_stdout_stderr", lambda i: sb.getProcessLogs(done["id"]))
        await p50("killAllProcesses_none_running", lambda i: sb.killAllProcesses())
        await p50("cleanupCompletedProcesses", lambda i: sb.cleanupCompletedProcesses())
        stdin_proc = await sb.startProcess("cat > /dev/null", {"stdin": True})
        await p50("writeStdin", lambda i: sb.writeStdin(stdin_proc["id"], "line\n"))
        procs: dict[int, str] = {}

        async def start_stdin(i: int) -> None:
            procs[i] = (await sb.startProcess("cat", {"stdin": True}))["id"]
            await asyncio.sleep(0.05)  # let its runner start `cat` outside the timed part

        await p50("closeStdin", lambda i: sb.closeStdin(procs[i]), start_stdin)
        await sb.killAllProcesses({"signal": "SIGKILL"})
        await sb.cleanupCompletedProcesses()
        sessions: dict[int, str] = {}

        async def make_session(i: int) -> None:
            sessions[i] = (await sb.createSession()).sessionId

        await p50("createSession", lambda i: sb.createSession())
        await p50("deleteSession", lambda i: sb.deleteSession(sessions[i]), make_session)
        keep = (await sb.createSession()).sessionId
        await p50("exec_with_sessionId_option", lambda i: sb.exec("true", {"sessionId": keep}))
        await p50("exec_cat_baseline", lambda i: sb.exec("cat"))
        await p50("exec_cat_with_stdin", lambda i: sb.exec("cat", {"stdin": "hello"}))

        async def raw(i: int) -> None:
            async for _ in await sb.execStream("echo hi"):
                pass

        await p50("execStream_raw_echo_baseline", raw)

        async def sse(i: int) -> None:
            async for _ in await sb.execStream("echo hi", {"format": "sse"}):
                pass

        await p50("execStream_sse_echo", sse)
        await p50("setSleepAfter", lambda i: sb.setSleepAfter("10m"))
        await p50("setKeepAlive", lambda i: sb.setKeepAlive(i % 2 == 0))
        await sb.setKeepAlive(False)
        await p50("getState_running", lambda i: sb.getState())
        await p50("getMetrics", lambda i: sb.getMetrics())
        asleep = b.get("parity-never-started")
        await p50("getState_never_started", lambda i: asleep.getState())
        await b.close()

    async def big_files(self) -> None:
        """1 GB through readFileStream and a streamed writeFile (median of 3), with this process's RSS
        growth, beside `dd` writing and reading 1 GB inside the same sandbox (what its disk allows:
        the first write of a gigabyte on a busy machine is bound by the page cache, not by ploy)."""
        b = self.binding()
        sb = b.get("bigfiles")
        size = 1024 * 1024 * 1024
        chunk = os.urandom(1024 * 1024)
        dd = await sb.exec(
            "dd if=/dev/zero of=/workspace/dd.bin bs=1M count=1024 2>&1 | tail -1; "
            "dd if=/workspace/dd.bin of=/dev/null bs=1M 2>&1 | tail -1; rm /workspace/dd.bin",
            {"timeoutMs": 120000},
        )
        for name, line in zip(
            ("sandbox_dd_1GB_write", "sandbox_dd_1GB_read"), dd["stdout"].splitlines(), strict=False
        ):
            secs = float(line.split(" copied, ")[1].split(" s")[0])
            emit(f"{name}_throughput", size / 1e6 / secs, "MB/s")

        async def source() -> Any:
            for _ in range(size // len(chunk)):
                yield chunk

        async def write() -> None:
            await sb.writeFile("/workspace/big.bin", source())

        async def read() -> None:
            n = 0
            async for piece in await sb.readFileStream("/workspace/big.bin"):
                n += len(piece)
            assert n == size, n

        for name, fn in (("writeFile_stream_1GB", write), ("readFileStream_1GB", read)):
            before = rss_kib(os.getpid())
            peak = before
            stop = asyncio.Event()

            async def sample(stop: asyncio.Event = stop) -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, rss_kib(os.getpid()))
                    await asyncio.sleep(0.01)

            sampler = asyncio.ensure_future(sample())
            rates = []
            for _ in range(3):
                t = time.perf_counter()
                await fn()
                rates.append(size / 1e6 / (time.perf_counter() - t))
            stop.set()
            await sampler
            emit(f"{name}_throughput_first", rates[0], "MB/s")
            emit(f"{name}_throughput_median_of_3", statistics.median(rates), "MB/s")
            emit(f"{name}_host_rss_growth", (peak - before) / 1024, "MB")
        await sb.exec("rm -f /workspace/big.bin")
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

    async def network_cold_start(self) -> None:
        """What the network policy (issue 11, item 8) adds to a cold start, in one run: new ids under
        `open` (Podman's shared bridge, as before the option) and under each policy, interleaved so
        noise hits both alike; then the first sandbox of a new project, which also makes the network
        and writes its rules."""
        policies: dict[str, Any] = {"open": "open", "default": "default", "none": "none",
                                    "allowlist": ("pypi.org:443", "10.1.0.0/16")}  # fmt: skip
        bound = {name: self.binding(network=p) for name, p in policies.items()}
        times = await interleaved_cold_starts(bound, "network", 10)
        for name in ("default", "none", "allowlist"):
            emit(f"cold_start_network_{name}_minus_open", pct(times[name], 50) - pct(times["open"], 50), "ms")
        for b in bound.values():
            await b.close()
        firsts: dict[str, list[float]] = {"open": [], "default": []}
        for i in range(5):
            for name in firsts:
                project = self.project.parent / f"first-{name}-{i}"
                project.mkdir()
                ctx = BindingContext(project_root=project, project_name=project.name,
                                     project_key=project_key(project), state_dir=self.home)  # fmt: skip
                b = SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", pool=0, network=name))
                t = time.perf_counter()
                await b.get("first").exec("echo hi")
                firsts[name].append((time.perf_counter() - t) * 1000)
                await b.get("first").destroy()
                await b.close()  # the network and its rules go with it
        for name, values in firsts.items():
            emit(f"first_sandbox_new_project_{name}_p50", pct(values, 50), "ms")

    async def isolation_cold_start(self, rounds: int = 10) -> None:
        """What issue 11's isolation adds to a cold start, in one run: sandboxes made as before it
        (network open, no disk limit, no user namespace) beside today's defaults (network default,
        disk 10g, user namespace), new ids interleaved so noise hits both alike. The user namespace has
        no ploy.yaml option, so the bench takes its flags out of `podman create`'s arguments for the
        'before' binding only."""
        userns = {*USERNS_FLAGS, "--ipc", "none", "--tmpfs", "/dev/shm:rw,nosuid,nodev,size=64m"}
        plain = SandboxContainers.local_args
        without: set[int] = set()  # the bindings' SandboxContainers made as before the user namespace

        async def local_args(self: SandboxContainers, spec: Any, d: Path) -> list[str]:
            args = await plain(self, spec, d)
            return [a for a in args if a not in userns] if id(self) in without else args

        SandboxContainers.local_args = local_args  # type: ignore[method-assign]
        try:
            bound = {
                "before": self.binding(network="open", disk="0"),
                "after": self.binding(),
                "network_only": self.binding(disk="0"),
                "disk_only": self.binding(network="open"),
                "userns_only": self.binding(network="open", disk="0"),
            }
            without.update(
                id(bound[name].manager.containers) for name in ("before", "network_only", "disk_only")
            )
            times = await interleaved_cold_starts(bound, "isolation", rounds)
            emit(
                "cold_start_isolation_after_minus_before",
                pct(times["after"], 50) - pct(times["before"], 50),
                "ms",
            )
            for b in bound.values():
                await b.close()
        finally:
            SandboxContainers.local_args = plain  # type: ignore[method-assign]

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


async def interleaved_cold_starts(
    bound: dict[str, SandboxBinding], what: str, rounds: int
) -> dict[str, list[float]]:
    """A first exec on new ids of each binding, in turns so noise hits all alike (after one warm-up
    each: network made, rules written, image found); prints each one's median."""
    times: dict[str, list[float]] = {name: [] for name in bound}
    for b in bound.values():
        await b.get(f"warm-up-{id(b)}").exec("true")
    for i in range(rounds):
        for name, b in bound.items():
            sb = b.get(f"{what}-{name}-{i}")
            t = time.perf_counter()
            await sb.exec("echo hi")
            times[name].append((time.perf_counter() - t) * 1000)
    for name, values in times.items():
        emit(f"cold_start_{what}_{name}_p50", pct(values, 50), "ms")
    return times


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
                wait_until_serving(client, "/exec")
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


def js_big_files(home: Path, tmp: Path) -> None:
    """examples/files under `ploy dev`: a JS worker writes 1 GiB it generates chunk by chunk (within
    the default 256 MB JS memory limit), then the client downloads it through readFileStream; the
    server's RSS growth during each."""
    import httpx

    project = tmp / "files"
    shutil.copytree(REPO / "examples" / "files", project)
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
    size = 1024 * 1024 * 1024
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            wait_until_serving(client, "/exists")

            def measured(name: str, fn: Callable[[], int]) -> None:
                before = rss_kib(proc.pid)
                peak = [before]
                done = threading.Event()

                def sample() -> None:
                    while not done.is_set():
                        peak[0] = max(peak[0], rss_kib(proc.pid))
                        time.sleep(0.01)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                t = time.perf_counter()
                n = fn()
                elapsed = time.perf_counter() - t
                done.set()
                sampler.join()
                assert n == size, n
                emit(f"{name}_throughput", size / 1e6 / elapsed, "MB/s")
                emit(f"{name}_server_rss_growth", (peak[0] - before) / 1024, "MB")

            def generate() -> int:
                r = client.get("/generate", params={"path": "big.bin", "mib": 1024})
                r.raise_for_status()
                return int(r.json()["size"])

            def download() -> int:
                # curl reads it: a Python client here would measure itself more than the server
                out = subprocess.run(
                    ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}",
                     f"http://127.0.0.1:{port}/download?path=big.bin"],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                return int(out.stdout)

            measured("js_writeFile_stream_1GB", generate)
            measured("http_readFileStream_1GB", download)
    finally:
        proc.terminate()
        proc.wait(10)


async def main(quick: bool, parity: bool = False, network: bool = False, isolation: bool = False) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ploy-b-"))
    home = tmp / "h"
    project = tmp / "bench"
    project.mkdir()
    try:
        image = await images.ensure_image()
        bench = Bench(home, project)
        if network:
            await bench.network_cold_start()
            return
        if isolation:
            await bench.isolation_cold_start()
            return
        if parity:
            await bench.parity_calls()
            await bench.big_files()
            await asyncio.to_thread(js_big_files, home, tmp)
            return
        await bench.exec_latency(image)
        await bench.cold_start(image)
        await bench.parity_calls()
        await bench.big_files()
        if not quick:
            await bench.fifty()
            await asyncio.to_thread(http_bench, home, tmp)
            await asyncio.to_thread(js_big_files, home, tmp)
    finally:
        await remove_leftovers(home)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parity", action="store_true", help="only the issue 13 figures")
    parser.add_argument(
        "--network", action="store_true", help="only what the network policy adds to cold start"
    )
    parser.add_argument(
        "--isolation",
        action="store_true",
        help="only what network policy, disk limit and user namespace add to cold start (issue 11)",
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()  # what `ploy dev` runs on
    except ImportError:
        pass
    asyncio.run(main(args.quick, args.parity, args.network, args.isolation))
