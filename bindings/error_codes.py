"""Every error code ploy's bindings raise, declared once: code, meaning, HTTP status where one applies.

Stdlib only: the sandbox agent imports it too (image.py ships it into the image beside the agent, as
`error_codes`), so the host, the agent, both bindings and the JS error mapping spell codes from here.
bindings/errors.py builds the exception types on it; the error tables in bindings/sandbox/README.md and
bindings/ai/README.md are `markdown_table()` (tests/bindings/test_error_codes.py keeps them equal; print them
with `python -m bindings.error_codes sandbox|ai`).

Codes are plain strings, so they compare and serialise as before, and a code from an agent of another
version still reaches the worker as it is.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

SANDBOX = "sandbox"
AI = "ai"
FETCH = "fetch"  # the JS runtime's fetch()


class ErrorCode(NamedTuple):
    code: str
    meaning: str
    # what ploy's HTTP endpoints (the AI gateway) answer with for it; None: never sent over HTTP
    http_status: int | None
    raised_by: tuple[str, ...]


CODES: dict[str, ErrorCode] = {}


def _declare(code: str, meaning: str, raised_by: tuple[str, ...], http_status: int | None = None) -> str:
    CODES[code] = ErrorCode(code, meaning, http_status, raised_by)
    return code


INVALID_ARGUMENT = _declare(
    "INVALID_ARGUMENT",
    "an argument or option is missing or malformed (an id, path, command, timeoutMs, model, ...)",
    (SANDBOX, AI),
    400,
)
NOT_FOUND = _declare(
    "NOT_FOUND",
    "the file, directory, working directory, process or session does not exist; "
    "for AI, no recorded call matches the request while replaying",
    (SANDBOX, AI),
)
IS_DIRECTORY = _declare("IS_DIRECTORY", "a file operation was given a directory", (SANDBOX,))
NOT_A_DIRECTORY = _declare(
    "NOT_A_DIRECTORY", "a parent of the path, or a recursive mkdir's path, is a file", (SANDBOX,)
)
ALREADY_EXISTS = _declare(
    "ALREADY_EXISTS",
    "mkdir of an existing path, a session id in use, a gitCheckout target folder that exists",
    (SANDBOX,),
)
DIRECTORY_NOT_EMPTY = _declare(
    "DIRECTORY_NOT_EMPTY", "deleteFile of a non-empty directory without `recursive`", (SANDBOX,)
)
PERMISSION_DENIED = _declare(
    "PERMISSION_DENIED", "the sandbox's filesystem refused the operation", (SANDBOX,)
)
NO_SPACE = _declare("NO_SPACE", "no space left on the sandbox's disk", (SANDBOX,))
IO_ERROR = _declare("IO_ERROR", "any other filesystem error", (SANDBOX,))
TIMEOUT = _declare(
    "TIMEOUT",
    "`timeoutMs` passed and the command's whole tree was killed (`details.stdout/stderr`: the output so far)",
    (SANDBOX,),
)
GIT_ERROR = _declare("GIT_ERROR", "git clone failed (git's message, `details.exitCode`)", (SANDBOX,))
SANDBOX_UNAVAILABLE = _declare(
    "SANDBOX_UNAVAILABLE",
    "the sandbox's agent could not be reached, or went away during the call",
    (SANDBOX,),
)
SPAWN_FAILED = _declare(
    "SPAWN_FAILED",
    "a process could not be started: the sandbox reached its pids limit; it works again once processes end",
    (SANDBOX,),
)
PODMAN_ERROR = _declare(
    "PODMAN_ERROR",
    "a Podman command failed (starting or removing a container, building the image)",
    (SANDBOX,),
)
UNAUTHORIZED = _declare("UNAUTHORIZED", "the AI gateway refused the token (401 or 403)", (AI,), 401)
AI_NOT_CONFIGURED = _declare("AI_NOT_CONFIGURED", "no provider credentials: run `ploy login`", (AI,), 503)
UPSTREAM_ERROR = _declare(
    "UPSTREAM_ERROR",
    "the provider failed or answered with an error (`details.status`, its message)",
    (AI,),
    502,
)
UNAVAILABLE = _declare("UNAVAILABLE", "the AI gateway could not be reached", (AI,))
FETCH_FAILED = _declare("FETCH_FAILED", "fetch() could not get a response (a TypeError in JS)", (FETCH,))

# Reaching what runs in a sandbox: readiness waits, and what a preview URL answers when it cannot proxy
# (the JSON body's `code`; the HTTP status is the response's).
PROCESS_EXITED_BEFORE_READY = _declare(
    "PROCESS_EXITED_BEFORE_READY",
    "`waitForPort`/`waitForLog`: the process ended before the port answered or the line appeared (`details.exitCode`)",
    (SANDBOX,),
)
INVALID_TOKEN = _declare(
    "INVALID_TOKEN",
    "a preview URL whose token, port or sandbox is unknown (never exposed, unexposed, destroyed)",
    (SANDBOX,),
    404,
)
STALE_PREVIEW_URL = _declare(
    "STALE_PREVIEW_URL",
    "a preview URL exposed before the sandbox's container restarted: call `exposePort` again",
    (SANDBOX,),
    410,
)
SANDBOX_NOT_RUNNING = _declare(
    "SANDBOX_NOT_RUNNING",
    "a preview URL of a suspended or stopped sandbox: previews never wake it; any other call does",
    (SANDBOX,),
    503,
)
PORT_UNREACHABLE = _declare(
    "PORT_UNREACHABLE",
    "nothing answered on the exposed port, at the sandbox's address or on its localhost",
    (SANDBOX,),
    502,
)

INTERNAL = _declare(
    "INTERNAL", "a bug in ploy: an unexpected exception, with its type and message", (SANDBOX, AI, FETCH)
)

# Backups, snapshots and the code interpreter (names as in Cloudflare's Sandbox SDK where it has them).
INVALID_BACKUP_CONFIG = _declare(
    "INVALID_BACKUP_CONFIG",
    "a backup option or id is malformed: a relative or `..` dir, a dir outside the backup roots, "
    "a ttl that is not a positive number, a name too long, an id that is no backup id",
    (SANDBOX,),
)
BACKUP_NOT_FOUND = _declare(
    "BACKUP_NOT_FOUND", "no backup of this project has that id (never made, or deleted)", (SANDBOX,)
)
BACKUP_EXPIRED = _declare(
    "BACKUP_EXPIRED", "the backup's ttl has passed (`details.expiredAt`); make a new one", (SANDBOX,)
)
BACKUP_CREATE_FAILED = _declare(
    "BACKUP_CREATE_FAILED",
    "tar could not archive the directory, or the archive arrived damaged; nothing was kept",
    (SANDBOX,),
)
BACKUP_RESTORE_FAILED = _declare(
    "BACKUP_RESTORE_FAILED",
    "the stored archive is damaged (sha256 or checksum mismatch) or could not be unpacked; "
    "the target directory is left as it was",
    (SANDBOX,),
)
SNAPSHOT_NOT_FOUND = _declare(
    "SNAPSHOT_NOT_FOUND", "no snapshot of this project has that id (never taken, or deleted)", (SANDBOX,)
)
CONTEXT_NOT_FOUND = _declare(
    "CONTEXT_NOT_FOUND",
    "no code context has that id; `details.lost: true` when it existed but its process is gone "
    "(the sandbox was stopped or restarted, or a run overran its timeout), so its state is lost",
    (SANDBOX,),
)
JAVASCRIPT_NOT_AVAILABLE = _declare(
    "JAVASCRIPT_NOT_AVAILABLE", "a javascript code context needs `node` in the sandbox image", (SANDBOX,)
)


def http_status(code: str) -> int:
    """The HTTP status for a code that has one (KeyError/ValueError otherwise: a caller's bug)."""
    status = CODES[code].http_status
    if status is None:
        raise ValueError(f"{code} has no HTTP status")
    return status


def markdown_table(raised_by: str, http: bool = False) -> str:
    """The README table of the codes `raised_by` raises (with their HTTP status when `http`)."""
    rows = [c for c in CODES.values() if raised_by in c.raised_by]
    lines = ["| code | meaning |" + (" HTTP |" if http else ""), "|---|---|" + ("---|" if http else "")]
    for c in rows:
        status = f" {c.http_status} |" if c.http_status is not None else " |"
        lines.append(f"| `{c.code}` | {c.meaning} |" + (status if http else ""))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else SANDBOX
    sys.stdout.write(markdown_table(which, http=which == AI))
