"""Runs a vendored web-platform-tests `.any.js` file in a ploy JS worker, as a Ploy worker runs.

Each file gets a fresh worker, in which these run as classic global scripts, one after another: a
`self.GLOBAL` that says "worker" (as WPT's generated `.any.worker.js` wrappers do), testharness.js,
the file's `// META: script=` helpers, then the file. testharness.js finds no window or worker scope and uses
its shell environment; the worker's fetch handler answers once the harness completes, with every
subtest's status, name and message as JSON. A file still running after TIMEOUT_S is stopped with
testharness's own timeout(), which reports what did not finish as TIMEOUT/NOTRUN.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
UPSTREAM = ROOT / "upstream"  # the vendored WPT files, at their paths in the WPT repository
REPO = ROOT.parents[3]

# Wall time, with all files on one loop (CONCURRENCY at once): all of them take ~5 s of CPU, so a
# loaded machine must not make a slow file look hung. Only a test that truly hangs waits this long.
TIMEOUT_S = 30
CONCURRENCY = 8  # files run at once (each in its own worker, all on one event loop)
STATUS = {0: "PASS", 1: "FAIL", 2: "TIMEOUT", 3: "NOTRUN", 4: "PRECONDITION_FAILED"}
HARNESS_STATUS = {0: "OK", 1: "ERROR", 2: "TIMEOUT", 3: "PRECONDITION_FAILED"}

# Which of a file's globals make it a test for a worker: WPT's default is window and dedicatedworker.
WORKER_GLOBALS = {"worker", "dedicatedworker", "jsshell"}


@dataclass(frozen=True)
class Result:
    name: str
    status: str
    message: str


@dataclass(frozen=True)
class FileResult:
    harness: str  # OK, ERROR (with message), TIMEOUT
    message: str
    subtests: list[Result]


def meta(path: Path) -> dict[str, list[str]]:
    """The file's `// META: key=value` lines (they come first)."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"//\s*META:\s*(\w+)=(.*)$", line.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
        elif line.strip() and not line.startswith("//"):
            break
    return out


def runs_in_workers(path: Path) -> bool:
    globals_ = meta(path).get("global")
    if not globals_:
        return True  # the default, window and dedicatedworker
    names = {g.strip() for line in globals_ for g in line.split(",")}
    return bool(names & WORKER_GLOBALS)


def helper_path(test: Path, src: str) -> Path:
    """A `META: script=` path: absolute ones from the WPT root, others beside the test."""
    return UPSTREAM / src.lstrip("/") if src.startswith("/") else test.parent / src


def scripts(test: Path) -> list[Path]:
    return [helper_path(test, s) for s in meta(test).get("script", [])] + [test]


PRELUDE = """
self.GLOBAL = { isWindow: () => false, isWorker: () => true, isShadowRealm: () => false };
// subset-tests.js and testharness's default test name read these; nothing else here resolves against them
self.location = { search: "", hash: "", pathname: %(path)s, href: "http://web-platform.test" + %(path)s, origin: "http://web-platform.test" };
// A WorkerGlobalScope has an API base URL (its location); a Ploy worker has none, so relative URLs
// given to Request and fetch() are resolved here, as a dedicated worker would. fetch() of a relative
// URL is answered from the vendored data files (url/resources/*.json) and otherwise fails at once:
// WPT's own HTTP server is not here.
{
  const files = %(data)s;
  const relative = (input) => typeof input === "string" && !/^[a-z][a-z0-9+.-]*:/i.test(input);
  const RealRequest = Request;
  self.Request = new Proxy(RealRequest, {
    construct(target, args, newTarget) {
      if (args.length && !(args[0] instanceof RealRequest) && !(args[0] instanceof URL) && relative(String(args[0]))) {
        args[0] = new URL(String(args[0]), location.href).href;
      }
      return Reflect.construct(target, args, newTarget);
    },
  });
  const realFetch = fetch;
  self.fetch = function fetch(input, init) {
    if (relative(input)) {
      const path = new URL(input, location.href).pathname;
      if (Object.hasOwn(files, path)) return Promise.resolve(new Response(files[path], { headers: { "content-type": "application/json" } }));
      return Promise.reject(new TypeError("fetch: no WPT server here for " + input));
    }
    // the tests' own origin stands for WPT's server: never looked up, tried on loopback instead
    if (typeof input === "string" && input.startsWith(location.origin)) input = "http://127.0.0.1" + input.slice(location.origin.length);
    return realFetch(input, init);
  };
}
"""

# The worker's module only collects the results; the scripts themselves are then evaluated as
# classic global scripts, one by one (as a page's <script>s: each with its own "use strict" prologue,
# all sharing one global scope, so a helper's top-level `const` is seen by the test).
WORKER = """
const __wptResults = new Promise((resolve) => { globalThis.__wptResolve = resolve; });
globalThis.__wptHarnessLoaded = () => {
  add_completion_callback((tests, status) => globalThis.__wptResolve({
    harness: status.status, message: status.message || "",
    subtests: tests.map((t) => [t.name, t.status, t.message || ""]),
  }));
  setTimeout(() => timeout(), %(timeout_ms)d);
};
export default { async fetch() { return Response.json(await __wptResults); } };
"""


def data_files(test: Path) -> dict[str, str]:
    """The vendored data files a test fetches, by absolute path (see PRELUDE)."""
    out = {}
    for m in re.finditer(r"""fetch\(["']([^"':]+\.json)["']\)""", test.read_text()):
        p = helper_path(test, m.group(1))
        if p.exists():
            out["/" + p.relative_to(UPSTREAM).as_posix()] = p.read_text()
    return out


def classic_scripts(test: Path) -> list[tuple[str, str]]:
    """(name, source) of the scripts a file runs with, in order."""
    rel = "/" + test.relative_to(UPSTREAM).as_posix()
    out = [("prelude", PRELUDE % {"path": json.dumps(rel), "data": json.dumps(data_files(test))})]
    out.append(("/resources/testharness.js", (UPSTREAM / "resources" / "testharness.js").read_text()))
    out.append(("harness hook", "__wptHarnessLoaded();"))
    out += [("/" + p.relative_to(UPSTREAM).as_posix(), p.read_text()) for p in scripts(test)]
    return out


async def run_file(test: Path, tmp: Path) -> FileResult:
    import quickjs

    from runtime.workers.base import Limits
    from tests.runtime.js.harness import Harness

    # one module per file's path: files of the same name (tee.any.js, general.any.js, ...) run at once,
    # and one rewriting a shared module while another loads it gave "no default export"
    rel = test.relative_to(UPSTREAM).as_posix()
    module = tmp / (re.sub(r"[^A-Za-z0-9]", "_", rel) + ".mjs")
    module.write_text(WORKER % {"timeout_ms": TIMEOUT_S * 1000})
    h = await Harness.load(module, limits=Limits(cpu_ms=60_000, memory_mb=256))
    try:
        ctx = h.worker._ctx
        assert ctx is not None
        for name, code in classic_scripts(test):
            if ctx.hooks is not None:
                ctx.hooks.run += 1
            try:
                ctx.ctx.eval(code)
            except quickjs.JSException as e:  # an uncaught error at a script's top level ends the file
                return FileResult("ERROR", f"{name}: {str(e).splitlines()[0]}", [])
        # no microtask checkpoint between the scripts: testharness's shell environment counts the
        # tests as loaded at its first one, and would finish with those it has
        ctx._drain()
        resp = await h.request("/")
        data = json.loads(await resp.text()) if resp.status == 200 else None
    finally:
        await h.close()
    if data is None:
        return FileResult("ERROR", f"the worker answered {resp.status}", [])
    subtests = [Result(name, STATUS[status], message) for name, status, message in data["subtests"]]
    return FileResult(HARNESS_STATUS[data["harness"]], data["message"], subtests)


def test_files() -> list[Path]:
    return sorted(p for p in UPSTREAM.rglob("*.any.js") if runs_in_workers(p))


EXPECTATIONS = ROOT / "expectations.toml"
HARNESS = "(harness)"  # the pseudo-subtest of a file whose harness status is not OK


def failures(result: FileResult) -> dict[str, str]:
    """subtest name -> status and message, for every subtest that did not pass."""
    out = {s.name: f"{s.status}: {s.message}" for s in result.subtests if s.status != "PASS"}
    if result.harness != "OK":
        out[HARNESS] = f"{result.harness}: {result.message}"
    return out


def expectations() -> dict[str, dict[str, str]]:
    """file -> {subtest name -> the reason it is expected to fail}."""
    data = tomllib.loads(EXPECTATIONS.read_text())
    out: dict[str, dict[str, str]] = {}
    for group in data.get("by_design", []) + data.get("not_yet", []):
        for entry in group["subtests"]:
            file, _, name = entry.partition(" | ")
            out.setdefault(file, {})[name] = group["reason"]
    return out


async def run_all(files: list[Path]) -> dict[str, FileResult]:
    sem = asyncio.Semaphore(CONCURRENCY)
    with tempfile.TemporaryDirectory() as tmp:

        async def one(test: Path) -> tuple[str, FileResult]:
            async with sem:
                rel = test.relative_to(UPSTREAM).as_posix()
                try:
                    return rel, await asyncio.wait_for(run_file(test, Path(tmp)), TIMEOUT_S + 30)
                except Exception as e:  # noqa: BLE001 - reported as the file's harness error
                    return rel, FileResult("ERROR", f"{type(e).__name__}: {e}", [])

        return dict(await asyncio.gather(*(one(t) for t in files)))


def main() -> None:
    """python tests/runtime/js/wpt/runner.py [PATH-SUBSTRING...]: run, print every unexpected result and the totals."""
    wanted = sys.argv[1:]
    files = [f for f in test_files() if not wanted or any(w in str(f) for w in wanted)]
    results = asyncio.run(run_all(files))
    expected = expectations()
    passed = by_design = unexpected = stale = 0
    for rel, result in sorted(results.items()):
        fails = failures(result)
        exp = expected.get(rel, {})
        passed += sum(1 for s in result.subtests if s.status == "PASS")
        by_design += sum(1 for n in fails if n in exp)
        for name, what in fails.items():
            if name not in exp:
                unexpected += 1
                print(f"UNEXPECTED {rel} | {name} | {what[:200]}".replace("\n", " "))
        for name in exp:
            if name not in fails:
                stale += 1
                print(f"PASSES NOW {rel} | {name}")
    print(
        f"wpt {len(results)} files: {passed} passed, {by_design} expected failures, {unexpected} unexpected, {stale} expected but passing"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
