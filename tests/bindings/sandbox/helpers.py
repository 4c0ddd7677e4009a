"""Helpers for the sandbox tests: look at containers with the podman CLI, wait for conditions."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The PLOY_HOME of the sandbox tests running now (set by tests/bindings/sandbox/conftest.py): other
# checkouts' test runs on the same machine make containers with the same ids, under their own homes.
SCOPE: dict[str, Path | None] = {"home": None}


def containers(label: str, value: str, any_home: bool = False, home: Path | None = None) -> list[str]:
    """'<name> <state>' for each container with this label (of `home`, or of this test run's PLOY_HOME
    if set, unless any_home)."""
    from bindings.sandbox.containers import home_label

    home = home or SCOPE["home"]
    scope = ["--filter", f"label=ploy.home={home_label(home)}"] if home is not None and not any_home else []
    out = subprocess.run(
        ["podman", "ps", "-a", "--format", "json", "--filter", f"label={label}={value}", *scope],
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


def in_sandbox(home: Path, project: Path, sandbox_id: str, method: str, *args: Any) -> Any:
    """Call one method on the project's sandbox from outside the server (as a restarted process would)."""
    import asyncio

    from bindings.context import BindingContext, project_key
    from bindings.sandbox import SandboxBinding
    from bindings.sandbox.options import SandboxOptions

    async def go() -> Any:
        ctx = BindingContext(
            project_root=project.resolve(),
            project_name=project.name,
            project_key=project_key(project),
            state_dir=home,
        )
        b = SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", pool=0))
        try:
            return await getattr(b.get(sandbox_id), method)(*args)
        finally:
            await b.close()

    return asyncio.run(go())
