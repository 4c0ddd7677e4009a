"""Progress output for long steps (the image build): a bar on a TTY, plain phase lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    def __call__(self, fraction: float, message: str) -> None: ...


class StderrProgress:
    def __init__(self, title: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.title = title
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self._last_phase = ""
        self._last_draw = 0.0
        self._started = time.monotonic()

    def __call__(self, fraction: float, message: str) -> None:
        fraction = max(0.0, min(1.0, fraction))
        phase = message.split(" ", 1)[0]
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.05 and fraction < 1.0:
                return
            self._last_draw = now
            filled = int(self.width * fraction)
            bar = "#" * filled + "." * (self.width - filled)
            line = f"\r{self.title} [{bar}] {fraction * 100:3.0f}% {message[:40]:<40}"
            self.stream.write(line)
            if fraction >= 1.0:
                self.stream.write(f"\n{self.title}: done in {time.monotonic() - self._started:.0f}s\n")
            self.stream.flush()
        elif phase != self._last_phase or fraction >= 1.0:
            self._last_phase = phase
            self.stream.write(f"{self.title}: {fraction * 100:3.0f}% {message}\n")
            self.stream.flush()
