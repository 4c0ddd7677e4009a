"""Typed errors every binding raises. In JS they reject with an Error whose `code` and `name` are set."""

from __future__ import annotations

from typing import Any


class PloyError(Exception):
    """An error with a stable machine-readable code (NOT_FOUND, TIMEOUT, INVALID_ARGUMENT, ...)."""

    code: str = "INTERNAL"

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
    code = "INVALID_ARGUMENT"


class NotFound(PloyError):
    code = "NOT_FOUND"
