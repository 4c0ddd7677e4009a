"""What a host op may use of the engine driver: the interface between runtime/js/<area>.py and
runtime/workers/js_context.py (which implements it).

Declared here rather than imported from the driver, so the op modules depend on this page and the
driver on them, never both ways. For the same reason the op modules' own classes appear here as Any
(objects: binding_proxies.BindingObjects, host_streams: host_streams.HostStream values, codec:
bridge.Codec): naming them would import those modules back.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any, Literal, Protocol

import httpx

from runtime.http import Response
from runtime.workers.quickjs_hooks import Hooks

# How a host op's result settles its hostCall: "value" through the JSON codec (settle), "bytes" as
# latin-1 or the bytes slot (settleBytes, a stream read), "response" a WebResponse or None as its parts
# (settleResponse, proxyToSandbox's answer, which would spend a tenth of its time in the codec).
Settle = Literal["value", "bytes", "response"]


class JsHost(Protocol):
    loop: asyncio.AbstractEventLoop
    dead: bool  # the context was reset or unloaded: nothing more enters JS
    log: Callable[[str], None]
    map_stack: Callable[[str], str]  # a JS stack with the user's frames mapped to their sources
    codec: Any

    # state the ops keep per context
    requests: dict[int, asyncio.Future[Response]]  # request id -> its pending response
    prefixes: OrderedDict[int, str]  # request id -> its log prefix
    # stream id -> entry.JsBodyStream: JS streams sent as response bodies or binding stream arguments
    body_streams: dict[int, Any]
    objects: Any
    host_streams: dict[int, Any]
    tasks: dict[int, asyncio.Task[Any]]
    zlibs: dict[int, Any]
    sockets: dict[int, Any]  # socket id -> its Python end (bindings.web.WebSocket), see websocket.py
    socket_tasks: dict[int, asyncio.Task[Any]]  # socket id -> the task delivering its messages to JS
    timer: asyncio.TimerHandle | None
    client: httpx.AsyncClient | None
    hooks: Hooks | None  # the QuickJS C-API hooks, when the binding's layout is the one expected

    # JS entry points (__ploy_* functions of 90_entry.js and 00_bridge.js)
    js_cancel: Any
    js_pull: Any
    js_take_chunks: Any
    js_report_rejections: Any
    js_settle: Any
    js_set_props: Any
    js_feed_entropy: Any
    js_ws_event: Any

    def call_js(self, fn: Any, *args: Any) -> Any:
        """Call into JS without draining: for handlers, which run inside a drain."""
        ...

    def enter(self, fn: Any, *args: Any) -> None:
        """Call into JS and drain: for callbacks from the event loop."""
        ...

    def resolve(self, op_id: int, value: Any) -> None:
        """Settle a hostCall now, from its handler."""
        ...

    def start(self, op_id: int, coro: Coroutine[Any, Any, Any], settle: Settle = "value") -> None:
        """Run a handler's host work; its result settles the hostCall (see Settle)."""
        ...

    def register_stream(self, stream: Any) -> int: ...

    def fire_timers(self) -> None: ...
