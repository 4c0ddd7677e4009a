"""Host ops of 82_binding_proxies.js: methods called on binding objects (env.SANDBOX, what its methods
return), and releasing the objects JS no longer holds.

The objects are in `ctx.objects` (BindingObjects) under the handle JS knows them by: positive handles
the host gave (JsHost.register_object), negative ones JS chose for the result of a sync method.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bindings.errors import InvalidArgument
from bindings.spec import ObjectSpec, spec_of
from runtime.js.entry import JsBodyStream
from runtime.js.host_streams import HostStream
from runtime.workers.base import WorkerError

if TYPE_CHECKING:
    from runtime.js.host import JsHost


class _Failed:
    """What a sync binding call left behind when it raised: later calls on the handle reject with it."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class BindingObjects(dict[int, Any]):
    """handle -> binding object."""

    def lookup(self, handle: int) -> Any:
        obj = self.get(handle)
        if obj is None:
            raise WorkerError(f"binding object #{handle} is gone")
        if isinstance(obj, _Failed):
            raise obj.exc
        return obj


def call(ctx: JsHost, op: list[Any]) -> None:
    _, op_id, handle, method, args_json = op
    ctx.start(op_id, _binding_call(ctx, handle, method, args_json))


def call_sync(ctx: JsHost, op: list[Any]) -> None:
    """A sync method: JS already holds a proxy for its result, under `handle`."""
    _, handle, target, method, args_json = op
    try:
        obj = ctx.objects.lookup(target)
        fn = getattr(obj, method)
        args = ctx.codec.decode_args(args_json, ctx.objects.lookup)
        check_arity(fn, args)
        result = fn(*args)
    except Exception as e:
        ctx.objects[handle] = _Failed(e)
        return
    ctx.objects[handle] = result
    spec = spec_of(result)
    if spec is not None and spec.props:
        props = {p: getattr(result, p, None) for p in spec.props}
        ctx.call_js(ctx.js_set_props, handle, json.dumps(props, default=str))


def release(ctx: JsHost, op: list[Any]) -> None:
    """JS collected the last proxy for the object."""
    ctx.objects.pop(op[1], None)


def _binding_call(ctx: JsHost, handle: int, method: str, args_json: str) -> Any:
    """Resolves the target and arguments now (a temporary proxy may be released right after the
    call), and returns the coroutine that runs the method."""
    try:
        obj = ctx.objects.lookup(handle)
        spec = spec_of(obj)
        if spec is None or method not in spec.method_names:
            raise TypeError(f"{type(obj).__name__} has no method {method}")
        args = ctx.codec.decode_args(args_json, ctx.objects.lookup)
        decl = spec.method(method)
        streams = [_stream_argument(ctx, args, i) for i in decl.stream_args if i < len(args)]
    except Exception as e:
        return _raise(e)
    return _run_method(decl.kind, getattr(obj, method), args, [s for s in streams if s is not None])


def _stream_argument(ctx: JsHost, args: list[Any], i: int) -> Any:
    """A stream argument (82_binding_proxies.js streamArgument) as the AsyncIterator[bytes] the method
    gets: a JS stream pulled chunk by chunk, or a host stream handed back untouched."""
    v = args[i]
    if isinstance(v, dict) and len(v) == 1:
        if "__ploy_jsstream" in v:
            args[i] = JsBodyStream(ctx, int(v["__ploy_jsstream"]))
            return args[i]
        if "__ploy_hoststream" in v:
            stream = ctx.host_streams.pop(int(v["__ploy_hoststream"]), None)
            if stream is None:
                raise InvalidArgument("the stream argument was already read or closed")
            args[i] = stream
            return stream
    return None


async def _run_method(kind: str, fn: Callable[..., Any], args: list[Any], streams: list[Any]) -> Any:
    try:
        check_arity(fn, args)
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
    finally:
        # A stream argument the method did not read to its end (it failed first, or stopped) is
        # cancelled, so its JS reader is released and its source stops.
        for stream in streams:
            await stream.aclose()
    if kind == "stream" and result is not None and not isinstance(result, HostStream):
        result = HostStream(result)
    return result


async def _raise(exc: BaseException) -> Any:
    raise exc


@functools.lru_cache(maxsize=512)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def check_arity(method: Callable[..., Any], args: list[Any]) -> None:
    """JS lets a caller pass too few or too many arguments; a binding method says which it takes."""
    fn = getattr(method, "__func__", method)  # cache per function, not per bound method
    receiver = (None,) if fn is not method else ()
    try:
        _signature(fn).bind(*receiver, *args)
    except TypeError as e:
        raise InvalidArgument(f"{getattr(fn, '__name__', 'method')}(): {e}") from None


def spec_methods(spec: ObjectSpec) -> list[list[Any]]:
    """[name, kind, returns, props_from_args, stream_args] per method, as 82_binding_proxies.js builds
    a prototype from. `props_from_args` names the props of a sync method's result that equal its
    arguments, so JS can set them at once (`env.SANDBOX.get(id).id`) instead of when the host has run
    the call; `stream_args` the argument positions JS hands over as streams the host pulls."""
    return [[m.name, m.kind, m.returns, list(m.props_from_args), list(m.stream_args)] for m in spec.methods]


HOST_OPS = {"call": call, "callSync": call_sync, "release": release}
