"""The import graph of ploy's own modules (runtime/, bindings/), read from the source with `ast`.

Every import counts: module level, inside functions and under `if TYPE_CHECKING:`, so a cycle cannot
hide behind a lazy import. An import names the most specific ploy module it reaches (`from bindings
import podman` is bindings.podman; `from bindings.sandbox import SandboxBinding` is bindings.sandbox);
the parent packages Python initialises on the way are not edges, as in import-linter.

The agent's modules run inside the sandbox, on the image's python3, from one flat folder: they import
each other and the shared modules image.py ships beside them by bare name (`import proto`).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bindings.sandbox import image
from tests.conftest import REPO

AGENT_DIR = REPO / "bindings" / "sandbox" / "agent"
AGENT_PACKAGE = "bindings.sandbox.agent"
# Modules both sides import: proto.py and wire.py live with the agent, the rest is shipped beside it.
SHARED_WIRE = {"proto", "wire", *(p.stem for p in image.AGENT_SHARED)}
STDLIB = set(sys.stdlib_module_names)


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # as written, made absolute (relative imports resolved)
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for top in ("runtime", "bindings") for p in sorted((REPO / top).rglob("*.py"))}


def is_agent(name: str) -> bool:
    return name.startswith(AGENT_PACKAGE + ".")


def module_imports(name: str, source: str, is_package: bool) -> list[Import]:
    package = name if is_package else name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # `from package import module` imports that module; `from module import name` the module
                sub = f"{module}.{alias.name}"
                found.append(Import(name, sub if sub in modules() else module, node.lineno))
    return found


@cache
def imports() -> tuple[Import, ...]:
    return tuple(
        imp
        for name, path in modules().items()
        for imp in module_imports(name, path.read_text(), path.name == "__init__.py")
    )


def resolve(imp: Import) -> str | None:
    """The ploy module an import reaches, or None for the standard library and third-party packages."""
    target = imp.target
    if is_agent(imp.importer):
        top = target.split(".")[0]
        if (AGENT_DIR / f"{top}.py").is_file():
            target = f"{AGENT_PACKAGE}.{top}"
        elif top in SHARED_WIRE:
            target = next(_module_name(p) for p in image.AGENT_SHARED if p.stem == top)
    while target and target not in modules():
        target = target.rpartition(".")[0]
    return target or None


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in modules()}
    for imp in imports():
        target = resolve(imp)
        if target is not None and target != imp.importer:
            edges[imp.importer].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) through every strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)

    def path_back(start: str, group: set[str]) -> list[str]:
        # breadth-first from start's successors back to start, inside the group: a shortest cycle
        paths = {w: [start, w] for w in sorted(edges[start] & group)}
        todo = list(paths)
        while todo:
            w = todo.pop(0)
            if w == start:
                return paths[w]
            for x in sorted(edges[w] & group):
                if x not in paths:
                    paths[x] = paths[w] + [x]
                    todo.append(x)
        raise AssertionError("a strongly connected group always has a cycle")

    return [path_back(min(group), group) for group in groups]


def test_the_graph_sees_every_kind_of_import() -> None:
    """Guards the collector itself: lazy, TYPE_CHECKING and relative imports are all edges."""
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import bindings.errors\n"
        "if TYPE_CHECKING:\n"
        "    from bindings.sandbox.manager import SandboxManager\n"
        "def later() -> None:\n"
        "    from bindings import podman\n"
        "    from . import state\n"
        "    from .containers import Entry\n"
    )
    found = {resolve(imp) for imp in module_imports("bindings.sandbox.example", source, is_package=False)}
    assert found == {
        None,
        "bindings.errors",
        "bindings.sandbox.manager",
        "bindings.podman",
        "bindings.sandbox.state",
        "bindings.sandbox.containers",
    }
    assert (
        "bindings.sandbox.agent.sessions" in graph()["bindings.sandbox.agent.server"]
    )  # the agent's flat import
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert not found, "import cycles among ploy's modules:\n" + "\n".join(" -> ".join(c) for c in found)


def test_agent_imports_only_the_stdlib_and_its_shared_wire_modules() -> None:
    agent_modules = {p.stem for p in AGENT_DIR.glob("*.py")}
    bad = []
    for imp in imports():
        if not is_agent(imp.importer):
            continue
        top = imp.target.split(".")[0]
        name = imp.importer.rpartition(".")[2]
        if name in SHARED_WIRE:
            allowed = STDLIB  # imported by the host too, as bindings.sandbox.agent.<name>: no bare names
        else:
            allowed = STDLIB | agent_modules | SHARED_WIRE
        if top not in allowed:
            bad.append(f"{imp.importer}:{imp.line} imports {imp.target}")
    assert not bad, "\n".join(bad)


def test_shared_modules_are_stdlib_only_and_ship_with_the_agent() -> None:
    shipped = {dst for dst, _ in image._layer_files()}
    for path in image.AGENT_SHARED:
        assert f"agent/{path.name}" in shipped
        name = _module_name(path)
        assert not is_agent(name)
        bad = [imp for imp in imports() if imp.importer == name and imp.target.split(".")[0] not in STDLIB]
        assert not bad, bad


def test_the_ai_binding_imports_nothing_of_the_sandbox_binding() -> None:
    def in_ai(name: str) -> bool:
        return name == "bindings.ai" or name.startswith("bindings.ai.")

    def in_sandbox(name: str | None) -> bool:
        return name is not None and (name == "bindings.sandbox" or name.startswith("bindings.sandbox."))

    bad = [
        f"{imp.importer}:{imp.line} imports {resolve(imp)}"
        for imp in imports()
        if in_ai(imp.importer) and in_sandbox(resolve(imp))
    ]
    assert not bad, "\n".join(bad)


def test_bindings_import_nothing_of_the_runtime() -> None:
    bad = [
        f"{imp.importer}:{imp.line} imports {resolve(imp)}"
        for imp in imports()
        if imp.importer.split(".")[0] == "bindings" and (resolve(imp) or "").split(".")[0] == "runtime"
    ]
    assert not bad, "\n".join(bad)
