"""The three descriptions of each binding's API must agree: the spec (bindings/*/spec.py, which the JS
proxy is built from), the TypeScript interfaces in typings/, and the Python classes.

The .d.ts files are read with TypeScript's own compiler API (inherited members, aliases and doc
comments resolved the way an editor sees them), not with a regex.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import pkgutil
import re
import shutil
import subprocess
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import bindings
from bindings.spec import ObjectSpec
from tests.conftest import REPO

TYPESCRIPT = REPO / "node_modules" / "typescript"
TYPINGS_ENTRY = REPO / "typings" / "index.d.ts"


def _binding_specs() -> tuple[list[str], dict[str, ObjectSpec]]:
    """Every binding package (bindings/<name>/ with a spec.py) and the specs it declares. Read from the
    modules rather than bindings.spec.REGISTRY, where other tests register stand-in specs."""
    packages: list[str] = []
    specs: dict[str, ObjectSpec] = {}
    for info in pkgutil.iter_modules(bindings.__path__):
        if info.ispkg and importlib.util.find_spec(f"bindings.{info.name}.spec") is not None:
            packages.append(f"bindings.{info.name}")
            module = importlib.import_module(f"bindings.{info.name}.spec")
            specs.update({v.name: v for v in vars(module).values() if isinstance(v, ObjectSpec)})
    return packages, specs


BINDING_PACKAGES, REGISTRY = _binding_specs()
assert {"SandboxBinding", "SandboxClient", "SandboxSession", "AiBinding"} <= set(REGISTRY)

# Prints {diagnostics, interfaces: {Name: {methods: {m: {returns, params, doc}}, props: {p: {...}}}}}
# for every interface typings/index.d.ts exports, plus the global Ploy.
DUMP_JS = r"""
const ts = require(process.argv[1]);
const entry = process.argv[2];
const program = ts.createProgram([entry], {
  strict: true, noEmit: true, types: [], lib: ["lib.es2022.d.ts", "lib.webworker.d.ts"],
});
const checker = program.getTypeChecker();
const out = {
  diagnostics: ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")),
  interfaces: {},
};
function describe(sym) {
  const methods = {}, props = {};
  for (const p of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(sym))) {
    const decl = p.valueDeclaration || p.declarations[0];
    const type = checker.getTypeOfSymbolAtLocation(p, decl);
    const sigs = type.getCallSignatures();
    const doc = ts.displayPartsToString(p.getDocumentationComment(checker));
    if (sigs.length) {
      // the property names of every `options` parameter's object type(s), over all overloads
      let options = null;
      for (const sig of sigs) {
        for (const param of sig.parameters) {
          if (param.name !== "options") continue;
          options = options || [];
          const t = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(param, decl));
          for (const part of t.isUnion() ? t.types : [t]) {
            if (!(part.flags & ts.TypeFlags.Object)) continue;
            for (const prop of checker.getPropertiesOfType(part)) if (!options.includes(prop.name)) options.push(prop.name);
          }
        }
      }
      methods[p.name] = {
        returns: checker.typeToString(checker.getReturnTypeOfSignature(sigs[0])),
        params: sigs[0].parameters.map((x) => x.name),
        options: options && options.sort(),
        doc,
      };
    } else {
      const readonly = !!(ts.getCombinedModifierFlags(decl) & ts.ModifierFlags.Readonly);
      props[p.name] = { type: checker.typeToString(type), readonly, doc };
    }
  }
  return { methods, props };
}
const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry));
for (let sym of checker.getExportsOfModule(moduleSymbol)) {
  if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
  if (sym.flags & ts.SymbolFlags.Interface) out.interfaces[sym.name] = describe(sym);
}
const ploy = checker.resolveName("Ploy", undefined, ts.SymbolFlags.Type, false);
if (ploy) out.interfaces.Ploy = describe(ploy);
console.log(JSON.stringify(out));
"""

STREAM_RETURN = re.compile(r"^Promise<ReadableStream<Uint8Array(<ArrayBufferLike>)?>>$")


@cache
def typings() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (TYPESCRIPT / "package.json").is_file():
        pytest.skip("needs node and npm `typescript` in node_modules (run `npm install` at the repo root)")
    done = subprocess.run(
        [node, "-e", DUMP_JS, str(TYPESCRIPT), str(TYPINGS_ENTRY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@cache
def python_classes() -> tuple[dict[str, type], dict[str, str]]:
    """Spec name -> the class whose __ploy_spec__ it is, and module -> import error for broken modules."""
    found: dict[str, type] = {}
    errors: dict[str, str] = {}
    for package_name in BINDING_PACKAGES:
        package = importlib.import_module(package_name)
        modules = [package_name] + [
            f"{package_name}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
        ]
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except Exception as e:  # another binding's module half-written must not hide this one's drift
                errors[module_name] = f"{type(e).__name__}: {e}"
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                spec = cls.__dict__.get("__ploy_spec__")
                if isinstance(spec, ObjectSpec):
                    found[spec.name] = cls
    return found, errors


SPEC_NAMES = sorted(REGISTRY)


def test_typings_compile_cleanly() -> None:
    assert typings()["diagnostics"] == []


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_typescript_methods_match_spec(name: str) -> None:
    spec = REGISTRY[name]
    iface = typings()["interfaces"].get(name)
    assert iface is not None, f"typings/ has no exported interface {name}"
    assert sorted(iface["methods"]) == sorted(spec.method_names), (
        f"{name}: only in the spec: {sorted(set(spec.method_names) - set(iface['methods']))}, "
        f"only in typings/: {sorted(set(iface['methods']) - set(spec.method_names))}"
    )
    assert sorted(iface["props"]) == sorted(spec.props), f"{name}: properties differ from the spec's props"
    for prop in spec.props:
        assert iface["props"][prop]["readonly"], f"{name}.{prop} should be readonly"


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_typescript_return_kinds_match_spec(name: str) -> None:
    iface = typings()["interfaces"][name]
    for method in REGISTRY[name].methods:
        returns = iface["methods"][method.name]["returns"]
        where = f"{name}.{method.name} returns {returns}"
        if method.kind == "stream":
            assert STREAM_RETURN.match(returns), (
                f"{where}; a stream method returns Promise<ReadableStream<Uint8Array>>"
            )
        elif method.kind == "async":
            assert returns.startswith("Promise<"), f"{where}; an async method returns a Promise"
        else:
            assert not returns.startswith("Promise<"), f"{where}; a sync method returns at once"
        if method.returns is not None:
            r = method.returns
            # an async method may give its object, null (getProcess) or a list of them (listProcesses)
            expected = (
                [r] if method.kind == "sync" else [f"Promise<{r}>", f"Promise<{r} | null>", f"Promise<{r}[]>"]
            )
            assert returns in expected, where


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_typescript_options_match_spec(name: str) -> None:
    """The option names a method checks (Method.options) are exactly its `options` parameter's
    properties in typings/: an option the check accepts is typed, a typed one is accepted."""
    iface = typings()["interfaces"][name]
    for method in REGISTRY[name].methods:
        typed = iface["methods"][method.name]["options"]
        if method.options is None:
            assert typed is None, f"{name}.{method.name} takes no options in the spec, typings/ has {typed}"
        else:
            assert typed == sorted(method.options), (
                f"{name}.{method.name}: only in the spec: {sorted(set(method.options) - set(typed or []))}, "
                f"only in typings/: {sorted(set(typed or []) - set(method.options))}"
            )


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_member_has_a_doc_comment(name: str) -> None:
    iface = typings()["interfaces"][name]
    undocumented = [
        m for m, info in {**iface["methods"], **iface["props"]}.items() if not info["doc"].strip()
    ]
    assert undocumented == [], f"{name}: no doc comment on {undocumented}"


def test_ploy_is_global_with_fetch() -> None:
    ploy = typings()["interfaces"].get("Ploy")
    assert ploy is not None, "the global type Ploy is not declared"
    assert ploy["methods"]["fetch"]["params"] == ["request", "env", "ctx"]


def _is_camel_case(name: str) -> bool:
    return not name.startswith("_") and name != name.lower() and name[0].islower()


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_python_class_matches_spec(name: str) -> None:
    classes, errors = python_classes()
    cls = classes.get(name)
    if cls is None:
        broken = "; ".join(f"{m}: {e}" for m, e in errors.items())
        pytest.skip(
            f"no Python class with __ploy_spec__ = {name} yet"
            + (f" (import errors: {broken})" if broken else "")
        )
    spec = REGISTRY[name]
    missing = [m for m in spec.method_names if not callable(getattr(cls, m, None))]
    assert missing == [], f"{cls.__qualname__} lacks spec methods {missing}"
    extra = [
        m for m, _ in inspect.getmembers(cls, callable) if _is_camel_case(m) and m not in spec.method_names
    ]
    assert extra == [], f"{cls.__qualname__} has public methods the spec (and so JS) lacks: {extra}"
    for method in spec.methods:
        fn = getattr(cls, method.name)
        is_coroutine = inspect.iscoroutinefunction(fn)
        assert is_coroutine == (method.kind != "sync"), (
            f"{name}.{method.name}: kind {method.kind} but coroutine={is_coroutine}"
        )
    if spec.data:
        # a data object: its props are its items (JS gets exactly those as own properties)
        assert issubclass(cls, dict), f"{cls.__qualname__}: a data spec's class must be a dict"
        return
    missing_props = [p for p in spec.props if p not in _declared_attributes(cls)]
    assert missing_props == [], f"{cls.__qualname__} never sets the spec's props {missing_props}"


def _declared_attributes(cls: type) -> set[str]:
    """Attributes a class declares: annotations, class members and properties, and `self.x = ...`
    in its methods (mypy infers those too)."""
    names = {n for n, _ in inspect.getmembers(cls)}
    for klass in cls.__mro__:
        if klass is object:
            continue
        names |= set(inspect.get_annotations(klass))
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            target = node.target if isinstance(node, ast.AnnAssign) else None
            targets = node.targets if isinstance(node, ast.Assign) else [target] if target else []
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                    names.add(t.attr)
    return names


def test_python_methods_are_annotated() -> None:
    """mypy can only type `env.SANDBOX.get(id).exec(...)` when every spec method has annotations."""
    classes, _ = python_classes()
    if not classes:
        pytest.skip("no binding class with __ploy_spec__ exists yet")
    unannotated = []
    for name, cls in classes.items():
        for method in REGISTRY[name].methods:
            signature = inspect.signature(getattr(cls, method.name))
            params = [p for p in signature.parameters.values() if p.name != "self"]
            if signature.return_annotation is inspect.Signature.empty or any(
                p.annotation is inspect.Parameter.empty for p in params
            ):
                unannotated.append(f"{name}.{method.name}")
    assert unannotated == []


# The API a JS worker really sees, read from the proxies `ploy dev` hands it. `get` is sync and
# starts nothing (pool: 0), so no container is needed.
PROBE_JS = """\
const methods = (o) => {
	const out = new Set();
	for (let p = Object.getPrototypeOf(o); p && p !== Object.prototype; p = Object.getPrototypeOf(p))
		for (const k of Object.getOwnPropertyNames(p)) if (k !== "constructor" && typeof o[k] === "function") out.add(k);
	return [...out].sort();
};
const props = (o) => Object.keys(o).filter((k) => typeof o[k] !== "function").sort();
export default {
	async fetch(request, env) {
		const client = env.SANDBOX.get("types-probe");
		const idAtOnce = client.id;
		// Props of an object a sync method returned arrive once the host has run the call.
		await new Promise((resolve) => setTimeout(resolve, 50));
		return Response.json({
			idAtOnce: idAtOnce ?? null,
			SandboxBinding: { methods: methods(env.SANDBOX), props: props(env.SANDBOX) },
			SandboxClient: { methods: methods(client), props: props(client) },
			AiBinding: { methods: methods(env.AI), props: props(env.AI) },
		});
	},
};
"""


def test_js_proxies_match_typings(dev_server: Any, project: Path) -> None:
    (project / "ploy.yaml").write_text("ai: true\nsandbox:\n  SANDBOX:\n    template: default\n    pool: 0\n")
    (project / "src" / "index.js").write_text(PROBE_JS)
    server = dev_server(project).start()
    seen = server.get("/").json()
    interfaces = typings()["interfaces"]
    id_at_once = seen.pop("idAtOnce")
    for name, surface in seen.items():
        assert surface["methods"] == sorted(interfaces[name]["methods"]), (
            f"JS {name} methods differ from typings/"
        )
        assert surface["props"] == sorted(interfaces[name]["props"]), f"JS {name} props differ from typings/"
    # typings/ says `readonly id: string` on what get() returns: it must be there at once, not a tick later.
    assert id_at_once == "types-probe"
