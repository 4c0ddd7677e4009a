"""Host side of 00_bridge.js: values to and from JS (the counterpart of its encodeForHost and
decodeFromHost), and the JSON a rejected hostCall's Error is rebuilt from (its hostError).

Bytes cross the QuickJS boundary as latin-1 strings (one char per byte), the cheapest form it takes.
The bridge has no host ops of its own: the ops are in the modules beside the files that send them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from bindings.error_codes import INTERNAL
from bindings.errors import InvalidArgument, PloyError
from bindings.spec import ObjectSpec, spec_of
from bindings.web import WebResponse, WebSocket
from runtime.http import Headers, Request
from runtime.js.binding_proxies import StreamRef, spec_methods
from runtime.js.host_streams import HostStream
from runtime.workers.base import WorkerError

_PLAIN = "__ploy_plain:"  # a worker's own key that looked like a tag (see encodeArgsForHost)
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


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
        self,
        register_object: Callable[[Any], int],
        register_stream: Callable[[HostStream], int],
        register_socket: Callable[[WebSocket], int] | None = None,
    ) -> None:
        self._register_object = register_object
        self._register_stream = register_stream
        self._register_socket = register_socket
        self.sent_specs: set[str] = set()

    def describe(self, obj: Any, spec: ObjectSpec) -> dict[str, Any]:
        # a data object's own properties are exactly its items, in order (JSON.stringify gives its JSON)
        props = dict(obj) if spec.data else {p: getattr(obj, p, None) for p in spec.props}
        desc: dict[str, Any] = {"handle": self._register_object(obj), "spec": spec.name, "props": props}
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
            if isinstance(v, _Described):
                special = True
                return {"__ploy_obj": self.describe(v.obj, v.spec)}
            if isinstance(v, WebResponse):
                special = True
                return {"__ploy_response": self._response(v)}
            if isinstance(v, WebSocket) and self._register_socket is not None:
                special = True
                return {"__ploy_ws": [self._register_socket(v), v.protocol]}
            if isinstance(v, (set, frozenset, tuple)):
                return list(v)
            to_json = getattr(v, "to_json", None)
            if callable(to_json):
                return to_json()
            raise TypeError(f"cannot send a {type(v).__name__} to JS")

        if value is None:
            return "null", False
        value = _wrap_data_objects(value)
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":")), special

    def response_body(self, web: WebResponse) -> tuple[str | None, int | None]:
        """A WebResponse's body for JS: its bytes as latin-1 text (kept as the body's `bin`, decoded only
        if the worker reads it), or the id of the host stream registered for a streamed one."""
        body = web.body
        if body is None:
            return None, None
        if isinstance(body, (bytes, bytearray)):
            return bytes(body).decode("latin-1"), None
        return None, self._register_stream(HostStream(body))

    def _response(self, web: WebResponse) -> dict[str, Any]:
        bin_, stream = self.response_body(web)
        ws = None
        if web.webSocket is not None and self._register_socket is not None:
            ws = [self._register_socket(web.webSocket), web.webSocket.protocol]
        return {
            "status": web.status,
            "statusText": web.statusText,
            "headers": [[k.lower(), v] for k, v in web.headers],
            "bin": bin_,
            "stream": stream,
            "ws": ws,
        }

    def decode_args(self, text: str, lookup: Callable[[int], Any]) -> list[Any]:
        """The arguments of a binding call, as encodeArgsForHost (00_bridge.js) wrote them."""

        def hook(d: dict[str, Any]) -> Any:
            if len(d) == 1:
                if "__ploy_bytes" in d:
                    return d["__ploy_bytes"].encode("latin-1")
                if "__ploy_handle" in d:
                    return lookup(d["__ploy_handle"])
                if "__ploy_num" in d:
                    return _NON_FINITE[d["__ploy_num"]]
                if "__ploy_request" in d:
                    r = d["__ploy_request"]
                    body = None if r["body"] is None else r["body"].encode("latin-1")
                    return Request(r["url"], r["method"], Headers([(k, v) for k, v in r["headers"]]), body)
                if "__ploy_regexp" in d:
                    return js_regexp(*d["__ploy_regexp"])
                # only the bridge's own tags arrive unescaped: a worker's object of this shape is
                # escaped (below), so it can never name another request's stream
                if "__ploy_jsstream" in d:
                    return StreamRef("js", int(d["__ploy_jsstream"]))
                if "__ploy_hoststream" in d:
                    return StreamRef("host", int(d["__ploy_hoststream"]))
            if any(k.startswith(_PLAIN) for k in d):
                return {k.removeprefix(_PLAIN): v for k, v in d.items()}
            return d

        try:
            args = json.loads(text, object_hook=hook)
        except RecursionError:
            raise InvalidArgument("the arguments are nested too deeply") from None
        return args if isinstance(args, list) else [args]


class _Described:
    """A data binding object (a dict, which json.dumps would write as plain data) to send as an object."""

    __slots__ = ("obj", "spec")

    def __init__(self, obj: Any, spec: ObjectSpec) -> None:
        self.obj, self.spec = obj, spec


def _wrap_data_objects(value: Any) -> Any:
    """json.dumps never asks `default` about a dict: data objects (ObjectSpec.data) are marked first,
    as the result itself or as items of a list result."""
    if isinstance(value, dict):
        spec = spec_of(value) if type(value) is not dict else None
        return _Described(value, spec) if spec is not None else value
    if isinstance(value, list) and value and type(value[0]) is not dict and isinstance(value[0], dict):
        return [_wrap_data_objects(v) for v in value]
    return value


_JS_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}


def js_regexp(source: str, flags: str) -> re.Pattern[str]:
    """A JS RegExp as Python's re: named groups `(?<name>` become `(?P<name>`; flags i, m, s apply
    (g, y, u, d, v change nothing for a search)."""
    py = re.sub(r"(?<!\\)\(\?<(?![=!])", "(?P<", source)
    value = 0
    for flag in flags:
        value |= _JS_FLAGS.get(flag, 0)
    try:
        return re.compile(py, value)
    except re.error as e:
        raise InvalidArgument(
            f"the regular expression /{source}/{flags} is not supported here: {e}"
        ) from None
