"""AI gateway overhead against calling the (fake) upstream directly, measured in the same run.

    python bench/ai_gateway.py [--calls 400]

The fake upstream (bindings/ai/fake_upstream.py) and the gateway each run in their own process, as in
`ploy dev`; the client is a keep-alive httpx.Client here. Direct and gateway calls alternate so machine
noise hits both alike. Prints one figure per line (`name value unit`):

- ai_gateway_overhead_p50: p50(gateway) - p50(direct) of a non-streamed chat completion
- ai_gateway_stream_ttfb_added_p50: the same for the time to the first body byte of a streamed one
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BODY = {"model": "openai/gpt-bench", "messages": [{"role": "user", "content": "hello bench"}]}


def _spawn(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


def _timed(client: httpx.Client, url: str, headers: dict[str, str], stream: bool) -> float:
    """ms to the whole response (stream=False) or to its first body chunk (stream=True)."""
    start = time.perf_counter()
    if not stream:
        r = client.post(url, json=BODY, headers=headers)
        r.raise_for_status()
        return (time.perf_counter() - start) * 1000
    with client.stream("POST", url, json={**BODY, "stream": True}, headers=headers) as r:
        r.raise_for_status()
        chunks = r.iter_raw()
        next(chunks)
        elapsed = (time.perf_counter() - start) * 1000
        for _ in chunks:
            pass
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ploy-ai-bench-"))
    env = {**os.environ, "PLOY_HOME": str(tmp / "state"), "PLOY_CONFIG_HOME": str(tmp / "config")}
    # The fake prints its two base URLs, one a line: "openai URL" comes first.
    upstream, first_line = _spawn(["bindings.ai.fake_upstream"], env)
    procs = [upstream]
    try:
        upstream_url = first_line.split()[1]
        gw_env = {**env, "PLOY_OPENAI_API_KEY": "sk-fake-openai", "PLOY_OPENAI_BASE_URL": upstream_url}
        project = tmp / "project"
        project.mkdir()
        gateway, info_line = _spawn(["bindings.ai.standalone", str(project), "--loopback-only"], gw_env)
        procs.append(gateway)
        info = json.loads(info_line)
        direct = (upstream_url + "/chat/completions", {"authorization": "Bearer sk-fake-openai"})
        via = (info["baseUrl"] + "/v1/chat/completions", {"authorization": f"Bearer {info['token']}"})
        with httpx.Client(timeout=30) as client:
            results: dict[tuple[str, bool], list[float]] = {}
            for stream in (False, True):
                for _warm in range(30):
                    _timed(client, *direct, stream)
                    _timed(client, *via, stream)
                for _n in range(opts.calls):
                    for name, (url, headers) in (("direct", direct), ("gateway", via)):
                        results.setdefault((name, stream), []).append(_timed(client, url, headers, stream))
        p50 = {k: statistics.median(v) for k, v in results.items()}
        print(f"ai_direct_p50 {p50[('direct', False)]:.3f} ms")
        print(f"ai_gateway_p50 {p50[('gateway', False)]:.3f} ms")
        print(f"ai_gateway_overhead_p50 {p50[('gateway', False)] - p50[('direct', False)]:.3f} ms")
        print(f"ai_direct_stream_ttfb_p50 {p50[('direct', True)]:.3f} ms")
        print(f"ai_gateway_stream_ttfb_p50 {p50[('gateway', True)]:.3f} ms")
        print(f"ai_gateway_stream_ttfb_added_p50 {p50[('gateway', True)] - p50[('direct', True)]:.3f} ms")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


if __name__ == "__main__":
    main()
