"""Options that changed (issue 11, item 12): a sandbox keeps the image, memory, cpus and pids it was made
with; `ploy dev` names the ids that run with older settings than ploy.yaml's, and `ploy sandbox recreate
ID` makes one again with the new settings, keeping /workspace."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bindings.sandbox.containers import home_label
from bindings.sandbox.disks import release_under
from tests.bindings.sandbox.conftest import Bindings
from tests.bindings.sandbox.helpers import container_state
from tests.bindings.sandbox.test_sandbox_cli import ploy
from tests.conftest import DevServer

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


def _memory(container: str) -> int:
    out = subprocess.run(
        ["podman", "inspect", "--format", "{{.HostConfig.Memory}}", container],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def test_recreate_applies_the_new_settings_and_keeps_the_workspace(
    run: Run, bindings: Bindings, sandbox_home: Path
) -> None:
    old = bindings.make("recreate", memory="512m")
    sb = old.get("r1")
    run(sb.mkdir("/workspace/src/deep", {"recursive": True}))
    run(sb.writeFile("/workspace/src/deep/f.txt", "kept"))
    run(sb.writeFile("/workspace/.hidden", b"\x00\x01"))
    run(sb.exec("ln -s src/deep/f.txt /workspace/link"))
    run(sb.writeFile("/tmp/outside.txt", "not kept"))
    before = sb._mgr.entries[sb.id].container
    assert _memory(before) == 512 * 1024**2

    # ploy.yaml now says 768m: the binding made from it sees r1 is older
    root = sb._mgr.ctx.project_root
    (root / "ploy.yaml").write_text("kind: dynamic\nname: recreate\nsandbox:\n  SANDBOX:\n    memory: 768m\n")
    new = bindings.make("recreate", memory="768m")
    assert new.manager.outdated() == [("r1", ["memory 512m -> 768m"])]
    assert old.manager.outdated() == []

    r = ploy(sandbox_home, root, "sandbox", "recreate", "r1")
    assert r.returncode == 0 and "recreated sandbox r1" in r.stdout and "memory 768m" in r.stdout, r.stderr
    assert container_state(before) is None  # the old container is gone
    assert new.manager.outdated() == []

    # the client made before (as a running `ploy dev` holds it) reaches the new container
    assert run(sb.readFile("/workspace/src/deep/f.txt"))["content"] == "kept"
    after = sb._mgr.entries[sb.id].container
    assert after != before and _memory(after) == 768 * 1024**2
    assert run(sb.readFile("/workspace/.hidden", {"encoding": "binary"}))["content"] == b"\x00\x01"
    assert run(sb.exec("readlink /workspace/link; cat /workspace/link"))["stdout"] == "src/deep/f.txt\nkept"
    assert run(sb.exists("/tmp/outside.txt"))["exists"] is False  # only /workspace is kept

    unknown = ploy(sandbox_home, root, "sandbox", "recreate", "no-such")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
    run(sb.destroy())


def test_a_stopped_sandbox_is_recreated_too(run: Run, bindings: Bindings, sandbox_home: Path) -> None:
    b = bindings.make("recreate-stopped", pids=256)
    sb = b.get("r2")
    run(sb.writeFile("/workspace/f.txt", "kept"))
    subprocess.run(
        ["podman", "stop", "-t", "1", sb._mgr.entries[sb.id].container], check=True, capture_output=True
    )
    root = sb._mgr.ctx.project_root
    (root / "ploy.yaml").write_text("kind: dynamic\nname: rs\nsandbox:\n  SANDBOX:\n    pids: 512\n")
    r = ploy(sandbox_home, root, "sandbox", "recreate", "r2")
    assert r.returncode == 0, r.stderr
    assert run(sb.readFile("/workspace/f.txt"))["content"] == "kept"
    assert (
        run(sb.exec("cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"))[
            "stdout"
        ].strip()
        == "512"
    )
    run(sb.destroy())


def test_ploy_dev_names_the_sandboxes_with_older_settings(
    dev_server: type[DevServer], project: Path, ploy_home: Path, sandbox_image: str
) -> None:
    (project / "src" / "index.py").write_text(
        "from runtime.http import Response\n\nasync def fetch(request, env):\n    return Response('ok')\n"
    )
    (project / "ploy.yaml").write_text("kind: dynamic\nname: named\nsandbox:\n  SANDBOX:\n    cpus: 0.5\n")
    try:
        for sid in ("old-one", "also old"):
            made = ploy(ploy_home, project, "sandbox", "exec", sid, "--create", "--", "true")
            assert made.returncode == 0, made.stderr
        (project / "ploy.yaml").write_text("kind: dynamic\nname: named\nsandbox:\n  SANDBOX:\n    cpus: 1\n")
        server = dev_server(project).start()
        server.wait_output("ploy sandbox recreate ID")
        line = next(ln for ln in server.output.splitlines() if "ploy sandbox recreate" in ln)
        assert "2 sandbox(es) still run with the settings they were made with" in line, line
        assert '"old-one" (cpus 0.5 -> 1' in line and '"also old" (cpus 0.5 -> 1' in line, line
        assert server.get("/").text == "ok"
        server.stop()
        assert ploy(ploy_home, project, "sandbox", "recreate", "old-one").returncode == 0
        server = dev_server(project).start()
        server.wait_output("ploy sandbox recreate ID")
        line = next(ln for ln in server.output.splitlines() if "ploy sandbox recreate" in ln)
        assert "1 sandbox(es)" in line and "old-one" not in line, line
    finally:
        subprocess.run(
            f"podman ps -aq --filter label=ploy.home={home_label(ploy_home)} | xargs -r podman rm -f -t 0",
            shell=True,
            capture_output=True,
        )
        release_under(ploy_home)
        assert (
            json.loads(
                subprocess.run(
                    [
                        "podman",
                        "ps",
                        "-a",
                        "--format",
                        "json",
                        "--filter",
                        f"label=ploy.home={home_label(ploy_home)}",
                    ],
                    capture_output=True,
                    text=True,
                ).stdout
                or "[]"
            )
            == []
        )
