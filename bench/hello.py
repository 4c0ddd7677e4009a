"""req/s of the hello worker, JS and Python, beside miniflare on the same worker, in one run.

    python bench/hello.py [--duration 10] [--connections 32]

Prints one figure per line (`name value unit`). Needs Debian's wrk. miniflare is measured when it is
installed (`npm install --prefix bench miniflare`, or in the repo's node_modules); otherwise skipped.
Also prints the server's RSS with the worker loaded and the time from start to first response.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MINIFLARE_SCRIPT = """
const { Miniflare } = require(process.argv[2]);
const mf = new Miniflare({ modules: true, scriptPath: process.argv[3], port: Number(process.argv[4]), host: "127.0.0.1" });
mf.ready.then(() => console.log("ready"));
process.on("SIGTERM", () => mf.dispose().then(() => process.exit(0)));
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/1.1 200"):
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"nothing answered on port {port}")


def wrk(port: int, duration: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or errors:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(m.group(1))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_ploy(example: str, port: int, home: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "dev", str(REPO / "examples" / example), "--port", str(port)],
        cwd=REPO, env={**os.environ, "PLOY_HOME": home}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def find_miniflare() -> str | None:
    for base in (REPO / "bench", REPO):
        if (base / "node_modules" / "miniflare").is_dir():
            return str(base / "node_modules" / "miniflare")
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=1, help="alternate the servers this many times; medians")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    home = tempfile.mkdtemp(prefix="ploy-bench-")
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        measure(args, home, servers)
    finally:  # also when a server fails to start: never leave the others running
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def measure(
    args: argparse.Namespace, home: str, servers: dict[str, tuple[subprocess.Popen[bytes], int]]
) -> None:
    for name, example in (("ploy_js", "hello"), ("ploy_python", "hello-py")):
        port = free_port()
        started = time.monotonic()
        proc = start_ploy(example, port, home)
        servers[name] = (proc, port)  # registered before waiting, so main() stops it whatever happens
        wait_http(port)
        startup = time.monotonic() - started
        print(f"{name}_start_to_first_response {startup * 1000:.0f} ms")
        print(f"{name}_rss {rss_mb(proc.pid):.1f} MB")
    mf = find_miniflare()
    if mf:
        bundle = Path(home) / "projects"
        # The same bundle ploy runs, minus its source-map comment (workerd refuses the map's ../ paths).
        js_bundle = Path(home) / "miniflare-worker.mjs"
        code = next(bundle.rglob("worker.mjs")).read_text()
        js_bundle.write_text(
            "\n".join(x for x in code.splitlines() if not x.startswith("//# sourceMappingURL"))
        )
        port = free_port()
        script = Path(home) / "mf.js"
        script.write_text(MINIFLARE_SCRIPT)
        # cwd = the bundle's folder: workerd refuses module paths that climb out of its cwd with "..".
        proc = subprocess.Popen(["node", str(script), mf, str(js_bundle), str(port)], cwd=home,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        servers["miniflare"] = (proc, port)
        wait_http(port)
    else:
        print("# miniflare not installed: npm install --prefix bench miniflare", file=sys.stderr)
    results: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, (_, port) in servers.items():
            wrk(port, 2, args.connections)  # warm-up
            results[name].append(wrk(port, args.duration, args.connections))
    medians = {name: statistics.median(v) for name, v in results.items()}
    for name, value in medians.items():
        print(f"{name}_req_per_s {value:.0f} req/s")
    if "miniflare" in medians:
        print(f"ploy_js_vs_miniflare {medians['ploy_js'] / medians['miniflare']:.2f} x")
        print(f"ploy_python_vs_miniflare {medians['ploy_python'] / medians['miniflare']:.2f} x")
    for name in ("ploy_js", "ploy_python"):
        print(f"{name}_rss_after_load {rss_mb(servers[name][0].pid):.1f} MB")


if __name__ == "__main__":
    main()
