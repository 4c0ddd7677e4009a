"""`ploy hosts`' file and rules, without Podman: the config is 0600, bad input is refused naming the
argument, and with no host configured every sandbox stays on this machine."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bindings.errors import PloyError
from bindings.sandbox.hosts.config import add_host, load_hosts, remove_host
from bindings.sandbox.hosts.remote import agent_address
from tests.conftest import REPO


def test_hosts_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "hosts.json"
    add_host("a", "tcp://10.0.0.2:8888", path=path)
    key = tmp_path / "id_ed25519"
    key.write_text("k")
    add_host("b", "ssh://root@b.example/run/podman/podman.sock", identity=str(key), path=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_hosts(path) == {
        "a": {"url": "tcp://10.0.0.2:8888"},
        "b": {"url": "ssh://root@b.example/run/podman/podman.sock", "identity": str(key)},
    }
    assert remove_host("a", path=path) and not remove_host("a", path=path)
    assert list(load_hosts(path)) == ["b"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("name", "url", "identity", "argument"),
    [
        ("Bad Name", "tcp://h:1", None, "name"),
        ("a", "ftp://h", None, "url"),
        ("a", "h:8888", None, "url"),
        ("a", "tcp://h:1", "/etc/passwd", "identity"),  # only ssh:// takes one
        ("a", "ssh://h/run/podman/podman.sock", "/nonexistent/key", "identity"),
    ],
)
def test_bad_hosts_are_refused_naming_the_argument(
    tmp_path: Path, name: str, url: str, identity: str | None, argument: str
) -> None:
    path = tmp_path / "hosts.json"
    with pytest.raises(PloyError) as err:
        add_host(name, url, identity, path=path)
    assert err.value.code == "INVALID_ARGUMENT" and err.value.message.startswith(f"{argument}:")
    assert not path.exists()  # nothing written


def test_agent_ports_are_bound_to_the_hosts_address() -> None:
    assert agent_address("tcp://10.0.0.2:8888") == "10.0.0.2"
    assert agent_address("ssh://root@box.example:22/run/podman/podman.sock") == "box.example"
    assert agent_address("unix:///run/podman/podman.sock") == "127.0.0.1"


def test_no_hosts_means_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bindings.context import BindingContext, project_key
    from bindings.sandbox.manager import SandboxManager
    from bindings.sandbox.options import SandboxOptions

    monkeypatch.setenv("PLOY_HOSTS_FILE", str(tmp_path / "absent.json"))
    ctx = BindingContext(
        project_root=tmp_path, project_name="p", project_key=project_key(tmp_path), state_dir=tmp_path
    )
    mgr = SandboxManager(ctx, SandboxOptions(binding="SANDBOX"))
    assert mgr.placement.hosts == {} and mgr.containers.remote == {}
    e = mgr.containers.entry("x", "0123456789")
    assert not e.host.remote and type(e.agent).__name__ == "AgentClient"


def test_podman_py_is_not_imported_without_hosts() -> None:
    code = "import sys\nfrom bindings.sandbox.manager import SandboxManager\nprint('podman' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ploy_hosts_cli(tmp_path: Path) -> None:
    env = {"PLOY_HOSTS_FILE": str(tmp_path / "hosts.json"), "PATH": "/usr/bin:/bin"}

    def ploy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runtime.cli", "hosts", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )

    assert "no hosts configured" in ploy("list").stdout
    assert ploy("add", "gone", "tcp://127.0.0.1:9").returncode == 0
    listed = ploy("list")
    assert listed.returncode == 0 and "gone" in listed.stdout and "unreachable" in listed.stdout
    bad = ploy("add", "x", "ftp://h")
    assert bad.returncode == 2 and "INVALID_ARGUMENT: url:" in bad.stderr
    assert ploy("remove", "gone").returncode == 0
    assert ploy("remove", "gone").returncode == 1
