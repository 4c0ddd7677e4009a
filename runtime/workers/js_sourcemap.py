"""Source map v3 reading (VLQ mappings, stdlib only) and QuickJS stack rewriting."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

_INLINE = re.compile(
    r"//# sourceMappingURL=data:application/json(?:;charset=[\w-]+)?;base64,([A-Za-z0-9+/=]+)\s*$"
)
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _vlq_segment(seg: str) -> list[int]:
    values: list[int] = []
    shift = value = 0
    for ch in seg:
        digit = _B64[ch]
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        shift = value = 0
    return values


class SourceMap:
    """Maps generated (line, column), both 0-based, to (source path, line, column), 1-based line."""

    def __init__(self, data: dict[str, Any], map_dir: Path) -> None:
        root = data.get("sourceRoot") or ""
        self.sources = [self._display(map_dir, root, s) for s in data.get("sources", [])]
        self.names: list[str] = data.get("names", [])
        self._mappings: str = data.get("mappings", "")
        self._lines: list[tuple[list[int], list[tuple[int, int, int]]]] | None = None

    @staticmethod
    def _display(map_dir: Path, root: str, source: str) -> str:
        path = (map_dir / root / source).resolve()
        try:
            rel = os.path.relpath(path)
        except ValueError:
            return str(path)
        return str(path) if rel.startswith("..") else rel

    @classmethod
    def load(cls, map_path: Path) -> SourceMap | None:
        try:
            return cls(json.loads(map_path.read_text()), map_path.parent)
        except (OSError, ValueError, KeyError):
            return None

    @classmethod
    def from_inline(cls, bundle: str, base_dir: Path) -> SourceMap | None:
        """A `//# sourceMappingURL=data:application/json;base64,...` map at the end of the bundle."""
        m = _INLINE.search(bundle[-4_000_000:])
        if m is None:
            return None
        try:
            return cls(json.loads(base64.b64decode(m.group(1))), base_dir)
        except (ValueError, binascii.Error):
            return None

    def _decode(self) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
        # Decoded lazily: only an error needs it, and big bundles have big maps.
        lines: list[tuple[list[int], list[tuple[int, int, int]]]] = []
        src = src_line = src_col = 0
        for line in self._mappings.split(";"):
            cols: list[int] = []
            targets: list[tuple[int, int, int]] = []
            gen_col = 0
            for seg in line.split(","):
                if not seg:
                    continue
                v = _vlq_segment(seg)
                gen_col += v[0]
                if len(v) >= 4:
                    src += v[1]
                    src_line += v[2]
                    src_col += v[3]
                    cols.append(gen_col)
                    targets.append((src, src_line, src_col))
            lines.append((cols, targets))
        return lines

    def lookup(self, line: int, column: int) -> tuple[str, int, int] | None:
        if self._lines is None:
            self._lines = self._decode()
        if not 0 <= line < len(self._lines):
            return None
        cols, targets = self._lines[line]
        i = bisect.bisect_right(cols, column) - 1
        if i < 0:
            if not cols:
                return None
            i = 0
        src, src_line, src_col = targets[i]
        if not 0 <= src < len(self.sources):
            return None
        return self.sources[src], src_line + 1, src_col + 1


_FRAME = re.compile(r"^(\s*at )(?:(.*?) \()?<input>:(\d+):(\d+)(\)?)\s*$")


def rewrite_stack(stack: str, locate: Callable[[int, int], str | None]) -> str:
    """Replaces each `<input>:L:C` frame location by `locate(L, C)` (1-based), dropping frames it rejects
    with an empty string."""
    out: list[str] = []
    for line in stack.splitlines():
        m = _FRAME.match(line)
        if not m:
            out.append(line)
            continue
        where = locate(int(m.group(3)), int(m.group(4)))
        if where == "":
            continue
        where = where or f"<input>:{m.group(3)}:{m.group(4)}"
        name = m.group(2)
        out.append(f"    at {name} ({where})" if name else f"    at {where}")
    return "\n".join(out).strip("\n")
