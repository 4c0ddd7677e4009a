"""`ploy sandbox list|exec|destroy` and `ploy image build` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.helpers import containers

pytestmark = pytest.mark.podman
REPO = Path(__file__).resolve().parents[2]


def ploy(home: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLOY_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_exec_list_destroy(sandbox_home: Path, sandbox_image: str, tmp_path: Path) -> None:
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\nname: cli-project\nsandbox:\n  SANDBOX: default\n")
    r = ploy(sandbox_home, tmp_path, "sandbox", "exec", "cli-box", "--", "echo hi > f.txt; cat f.txt; exit 4")
    assert r.stdout == "hi\n" and r.returncode == 4, r.stderr
    assert ploy(sandbox_home, tmp_path, "sandbox", "exec", "cli-box", "--", "cat", "f.txt").stdout == "hi\n"
    listing = ploy(sandbox_home, tmp_path, "sandbox", "list").stdout
    assert "cli-box" in listing and "running" in listing
    # --project from anywhere reaches the same sandboxes
    other = ploy(sandbox_home, REPO, "sandbox", "list", "--project", str(tmp_path)).stdout
    assert "cli-box" in other
    assert ploy(sandbox_home, tmp_path, "sandbox", "destroy", "cli-box").returncode == 0
    assert containers("ploy.id", "cli-box") == []
    assert "no sandboxes" in ploy(sandbox_home, tmp_path, "sandbox", "list").stdout
    bad = ploy(sandbox_home, tmp_path, "sandbox", "exec", "bad/id", "--", "true")
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr


def test_image_build_is_cached(sandbox_home: Path, sandbox_image: str, tmp_path: Path) -> None:
    r = ploy(sandbox_home, tmp_path, "image", "build")
    assert r.returncode == 0 and r.stdout.strip() == sandbox_image
