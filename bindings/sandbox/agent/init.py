"""PID 1 of a sandbox container: reaps orphans, restarts the agent if it dies, stops the container on idle.

The agent exits with IDLE_EXIT when the sandbox has been idle for `sleepAfter`; then this process exits
too, which stops the container (its filesystem is kept, so a later `podman start` resumes it).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid

IDLE_EXIT = 75
HERE = os.path.dirname(os.path.abspath(__file__))


def spawn(env: dict[str, str]) -> int:
    pid = os.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-u", os.path.join(HERE, "server.py")], env)
    return pid


def main() -> None:
    env = dict(os.environ)
    # A new token per container start: process records from an earlier start are known to be dead.
    env["PLOY_BOOT"] = uuid.uuid4().hex
    env["PLOY_STARTED"] = str(time.time())
    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        try:
            os.kill(agent, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    agent = spawn(env)
    restarts: list[float] = []
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(0.1)
            continue
        except InterruptedError:
            continue
        if pid != agent:
            continue  # an orphan re-parented to us: reaping it is all we owe it
        code = os.waitstatus_to_exitcode(status)
        if stopping or code == IDLE_EXIT:
            sys.exit(0)
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 10] + [now]
        if len(restarts) > 5:
            time.sleep(1)  # crash loop: slow down rather than spin
        print(f"ploy-init: agent exited ({code}), restarting", file=sys.stderr, flush=True)
        agent = spawn(env)


if __name__ == "__main__":
    main()
