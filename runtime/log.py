"""The one output of `ploy dev`: every line it prints, in one format, through one sink.

    ploy dev: serving /home/me/app at http://127.0.0.1:8787
    GET /exec 200 4.1ms
    [GET /exec] hello from console.log
    sandbox: pool refill failed: ...
    ai: gateway at http://127.0.0.1:40211/v1

`<source>: <text>`, where the server itself (its start, reloads, one line per request) and the
worker it serves (console output and uncaught errors, tagged with their request) have no source;
the lines after the first of a multi-line text (a stack) follow as they are. Every `logging` logger
under `ploy.` ends up here with its last name as the source, so bindings log with `ctx.logger(name)`
(`sandbox`, `ai`), the JS host as `js`, and nothing prints on its own.

The request line is written directly, not through `logging`: at 20k requests/s a LogRecord per
request would cost a tenth of the server's time. Many lines of one event-loop turn share one flush.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from typing import TextIO


class Sink:
    """Lines written in one event-loop turn are held and leave with one write and one flush at the end
    of the turn: with PYTHONUNBUFFERED (common in containers and CI) every write() to stdout is a
    syscall, one per request line otherwise (JS hello under wrk -c32: ~6% of the server's time)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._held: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        atexit.register(self._flush)  # lines of a loop's last turn, if it closed before flushing

    def line(self, source: str, text: str) -> None:
        self._held.append(f"{source}: {text}\n" if source else text + "\n")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (start-up, shutdown, the CLI): write now
            self._flush()
            return
        if self._flush_on is not loop:
            loop.call_soon(self._flush)
            self._flush_on = loop

    def _flush(self) -> None:
        self._flush_on = None
        held = self._held
        if not held:
            return
        self._held = []
        stream = self.stream or sys.stdout
        stream.write(held[0] if len(held) == 1 else "".join(held))
        stream.flush()


SINK = Sink()


def log(text: str, source: str = "") -> None:
    SINK.line(source, text)


class _ToSink(logging.Handler):
    def __init__(self, sink: Sink, source: str | None) -> None:
        super().__init__(logging.NOTSET)
        self.sink = sink
        self.source = source  # None: from the logger's name (`ploy.sandbox` -> sandbox)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            source = self.source or (record.name.removeprefix("ploy.") if record.name != "ploy" else "")
            self.sink.line(source, text)
        except Exception:
            self.handleError(record)


# Loggers of libraries ploy dev runs, by the source their lines take; uvicorn's only at WARNING and up.
FOREIGN = {"uvicorn": ("uvicorn", logging.WARNING)}


def route_loggers(sink: Sink = SINK) -> None:
    """Send every `ploy.*` logger's records at INFO and above, and the servers' warnings, to `sink`
    (and nowhere else)."""
    for name, (source, level) in {"ploy": ("ploy", logging.INFO), **FOREIGN}.items():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, _ToSink):
                logger.removeHandler(handler)
        logger.addHandler(_ToSink(sink, source if name != "ploy" else None))
        logger.setLevel(level)
        logger.propagate = False
