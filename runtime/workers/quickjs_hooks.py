"""Two QuickJS runtime hooks the quickjs-ng binding does not expose, set through the QuickJS C API
that its extension module exports (ctypes, no compiler needed):

- the host promise-rejection tracker (HTML's "unhandled rejections"): the engine reports every
  promise rejected with no handler, and every handler added to such a promise later; each report is
  passed to the JS function `__ploy_trackRejection(promise, reason, handled)` (42_globals.js), which
  keeps the unhandled ones and asks the host to have them logged once the job queue is empty.
- the interrupt handler that enforces the CPU time limit. The binding's own (`set_time_limit`) reads
  the process CPU clock (a syscall that walks every thread of the process) on every call into JS,
  three or more times per request; this one reads the thread's CPU clock only when the engine polls
  (every 10,000 function calls or loop iterations), starting a run's clock at its first poll.

Both depend on the binding's object layout (its Context struct starts with the JSRuntime and
JSContext pointers after the Python object header): `attach` only tries on a binding version it knows
(KNOWN_BINDINGS), checks the pointers against the engine, and returns None when either fails; the
caller then falls back to the binding's own time limit, without rejection tracking.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import time
import weakref
from typing import Any

import _quickjs

_lib = ctypes.CDLL(_quickjs.__file__)


class _JSValue(ctypes.Structure):
    # 64-bit builds (no NaN boxing): a union of int32/double/pointer, then the tag
    _fields_ = [("u", ctypes.c_int64), ("tag", ctypes.c_int64)]


_TAG_BOOL, _TAG_UNDEFINED, _TAG_EXCEPTION = 1, 3, 6
_TRACKER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _JSValue, _JSValue, ctypes.c_bool, ctypes.c_void_p)
_INTERRUPT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)

_lib.JS_SetHostPromiseRejectionTracker.argtypes = [ctypes.c_void_p, _TRACKER, ctypes.c_void_p]
_lib.JS_SetHostPromiseRejectionTracker.restype = None
_lib.JS_SetInterruptHandler.argtypes = [ctypes.c_void_p, _INTERRUPT, ctypes.c_void_p]
_lib.JS_SetInterruptHandler.restype = None
_lib.JS_GetRuntime.argtypes = [ctypes.c_void_p]
_lib.JS_GetRuntime.restype = ctypes.c_void_p
_lib.JS_GetGlobalObject.argtypes = [ctypes.c_void_p]
_lib.JS_GetGlobalObject.restype = _JSValue
_lib.JS_GetPropertyStr.argtypes = [ctypes.c_void_p, _JSValue, ctypes.c_char_p]
_lib.JS_GetPropertyStr.restype = _JSValue
_lib.JS_Call.argtypes = [ctypes.c_void_p, _JSValue, _JSValue, ctypes.c_int, ctypes.POINTER(_JSValue)]
_lib.JS_Call.restype = _JSValue
_lib.JS_FreeValue.argtypes = [ctypes.c_void_p, _JSValue]
_lib.JS_FreeValue.restype = None
_lib.JS_GetException.argtypes = [ctypes.c_void_p]
_lib.JS_GetException.restype = _JSValue
_lib.JS_GetUint8Array.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), _JSValue]
_lib.JS_GetUint8Array.restype = ctypes.c_void_p
_lib.JS_SetPropertyStr.argtypes = [ctypes.c_void_p, _JSValue, ctypes.c_char_p, _JSValue]
_lib.JS_SetPropertyStr.restype = ctypes.c_int

TRACK_FUNCTION = b"__ploy_trackRejection"
BYTES_OUT = b"__ploy_bytesOut"  # 90_entry.js leaves a Uint8Array there for take_bytes


class Hooks:
    """One context's hooks. `run` is bumped by the driver at every entry into JS (each gets the whole
    CPU limit, as with the binding's limit); `limit_s` <= 0 means no limit."""

    __slots__ = ("rt", "ctx_ptr", "limit_s", "run", "_seen", "_start", "key", "__weakref__")

    def __init__(self, rt: int, ctx_ptr: int, limit_s: float) -> None:
        self.rt, self.ctx_ptr, self.limit_s = rt, ctx_ptr, limit_s
        self.run = 0
        self._seen = -1
        self._start = 0.0
        self.key = 0

    def interrupt(self) -> int:
        if self.limit_s <= 0:
            return 0
        now = time.thread_time()
        if self._seen != self.run:
            self._seen, self._start = self.run, now
            return 0
        return 1 if now - self._start > self.limit_s else 0

    def take_bytes(self) -> bytes | None:
        """The bytes of the Uint8Array JS left in `globalThis.__ploy_bytesOut` (one copy, no JS loop),
        emptying the slot; None if it holds none."""
        ctx = self.ctx_ptr
        glob = _lib.JS_GetGlobalObject(ctx)
        try:
            value = _lib.JS_GetPropertyStr(ctx, glob, BYTES_OUT)
            size = ctypes.c_size_t()
            ptr = _lib.JS_GetUint8Array(ctx, ctypes.byref(size), value)
            if ptr is None:  # not a Uint8Array: the engine threw a TypeError, which nobody is to see
                _lib.JS_FreeValue(ctx, _lib.JS_GetException(ctx))
                data = None
            else:
                data = ctypes.string_at(ptr, size.value)
            _lib.JS_FreeValue(ctx, value)
            _lib.JS_SetPropertyStr(ctx, glob, BYTES_OUT, _JSValue(0, _TAG_UNDEFINED))
            return data
        finally:
            _lib.JS_FreeValue(ctx, glob)

    def detach(self) -> None:
        """Unhooks the runtime: call before the binding's Context goes."""
        if self.key:
            _lib.JS_SetHostPromiseRejectionTracker(self.rt, _NO_TRACKER, None)
            _lib.JS_SetInterruptHandler(self.rt, _NO_INTERRUPT, None)
            _live.pop(self.key, None)
            self.key = 0


# The C callbacks are module-level, so they outlive every runtime that may still call them; each
# finds its context's Hooks by the key passed as the engine's opaque pointer.
_live: weakref.WeakValueDictionary[int, Hooks] = weakref.WeakValueDictionary()
_next_key = 1


def _on_interrupt(_rt: int, opaque: int | None) -> int:
    hooks = _live.get(opaque or 0)
    return 0 if hooks is None else hooks.interrupt()


def _on_rejection(ctx: int, promise: _JSValue, reason: _JSValue, handled: bool, opaque: int | None) -> None:
    if (opaque or 0) not in _live:
        return
    glob = _lib.JS_GetGlobalObject(ctx)
    fn = _lib.JS_GetPropertyStr(ctx, glob, TRACK_FUNCTION)
    _lib.JS_FreeValue(ctx, glob)
    argv = (_JSValue * 3)(promise, reason, _JSValue(1 if handled else 0, _TAG_BOOL))
    result = _lib.JS_Call(ctx, fn, _JSValue(0, _TAG_UNDEFINED), 3, argv)
    _lib.JS_FreeValue(ctx, fn)
    if result.tag == _TAG_EXCEPTION:  # not expected of that function; never leave it pending
        _lib.JS_FreeValue(ctx, _lib.JS_GetException(ctx))
    else:
        _lib.JS_FreeValue(ctx, result)


_INTERRUPT_CB = _INTERRUPT(_on_interrupt)
_TRACKER_CB = _TRACKER(_on_rejection)
_NO_INTERRUPT = _INTERRUPT()
_NO_TRACKER = _TRACKER()


# The binding versions whose Context layout this was written against (module.c's RuntimeData); on
# another, the pointers are not even looked at.
KNOWN_BINDINGS = ("0.17.",)


def _binding_version() -> str:
    try:
        return importlib.metadata.version("quickjs-ng")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _pointers(context: Any) -> tuple[int, int] | None:
    """The JSRuntime and JSContext of a binding Context, if its layout is the one expected."""
    if not _binding_version().startswith(KNOWN_BINDINGS):
        return None
    if type(context).__name__ != "Context" or not hasattr(context, "execute_pending_job"):
        return None
    words = (ctypes.c_void_p * 4).from_address(id(context))
    rt, cx = words[2], words[3]
    if not rt or not cx or _lib.JS_GetRuntime(cx) != rt:
        return None
    return rt, cx


def attach(context: Any, limit_s: float) -> Hooks | None:
    """Hooks the rejection tracker and the CPU limit into a binding Context (a fresh one, before any
    other time limit is set), or returns None if its layout is not the one expected."""
    global _next_key
    ptrs = _pointers(context)
    if ptrs is None:
        return None
    hooks = Hooks(ptrs[0], ptrs[1], limit_s)
    hooks.key = _next_key
    _next_key += 1
    _live[hooks.key] = hooks
    _lib.JS_SetInterruptHandler(hooks.rt, _INTERRUPT_CB, hooks.key)
    _lib.JS_SetHostPromiseRejectionTracker(hooks.rt, _TRACKER_CB, hooks.key)
    return hooks
