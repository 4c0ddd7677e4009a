"""Helpers for the sandbox tests: look at containers with the podman CLI, wait for conditions."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

# ploy.home of this test run's sandboxes (set by conftest's sandbox_home): other checkouts of ploy on
# the machine run the same tests with the same ids at the same time, and their containers are not ours.
HOME_LABEL: str | None = None


def containers(label: str, value: str, any_home: bool = False) -> list[str]:
    """'<name> <state>' for each container of this test run (of any, with any_home) with this label."""
    home = ["--filter", f"label=ploy.home={HOME_LABEL}"] if HOME_LABEL and not any_home else []
    out = subprocess.run(
        ["podman", "ps", "-a", "--format", "json", "--filter", f"label={label}={value}", *home],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [f"{c['Names'][0]} {c['State']}" for c in json.loads(out or "[]")]


def container_state(name: str) -> str | None:
    res = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Status}}", name], capture_output=True, text=True
    )
    return res.stdout.strip() if res.returncode == 0 else None


def wait_until(pred: Callable[[], bool], timeout: float = 20, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
