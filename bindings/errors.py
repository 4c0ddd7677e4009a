"""Typed errors every binding raises. In JS they reject with an Error whose `code` and `name` are set.

The codes and what they mean are declared in bindings/error_codes.py; these are the exception types.
"""

from __future__ import annotations

from typing import Any

from bindings import error_codes


class PloyError(Exception):
    """An error with a stable machine-readable code (NOT_FOUND, TIMEOUT, INVALID_ARGUMENT, ...)."""

    code: str = error_codes.INTERNAL

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = details

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def to_json(self) -> dict[str, Any]:
        return {"name": "PloyError", "code": self.code, "message": self.message, **self.details}


class InvalidArgument(PloyError):
    code = error_codes.INVALID_ARGUMENT


class NotFound(PloyError):
    code = error_codes.NOT_FOUND
