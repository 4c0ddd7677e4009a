"""`ploy sandbox list|exec|destroy` and `ploy image build` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bindings.sandbox.helpers import containers
from tests.conftest import REPO

pytestmark = pytest.mark.podman


def ploy(home: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLOY_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_exec_list_destroy(sandbox_home: Path, sandbox_image: str, tmp_path: Path) -> None:
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\nname: cli-project\nsandbox:\n  SANDBOX: default\n")
    r = ploy(
        sandbox_home,
        tmp_path,
        "sandbox",
        "exec",
        "cli-box",
        "--create",
        "--",
        "echo hi > f.txt; cat f.txt; exit 4",
    )
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
    bad = ploy(sandbox_home, tmp_path, "sandbox", "exec", "", "--", "true")
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr


def test_cli_lists_and_reaches_any_id(sandbox_home: Path, sandbox_image: str, tmp_path: Path) -> None:
    """Ids are any string (issue 13): the list shows them as given, exec and destroy take them."""
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\nname: any-ids\nsandbox:\n  SANDBOX: default\n")
    odd = "ana@example.com/tenant 42:job ü"
    r = ploy(sandbox_home, tmp_path, "sandbox", "exec", odd, "--create", "--", "hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ana-example-com-tenant-42-job"
    listing = ploy(sandbox_home, tmp_path, "sandbox", "list").stdout
    assert odd in listing and "running" in listing, listing
    assert ploy(sandbox_home, tmp_path, "sandbox", "exec", odd, "--", "true").returncode == 0
    # a different id (case) is another sandbox, which does not exist
    assert ploy(sandbox_home, tmp_path, "sandbox", "exec", odd.upper(), "--", "true").returncode == 1
    assert ploy(sandbox_home, tmp_path, "sandbox", "destroy", odd).returncode == 0
    assert containers("ploy.id", odd) == []


def test_cli_exec_of_an_unknown_id_creates_nothing(
    sandbox_home: Path, sandbox_image: str, tmp_path: Path
) -> None:
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\nname: typo\nsandbox:\n  SANDBOX: default\n")
    r = ploy(sandbox_home, tmp_path, "sandbox", "exec", "no-such-box", "--", "touch made")
    assert r.returncode != 0 and r.stdout == ""
    assert "NOT_FOUND" in r.stderr and "'no-such-box'" in r.stderr and "ploy sandbox list" in r.stderr, (
        r.stderr
    )
    assert containers("ploy.id", "no-such-box") == []
    assert "no sandboxes" in ploy(sandbox_home, tmp_path, "sandbox", "list").stdout


def test_image_build_is_cached(sandbox_home: Path, sandbox_image: str, tmp_path: Path) -> None:
    r = ploy(sandbox_home, tmp_path, "image", "build")
    assert r.returncode == 0 and r.stdout.strip() == sandbox_image


def test_cli_prune_removes_unclaimed_pool_containers(
    sandbox_home: Path, sandbox_image: str, tmp_path: Path
) -> None:
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\nname: prune\nsandbox:\n  SANDBOX:\n    pool: 1\n")
    # a `ploy dev` that was killed: it claimed one id and left a filled pool behind
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from bindings.context import BindingContext\n"
        "from bindings.sandbox import SandboxBinding\n"
        "from bindings.sandbox.options import SandboxOptions\n"
        "async def main():\n"
        "    b = SandboxBinding(BindingContext.for_project(Path(sys.argv[1]), 'prune'), SandboxOptions('SANDBOX', pool=1))\n"
        "    await b.get('kept').exec('true')\n"
        "    while not b.manager.pool._tokens(): await asyncio.sleep(0.05)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PLOY_HOME": str(sandbox_home), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=True, timeout=120)
    from bindings.context import project_key

    key = project_key(tmp_path)
    assert len(containers("ploy.project", key)) == 2
    pooled = subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}", "--filter", f"label=ploy.project={key}",
         "--filter", "label=ploy.pool=1"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(pooled) == 1
    disk = sandbox_home / "s" / pooled[0].removeprefix("ploy-") / "disk"
    assert os.path.ismount(disk)
    r = ploy(sandbox_home, tmp_path, "sandbox", "prune")
    assert "removed 1" in r.stdout, r.stderr
    left = containers("ploy.project", key)
    assert len(left) == 1 and "kept" in ploy(sandbox_home, tmp_path, "sandbox", "list").stdout
    # the pool container's disk went with it (issue 11 item 10): unmounted, its token folder removed
    assert not os.path.ismount(disk) and not disk.parent.exists()


def _image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name]).returncode == 0


def test_cli_prune_removes_stale_sandbox_images_only(
    sandbox_home: Path, sandbox_image: str, tmp_path: Path
) -> None:
    from bindings.sandbox.containers import home_label
    from bindings.sandbox.image import layer_tag

    tag = os.getpid()
    stale = f"localhost/ploy-sandbox:stale-{tag}"  # another name of the current image: only untagged
    foreign = f"localhost/not-ploy:keep-{tag}"  # not ploy's own: never touched
    in_use = f"localhost/ploy-sandbox:in-use-{tag}"  # stale, but a stopped container still needs it
    custom_layer = layer_tag(foreign)  # the current agent layer of a custom image (`image: ...`)
    container = f"ploy-test-in-use-{tag}"
    subprocess.run(["podman", "tag", sandbox_image, stale, foreign], check=True)
    for name, label in ((in_use, "ploy.test=in-use"), (custom_layer, f"ploy.base={foreign}")):
        (tmp_path / "Containerfile").write_text(f"FROM {sandbox_image}\nLABEL {label}\n")
        subprocess.run(
            ["podman", "build", "--pull=never", "-q", "-t", name, str(tmp_path)],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [
            "podman",
            "create",
            "--runtime",
            "runc",
            "--name",
            container,
            "--label",
            f"ploy.home={home_label(sandbox_home)}",
            in_use,
            "true",
        ],
        check=True,
        capture_output=True,
    )
    try:
        (tmp_path / "ploy.yaml").write_text(
            "kind: dynamic\nname: prune-images\nsandbox:\n  SANDBOX: default\n"
        )
        r = ploy(sandbox_home, tmp_path, "sandbox", "prune")
        assert r.returncode == 0 and f"removed image {stale}\n" in r.stdout, r.stdout + r.stderr
        assert not _image_exists(stale)
        kept = (sandbox_image, foreign, in_use, custom_layer)
        assert all(_image_exists(name) for name in kept) and not any(name in r.stdout for name in kept[1:])
        # the current image still makes sandboxes
        r = ploy(sandbox_home, tmp_path, "sandbox", "exec", "--create", "after-prune", "--", "echo ok")
        assert r.stdout == "ok\n", r.stderr
    finally:
        subprocess.run(["podman", "rm", "-f", container], capture_output=True)
        subprocess.run(["podman", "rmi", stale, custom_layer, foreign, in_use], capture_output=True)
