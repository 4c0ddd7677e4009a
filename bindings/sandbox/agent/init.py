"""PID 1 of a sandbox container: reaps orphans, restarts the agent if it dies, stops the container on idle.

The agent exits with IDLE_EXIT when the sandbox has been idle for `sleepAfter`; then this process exits
too, which stops the container (its filesystem is kept, so a later `podman start` resumes it).
The agent's modules are imported here once and the agent is a fork of this process, so starting (and
restarting) it costs a fork, not an interpreter start-up: that is most of a sandbox's cold start.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid

IDLE_EXIT = 75
HERE = os.path.dirname(os.path.abspath(__file__))

# A new token per container start: process records from an earlier start are known to be dead.
os.environ["PLOY_BOOT"] = uuid.uuid4().hex
os.environ["PLOY_STARTED"] = str(time.time())
sys.path.insert(0, HERE)

import server  # noqa: E402


def spawn() -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            server.run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def write_boot() -> None:
    """The start's token in the run folder, where the host reads it without waking the sandbox: a
    preview URL exposed under another token belongs to an earlier start (stale). Replaced, not
    rewritten, so the host sees a new inode per start."""
    run_dir = os.environ.get("PLOY_RUN_DIR", "/run/ploy")
    tmp = os.path.join(run_dir, f".boot.{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(os.environ["PLOY_BOOT"])
        os.replace(tmp, os.path.join(run_dir, "boot"))
    except OSError as exc:
        print(f"ploy-init: cannot write the boot file: {exc}", file=sys.stderr, flush=True)


def main() -> None:
    stopping = False
    agent = 0

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        try:
            os.kill(agent, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    write_boot()
    agent = spawn()
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
        agent = spawn()


if __name__ == "__main__":
    main()
