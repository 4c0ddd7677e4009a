"""What the server needs from a loaded worker, whatever its language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from runtime.http import Request, Response


@dataclass(frozen=True)
class Limits:
    """Per-request limits. cpu_ms bounds the CPU a request's JS may burn in one go; memory_mb the JS heap."""

    # One runaway loop blocks the dev server for this long (JS runs on the event-loop thread), so the
    # default is a few seconds, not production's 30 s; raise it in ploy.yaml `limits.cpu_ms`.
    cpu_ms: int = 3_000
    memory_mb: int = 256


class WorkerError(Exception):
    """An uncaught error from the user's code, with the stack mapped to their source where possible."""

    def __init__(self, message: str, stack: str = "", log_line: str | None = None) -> None:
        super().__init__(message)
        self.stack = stack or message
        # what `ploy dev` logs instead of "uncaught error" and the stack (one line naming the request)
        self.log_line = log_line


class Worker(Protocol):
    async def fetch(self, request: Request, log_prefix: str) -> Response:
        """Call the user's fetch(request, env). Raise WorkerError for an uncaught error in user code.

        `log_prefix` tags console output with the request it came from."""
        ...

    async def close(self) -> None: ...


Env = dict[str, Any]
