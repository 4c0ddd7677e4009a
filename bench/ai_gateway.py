"""AI gateway overhead against calling the (fake) upstream directly, measured in the same run.

    python bench/ai_gateway.py [--calls 400] [--turns 50]

The fake upstream (bindings/ai/fake_upstream.py) and the gateways each run in their own process, as in
`ploy dev`; the client is a keep-alive httpx.Client here. Direct, gateway and replay calls alternate so
machine noise hits all alike. Prints one figure per line (`name value unit`):

- ai_gateway_overhead_p50: p50(gateway) - p50(direct) of a non-streamed chat completion
- ai_gateway_stream_ttfb_added_p50: the same for the time to the first body byte of a streamed one
- ai_replay_added_p50 / ai_replay_stream_ttfb_added_p50: the same for a gateway replaying a recording
  of those calls (`--ai-replay-speed 0`, no upstream, no key) against calling the fake upstream directly
- ai_replay_50_turn_session_s: wall time of the bundled soulforge agent (run on the host) replaying a
  recorded 50-turn session (49 shell tool calls, then an answer) at speed 0, process start included;
  ai_record_50_turn_session_s is the same session recorded against the fake upstream
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BODY = {"model": "openai/gpt-bench", "messages": [{"role": "user", "content": "hello bench"}]}
SOULFORGE = REPO / "bindings" / "sandbox" / "image" / "bin" / "soulforge"


def _spawn(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        stderr=subprocess.DEVNULL,
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


def _gateway(project: Path, env: dict[str, str], *flags: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    project.mkdir(exist_ok=True)
    proc, line = _spawn(["bindings.ai.standalone", str(project), "--loopback-only", *flags], env)
    return proc, json.loads(line)


def _soulforge(info: dict[str, str], cwd: Path, turns: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "PLOY_AI"))}
    env |= {
        "PLOY_AI_URL": info["baseUrl"],
        "OPENAI_BASE_URL": info["baseUrl"] + "/v1",
        "OPENAI_API_KEY": info["token"],
    }
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(SOULFORGE), "--headless", "--model", "openai/gpt-bench",
                          "--max-steps", str(turns + 5), "take many small steps"],
                         capture_output=True, text=True, cwd=cwd, env=env, timeout=600)  # fmt: skip
    elapsed = time.perf_counter() - start
    if out.returncode != 0 or "[soulforge]" not in out.stdout:
        raise SystemExit(f"soulforge failed ({out.returncode}):\n{out.stdout[-1000:]}\n{out.stderr[-1000:]}")
    return elapsed


def _agent_session(tmp: Path, env: dict[str, str], turns: int) -> tuple[float, float]:
    """(record, replay) wall time of a soulforge session of `turns` model calls."""
    sys.path.insert(0, str(REPO))
    from bindings.ai.fake_upstream import FakeUpstream, Text, ToolCall

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def start() -> FakeUpstream:
        up = await FakeUpstream().start()
        up.script = [ToolCall("run_shell", {"command": f"echo step {n}"}) for n in range(turns - 1)] + [
            Text("done")
        ]
        return up

    upstream = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    recording, work = tmp / "session.jsonl", tmp / "agent-work"
    work.mkdir()
    keys = {
        **env,
        "PLOY_OPENAI_API_KEY": upstream.openai_key,
        "PLOY_OPENAI_BASE_URL": upstream.openai_base_url,
    }
    procs = []
    try:
        recorder, info = _gateway(tmp / "agent", keys, "--record", str(recording))
        procs.append(recorder)
        recorded = _soulforge(info, work, turns)
        recorder.terminate()
        recorder.wait(10)
        asyncio.run_coroutine_threadsafe(upstream.close(), loop).result(30)  # the upstream is gone
        calls = len(recording.read_text().splitlines())
        if calls != turns:
            raise SystemExit(f"recorded {calls} calls, expected {turns}")
        replayer, info = _gateway(tmp / "agent", env, "--replay", str(recording), "--replay-speed", "0")
        procs.append(replayer)
        _soulforge(
            info, work, turns
        )  # warm (imports, page cache); the figure is the median of the next three
        replayed = statistics.median(_soulforge(info, work, turns) for _ in range(3))
        return recorded, replayed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        loop.call_soon_threadsafe(loop.stop)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--turns", type=int, default=50, help="model calls in the replayed agent session")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ploy-ai-bench-"))
    env = {**os.environ, "PLOY_HOME": str(tmp / "state"), "PLOY_CONFIG_HOME": str(tmp / "config")}
    for name in (
        "PLOY_OPENAI_API_KEY",
        "OPENAI_API_KEY",
        "PLOY_ANTHROPIC_API_KEY",
        "ANTHROPIC_API_KEY",
        "PLOY_AI_LOCAL_RULES",
    ):
        env.pop(name, None)
    # The fake prints its two base URLs, one a line: "openai URL" comes first.
    upstream, first_line = _spawn(["bindings.ai.fake_upstream"], env)
    procs = [upstream]
    try:
        upstream_url = first_line.split()[1]
        gw_env = {**env, "PLOY_OPENAI_API_KEY": "sk-fake-openai", "PLOY_OPENAI_BASE_URL": upstream_url}
        gateway, info = _gateway(tmp / "project", gw_env)
        procs.append(gateway)
        recording = tmp / "calls.jsonl"
        recorder, rec_info = _gateway(tmp / "recorder", gw_env, "--record", str(recording))
        procs.append(recorder)
        with httpx.Client(timeout=30) as client:
            for stream in (False, True):
                _timed(
                    client,
                    rec_info["baseUrl"] + "/v1/chat/completions",
                    {"authorization": f"Bearer {rec_info['token']}"},
                    stream,
                )
        replayer, rep_info = _gateway(
            tmp / "replayer", env, "--replay", str(recording), "--replay-speed", "0"
        )
        procs.append(replayer)
        direct = (upstream_url + "/chat/completions", {"authorization": "Bearer sk-fake-openai"})
        via = (info["baseUrl"] + "/v1/chat/completions", {"authorization": f"Bearer {info['token']}"})
        replay = (
            rep_info["baseUrl"] + "/v1/chat/completions",
            {"authorization": f"Bearer {rep_info['token']}"},
        )
        targets = (("direct", direct), ("gateway", via), ("replay", replay))
        with httpx.Client(timeout=30) as client:
            results: dict[tuple[str, bool], list[float]] = {}
            for stream in (False, True):
                for _warm in range(30):
                    for _name, (url, headers) in targets:
                        _timed(client, url, headers, stream)
                for _n in range(opts.calls):
                    for name, (url, headers) in targets:
                        results.setdefault((name, stream), []).append(_timed(client, url, headers, stream))
        p50 = {k: statistics.median(v) for k, v in results.items()}
        print(f"ai_direct_p50 {p50[('direct', False)]:.3f} ms")
        print(f"ai_gateway_p50 {p50[('gateway', False)]:.3f} ms")
        print(f"ai_gateway_overhead_p50 {p50[('gateway', False)] - p50[('direct', False)]:.3f} ms")
        print(f"ai_direct_stream_ttfb_p50 {p50[('direct', True)]:.3f} ms")
        print(f"ai_gateway_stream_ttfb_p50 {p50[('gateway', True)]:.3f} ms")
        print(f"ai_gateway_stream_ttfb_added_p50 {p50[('gateway', True)] - p50[('direct', True)]:.3f} ms")
        print(f"ai_replay_p50 {p50[('replay', False)]:.3f} ms")
        print(f"ai_replay_added_p50 {p50[('replay', False)] - p50[('direct', False)]:.3f} ms")
        print(f"ai_replay_stream_ttfb_p50 {p50[('replay', True)]:.3f} ms")
        print(f"ai_replay_stream_ttfb_added_p50 {p50[('replay', True)] - p50[('direct', True)]:.3f} ms")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
    if opts.turns > 0:
        recorded, replayed = _agent_session(tmp, env, opts.turns)
        print(f"ai_record_{opts.turns}_turn_session_s {recorded:.3f} s")
        print(f"ai_replay_{opts.turns}_turn_session_s {replayed:.3f} s")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
