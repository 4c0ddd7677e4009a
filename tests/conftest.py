"""Shared fixtures: a real `ploy dev` process on a free port, spoken to over HTTP.

Every test gets its own PLOY_HOME (state: bundles, sandbox records) unless it asks for the shared one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevServer:
    """`ploy dev PROJECT` in a child process; `.url`, `.get()`, `.output` (everything it printed)."""

    def __init__(self, project: Path, env: dict[str, str] | None = None, port: int | None = None,
                 args: list[str] | None = None) -> None:  # fmt: skip
        self.project = project
        self.args = list(args or [])  # more `ploy dev` flags
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def start(self, wait: bool = True, timeout: float = 60) -> DevServer:
        self._lines.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "dev", str(self.project), "--port", str(self.port), *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=REPO,
        )  # fmt: skip
        threading.Thread(target=self._pump, daemon=True).start()
        if wait:
            self.wait_ready(timeout)
        return self

    def _pump(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self._lines.append(line)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                time.sleep(0.1)
                raise RuntimeError(f"ploy dev exited with {self.proc.returncode}:\n{self.output}")
            if "ploy dev: serving" in self.output:
                return
            time.sleep(0.02)
        raise TimeoutError(f"ploy dev did not start in {timeout}s:\n{self.output}")

    def wait_output(self, text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not printed in {timeout}s:\n{self.output}")
            time.sleep(0.02)

    def get(self, path: str = "/", **kw: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=60, **kw)  # type: ignore[arg-type]

    def request(self, method: str, path: str = "/", **kw: object) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=60, **kw)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def ploy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "ploy-home"
    monkeypatch.setenv("PLOY_HOME", str(home))
    yield home
    if (home / "s").is_dir():  # sandboxes were made: their containers and mounted disks go
        from bindings.sandbox.containers import home_label

        remove_podman_leftovers(home_label(home), home)


@pytest.fixture
def dev_server(ploy_home: Path) -> Iterator[type[DevServer]]:
    """Factory: `dev_server(project_dir).start()`; every server started is stopped after the test."""
    started: list[DevServer] = []

    class _Tracked(DevServer):
        def start(self, wait: bool = True, timeout: float = 60) -> DevServer:
            started.append(self)
            return super().start(wait, timeout)

    yield _Tracked
    for server in started:
        server.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project folder; write ploy.yaml and src/ into it."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    return root


@contextlib.contextmanager
def short_ploy_home(prefix: str) -> Iterator[Path]:
    """A PLOY_HOME short enough for the agents' unix sockets below it (paths are limited to 107 bytes);
    the containers made under it are removed afterwards."""
    from bindings.sandbox.containers import home_label

    home = Path(f"/tmp/{prefix}-{os.getpid()}")
    home.mkdir(exist_ok=True)
    try:
        yield home
    finally:
        remove_podman_leftovers(home_label(home), home)
        shutil.rmtree(home, ignore_errors=True)


def remove_podman_leftovers(label: str, home: Path | None = None) -> None:
    """The containers, snapshot images and networks made under the PLOY_HOME with this label; and the
    sandboxes' disks mounted below `home` (a later rmtree would empty them and leak loop devices)."""
    from bindings.sandbox.leftovers import remove_leftovers_sync

    remove_leftovers_sync(home, label)


@contextlib.contextmanager
def isolated_homes(base: Path) -> Iterator[Path]:
    """PLOY_HOME (state) and PLOY_CONFIG_HOME (credentials, token secret) under `base`, for a module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLOY_HOME", str(base / "state"))
        mp.setenv("PLOY_CONFIG_HOME", str(base / "config"))
        yield base


def copy_example(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(
        EXAMPLES / name, target, ignore=shutil.ignore_patterns("node_modules", "dist", "env.d.ts")
    )
    return target
