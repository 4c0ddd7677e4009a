"""The event loop's watchdog: what `ploy dev` does about worker code that holds the loop.

Workers run on the server's one event loop, so a worker that computes (or sleeps) without awaiting
stops every other request. A heartbeat on the loop ticks every TICK_S; a thread checks it. When the
loop has not ticked for BLOCKED_LOG_S it logs one line naming the request and where its code is (the
Python frames of the main thread; for JS, which runs inside QuickJS, the request). Python worker code
that holds the loop past its limit (limits.cpu_ms for a request, IMPORT_LIMIT_S for importing the
module) is interrupted: the thread signals the main thread (SIGUSR2), whose handler raises
WorkerInterrupt in the worker's frame, where it unwinds the worker's code like any exception. (QuickJS
stops JS itself at limits.cpu_ms.) A pending SIGTERM interrupts it at once, so `ploy dev` stops.

The handler only raises when the loop is still in the same blocked stretch and a worker frame (marked
with `guard()`) is on the stack, so ploy's own code is never interrupted. `os._exit` called from a
worker's frame on the server's main thread raises WorkerInterrupt instead of ending the server.

What is not caught: C code that never returns to the interpreter and ignores signals (a regex
backtracking for ever), and a worker's own threads.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

TICK_S = 0.1
BLOCKED_LOG_S = 1.0
IMPORT_LIMIT_S = 10.0
# After one interrupt, how long a worker that caught it may go on before the next one.
REPEAT_S = 0.5
SIGNAL = signal.SIGUSR2


class WorkerInterrupt(BaseException):
    """Raised into a worker's code that held the event loop too long (or called os._exit).

    A BaseException, so the worker's own `except Exception` does not swallow it."""


# code object -> what a frame running it means: "request" (a Python worker's fetch), "import" (the
# worker module's top-level code), "js" (a call into a QuickJS context)
_GUARDED: dict[CodeType, str] = {}


def guard(kind: str) -> Callable[[Any], Any]:
    """Mark a function whose frames run worker code (see the module docstring)."""

    def mark(fn: Any) -> Any:
        _GUARDED[fn.__code__] = kind
        return fn

    return mark


class _Where:
    """What the main thread is doing, from its innermost frame outwards."""

    def __init__(self, frame: FrameType | None) -> None:
        self.kind: str | None = None
        self.label = ""
        self.frame: FrameType | None = None
        f = frame
        while f is not None:
            kind = _GUARDED.get(f.f_code)
            if kind is not None:
                self.kind, self.frame = kind, f
                if kind == "request" or (kind == "js" and not self.label):
                    prefix = f.f_locals.get("log_prefix")
                    self.label = prefix if isinstance(prefix, str) else ""
                if kind != "js":
                    break
            f = f.f_back

    def stack(self, frame: FrameType | None) -> str:
        """The worker's frames: from its guarded entry inwards."""
        frames = []
        f = frame
        while f is not None and f is not self.frame:
            frames.append(f)
            f = f.f_back
        summary = traceback.StackSummary.extract(((f, f.f_lineno) for f in reversed(frames)), limit=30)
        return "".join(summary.format()).rstrip()


class Watchdog:
    def __init__(
        self,
        log: Callable[[str], None],
        request_limit_s: Callable[[], float],
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.log = log
        self.request_limit_s = request_limit_s
        self.stopping = stopping
        self.beats = 0
        self.last = time.monotonic()
        self.main = threading.main_thread().ident
        self.pid = os.getpid()
        self._stop = threading.Event()
        self._pending: int | None = None  # the beat count an interrupt was sent for
        self._loop: Any = None
        self._real_exit = os._exit
        self._thread = threading.Thread(target=self._watch, name="ploy-watchdog", daemon=True)

    # -- on the loop ---------------------------------------------------------------------------------
    def start(self, loop: Any) -> None:
        self._loop = loop
        signal.signal(SIGNAL, self._interrupt)
        os._exit = self._exit  # type: ignore[assignment]
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        os._exit = self._real_exit
        if self._thread.is_alive():
            self._thread.join(1)

    def _beat(self) -> None:
        self.beats += 1
        self.last = time.monotonic()
        if not self._stop.is_set():
            self._loop.call_later(TICK_S, self._beat)

    # -- in the main thread, between two bytecodes of whatever holds the loop ----------------------------
    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self._pending != self.beats:
            return  # the loop moved on since the watchdog looked: nothing to stop
        self._pending = None
        where = _Where(frame)
        if where.kind == "request":
            raise WorkerInterrupt(
                f"Worker exceeded its CPU time limit ({self.request_limit_s() * 1000:.0f} ms): it held "
                "the event loop that long without awaiting, and was stopped"
            )
        if where.kind == "import":
            raise WorkerInterrupt(
                f"the worker module did not finish importing within {IMPORT_LIMIT_S:.0f} s and was abandoned"
            )

    def _exit(self, code: int) -> None:
        if os.getpid() == self.pid and threading.get_ident() == self.main:
            where = _Where(sys._getframe(1))
            if where.kind in ("request", "import"):
                raise WorkerInterrupt(f"the worker called os._exit({code}), which would have ended ploy dev")
        self._real_exit(code)

    # -- the watching thread -------------------------------------------------------------------------
    def _watch(self) -> None:
        logged_beat = -1
        interrupted_at = 0.0
        while not self._stop.wait(TICK_S):
            beat = self.beats
            blocked = time.monotonic() - self.last
            if blocked < BLOCKED_LOG_S:
                continue
            frame = sys._current_frames().get(self.main or 0)
            where = _Where(frame)
            if where.kind is None:
                continue  # ploy's own work (a slow filesystem, a big bundle): not the worker's doing
            if logged_beat != beat:
                logged_beat = beat
                self._report(where, frame, blocked)
            limit = IMPORT_LIMIT_S if where.kind == "import" else self.request_limit_s()
            if where.kind != "js" and (blocked >= limit or self.stopping()):
                now = time.monotonic()
                if now - interrupted_at >= REPEAT_S:
                    interrupted_at = now
                    self._pending = beat
                    signal.pthread_kill(self.main or 0, SIGNAL)
            del frame, where

    def _report(self, where: _Where, frame: FrameType | None, blocked: float) -> None:
        head = f"{where.label} " if where.label else ""
        if where.kind == "js":
            self.log(
                f"{head}the worker has blocked the event loop for {BLOCKED_LOG_S:.1f} s in its JavaScript "
                "(QuickJS cannot show where while it runs; at its CPU time limit it is stopped with its stack)"
            )
            return
        what = "importing the worker module" if where.kind == "import" else "the worker"
        stack = where.stack(frame)
        self.log(
            f"{head}{what} has blocked the event loop for {BLOCKED_LOG_S:.1f} s, at:\n{stack}"
            if stack
            else f"{head}{what} has blocked the event loop for {BLOCKED_LOG_S:.1f} s"
        )
