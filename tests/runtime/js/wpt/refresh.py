#!/usr/bin/env python3
"""Vendors the web-platform-tests files tests/runtime/js/test_wpt.py runs, at the pinned upstream commit.

    python tests/runtime/js/wpt/refresh.py                 # from GitHub (needs network access to it)
    python tests/runtime/js/wpt/refresh.py --from DIR      # from a local copy of the WPT tree at that commit
    python tests/runtime/js/wpt/refresh.py --commit SHA    # another commit (then update PINNED and the expectations)

It replaces tests/runtime/js/wpt/upstream/ with: the `.any.js` files of SELECTION that run in a worker (minus
EXCLUDED), every file their `// META: script=` lines include, resources/testharness.js, and WPT's
LICENSE.md. Nothing else of WPT is vendored.

The files vendored now came from the copy of WPT inside Debian's firefox-esr 140.12.0esr source
package (testing/web-platform/tests), which Mozilla synced from upstream commit PINNED (its
testing/web-platform/meta/mozilla-sync says so); GitHub was not reachable where they were vendored.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shutil
import sys
import urllib.request
from pathlib import Path

PINNED = "faf875d9b84f4319ac950cd51ef03a3dcf466a7f"
REPO = "web-platform-tests/wpt"
DEST = Path(__file__).resolve().parent / "upstream"

# The interfaces ploy's JS runtime provides (runtime/js/), as WPT directories and files.
SELECTION = [
    "fetch/api/headers/*.any.js",
    "fetch/api/request/*.any.js",
    "fetch/api/response/*.any.js",
    "url/*.any.js",
    "encoding/*.any.js",
    "encoding/streams/*.any.js",
    "streams/**/*.any.js",
    "FileAPI/blob/*.any.js",
    "xhr/formdata/*.any.js",
    "html/webappapis/structured-clone/structured-clone.any.js",
    "html/webappapis/atob/base64.any.js",
    "dom/abort/*.any.js",
    "WebCryptoAPI/getRandomValues.any.js",
    "html/webappapis/timers/*.any.js",
]

# Files of SELECTION that are not about these interfaces, with why.
SERVER = "tests fetch() against handlers of WPT's own HTTP server (*.py), which is not here"
LEGACY = (
    "tests the legacy encodings (single-byte, CJK, replacement), which ploy's TextDecoder does not "
    "implement (it decodes UTF-8, UTF-16LE/BE, windows-1252 and x-user-defined: 45_encoding.js)"
)
EXCLUDED = {
    **{
        f"fetch/api/request/request-cache-{k}.any.js": SERVER
        for k in (
            "default",
            "default-conditional",
            "force-cache",
            "no-cache",
            "no-store",
            "only-if-cached",
            "reload",
        )
    },
    "fetch/api/headers/header-values-normalize.any.js": SERVER,
    "fetch/api/request/request-init-priority.any.js": SERVER,
    "fetch/api/response/response-headers-guard.any.js": SERVER,
    **{
        f"encoding/{k}.any.js": LEGACY
        for k in (
            "textdecoder-fatal-single-byte",
            "iso-2022-jp-decoder",
            "textdecoder-labels",
            "replacement-encodings",
            "api-replacement-encodings",
            "textencoder-constructor-non-utf",
            "api-invalid-label",
            "streams/decode-non-utf8",
        )
    },
    **{
        f"streams/readable-streams/{k}.any.js": "ReadableStream type 'owning' (transfer on enqueue) is a proposal, not in the Streams Standard"
        for k in ("owning-type", "owning-type-video-frame", "owning-type-message-port")
    },
    **{
        f"{d}/idlharness.any.js": "idlharness fetches the interface definitions (/interfaces/*.idl) from WPT's server"
        for d in ("url", "encoding", "streams")
    },
}

ALWAYS = ["resources/testharness.js", "LICENSE.md"]


def matches(path: str) -> bool:
    if path in EXCLUDED:
        return False
    for pattern in SELECTION:
        if "**" in pattern:
            prefix, _, tail = pattern.partition("/**/")
            if path.startswith(prefix + "/") and fnmatch.fnmatch(path.rsplit("/", 1)[1], tail):
                return True
        elif fnmatch.fnmatch(path, pattern) and path.count("/") == pattern.count("/"):
            return True
    return False


def meta(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"//\s*META:\s*(\w+)=(.*)$", line.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
        elif line.strip() and not line.startswith("//"):
            break
    return out


def runs_in_workers(text: str) -> bool:
    globals_ = meta(text).get("global")
    if not globals_:
        return True
    names = {g.strip() for line in globals_ for g in line.split(",")}
    return bool(names & {"worker", "dedicatedworker", "jsshell"})


def helper(test: str, src: str) -> str:
    if src.startswith("/"):
        return src.lstrip("/")
    parts = test.split("/")[:-1] + src.split("/")
    out: list[str] = []
    for p in parts:
        if p == "..":
            out.pop()
        elif p != ".":
            out.append(p)
    return "/".join(out)


class GitHub:
    def __init__(self, commit: str) -> None:
        self.commit = commit

    def files(self) -> list[str]:
        url = f"https://api.github.com/repos/{REPO}/git/trees/{self.commit}?recursive=1"
        with urllib.request.urlopen(url, timeout=60) as r:
            tree = json.load(r)
        if tree.get("truncated"):
            sys.exit("GitHub truncated the tree listing; use --from with a checkout")
        return [e["path"] for e in tree["tree"] if e["type"] == "blob"]

    def read(self, path: str) -> bytes:
        with urllib.request.urlopen(
            f"https://raw.githubusercontent.com/{REPO}/{self.commit}/{path}", timeout=60
        ) as r:
            return r.read()


class Local:
    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()]

    def read(self, path: str) -> bytes:
        return (self.root / path).read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", type=Path, help="a local WPT tree at the commit")
    ap.add_argument("--commit", default=PINNED)
    args = ap.parse_args()
    source = Local(args.src) if args.src else GitHub(args.commit)
    wanted: dict[str, bytes] = {}
    available = set(source.files())
    for path in sorted(p for p in available if matches(p)):
        data = source.read(path)
        if runs_in_workers(data.decode()):
            wanted[path] = data
    for path, data in list(wanted.items()):
        for src in meta(data.decode()).get("script", []):
            dep = helper(path, src)
            if dep not in wanted:
                wanted[dep] = source.read(dep)
        # data files a test loads with fetch() (url/resources/*.json); the runner serves them
        for m in re.finditer(r"""fetch\(["']([^"':]+\.json)["']\)""", data.decode()):
            dep = helper(path, m.group(1))
            if dep not in wanted and dep in available:
                wanted[dep] = source.read(dep)
    for path in ALWAYS:
        wanted[path] = source.read(path)
    if DEST.exists():
        shutil.rmtree(DEST)
    for path, data in wanted.items():
        out = DEST / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    tests = sum(1 for p in wanted if p.endswith(".any.js") and matches(p))
    print(f"vendored {len(wanted)} files ({tests} tests) of {REPO}@{args.commit} into {DEST}")


if __name__ == "__main__":
    main()
