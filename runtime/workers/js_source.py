"""Assembles the one ES module a QuickJS context evaluates: the user's bundle plus ploy's web APIs.

QuickJS (as wrapped by quickjs-ng) names every script and module `<input>` and cannot load imports,
so ploy's JS (runtime/js/NN_<area>.js, one file per spec area, in name order) is appended to the
bundle inside one hoisted function that the module calls first. A frame's line number then says
unambiguously whether it is user code (mapped through the bundle's source map) or ploy's (reported
as `ploy:js/<file>:<line>`, see runtime_location).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

JS_DIR = Path(__file__).resolve().parent.parent / "js"
PREFIX = "__ploy_boot();"

# Built-ins ploy's JS uses, captured from globalThis first so that a user's top-level
# `function escape()` or `const Map = ...` (module scope, which encloses ploy's code) cannot shadow them.
_BUILTINS = (
    "Object Function Array Number String Boolean Symbol BigInt Math JSON Date RegExp Promise Proxy Reflect "
    "Map Set WeakMap WeakSet WeakRef FinalizationRegistry Error TypeError RangeError SyntaxError EvalError "
    "ReferenceError URIError ArrayBuffer DataView Int8Array Uint8Array Uint8ClampedArray Int16Array "
    "Uint16Array Int32Array Uint32Array BigInt64Array BigUint64Array Float32Array Float64Array "
    "escape unescape encodeURIComponent decodeURIComponent parseInt parseFloat isNaN performance "
    "DOMException queueMicrotask atob btoa"
).split()


@dataclass(frozen=True)
class RuntimeJs:
    source: str
    # (first line within `source`, 0-based; file name), in order
    files: tuple[tuple[int, str], ...]


@cache
def runtime_js() -> RuntimeJs:
    parts = [f"const {{ {', '.join(_BUILTINS)} }} = globalThis;"]
    files: list[tuple[int, str]] = []
    line = 1
    for path in sorted(JS_DIR.glob("*.js")):
        text = path.read_text()
        if not text.endswith("\n"):
            text += "\n"
        files.append((line, path.name))
        parts.append(text)
        line += text.count("\n")
    return RuntimeJs("\n".join(parts[:1]) + "\n" + "".join(parts[1:]), tuple(files))


_EXPORT_CLAUSE = re.compile(r"^[ \t]*export\s*\{([^}]*)\}\s*;?[ \t]*$", re.M)
_EXPORT_DEFAULT = re.compile(r"^[ \t]*(export default )", re.M)


def default_export_trailer(bundle: str) -> tuple[str, str]:
    """Returns (bundle, trailer statement) such that the trailer hands the default export to ploy.

    esbuild's ESM output ends with `export { name as default };`; hand-written modules may use
    `export default <expr>`, which is rewritten in place to a binding of the same length so no
    line or column moves.
    """
    clauses = list(_EXPORT_CLAUSE.finditer(bundle))
    if clauses:
        for item in clauses[-1].group(1).split(","):
            m = re.fullmatch(r"\s*([\w$]+)\s+as\s+default\s*", item)
            if m:
                return bundle, f"__ploy_setDefault({m.group(1)});"
    defaults = list(_EXPORT_DEFAULT.finditer(bundle))
    if defaults:
        m = defaults[-1]
        replacement = "let __ploydflt="  # same length as "export default "
        bundle = bundle[: m.start(1)] + replacement + bundle[m.end(1) :]
        return bundle, "export default __ploydflt; __ploy_setDefault(__ploydflt);"
    return bundle, ""


@dataclass(frozen=True)
class ModuleLayout:
    source: str
    bundle_lines: int  # lines 1..bundle_lines of the module are the bundle's
    runtime_start: int  # 1-based module line where runtime_js().source begins
    prefix_cols: int  # columns added before the bundle's first line


def assemble(bundle: str) -> ModuleLayout:
    bundle, trailer = default_export_trailer(bundle)
    if not bundle.endswith("\n"):
        bundle += "\n"
    bundle_lines = bundle.count("\n")
    rt = runtime_js()
    source = f"{PREFIX}{bundle}{trailer}\nfunction __ploy_boot() {{\n{rt.source}}}\n"
    return ModuleLayout(source, bundle_lines, bundle_lines + 3, len(PREFIX))


def runtime_location(layout: ModuleLayout, line: int) -> tuple[str, int] | None:
    """(ploy JS file, line in it) for a module line inside ploy's code, else None."""
    rel = line - layout.runtime_start  # 0-based line within runtime_js().source
    if rel < 0:
        return None
    name, start = "prelude", 0
    for first, fname in runtime_js().files:
        if first <= rel:
            name, start = fname, first
    return name, rel - start + 1
