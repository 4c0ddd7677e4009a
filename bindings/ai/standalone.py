"""Run the AI gateway alone for a project folder: `python -m bindings.ai.standalone [DIR] [--port N]
[--record FILE | --replay FILE [--replay-speed N]]`.

Prints one JSON line ({"baseUrl", "sandboxBaseUrl", "token"}) once it listens, then serves until
interrupted. For benches, manual tries with an SDK, and tests that want the gateway in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from pathlib import Path

from bindings.ai.gateway import Gateway
from bindings.context import BindingContext


async def _serve(project: Path, port: int, loopback_only: bool, opts: argparse.Namespace) -> None:
    gateway = await Gateway.start(
        BindingContext.for_project(project), port, bridge=None if loopback_only else "auto"
    )
    await gateway.configure(opts.record, opts.replay, opts.replay_speed)
    info = {
        "baseUrl": gateway.base_url,
        "sandboxBaseUrl": gateway.sandbox_base_url,
        "token": gateway.mint_token(),
    }
    print(json.dumps(info), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await gateway.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir", nargs="?", default=".")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loopback-only", action="store_true", help="do not listen on the Podman bridge")
    parser.add_argument("--record", type=Path, help="append every call to this recording")
    parser.add_argument("--replay", type=Path, help="answer every call from this recording")
    parser.add_argument("--replay-speed", type=float, default=1.0, help="1: recorded pace, 0: at once")
    opts = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop  # what uvicorn picks when installed, so what `ploy dev` runs on

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve(Path(opts.dir), opts.port, opts.loopback_only, opts))


if __name__ == "__main__":
    main()
