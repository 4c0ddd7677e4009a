"""Entry resolution: main, a project's own build, or esbuild on src/index.* ; one log line says which."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from runtime.config import load_config
from runtime.entry import Entry, EntryError, resolve_entry


def resolve(root: Path) -> Entry:
    return asyncio.run(resolve_entry(load_config(root)))


@pytest.fixture(autouse=True)
def _home(ploy_home: Path) -> None:
    pass


def test_docs_layout_bundles_typescript_without_package_json(project: Path) -> None:
    (project / "ploy.yaml").write_text("kind: dynamic\nbuild: pnpm build\nout: dist\n")
    (project / "src" / "index.ts").write_text(
        'import type { SandboxBinding } from "@meetploy/types";\n'
        "const greet = (n: string): string => `hi ${n}`;\n"
        "export default { async fetch(request: Request) { return new Response(greet('x')); } };\n"
    )
    entry = resolve(project)
    assert entry.language == "js"
    assert entry.how == "entry: bundled src/index.ts with esbuild (build skipped: no package.json)"
    code = entry.path.read_text()
    assert "greet" in code and ": string" not in code and "@meetploy/types" not in code
    assert entry.path.with_name(entry.path.name + ".map").is_file()
    assert (project / "src" / "index.ts").resolve() in entry.watch
    assert not (project / "dist").exists()


def test_main_python_and_main_ts(project: Path) -> None:
    (project / "app.py").write_text("async def fetch(r, e): ...\n")
    (project / "ploy.yaml").write_text("main: app.py\n")
    entry = resolve(project)
    assert (entry.language, entry.path.name) == ("python", "app.py")
    assert entry.how == "entry: main app.py (Python worker)"
    (project / "w.ts").write_text("export default { fetch() { return new Response('x') } }\n")
    (project / "ploy.yaml").write_text("main: w.ts\n")
    assert resolve(project).how == "entry: main w.ts, bundled with esbuild"


def test_project_build_runs_when_package_json_and_program_exist(project: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "mybuild"
    tool.write_text(
        "#!/bin/sh\nmkdir -p dist && echo 'export default {fetch(){return new Response(\"built\")}}' > dist/index.js\n"
    )
    tool.chmod(0o755)
    (project / "package.json").write_text(json.dumps({"name": "p"}))
    (project / "ploy.yaml").write_text("build: mybuild\nout: dist\n")
    (project / "src" / "index.ts").write_text("export default {}\n")
    os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    try:
        entry = resolve(project)
    finally:
        os.environ["PATH"] = os.environ["PATH"].split(":", 1)[1]
    assert entry.how == "entry: ran `mybuild`, loading dist/index.js"
    assert "built" in entry.path.read_text()


def test_failing_build_and_bad_typescript_are_clear(project: Path) -> None:
    (project / "ploy.yaml").write_text("kind: dynamic\n")
    (project / "src" / "index.ts").write_text("export default { fetch( {\n")
    with pytest.raises(EntryError, match=r"(?s)esbuild failed.*src/index\.ts:2:0"):
        resolve(project)


def test_python_src_index(project: Path) -> None:
    (project / "ploy.yaml").write_text("kind: dynamic\n")
    (project / "src" / "index.py").write_text("async def fetch(r, e): ...\n")
    assert resolve(project).how == "entry: src/index.py (Python worker)"


def test_relative_project_path_resolves(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "ploy.yaml").write_text("kind: dynamic\n")
    (project / "src" / "index.ts").write_text("export default { fetch() { return new Response('x') } }\n")
    monkeypatch.chdir(project.parent)
    assert resolve(Path(project.name)).language == "js"


def test_two_dev_servers_bundling_one_project_at_once_both_load(project: Path) -> None:
    """Two `ploy dev` on one project share its bundle folder; one must never read the other's
    half-written bundle or metafile."""
    (project / "ploy.yaml").write_text("kind: dynamic\n")
    (project / "src" / "index.ts").write_text(
        "export default { fetch() { return new Response('x'.repeat(3)); } };\n" + "// padding\n" * 2000
    )
    cfg = load_config(project)

    async def many() -> list[Entry]:
        return await asyncio.gather(*(resolve_entry(cfg) for _ in range(8)))

    entries = asyncio.run(many())
    for entry in entries:
        assert "repeat(3)" in entry.path.read_text()
        assert json.loads(entry.path.with_name(entry.path.name + ".map").read_text())["version"] == 3
