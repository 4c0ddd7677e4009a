"""Host side of 00_bridge.js: values to and from JS (the counterpart of its encodeForHost and
decodeFromHost), and the JSON a rejected hostCall's Error is rebuilt from (its hostError).

Bytes cross the QuickJS boundary as latin-1 strings (one char per byte), the cheapest form it takes.
The bridge has no host ops of its own: the ops are in the modules beside the files that send them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bindings.error_codes import INTERNAL
from bindings.errors import PloyError
from bindings.spec import ObjectSpec, spec_of
from runtime.js.binding_proxies import spec_methods
from runtime.js.host_streams import HostStream
from runtime.workers.base import WorkerError


def error_info(exc: BaseException) -> dict[str, Any]:
    """The JSON a JS Error is rebuilt from: name, message, code (+ details)."""
    if isinstance(exc, PloyError):
        return exc.to_json()
    if isinstance(exc, WorkerError):
        # JS's own error, come back through the host (a stream argument that failed while a binding
        # read it): the caller gets it as it was thrown, not as a ploy bug
        name, sep, message = str(exc).partition(": ")
        if sep and name.isidentifier():
            return {"name": name, "message": message}
        return {"name": "Error", "message": str(exc)}
    return {"name": "Error", "code": INTERNAL, "message": f"{type(exc).__name__}: {exc}"}


class Codec:
    """JSON to and from JS, with bytes, binding objects and streams tagged."""

    def __init__(
        self, register_object: Callable[[Any], int], register_stream: Callable[[HostStream], int]
    ) -> None:
        self._register_object = register_object
        self._register_stream = register_stream
        self.sent_specs: set[str] = set()

    def describe(self, obj: Any, spec: ObjectSpec) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "handle": self._register_object(obj),
            "spec": spec.name,
            "props": {p: getattr(obj, p, None) for p in spec.props},
        }
        if spec.name not in self.sent_specs:
            self.sent_specs.add(spec.name)
            desc["methods"] = spec_methods(spec)
        return desc

    def encode(self, value: Any) -> tuple[str, bool]:
        special = False

        def default(v: Any) -> Any:
            nonlocal special
            if isinstance(v, (bytes, bytearray, memoryview)):
                special = True
                return {"__ploy_bytes": bytes(v).decode("latin-1")}
            spec = spec_of(v)
            if spec is not None:
                special = True
                return {"__ploy_obj": self.describe(v, spec)}
            if isinstance(v, HostStream):
                special = True
                return {"__ploy_stream": self._register_stream(v)}
            if isinstance(v, (set, frozenset, tuple)):
                return list(v)
            to_json = getattr(v, "to_json", None)
            if callable(to_json):
                return to_json()
            raise TypeError(f"cannot send a {type(v).__name__} to JS")

        if value is None:
            return "null", False
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":")), special

    def decode_args(self, text: str, lookup: Callable[[int], Any]) -> list[Any]:
        def hook(d: dict[str, Any]) -> Any:
            if "__ploy_bytes" in d and len(d) == 1:
                return d["__ploy_bytes"].encode("latin-1")
            if "__ploy_handle" in d and len(d) == 1:
                return lookup(d["__ploy_handle"])
            return d

        args = json.loads(text, object_hook=hook)
        return args if isinstance(args, list) else [args]
