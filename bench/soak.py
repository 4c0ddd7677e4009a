"""The soak run of issue 11: `ploy dev` serving a worker whose every request runs a command in a sandbox
(examples/basic's /exec, or basic-py with --py), under wrk for SECONDS at 16 and then 64 connections.

    python bench/soak.py [--seconds 60] [--py]

Prints one figure per line (`name value unit`): per load, requests/s, errors (non-2xx answers, socket
errors and timeouts), p50 and p99 latency; then the server's RSS and open descriptors before the first
load (after a 5 s warm-up at 64 connections, which opens the agent connections ploy keeps for reuse)
and after the last (once the connections closed). Targets: 0 errors, RSS growth
under 5 MB, the descriptor count back to where it started. Needs Debian's wrk and Podman.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello import REPO, free_port, rss_mb, start_ploy  # noqa: E402

from bindings.sandbox.leftovers import remove_leftovers_sync  # noqa: E402

LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def get(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - a local URL
        return bytes(r.read())


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ploy dev exited with {proc.returncode}")
        try:
            if b"hello from ploy sandbox" in get(url, timeout=30):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def load(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    figures = {"rps": float(rps.group(1)), "errors": float(errors)}
    for pct, value, unit in LATENCY.findall(out):
        figures[f"p{pct}"] = float(value) * UNIT_MS[unit]
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--py", action="store_true", help="examples/basic-py instead of examples/basic (TS)")
    args = ap.parse_args()
    example = "basic-py" if args.py else "basic"
    port = free_port()
    url = f"http://127.0.0.1:{port}/exec?id=soak"
    with tempfile.TemporaryDirectory(prefix="ploy-soak-", dir="/tmp") as home:
        proc = start_ploy(REPO / "examples" / example, port, home)
        try:
            wait_ready(url, proc)
            # Warm-up at the highest load: the agent connections ploy keeps idle for reuse (up to 8 per
            # sandbox) are open, caches are filled and the allocator settled, so what stays after the
            # soak is what it leaked.
            load(url, 5, 64)
            time.sleep(3)
            rss_before, fds_before = rss_mb(proc.pid), fds(proc.pid)
            for connections in (16, 64):
                figures = load(url, args.seconds, connections)
                for name, unit in (("rps", "req/s"), ("errors", "count"), ("p50", "ms"), ("p99", "ms")):
                    print(
                        f"soak_{example}_c{connections}_{name} {figures.get(name, float('nan')):.2f} {unit}"
                    )
            time.sleep(3)  # the load's connections close
            print(f"soak_{example}_rss_before {rss_before:.1f} MB")
            print(f"soak_{example}_rss_after {rss_mb(proc.pid):.1f} MB")
            print(f"soak_{example}_rss_growth {rss_mb(proc.pid) - rss_before:.1f} MB")
            print(f"soak_{example}_fds_before {fds_before} count")
            print(f"soak_{example}_fds_after {fds(proc.pid)} count")
        finally:
            proc.terminate()
            proc.wait(30)
            subprocess.run(
                [sys.executable, "-m", "runtime.cli", "sandbox", "destroy", "soak", "--project",
                 str(REPO / "examples" / example)],
                cwd=REPO, env={**os.environ, "PLOY_HOME": home}, capture_output=True,
            )  # fmt: skip
            remove_leftovers_sync(Path(home))  # the network policy's network and rules, the disk


if __name__ == "__main__":
    main()
