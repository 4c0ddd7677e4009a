"""ploy.yaml: the documented fields parse; wrong input names file, line and field, and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.config import ConfigError, load_config, parse_config, parse_duration
from runtime.env import parse_dotenv

DOCS_CONFIG = """kind: dynamic
build: pnpm build
out: dist
ai: true
sandbox:
  SANDBOX: default
"""


def test_docs_config_parses() -> None:
    cfg = parse_config(DOCS_CONFIG, Path("p/ploy.yaml"))
    assert cfg.kind == "dynamic" and cfg.build == "pnpm build" and cfg.out == "dist"
    assert cfg.sections["ai"].enabled is True
    assert list(cfg.sections["sandbox"]) == ["SANDBOX"]
    assert cfg.sections["sandbox"]["SANDBOX"].template == "default"
    assert cfg.binding_names() == ["SANDBOX", "AI"]


def test_extended_sandbox_form() -> None:
    cfg = parse_config(
        "sandbox:\n  BOX:\n    template: default\n    memory: 2g\n    cpus: 2\n    pids: 300\n    sleepAfter: 5m\n    pool: 0\n",
        Path("ploy.yaml"),
    )
    box = cfg.sections["sandbox"]["BOX"]
    assert (box.memory, box.cpus, box.pids, box.sleep_after_s, box.pool) == ("2g", 2, 300, 300.0, 0)


def test_network_option() -> None:
    def network(value: str) -> object:
        cfg = parse_config(f"sandbox:\n  A:\n    network: {value}\n  B: default\n", Path("ploy.yaml"))
        assert cfg.sections["sandbox"]["B"].network == "default"  # the default: internet and gateway only
        return cfg.sections["sandbox"]["A"].network

    assert [network(v) for v in ("open", "default", "none")] == ["open", "default", "none"]
    allow = "[pypi.org, 'Registry.npmjs.org.:443', 203.0.113.7, 10.1.2.3/8:5432, '*:22', default, pypi.org]"
    assert network(allow) == (
        "pypi.org",
        "registry.npmjs.org:443",
        "203.0.113.7",
        "10.0.0.0/8:5432",
        "*:22",
        "default",
    )


def test_disk_option() -> None:
    """`disk`: a size (default 10g), 0 for no limit; kept as written, compared by bytes (item 12)."""
    from bindings.sandbox.options import changed_settings

    def box(text: str) -> Any:
        return parse_config(f"sandbox:\n  BOX:\n{text}", Path("ploy.yaml")).sections["sandbox"]["BOX"]

    assert box("    pool: 0\n").disk_bytes == 10 * 1024**3
    assert (box("    disk: 512m\n").disk, box("    disk: 512m\n").disk_bytes) == ("512m", 512 * 1024**2)
    assert box("    disk: 1T\n").disk_bytes == 1024**4
    assert box("    disk: 0\n").disk_bytes == 0
    assert box("    disk: 2147483648\n").disk_bytes == 2 * 1024**3
    settings = box("    disk: 1g\n").settings()
    assert changed_settings({**settings, "disk": "1024m"}, settings) == []
    assert changed_settings({**settings, "disk": "2g"}, settings) == ["disk 2g -> 1g"]
    # sandboxes made before the disk limit and the user namespace are named as made without them
    old = {k: v for k, v in settings.items() if k not in ("disk", "userns")}
    assert changed_settings(old, settings) == ["disk ? -> 1g", "userns ? -> 0:2000000000:65536"]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("kind: dynamic\nbuidl: x\n", 2, "buidl", "unknown field"),
        ("name: 3\n", 1, "name", "expected a string"),
        ("ai: maybe\n", 1, "ai", "true or false"),
        ("sandbox:\n  my-box: default\n", 2, "sandbox.my-box", "not a valid JavaScript identifier"),
        ("sandbox:\n  class: default\n", 2, "sandbox.class", "not a valid JavaScript identifier"),
        ("sandbox:\n  A: default\n  A: other\n", 3, "sandbox.A", "defined twice"),
        ("ai: true\nvars:\n  AI: x\n", 3, "vars.AI", "already used"),
        ("sandbox:\n  A:\n    memroy: 1g\n", 3, "sandbox.A.memroy", "unknown option"),
        ("sandbox:\n  A:\n    sleepAfter: soon\n", 3, "sandbox.A.sleepAfter", "not a duration"),
        ("sandbox:\n  A:\n    pids: -1\n", 3, "sandbox.A.pids", "negative"),
        ("sandbox: [a, b]\n", 1, "sandbox", "expected a mapping"),
        ("limits:\n  cpu_ms: 0\n", 2, "limits.cpu_ms", "positive"),
        # values no sandbox can start with: errors now, not a traceback at the first sandbox start
        ("sandbox:\n  A:\n    pids: 1\n", 3, "sandbox.A.pids", "at least"),
        ("sandbox:\n  A:\n    memory: 1k\n", 3, "sandbox.A.memory", "at least"),
        ("sandbox:\n  A:\n    cpus: 1000\n", 3, "sandbox.A.cpus", "CPUs"),
        ("sandbox:\n  A:\n    cpus: 0\n", 3, "sandbox.A.cpus", "at least"),
        ("sandbox:\n  A:\n    outputLimit: 1099511627776\n", 3, "sandbox.A.outputLimit", "at most"),
        ("sandbox:\n  A:\n    pool: 500\n", 3, "sandbox.A.pool", "at most"),
        # the network policy (issue 11 item 8): each bad entry is named on its own line
        ("sandbox:\n  A:\n    network: closed\n", 3, "sandbox.A.network", "unknown network 'closed'"),
        ("sandbox:\n  A:\n    network: 3\n", 3, "sandbox.A.network", "expected a string"),
        ("sandbox:\n  A:\n    network: []\n", 3, "sandbox.A.network", "use network: none"),
        ("sandbox:\n  A:\n    network:\n      - pypi.org\n      - a..b\n", 5, "sandbox.A.network", "'a..b'"),
        ("sandbox:\n  A:\n    network:\n      - 10.0.0.0/8:99999\n", 4, "sandbox.A.network", "1 to 65535"),
        ("sandbox:\n  A:\n    network:\n      - '*'\n", 4, "sandbox.A.network", "'*' needs a port"),
        ("sandbox:\n  A:\n    network:\n      - '::1'\n", 4, "sandbox.A.network", "IPv4"),
        ("sandbox:\n  A:\n    network:\n      - {a: 1}\n", 4, "sandbox.A.network", "expected a string"),
        ("sandbox:\n  A:\n    network:\n      - under_score-.example\n", 4, "sandbox.A.network", "neither"),
        # issue 11 item 10: the disk limit
        ("sandbox:\n  A:\n    pool: 0\n    disk: 10x\n", 4, "sandbox.A.disk", "not a disk size"),
        ("sandbox:\n  A:\n    disk: -5\n", 3, "sandbox.A.disk", "not a disk size"),
        ("sandbox:\n  A:\n    disk: 1m\n", 3, "sandbox.A.disk", "at least 64m"),
        ("sandbox:\n  A:\n    disk: 20t\n", 3, "sandbox.A.disk", "at most 16t"),
        ("sandbox:\n  A:\n    disk: [1g]\n", 3, "sandbox.A.disk", "expected"),
    ],
)
def test_errors_name_line_and_field(text: str, line: int, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("proj/ploy.yaml"))
    err = info.value
    assert (err.line, err.field) == (line, field)
    assert words in str(err)
    assert str(err).startswith(f"proj/ploy.yaml:{line}: {field}: ")


def test_invalid_yaml_has_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("kind: dynamic\nsandbox: [\n", Path("ploy.yaml"))
    assert info.value.line is not None and "invalid YAML" in str(info.value)


def test_missing_config_and_missing_main(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path)
    (tmp_path / "ploy.yaml").write_text("main: nope.py\n")
    with pytest.raises(ConfigError, match="main"):
        load_config(tmp_path)


def test_cli_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "ploy.yaml").write_text("kind: dynamic\nsandbox:\n  1bad: default\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.py").write_text("raise SystemExit('must not be imported')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "dev", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"{tmp_path / 'ploy.yaml'}:3: sandbox.1bad:" in proc.stderr
    assert "serving" not in proc.stdout


def test_a_ploy_yaml_nested_too_deeply_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_config("a: " + "[" * 5000 + "]" * 5000 + "\n", Path("ploy.yaml"))


def test_a_ploy_yaml_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ploy.yaml").write_bytes(b"kind: dynamic\nname: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.line == 2 and "UTF-8" in str(info.value)
    proc = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "dev", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"{tmp_path / 'ploy.yaml'}:2: is not UTF-8" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_durations() -> None:
    assert [parse_duration(x) for x in ("10m", "30s", "1h", "500ms", 42)] == [600, 30, 3600, 0.5, 42]


def test_dotenv() -> None:
    text = '# comment\nexport A=1\nB = "two words" \nC=\'lit $X\\n\'\nD="line\\nbreak"\nE=x # trailing\n\nbad line\n'
    assert parse_dotenv(text) == {"A": "1", "B": "two words", "C": "lit $X\\n", "D": "line\nbreak", "E": "x"}
