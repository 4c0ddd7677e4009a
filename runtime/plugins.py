"""The binding plugins this runtime serves: every `bindings/*/plugin.py` that defines `PLUGIN`.

Found by folder, so adding a binding is adding its folder; ordered by `Plugin.order`, so env and the
generated types list bindings in a stable order.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import bindings
from bindings.plugin import Plugin


@cache
def plugins() -> tuple[Plugin, ...]:
    found = []
    for info in pkgutil.iter_modules(bindings.__path__):
        if not info.ispkg:
            continue
        name = f"bindings.{info.name}.plugin"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a shared package, not a binding
        found.append(module.PLUGIN)
    return tuple(sorted(found, key=lambda p: (p.order, p.field)))
