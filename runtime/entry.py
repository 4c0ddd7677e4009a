"""Entry resolution: which file is the worker, and how it becomes something a loader can run.

In order: `main` from ploy.yaml; else, when `build` is set, the project has a package.json and the build
program is installed, run the build and load the entry from `out`; else bundle src/index.(ts|js|...) with
esbuild ourselves. A Python worker is src/index.py or a `main` ending in .py. One log line says which.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bindings.context import project_key, state_home
from runtime.config import ProjectConfig

JS_SOURCES = ("index.ts", "index.tsx", "index.mts", "index.js", "index.mjs", "index.jsx")
OUT_ENTRIES = ("index.js", "index.mjs", "worker.js", "_worker.js", "main.js")
REPO_ROOT = Path(__file__).resolve().parent.parent


class EntryError(Exception):
    """The worker's entry cannot be found or built; the message says what to do."""


@dataclass
class Entry:
    language: str  # "python" | "js"
    path: Path  # the Python module, or the bundled ES module for QuickJS
    how: str  # the one log line
    watch: set[Path] = field(default_factory=set)  # files whose change means a reload


def find_esbuild(project_root: Path) -> str:
    """esbuild from PLOY_ESBUILD, the project's node_modules, ploy's own node_modules, or PATH."""
    candidates = [os.environ.get("PLOY_ESBUILD", "")]
    candidates += [str(p / "node_modules" / ".bin" / "esbuild") for p in (project_root, REPO_ROOT)]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    found = shutil.which("esbuild")
    if found:
        return found
    raise EntryError(
        f"esbuild not found: run `npm install` in {REPO_ROOT} (the README's setup command does it) "
        "or set PLOY_ESBUILD"
    )


async def bundle(source: Path, outfile: Path, project_root: Path) -> set[Path]:
    """Bundle one ES module (TypeScript stripped) for QuickJS; returns the input files for the watcher.

    esbuild writes under a name of this process's own and the result is renamed into place: two
    `ploy dev` on one project share the bundle folder, and neither may read the other's half-written
    files. (--sourcemap=external: no sourceMappingURL comment naming the temporary file; the loader
    finds the map beside the bundle.)"""
    outfile.parent.mkdir(parents=True, exist_ok=True)
    tmp = outfile.with_name(f".{outfile.stem}.{os.getpid()}.{next(_build_ids)}{outfile.suffix}")
    tmp_map, meta = tmp.with_name(tmp.name + ".map"), tmp.with_suffix(".meta.json")
    cmd = [
        find_esbuild(project_root), str(source), "--bundle", "--format=esm", "--platform=neutral",
        "--target=es2023", "--sourcemap=external", "--main-fields=module,main", "--conditions=worker,browser",
        f"--outfile={tmp}", f"--metafile={meta}", "--log-level=error", "--charset=utf8", "--color=false",
    ]  # fmt: skip
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=project_root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise EntryError(f"esbuild failed for {source}:\n{(err or out).decode(errors='replace').strip()}")
        inputs = json.loads(meta.read_text())["inputs"]
        os.replace(tmp_map, outfile.with_name(outfile.name + ".map"))
        os.replace(tmp, outfile)
    finally:
        for leftover in (tmp, tmp_map, meta):
            leftover.unlink(missing_ok=True)
    return {(project_root / p).resolve() for p in inputs if not p.startswith("<")}


_build_ids = itertools.count(1)


async def run_build(cfg: ProjectConfig) -> None:
    assert cfg.build
    proc = await asyncio.create_subprocess_shell(
        cfg.build, cwd=cfg.root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise EntryError(
            f"`{cfg.build}` failed with exit code {proc.returncode}:\n{out.decode(errors='replace')}"
        )


def _build_usable(cfg: ProjectConfig) -> bool:
    if not cfg.build or not (cfg.root / "package.json").is_file():
        return False
    try:
        program = shlex.split(cfg.build)[0]
    except (ValueError, IndexError):
        return False
    return shutil.which(program) is not None


def bundle_dir(cfg: ProjectConfig) -> Path:
    return state_home() / "projects" / project_key(cfg.root) / "bundle"


async def resolve_entry(cfg: ProjectConfig) -> Entry:
    root = cfg.root
    always = {cfg.path} | {root / n for n in (".dev.vars", ".env", "package.json")}
    outfile = bundle_dir(cfg) / "worker.mjs"

    if cfg.main:
        main = (root / cfg.main).resolve()
        if main.suffix == ".py":
            return Entry("python", main, f"entry: main {cfg.main} (Python worker)", always | _py_files(root))
        inputs = await bundle(main, outfile, root)
        return Entry("js", outfile, f"entry: main {cfg.main}, bundled with esbuild", always | inputs)

    if _build_usable(cfg):
        await run_build(cfg)
        out_dir = root / (cfg.out or "dist")
        built = next((out_dir / n for n in OUT_ENTRIES if (out_dir / n).is_file()), None)
        if built is None:
            raise EntryError(f"`{cfg.build}` ran but {out_dir} has none of {', '.join(OUT_ENTRIES)}")
        inputs = await bundle(built, outfile, root)
        sources = {p for p in (root / "src").rglob("*") if p.is_file()} if (root / "src").is_dir() else set()
        return Entry(
            "js", outfile, f"entry: ran `{cfg.build}`, loading {built.relative_to(root)}", always | sources
        )

    py = root / "src" / "index.py"
    if py.is_file():
        return Entry("python", py, "entry: src/index.py (Python worker)", always | _py_files(root))
    for name in JS_SOURCES:
        src = root / "src" / name
        if src.is_file():
            why = (
                " (build skipped: no package.json)"
                if cfg.build and not (root / "package.json").is_file()
                else ""
            )
            inputs = await bundle(src, outfile, root)
            return Entry("js", outfile, f"entry: bundled src/{name} with esbuild{why}", always | inputs)
    raise EntryError(
        f"no worker entry in {root}: add src/index.ts, src/index.js or src/index.py, or set `main` in ploy.yaml"
    )


def _py_files(root: Path) -> set[Path]:
    skip = {"node_modules", ".git", ".ploy", "__pycache__", ".venv"}
    return {p.resolve() for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts)}
