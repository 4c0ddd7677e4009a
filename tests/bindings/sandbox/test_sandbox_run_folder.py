"""What a sandbox can plant in its bind-mounted run folder must not block, crash or mislead the host.

No Podman: the run folder is a plain folder here, and what a container would plant is made by the test.
(tests/reliability/ does the same attacks from inside real containers.)
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bindings.context import BindingContext
from bindings.errors import PloyError
from bindings.sandbox.agent import proto
from bindings.sandbox.agent_client import AgentClient
from bindings.sandbox.options import SandboxOptions
from bindings.sandbox.state import SandboxState


def _state(tmp_path: Path) -> tuple[SandboxState, Path]:
    ctx = BindingContext(project_root=tmp_path, project_name="p", project_key="k", state_dir=tmp_path / "h")
    state = SandboxState(ctx, SandboxOptions(binding="SANDBOX"))
    token, d = state.new_token_dir("x")
    return state, d


def _write_config_within(state: SandboxState, d: Path, seconds: float = 5) -> None:
    done = threading.Event()
    errors: list[BaseException] = []

    def go() -> None:
        try:
            state.write_config(d)
        except BaseException as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=go, daemon=True).start()
    assert done.wait(seconds), "write_config blocked on what the sandbox planted"
    assert not errors, errors


def _config(d: Path) -> dict[str, Any]:
    path = d / "run" / "config.json"
    assert path.is_file() and not path.is_symlink()
    return json.loads(path.read_text())


@pytest.mark.parametrize("plant", ["fifo", "symlink", "directory", "huge", "socket"])
def test_a_planted_config_json_is_replaced_without_blocking(tmp_path: Path, plant: str) -> None:
    state, d = _state(tmp_path)
    path = d / "run" / "config.json"
    path.unlink()
    outside = tmp_path / "outside.txt"
    outside.write_text("host file\n")
    if plant == "fifo":
        os.mkfifo(path)
    elif plant == "symlink":
        path.symlink_to(outside)
    elif plant == "directory":
        (path / "inner").mkdir(parents=True)
    elif plant == "huge":
        with open(path, "wb") as f:
            f.truncate(64 << 30)  # sparse: reading it whole would exhaust the host's memory
    elif plant == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    _write_config_within(state, d)
    assert _config(d)["outputLimit"] == state.options.output_limit
    assert outside.read_text() == "host file\n"


def _agent(path: Path, name: str) -> socket.socket:
    """A minimal agent on a unix socket: answers every request with its own name."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)

    def serve(conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= proto.HEADER.size:
                    _, size = proto.HEADER.unpack(buf[: proto.HEADER.size])
                    if len(buf) < proto.HEADER.size + size:
                        break
                    buf = buf[proto.HEADER.size + size :]
                    conn.sendall(proto.json_frame({"ok": True, "result": name}))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


@pytest.fixture
def two_agents(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mine, other = tmp_path / "a" / "a.sock", tmp_path / "b" / "a.sock"
    listeners = [_agent(mine, "mine"), _agent(other, "other")]
    yield mine, other
    for listener in listeners:
        listener.close()


def test_a_socket_swapped_for_a_link_right_after_the_check_is_not_followed(
    two_agents: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox swaps its socket for a link to another sandbox's between the host's check and its
    connect: what was checked must be what is connected to."""
    mine, other = two_agents
    real = mine.with_name("real.sock")
    swapped = False

    def swap() -> None:
        nonlocal swapped
        if not swapped:
            swapped = True
            os.rename(mine, real)
            mine.symlink_to(other)

    for name in ("lstat", "stat", "open"):
        original = getattr(os, name)

        def hooked(path: Any, *a: Any, _original: Any = original, **kw: Any) -> Any:
            result = _original(path, *a, **kw)
            if os.fspath(path) == str(mine):
                swap()
            return result

        monkeypatch.setattr(os, name, hooked)

    async def go() -> list[str]:
        client = AgentClient(mine)
        answers = []
        try:
            for _ in range(3):
                try:
                    result, _ = await client.call({"op": "ping"})
                    answers.append(result)
                except PloyError as exc:
                    answers.append(exc.code)
        finally:
            await client.close()
        return answers

    answers = asyncio.run(go())
    assert swapped
    assert "other" not in answers, answers
    assert answers[0] == "mine"  # the connection made before the swap reached the socket that was checked


def test_a_socket_that_is_a_link_is_refused(two_agents: tuple[Path, Path]) -> None:
    mine, other = two_agents
    mine.unlink()
    mine.symlink_to(other)

    async def go() -> None:
        client = AgentClient(mine)
        try:
            await client.call({"op": "ping"})
        finally:
            await client.close()

    with pytest.raises(PloyError) as info:
        asyncio.run(go())
    assert info.value.code == "SANDBOX_UNAVAILABLE"
