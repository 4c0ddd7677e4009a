"""req/s of three JS workers beside miniflare on the same bundle, and of the Python hello, in one run.

    python bench/hello.py [--duration 10] [--connections 32] [--rounds 3]

The cases: examples/hello (JS, and its Python twin hello-py); bench/workers/json-api (POST a ~2 KB
JSON body, parse, transform, Response.json); bench/workers/stream (a ReadableStream of 1,000 small
chunks). Each JS case runs in ploy and in miniflare on the bundle ploy built, and one response of each
is compared first. Rounds alternate all servers; the figures are medians.

Prints one figure per line (`name value unit`). Needs Debian's wrk. miniflare is measured when it is
installed (`npm install --prefix bench miniflare`, or in the repo's node_modules); otherwise skipped.
Also prints each ploy server's RSS with the worker loaded and after the load, and the time from start
to first response.
"""

from __future__ import annotations

import argparse
import json
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MINIFLARE_SCRIPT = """
const { Miniflare } = require(process.argv[2]);
// A compatibility date, as a deployed worker has one (without it workerd lacks the ReadableStream constructor).
const mf = new Miniflare({ modules: true, scriptPath: process.argv[3], port: Number(process.argv[4]), host: "127.0.0.1",
  compatibilityDate: "2025-01-01" });
mf.ready.then(() => console.log("ready"));
process.on("SIGTERM", () => mf.dispose().then(() => process.exit(0)));
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Case:
    name: str  # prefix of its figures ("" for hello, whose names predate the other cases)
    project: Path
    body: bytes | None = None  # POSTed as JSON when set


def order_json() -> bytes:
    """A ~2 KB order, the same every run."""
    items = [
        {"sku": f"SKU-{i:04d}", "name": f"item number {i}", "price": 3.25 + i, "qty": 1 + i % 4,
         "tags": ["bench", "internal" if i % 3 == 0 else "public", f"t{i}"]}
        for i in range(16)
    ]  # fmt: skip
    order = {"id": "order-1", "customer": {"name": "Ada", "email": "ada@example.com"}, "items": items}
    return json.dumps(order).encode()


CASES = (
    Case("", REPO / "examples" / "hello"),
    Case("json_api_", REPO / "bench" / "workers" / "json-api", order_json()),
    Case("stream_", REPO / "bench" / "workers" / "stream"),
)


def fetch(port: int, body: bytes | None) -> bytes:
    """One request's status line and body (as sent, dechunked by http.client)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request("POST" if body is not None else "GET", "/", body=body, headers=headers)
        resp = conn.getresponse()
        return f"{resp.status} ".encode() + resp.read()
    finally:
        conn.close()


def wait_http(port: int, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/1.1 "):
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"nothing answered on port {port}")


def wrk(port: int, duration: int, connections: int, script: str | None = None) -> float:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/"]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
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


def start_ploy(project: Path, port: int, home: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "dev", str(project), "--port", str(port)],
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
    ap.add_argument("--cases", default="hello,json_api,stream", help="which cases, comma-separated")
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
    mf = find_miniflare()
    if not mf:
        print("# miniflare not installed: npm install --prefix bench miniflare", file=sys.stderr)
    scripts: dict[str, str | None] = {}
    ploy_servers = []
    cases = [c for c in CASES if (c.name.rstrip("_") or "hello") in args.cases.split(",")]
    for case in cases:
        runs = [(f"ploy_{case.name}js" if case.name else "ploy_js", case.project)]
        if not case.name:
            runs.append(("ploy_python", REPO / "examples" / "hello-py"))
        for name, project in runs:
            case_home = str(Path(home) / name)
            port = free_port()
            started = time.monotonic()
            proc = start_ploy(project, port, case_home)
            servers[name] = (proc, port)  # registered before waiting, so main() stops it whatever happens
            wait_http(port)
            startup = time.monotonic() - started
            print(f"{name}_start_to_first_response {startup * 1000:.0f} ms")
            print(f"{name}_rss {rss_mb(proc.pid):.1f} MB")
            ploy_servers.append(name)
            scripts[name] = post_script(home, case) if case.body is not None else None
        if mf:
            js_home = Path(home) / runs[0][0]
            # The same bundle ploy runs, minus its source-map comment (workerd refuses the map's ../ paths).
            js_bundle = Path(home) / f"miniflare-{case.name or 'hello_'}worker.mjs"
            code = next(js_home.rglob("worker.mjs")).read_text()
            js_bundle.write_text(
                "\n".join(x for x in code.splitlines() if not x.startswith("//# sourceMappingURL"))
            )
            port = free_port()
            script = Path(home) / "mf.js"
            script.write_text(MINIFLARE_SCRIPT)
            # cwd = the bundle's folder: workerd refuses module paths that climb out of its cwd with "..".
            proc = subprocess.Popen(["node", str(script), mf, str(js_bundle), str(port)], cwd=home,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            name = f"{case.name}miniflare"
            servers[name] = (proc, port)
            wait_http(port)
            scripts[name] = scripts[runs[0][0]]
            ours, theirs = fetch(servers[runs[0][0]][1], case.body), fetch(port, case.body)
            if ours != theirs:
                raise RuntimeError(
                    f"{runs[0][0]} and {name} answer differently:\n{ours[:300]!r}\n{theirs[:300]!r}"
                )
    results: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, (_, port) in servers.items():
            wrk(port, 2, args.connections, scripts[name])  # warm-up
            results[name].append(wrk(port, args.duration, args.connections, scripts[name]))
    medians = {name: statistics.median(v) for name, v in results.items()}
    for name, value in medians.items():
        print(f"{name}_req_per_s {value:.0f} req/s")
        if len(results[name]) > 1:
            spread = (max(results[name]) - min(results[name])) / value * 100
            print(f"{name}_spread {spread:.0f} %")
    for case in cases:
        mf_name = f"{case.name}miniflare"
        if mf_name in medians:
            js = f"ploy_{case.name}js" if case.name else "ploy_js"
            print(f"{js}_vs_miniflare {medians[js] / medians[mf_name]:.2f} x")
            if not case.name:
                print(f"ploy_python_vs_miniflare {medians['ploy_python'] / medians[mf_name]:.2f} x")
    for name in ploy_servers:
        print(f"{name}_rss_after_load {rss_mb(servers[name][0].pid):.1f} MB")


def post_script(home: str, case: Case) -> str:
    """A wrk script that POSTs the case's JSON body."""
    assert case.body is not None
    body = Path(home) / f"{case.name}body.json"
    body.write_bytes(case.body)
    script = Path(home) / f"{case.name}post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    return str(script)


if __name__ == "__main__":
    main()
