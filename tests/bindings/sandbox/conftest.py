"""Shared Podman fixtures for the SANDBOX tests.

One event loop in a background thread for the whole run (binding objects keep pooled agent
connections, which belong to one loop), one image build, one shared sandbox for read-mostly tests, one
git daemon. Every container a run creates carries `ploy.home=<this run's home>` and is removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bindings.context import BindingContext, project_key
from bindings.sandbox import SandboxBinding, SandboxClient
from bindings.sandbox import image as images
from bindings.sandbox.options import SandboxOptions
from tests.conftest import short_ploy_home

T = TypeVar("T")

needs_podman = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


class Loop:
    def __init__(self) -> None:
        try:  # the loop `ploy dev` runs on (uvicorn picks uvloop when installed)
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="session")
def aloop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def run(aloop: Loop) -> Callable[..., Any]:
    return aloop.run


@pytest.fixture(scope="session")
def sandbox_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with short_ploy_home("ploy-t") as home:
        yield home


@pytest.fixture(autouse=True)
def _containers_of_this_run(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that use this run's sandboxes look only at their containers (see helpers.SCOPE)."""
    if "sandbox_home" not in request.fixturenames:
        yield
        return
    from tests.bindings.sandbox import helpers

    helpers.SCOPE["home"] = request.getfixturevalue("sandbox_home")
    try:
        yield
    finally:
        helpers.SCOPE["home"] = None


@pytest.fixture(scope="session")
def sandbox_image(run: Callable[..., Any]) -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    return run(images.ensure_image(), timeout=900)


@pytest.fixture(scope="session")
def base_image(run: Callable[..., Any], sandbox_image: str) -> str:
    """The debootstrap base by name, for tests that build on it (its name can be gone while the
    default image layered on it is there: another ploy version's prune removes only the name)."""
    return run(images.ensure_base(), timeout=900)


class Bindings:
    """Factory for SandboxBindings in this run's home; `fresh()` simulates a restarted `ploy dev`."""

    def __init__(self, home: Path, tmp: Path, aloop: Loop) -> None:
        self.home, self.tmp, self.aloop = home, tmp, aloop
        self.made: list[SandboxBinding] = []

    def make(
        self, project: str = "proj", binding: str = "SANDBOX", env: dict[str, str] | None = None, **opts: Any
    ) -> SandboxBinding:
        root = self.tmp / project
        root.mkdir(exist_ok=True)
        ctx = BindingContext(
            project_root=root, project_name=project, project_key=project_key(root), state_dir=self.home
        )
        if env is not None:
            ctx.sandbox_env = lambda: dict(env)
        opts.setdefault("pool", 0)
        b = SandboxBinding(ctx, SandboxOptions(binding=binding, **opts))
        self.made.append(b)
        return b

    def close_all(self) -> None:
        for b in self.made:
            self.aloop.run(b.close())


@pytest.fixture(scope="session")
def bindings(
    sandbox_home: Path, sandbox_image: str, tmp_path_factory: pytest.TempPathFactory, aloop: Loop
) -> Iterator[Bindings]:
    b = Bindings(sandbox_home, tmp_path_factory.mktemp("projects"), aloop)
    yield b
    b.close_all()


@pytest.fixture(scope="session")
def shared(bindings: Bindings) -> SandboxClient:
    """One sandbox for the read-mostly tests (each test works in its own folder). `open`: its gitCheckout
    tests reach a git daemon on the host, which the default network policy refuses."""
    return bindings.make("shared", network="open").get("shared")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A bare repo served by `git daemon` on the host; returns its URL as seen from a container."""
    base = tmp_path_factory.mktemp("git")
    work = base / "work"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }

    def git(*args: str, cwd: Path = work) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    work.mkdir()
    git("init", "-q", "-b", "main")
    for i in range(3):
        (work / "README.md").write_text(f"main {i}\n")
        git("add", ".")
        git("commit", "-q", "-m", f"main {i}")
    git("checkout", "-q", "-b", "feature")
    for i in range(2):
        (work / "feature.txt").write_text(f"feature {i}\n")
        git("add", ".")
        git("commit", "-q", "-m", f"feature {i}")
    git("clone", "-q", "--bare", str(work), str(base / "repo.git"), cwd=base)
    git("symbolic-ref", "HEAD", "refs/heads/main", cwd=base / "repo.git")
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", f"--base-path={base}", "--listen=0.0.0.0", f"--port={port}", "--reuseaddr",
         str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"git://host.containers.internal:{port}/repo.git"
    daemon.terminate()
    daemon.wait(5)


@pytest.fixture
def example(tmp_path: Path, ploy_home: Path, sandbox_image: str) -> Iterator[Callable[[str], Path]]:
    """Copies an example project (examples/NAME) to a temporary folder, with its npm packages when it has
    a package.json; this test's containers are removed afterwards."""
    from bindings.sandbox.containers import home_label
    from tests.conftest import REPO, remove_podman_leftovers

    def copy(name: str) -> Path:
        source = REPO / "examples" / name
        target = tmp_path / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules", "dist"))
        if (source / "package.json").is_file():
            if (source / "node_modules").is_dir():  # install.sh installed them
                (target / "node_modules").symlink_to(source / "node_modules")
            else:
                subprocess.run(
                    ["npm", "install", "--no-audit", "--no-fund"], cwd=target, check=True, capture_output=True
                )
        return target

    yield copy
    remove_podman_leftovers(home_label(ploy_home), ploy_home)
