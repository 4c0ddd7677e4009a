"""Argument values, each kind checked by one function that both sides use.

The host checks what a worker passes before anything is sent (so a JS and a Python worker get the same
INVALID_ARGUMENT, and a bad call changes nothing), and the agent checks what it receives with the same
functions (a session's command and a plain one alike). Stdlib only, like proto.py and wire.py: the host
imports it as `bindings.sandbox.agent.args`, the agent as `args`.

Every check returns the value (normalised) or raises Invalid, whose message starts with the argument's
name. The limits are the kernel's: one argv or environment string may not exceed MAX_ARG_STRLEN
(E2BIG), a path PATH_MAX, a path component NAME_MAX.
"""

from __future__ import annotations

import math
import re
import signal as _signal
from typing import Any

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_ARG_BYTES = 128 * 1024 - 1  # MAX_ARG_STRLEN less the terminating NUL
PATH_MAX = 4095
NAME_MAX = 255
MAX_MS = 2**31 - 1  # what JS timers accept (~24.8 days)
# exec() keeps stdout and stderr up to outputLimit each, in the agent's memory and then the host's: one
# call must not be able to take the agent (which shares the sandbox's memory limit) down with it.
OUTPUT_LIMIT_MAX = 64 * 1024 * 1024
ID_MAX = 256


class Invalid(ValueError):
    """A malformed argument: `argument` is its name, the message says what is wrong with it."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument} {message}")
        self.argument = argument


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def text(value: Any, name: str, *, empty_ok: bool = False, max_bytes: int | None = None) -> str:
    """A string that can reach the kernel: no NUL, no lone surrogate (it has no UTF-8 form)."""
    if not isinstance(value, str):
        raise Invalid(name, f"must be a string, got {_type(value)}")
    if not empty_ok and not value.strip():
        raise Invalid(name, "must be a non-empty string")
    if "\0" in value:
        raise Invalid(name, f"must not contain a NUL character (at index {value.index(chr(0))})")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise Invalid(
            name, f"contains a lone surrogate (U+{ord(value[exc.start]):04X} at index {exc.start})"
        ) from None
    if max_bytes is not None and size > max_bytes:
        raise Invalid(name, f"is {size} bytes long; the limit is {max_bytes}")
    return value


def command(value: Any, name: str = "command") -> str:
    return text(value, name, max_bytes=MAX_ARG_BYTES)


def path(value: Any, name: str = "path") -> str:
    text(value, name, max_bytes=PATH_MAX)
    for part in value.split("/"):
        if len(part.encode("utf-8")) > NAME_MAX:
            raise Invalid(name, f"has a component longer than {NAME_MAX} bytes")
    return value


def optional_path(value: Any, name: str) -> str | None:
    return None if value is None else path(value, name)


def identifier(value: Any, name: str) -> str:
    """A process or session id: a plain non-empty string."""
    return text(value, name, max_bytes=ID_MAX)


# A process id chosen by the caller (startProcess processId) names a folder in the agent's state.
PROCESS_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


def process_id(value: Any, name: str = "processId") -> str:
    if not isinstance(value, str) or not PROCESS_ID.match(value):
        shown = repr(value) if isinstance(value, str) else _type(value)
        raise Invalid(
            name,
            f"must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got {shown}",
        )
    return value


def signal_number(value: Any, name: str = "signal") -> int:
    """A signal by name (SIGTERM, TERM, sigint) or number (9)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 < value < _signal.NSIG:
            return value
    elif isinstance(value, str):
        upper = value.strip().upper()
        upper = upper if upper.startswith("SIG") else "SIG" + upper
        if upper in _signal.Signals.__members__ and not upper.startswith("SIG_"):
            return int(_signal.Signals[upper])
    shown = repr(value) if isinstance(value, (str, int, float)) else _type(value)
    raise Invalid(name, f"is not a known signal: {shown} (e.g. SIGTERM, SIGKILL, SIGINT, 9)")


def content(value: Any, name: str = "content") -> str:
    """File content given as text: any characters (NUL included) that have a UTF-8 form."""
    return text(value, name, empty_ok=True)


def env_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise Invalid(
            name,
            f"has an invalid variable name {value!r}: use letters, digits and '_', not starting with a digit",
        )
    return value


def env_value(value: Any, name: str) -> str | None:
    """A variable's value: a string, a finite number (written as JS would), or null to unset it."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float):
            if not math.isfinite(value):
                raise Invalid(name, f"must be a string, got {_type(value)}")
            value = str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
        return str(value)
    if not isinstance(value, str):
        raise Invalid(name, f"must be a string (or null to unset it), got {_type(value)}")
    return text(value, name, empty_ok=True, max_bytes=MAX_ARG_BYTES)


def env(value: Any, name: str = "env", *, required: bool = False) -> dict[str, str | None] | None:
    """An object of variable name -> value (null unsets); absent is None unless required."""
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise Invalid(name, f"must be an object of variable name -> string, got {_type(value)}")
    return {env_name(k, name): env_value(v, f"{name}.{k}") for k, v in value.items()}


def _number(value: Any, name: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(name, f"must be {what}, got {_type(value)}")
    if not math.isfinite(value):
        raise Invalid(name, f"must be {what}, got {value!r}")
    return value


def timeout_ms(value: Any, name: str = "timeoutMs") -> float | None:
    """A positive, finite number of milliseconds (absent: no timeout)."""
    if value is None:
        return None
    ms = _number(value, name, "a positive number of milliseconds")
    if ms <= 0 or ms > MAX_MS:
        raise Invalid(name, f"must be a positive number of milliseconds up to {MAX_MS}, got {value!r}")
    return ms


def duration_ms(value: Any, name: str) -> float | None:
    """Zero or more milliseconds (absent: None): a wait's bound or a polling interval."""
    return grace_ms(value, name)


def grace_ms(value: Any, name: str = "graceMs") -> float | None:
    """Zero or more milliseconds (absent: the default)."""
    if value is None:
        return None
    ms = _number(value, name, "a number of milliseconds")
    if ms < 0 or ms > MAX_MS:
        raise Invalid(name, f"must be between 0 and {MAX_MS} milliseconds, got {value!r}")
    return ms


def integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(name, f"must be an integer, got {_type(value)}")
    if not low <= value <= high:
        raise Invalid(name, f"must be between {low} and {high}, got {value}")
    return value


def output_limit(value: Any, name: str = "outputLimit") -> int | None:
    """Bytes of output kept per stream (absent: the sandbox's default)."""
    return None if value is None else integer(value, name, 0, OUTPUT_LIMIT_MAX)


# Git transports that run a command or use an inherited descriptor (`ext::sh -c ...`, `fd::3`): a
# repository URL must name a repository, not a program to run.
REFUSED_TRANSPORTS = ("ext", "fd")


def repo_url(value: Any, name: str = "repoUrl") -> str:
    text(value, name, max_bytes=PATH_MAX)
    if value.startswith("-"):
        raise Invalid(name, "must be a repository URL, not an option")
    transport = value.split("::", 1)[0].lower() if "::" in value else ""
    if transport in REFUSED_TRANSPORTS:
        raise Invalid(name, f"uses the {transport}:: transport, which runs a command; use a repository URL")
    return value


def branch(value: Any, name: str = "branch") -> str:
    text(value, name, max_bytes=NAME_MAX)
    if value.startswith("-"):
        raise Invalid(name, "must be a branch or tag name, not an option")
    return value
