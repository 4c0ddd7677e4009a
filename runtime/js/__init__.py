"""ploy's web APIs inside QuickJS: one `NN_<area>.js` file per spec area, and beside each file that
asks the host for something (hostCall/hostSend), `<area>.py` with the host ops it sends.

The JS files are concatenated in name order into one function body (runtime/workers/js_source.py),
so the numeric prefixes fix what is defined before what. Each op module ends with `HOST_OPS`, op name
-> handler(ctx, op), where `op` is the list JS sent: [name, *arguments]; `host_ops()` merges them into
the one table the engine driver (runtime/workers/js_context.py) dispatches on. README.md lists every
file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runtime.js import (
    binding_proxies,
    compression,
    console,
    crypto,
    entry,
    fetch,
    globals,
    host_streams,
    preview,
    timers,
    websocket,
)

if TYPE_CHECKING:
    from runtime.js.host import JsHost

# The op's list is passed whole, not spread into arguments: a call with *args costs several times
# a plain call, and respond and log run on every request. A text op (hostSendText) gets its text.
HostOp = Callable[["JsHost", Any], None]

# in the order of their JS files
OP_MODULES = (
    timers,
    console,
    crypto,
    globals,
    compression,
    host_streams,
    fetch,
    binding_proxies,
    websocket,
    preview,
    entry,
)


def host_ops() -> dict[str, HostOp]:
    """Every host op: name -> handler."""
    table: dict[str, HostOp] = {}
    for module in OP_MODULES:
        for name, handler in module.HOST_OPS.items():
            if name in table:
                raise RuntimeError(f"host op {name!r} is declared in two modules")
            table[name] = handler
    return table
