"""The one declaration of a binding's API, shared by the Python class, the JS proxy and the typings test.

A binding object exposed to workers is a Python object whose class sets `__ploy_spec__` to an
`ObjectSpec`. Every method named there must exist on the class under the same (camelCase) name, so
Python workers and JS workers call exactly the same API.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

from bindings.errors import InvalidArgument

MethodKind = Literal["sync", "async", "stream"]


@dataclass(frozen=True)
class Method:
    name: str
    # sync: returns at once (in JS too), async: a Promise / coroutine,
    # stream: a Promise of a ReadableStream in JS, a coroutine giving an AsyncIterator[bytes] in Python.
    kind: MethodKind
    # Name of the ObjectSpec of the result when the result is itself a binding object
    # (e.g. SandboxBinding.get -> SandboxClient); None for plain JSON-able data.
    returns: str | None = None
    doc: str = ""
    # For sync methods returning an object: props of the result that equal the call's positional args,
    # so JS can set them at once (env.SANDBOX.get(id).id) without waiting for the host.
    props_from_args: tuple[str, ...] = ()
    # The names its options object takes (None: it takes no options object). One list, so the check
    # (check_options) and typings/ (tests/typings/test_types_drift.py) cannot drift apart.
    options: tuple[str, ...] | None = None
    # Positions of arguments that may be a byte stream: in JS a ReadableStream or an async iterable of
    # chunks, handed to the host as a stream it pulls one chunk at a time (backpressure, never whole);
    # in Python an async iterable of bytes. Other values at those positions pass as usual.
    stream_args: tuple[int, ...] = ()


def check_options(method: Method, options: dict[str, Any]) -> None:
    """INVALID_ARGUMENT naming the first option `method` does not take (a typo like `timeoutMS` would
    otherwise be ignored without a word), with the closest declared name as a hint."""
    allowed = method.options or ()
    for name in options:
        if name not in allowed:
            close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no options"
            raise InvalidArgument(
                f"{method.name}(): unknown option {name!r} ({method.name} {takes}){hint}",
                option=str(name),
            )


@dataclass(frozen=True)
class ObjectSpec:
    name: str  # the TypeScript interface name in typings/
    methods: tuple[Method, ...]
    props: tuple[str, ...] = ()  # plain read-only data attributes copied to the JS object
    doc: str = ""
    # A data object with methods (a started process): the Python object is a dict of its data, and the
    # JS object's own properties are exactly that dict's items, in order, so JSON.stringify / json.dumps
    # give the same JSON as the plain data did. `props` then lists the keys it may have.
    data: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def method(self, name: str) -> Method:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def method_names(self) -> list[str]:
        return [m.name for m in self.methods]


REGISTRY: dict[str, ObjectSpec] = {}


def register(*specs: ObjectSpec) -> None:
    for spec in specs:
        REGISTRY[spec.name] = spec


def spec_of(obj: object) -> ObjectSpec | None:
    return getattr(type(obj), "__ploy_spec__", None)
