"""Fast checks that need no Podman: ids, the wire format, the image recipe hash."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from bindings.errors import PloyError
from bindings.sandbox import image
from bindings.sandbox.agent import proto
from bindings.sandbox.state import LEGACY_ID_RE, claim_name, hostname, validate_id


def test_ids() -> None:
    """Any non-empty string up to 1024 characters without NUL is an id (issue 13)."""
    good = ["a", "A-1_b.c", "x" * 63, "-a", ".a", "a/b", "a b", "x" * 1024, "é", "ana@example.com",
            "tenant/42:job", "f" * 64, "日本語 🌍", "..", "/", "a\nb"]  # fmt: skip
    for ok in good:
        assert validate_id(ok) == ok
    for bad in ["", "x" * 1025, "a\0b", None, 3, b"bytes"]:
        with pytest.raises(PloyError) as info:
            validate_id(bad)
        assert info.value.code == "INVALID_ARGUMENT"


def test_claim_names_are_safe_and_never_shared() -> None:
    ids = ["Box", "box", "a/b", "ab", "a_b", "tenant/42:job", "x" * 1024, "..", "/", "日本", "a\nb"]
    names = [claim_name(i) for i in ids]
    assert len(set(names)) == len(ids)  # case, a slash: never the same sandbox
    for n in names:
        assert re.fullmatch(r"~[0-9a-f]{40}", n)  # a file name, whatever the id
        assert not LEGACY_ID_RE.match(n)  # never the name of a claim made before ids were hashed
    assert claim_name("Box") == claim_name("Box")
    assert hostname("tenant/42:job") == "tenant-42-job" and hostname("日本") == "sandbox"
    assert hostname("my_box") == "my-box" and len(hostname("y" * 300)) == 63


def test_frames_roundtrip_binary_without_bloat() -> None:
    payload = bytes(range(256)) * 1000

    async def go() -> list[tuple[bytes, bytes]]:
        reader = asyncio.StreamReader()
        reader.feed_data(proto.json_frame({"op": "x"}) + proto.frame(b"D", payload) + proto.frame(b"D", b""))
        reader.feed_eof()
        return [await proto.read_frame(reader) for _ in range(3)]

    frames = asyncio.run(go())
    assert frames[0] == (b"J", b'{"op":"x"}') and frames[1] == (b"D", payload) and frames[2] == (b"D", b"")
    assert len(proto.frame(b"D", payload)) == len(payload) + proto.HEADER.size


def test_recipe_hash_covers_image_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "BIN_DIR", tmp_path)
    empty = image.default_tag()
    (tmp_path / "soulforge").write_text("#!/usr/bin/env python3\n")
    with_tool = image.default_tag()
    (tmp_path / "soulforge").write_text("#!/usr/bin/env python3\nprint('v2')\n")
    assert len({empty, with_tool, image.default_tag()}) == 3
    assert "COPY bin/ /usr/local/bin/" in image._containerfile(image.base_tag(), image._layer_files())
    assert image.default_tag().startswith("localhost/ploy-sandbox:")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_pooled_connection_to_a_dead_agent_is_never_sent_a_request(tmp_path: Path, loop: str) -> None:
    """The agent died while a connection sat idle, before the event loop saw the EOF: the request must go
    to a new connection (whose failure is a safe retry), not be written into the dead one."""
    import socket

    from bindings.sandbox.agent_client import AgentClient, _peer_alive

    path = tmp_path / "a.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()

    async def go() -> tuple[bool, bool, bool]:
        client = AgentClient(path)
        conn = await client._connect()
        agent_side, _ = listener.accept()
        alive = _peer_alive(conn)
        agent_side.close()  # no await in between: the loop has not looked at the socket since
        dead = not _peer_alive(conn) and not conn.reader.at_eof()
        client._release(conn)
        listener.close()
        path.unlink()
        try:
            await client.call({"op": "ping"})
            retryable = False
        except PloyError as exc:
            retryable = type(exc).__name__ == "AgentUnavailable"
        return alive, dead, retryable

    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        result = uvloop.run(go())
    else:
        result = asyncio.run(go())
    assert result == (True, True, True)


@pytest.mark.parametrize("version,pooled", [(1, False), (2, True), (None, False)])
def test_a_connection_is_pooled_after_a_stream_only_for_agents_that_keep_it(
    tmp_path: Path, version: int | None, pooled: bool
) -> None:
    """Version 1 agents (containers made by an older ploy) could drop a connection after a stream once
    the next request arrived: for them, and for an agent whose version is unknown, it is not reused."""
    from bindings.sandbox.agent_client import AgentClient

    path = tmp_path / "agent.sock"

    async def agent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                _, payload = await proto.read_frame(reader)
            except asyncio.IncompleteReadError:
                break
            req = json.loads(payload)
            if req["op"] == "ping":
                writer.write(proto.json_frame({"ok": True, "result": {"version": version}}))
            else:
                writer.write(
                    proto.frame(b"O", b"out") + proto.json_frame({"ok": True, "result": {"exitCode": 0}})
                )
            await writer.drain()
        writer.close()

    async def go() -> int:
        server = await asyncio.start_unix_server(agent, str(path))
        client = AgentClient(path)
        if version is not None:
            await client.call({"op": "ping"})
        frames = [k async for k, _ in await client.open_stream({"op": "execStream"})]
        assert frames == [b"O", b"J"]
        idle = len(client._idle)
        await client.close()
        server.close()
        return idle

    idle_after = asyncio.run(go())
    # the stream ran on the ping's pooled connection (or a new one): it goes back to the pool or is closed
    assert idle_after == (1 if pooled else 0)


def test_an_older_agents_unknown_operation_says_what_to_do() -> None:
    """A container keeps the agent it was made with: one from an older ploy lacks the newer ops."""
    from bindings.sandbox.agent_client import remote_error

    err = remote_error({"code": "INVALID_ARGUMENT", "message": "unknown operation 'exists'"})
    assert (
        err.code == "INVALID_ARGUMENT" and "older than this ploy" in err.message and "destroy" in err.message
    )
    assert remote_error({"code": "NOT_FOUND", "message": "no such file"}).message == "no such file"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("accepted", [False, True], ids=["in-backlog", "accepted-unread"])
def test_an_agent_that_dies_before_reading_the_request_makes_the_call_retryable(
    tmp_path: Path, accepted: bool, loop: str
) -> None:
    """An agent killed right after the previous call (its listener still open for a moment, or a new
    connection accepted but not read) resets the connection: the kernel says ECONNRESET exactly when
    the dying peer left our bytes unread, so the request never ran and the call may be retried after
    recovery (AgentUnavailable), unlike a connection lost after the agent read it (AgentInterrupted)."""
    import socket

    from bindings.sandbox.agent_client import AgentClient, AgentInterrupted, AgentUnavailable

    path = tmp_path / "a.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)

    async def go() -> BaseException:
        client = AgentClient(path)
        call = asyncio.ensure_future(client.call({"op": "exec", "command": "echo once"}))
        await asyncio.sleep(0.05)  # the request is written: it sits in the socket, unread
        if accepted:
            peer, _ = listener.accept()
            peer.close()  # closed with our bytes unread
        listener.close()  # a connection still in the backlog is reset
        try:
            await call
        except BaseException as exc:  # noqa: BLE001 - what was raised is the point
            return exc
        raise AssertionError("the call succeeded")

    exc = pytest.importorskip("uvloop").run(go()) if loop == "uvloop" else asyncio.run(go())
    assert isinstance(exc, AgentUnavailable) and not isinstance(exc, AgentInterrupted), repr(exc)
    assert exc.code == "SANDBOX_UNAVAILABLE"


def test_an_agent_that_read_the_request_and_died_is_not_retried(tmp_path: Path) -> None:
    import socket

    from bindings.sandbox.agent_client import AgentClient, AgentInterrupted

    path = tmp_path / "a.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)

    async def go() -> BaseException:
        client = AgentClient(path)
        call = asyncio.ensure_future(client.call({"op": "exec", "command": "echo once"}))
        await asyncio.sleep(0.05)
        peer, _ = listener.accept()
        peer.setblocking(False)
        await asyncio.sleep(0.01)
        while True:  # read the whole request, as the agent does before it runs a command
            try:
                if not peer.recv(65536):
                    break
            except BlockingIOError:
                break
        peer.close()
        listener.close()
        try:
            await call
        except BaseException as exc:  # noqa: BLE001
            return exc
        raise AssertionError("the call succeeded")

    assert isinstance(asyncio.run(go()), AgentInterrupted)
