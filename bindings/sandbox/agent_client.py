"""Host side of the agent socket: request/reply and streaming calls, with a small pool of idle connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import struct
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from bindings.error_codes import INTERNAL, INVALID_ARGUMENT, SANDBOX_UNAVAILABLE
from bindings.errors import PloyError
from bindings.sandbox.agent import proto, wire

MAX_IDLE = 8
# No call waits forever. While a call waits for the agent, a silence of LIVENESS_S sends a ping on a
# fresh connection; no answer within PING_TIMEOUT_S (a paused container, a stopped or stuck agent)
# fails the call. A call with its own timeout (exec's timeoutMs) also fails DEADLINE_MARGIN_S past it:
# by then the agent should have answered TIMEOUT. Long commands that the agent still watches (it
# answers pings) run as long as they need.
LIVENESS_S = 3.0
PING_TIMEOUT_S = 5.0
DEADLINE_MARGIN_S = 5.0
# ops whose timeoutMs bounds the call itself (startProcess's bounds the process, which outlives it)
_TIMED_OPS = (
    wire.EXEC.name,
    wire.EXEC_STREAM.name,
    wire.GIT_CHECKOUT.name,
    wire.WAIT_FOR_PORT.name,
    wire.WAIT_FOR_EXIT.name,
    wire.RUN_CODE.name,
    wire.RUN_CODE_STREAM.name,
)
PF_EXITING = 0x4  # linux/sched.h: the task is exiting (its stat's flags field)
UPLOAD_FRAME = 4 * 1024 * 1024  # the largest D frame a streamed upload sends (proto.MAX_FRAME: 64 MiB)
# What an upload op sends as D frames: bytes, or a stream of them sent as it is read.
Upload = bytes | AsyncIterable[bytes]


class AgentUnavailable(PloyError):
    """The agent could not be reached (container stopped, agent restarting) and nothing of the request was
    sent: safe to retry after recovery.

    A PloyError, so when the retry fails too the worker sees SANDBOX_UNAVAILABLE rather than INTERNAL."""

    code = SANDBOX_UNAVAILABLE


class AgentInterrupted(PloyError):
    """The agent went away after the request was (or may have been) written to it: the call may or may
    not have run, so it is never retried (exec, writeFile, startProcess could run twice)."""

    code = SANDBOX_UNAVAILABLE

    def __init__(self, what: str = "call", reason: str | None = None) -> None:
        self.unresponsive = reason is not None
        why = reason or "went away during the {what} (the sandbox restarted or stopped)"
        super().__init__(
            f"the sandbox agent {why.format(what=what)}: it may or may not have run, so it was not retried; "
            "the next call reaches the sandbox again",
            mayHaveRun=True,
        )


def remote_error(error: dict[str, Any], data: dict[bytes, bytearray] | None = None) -> PloyError:
    err = dict(error)
    code = str(err.pop("code", INTERNAL))
    message = str(err.pop("message", code))
    if data and "stdout" not in err:  # the output so far, sent as frames before the error (exec's TIMEOUT)
        err["stdout"], err["stderr"] = decode_output(data)
    if code == INVALID_ARGUMENT and message.startswith("unknown operation"):
        # a container keeps the agent of the image it was made from: one made by an older ploy
        # lacks the operations added since
        message += (
            " (this sandbox's agent is older than this ploy: destroy the sandbox, which removes its "
            "files, and its next use gets the current agent)"
        )
    return PloyError(message, code=code, **err)


def decode_output(data: dict[bytes, bytearray]) -> tuple[str, str]:
    """exec's stdout and stderr from its O and E frames."""
    return (
        bytes(data.get(b"O", b"")).decode("utf-8", errors="replace"),
        bytes(data.get(b"E", b"")).decode("utf-8", errors="replace"),
    )


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.aborted: str | None = None  # why the watch cut the connection (see _Watch)

    def close(self) -> None:
        self.writer.close()


class _Watch:
    """Keeps one call from waiting forever on its connection (see LIVENESS_S): when the agent is silent,
    ping it; when the ping goes unanswered or the call's deadline passes, abort the connection, which
    fails the call's pending read. A timer per call, armed again only when it fires: no cost per frame
    beyond `seen()`."""

    def __init__(
        self, client: AgentClient, conn: _Conn, deadline_s: float | None, probe: bool = True
    ) -> None:
        self.client, self.conn, self.probe = client, conn, probe
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()
        self.deadline = None if deadline_s is None else self.last + deadline_s
        self.ping: asyncio.Task[bool] | None = None
        self.timer = self.loop.call_later(self._next_wait(), self._check)

    def seen(self) -> None:
        self.last = self.loop.time()

    def _next_wait(self) -> float:
        until = self.last + self.client.liveness_s if self.probe else float("inf")
        if self.deadline is not None:
            until = min(until, self.deadline)
        return max(until - self.loop.time(), 0.05)

    def _check(self) -> None:
        now = self.loop.time()
        if self.deadline is not None and now >= self.deadline:
            self._abort("did not answer before the call's deadline (its timeoutMs plus a margin)")
            return
        if self.probe and now - self.last >= self.client.liveness_s and self.ping is None:
            self.ping = self.loop.create_task(self.client.responsive())
            self.ping.add_done_callback(self._pinged)
        self.timer = self.loop.call_later(self._next_wait(), self._check)

    def _pinged(self, task: asyncio.Task[bool]) -> None:
        self.ping = None
        if not task.cancelled() and not task.result():
            self._abort(
                f"stopped answering (no reply to a health check within {self.client.ping_timeout_s:.0f} s: the "
                "container is paused, or the agent is stuck)"
            )

    def _abort(self, reason: str) -> None:
        self.stop()
        self.client.suspect = True
        self.conn.aborted = reason
        self.conn.writer.transport.abort()

    def stop(self) -> None:
        self.timer.cancel()
        if self.ping is not None:
            self.ping.cancel()
            self.ping = None


def _peer_alive(conn: _Conn) -> bool:
    """An idle pooled connection whose agent is still there. Asked of the socket itself (a non-blocking
    peek), not only of the reader: the event loop may not have seen the EOF of an agent that just died,
    and a request written there would be lost without our knowing whether it ran."""
    if conn.reader.at_eof() or conn.writer.is_closing():
        return False
    sock = conn.writer.get_extra_info("socket")
    if sock is None:
        return True
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, sock.fileno())
    try:
        probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return False  # EOF, or bytes nobody asked for: not a connection to send a request on
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        probe.detach()  # the transport owns the descriptor


def _peer_pid(writer: asyncio.StreamWriter) -> int | None:
    """The pid (in our pid namespace) of the process that listens on the socket just connected to, from
    SO_PEERCRED; None when it cannot be told (not in our pid namespace)."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        pid = int(struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0])
    except (OSError, struct.error):
        return None
    return pid if pid > 0 else None


def _listener_exiting(writer: asyncio.StreamWriter) -> bool:
    """Whether the process that listens on the socket just connected to is exiting (PF_EXITING in
    /proc/<pid>/stat; SO_PEERCRED names that process). False when it cannot be told (the pid is not in
    our pid namespace)."""
    pid = _peer_pid(writer)
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError, struct.error):
        return False
    return fields[0] in (b"Z", b"X") or bool(int(fields[6]) & PF_EXITING)


@contextlib.contextmanager
def _closed_on_failure(conn: _Conn, whole_request_unread_on_reset: bool = False) -> Iterator[None]:
    """Around sending a request and reading its reply: any failure closes the connection, and a lost
    connection is AgentInterrupted, since from the first write on the agent may have the request (so
    it is no longer a retry).

    Except a reset of a request that is one frame (no upload): a unix socket whose peer closes with our
    bytes unread, or is closed while our connection waits in its backlog, reports ECONNRESET, and only
    then. The agent reads a request whole before it acts, so that request never ran: AgentUnavailable,
    retried after recovery (an agent killed just after the previous call, before its listener closed)."""
    try:
        yield
    except ConnectionResetError as exc:
        conn.close()
        # (not when our own watch cut it: that agent did not answer, and a retry would wait on it again)
        if whole_request_unread_on_reset and conn.aborted is None:
            raise AgentUnavailable(f"the sandbox agent went away before it read the request: {exc}") from exc
        raise AgentInterrupted(reason=conn.aborted) from exc
    except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError) as exc:
        conn.close()
        raise AgentInterrupted(reason=conn.aborted) from exc
    except BaseException:
        conn.close()
        raise


async def _abandon_upload(conn: _Conn) -> None:
    """Tell the agent an upload's source failed and wait (briefly) for its answer; the connection is
    closed after this either way. An agent from before the A frame answers INTERNAL, equally after
    dropping the upload."""
    with contextlib.suppress(Exception):
        conn.writer.write(proto.frame(proto.UPLOAD_ABORT, b""))
        await conn.writer.drain()
        async with asyncio.timeout(5):
            while (await proto.read_frame(conn.reader))[0] != b"J":
                pass


class AgentClient:
    # (a remote host's client is quicker to give up: TcpAgentClient)
    liveness_s = LIVENESS_S
    ping_timeout_s = PING_TIMEOUT_S

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._idle: list[_Conn] = []
        # Whether a connection may be pooled after a finished stream: known from the agent's ping reply.
        # Until then (a container from before this ploy, attached without a ping) it is closed instead:
        # an older agent could drop it when the next request arrived, and that request would be lost.
        self.reuse_after_stream = False
        # A call failed because the agent stopped answering: the next call checks it first (manager.py),
        # and brings the sandbox back if it is stuck.
        self.suspect = False

    async def _connect(self) -> _Conn:
        # The folder is writable from inside the sandbox, which could swap the socket for a link (to
        # another sandbox's socket) between a check and the connect. So the socket is opened once
        # (O_PATH, not following a link), checked on that descriptor, and connected to through
        # /proc/self/fd/N, which names that very inode: what was checked is what is used. (It also
        # keeps the path short: sun_path holds ~108 bytes.)
        try:
            fd = os.open(self.socket_path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise AgentUnavailable(str(exc)) from exc
        except OSError as exc:
            raise PloyError(
                f"cannot open {self.socket_path}: {exc.strerror}", code=SANDBOX_UNAVAILABLE
            ) from None
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                raise PloyError(f"{self.socket_path} is not a socket", code=SANDBOX_UNAVAILABLE)
            # bounded: a paused agent whose listen backlog is full never accepts
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(f"/proc/self/fd/{fd}", limit=1 << 20), PING_TIMEOUT_S
            )
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, TimeoutError) as exc:
            raise AgentUnavailable(str(exc) or "the agent did not accept the connection") from exc
        finally:
            os.close(fd)  # the connection no longer needs the path
        conn = _Conn(reader, writer)
        if _listener_exiting(writer):
            # An agent that is being killed still takes connections into its listen backlog for a
            # moment, then resets them: a request written there was lost unread, yet looked as if it
            # "may have run". Nothing is sent yet, so this is a safe retry once the agent is back.
            conn.close()
            raise AgentUnavailable("the sandbox agent is exiting")
        return conn

    async def _acquire(self) -> tuple[_Conn, bool]:
        while self._idle:
            conn = self._idle.pop()
            if _peer_alive(conn):
                return conn, True
            conn.close()
        return await self._connect(), False

    def _release(self, conn: _Conn) -> None:
        if len(self._idle) < MAX_IDLE and not conn.writer.is_closing():
            self._idle.append(conn)
        else:
            conn.close()

    async def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def agent_pid(self) -> int | None:
        """The agent's pid on this host (what listens on its socket), for `ploy sandbox fault
        --kill-agent`; None when it cannot be told."""
        conn = await self._connect()
        try:
            return _peer_pid(conn.writer)
        finally:
            conn.close()

    async def responsive(self) -> bool:
        """Whether the agent answers a ping within PING_TIMEOUT_S, on a connection of its own (the
        pooled ones may be the stuck ones)."""
        try:
            conn = await self._connect()
        except PloyError:
            return False
        try:
            conn.writer.write(proto.json_frame({"op": wire.PING.name}))
            kind, _ = await asyncio.wait_for(proto.read_frame(conn.reader), self.ping_timeout_s)
            return kind == b"J"
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            return False
        finally:
            conn.close()

    @staticmethod
    def _deadline(request: dict[str, Any]) -> float | None:
        """Seconds the call may take at most, when it has a bound of its own."""
        if request.get("op") == wire.PING.name:
            return PING_TIMEOUT_S
        ms = request.get("timeoutMs")
        if request.get("op") in _TIMED_OPS and isinstance(ms, (int, float)):
            return ms / 1000 + DEADLINE_MARGIN_S
        return None

    async def _send(self, conn: _Conn, request: dict[str, Any], upload: Upload | None) -> None:
        conn.writer.write(proto.json_frame(request))
        if isinstance(upload, bytes):
            for i in range(0, len(upload), proto.CHUNK):
                conn.writer.write(proto.frame(b"D", upload[i : i + proto.CHUNK]))
                if i % (4 * 1024 * 1024) == 0:
                    await conn.writer.drain()
            conn.writer.write(proto.frame(b"D", b""))
        elif upload is not None:
            # A stream: each chunk goes out as it comes, and the next is asked for only once the socket
            # took it (drain), so a 1 GB upload holds a few MB here and the source's pace is the agent's.
            # If the source fails, the agent is told (an A frame) and answers once it dropped the partial
            # upload (a file keeps its old content), so the caller sees the error with nothing left behind.
            pending = 0
            try:
                async for chunk in upload:
                    # a chunk is one frame up to UPLOAD_FRAME (no slicing and copying for the usual sizes)
                    for i in range(0, len(chunk), UPLOAD_FRAME):
                        piece = chunk if len(chunk) <= UPLOAD_FRAME else chunk[i : i + UPLOAD_FRAME]
                        conn.writer.write(proto.HEADER.pack(b"D", len(piece)))
                        conn.writer.write(piece)
                    pending += len(chunk)
                    if pending >= 1024 * 1024:
                        pending = 0
                        await conn.writer.drain()
            except Exception:
                await _abandon_upload(conn)
                raise
            conn.writer.write(proto.frame(b"D", b""))
        await conn.writer.drain()

    async def call(
        self, request: dict[str, Any], upload: Upload | None = None
    ) -> tuple[Any, dict[bytes, bytearray]]:
        """Send one request; return (result, data by frame type). Raises PloyError for a remote error,
        AgentUnavailable when nothing was sent (retry after recovery), AgentInterrupted once it was."""
        conn, _ = await self._acquire()
        data: dict[bytes, bytearray] = {}
        watch = _Watch(self, conn, self._deadline(request), probe=request.get("op") != wire.PING.name)
        try:
            with _closed_on_failure(conn, whole_request_unread_on_reset=upload is None):
                await self._send(conn, request, upload)
                while True:
                    kind, payload = await proto.read_frame(conn.reader)
                    watch.seen()
                    if kind == b"J":
                        reply = json.loads(payload)
                        break
                    data.setdefault(kind, bytearray()).extend(payload)
        finally:
            watch.stop()
        self._release(conn)
        if not reply.get("ok"):
            raise remote_error(reply.get("error") or {}, data)
        result = reply.get("result")
        if request.get("op") == wire.PING.name and isinstance(result, dict):
            self.reuse_after_stream = int(result.get("version") or 0) >= proto.STREAM_REUSE_VERSION
        return result, data

    async def open_stream(self, request: dict[str, Any]) -> AsyncIterator[tuple[bytes, bytes]]:
        """Start a streaming call: AgentUnavailable when the agent could not be reached (nothing sent),
        AgentInterrupted when it went away after the request was written."""
        conn, _ = await self._acquire()
        watch = _Watch(self, conn, self._deadline(request))
        try:
            with _closed_on_failure(conn, whole_request_unread_on_reset=True):
                await self._send(conn, request, None)
                first = await proto.read_frame(conn.reader)
        except BaseException:
            watch.stop()
            raise
        watch.seen()
        if first[0] == b"J":
            watch.stop()
            reply = json.loads(first[1])
            if not reply.get("ok"):
                self._release(conn)
                raise remote_error(reply.get("error") or {})
        return self._frames(conn, first, watch)

    async def _frames(
        self, conn: _Conn, first: tuple[bytes, bytes], watch: _Watch
    ) -> AsyncIterator[tuple[bytes, bytes]]:
        done = False
        try:
            kind, payload = first
            while True:
                if kind == b"J":
                    reply = json.loads(payload)
                    done = True
                    if self.reuse_after_stream:
                        self._release(conn)
                    else:
                        conn.close()
                    if not reply.get("ok"):
                        raise remote_error(reply.get("error") or {})
                    yield b"J", payload
                    return
                yield kind, payload
                try:
                    kind, payload = await proto.read_frame(conn.reader)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    raise AgentInterrupted("stream", reason=conn.aborted) from exc
                watch.seen()
        finally:
            watch.stop()
            if not done:
                # closing the socket is how the agent learns to stop the command
                conn.close()

    async def open_duplex(self, request: dict[str, Any]) -> Duplex:
        """Start a two-way op (the terminal): AgentUnavailable when the agent could not be reached,
        AgentInterrupted when it went away after the request was written, a remote error as such.
        The connection is the op's until Duplex.close(); it never goes back to the pool."""
        conn = await self._connect()
        watch = _Watch(self, conn, None)  # a paused container must not hold the opening forever
        try:
            with _closed_on_failure(conn):
                conn.writer.write(proto.json_frame(request))
                await conn.writer.drain()
                kind, payload = await proto.read_frame(conn.reader)  # an empty O once it runs, or its error
        finally:
            watch.stop()
        if kind == b"J":
            conn.close()
            reply = json.loads(payload)
            raise remote_error(reply.get("error") or {"message": "the op ended at once"})
        return Duplex(conn)


class Duplex:
    """Both directions of a DUPLEX op: send(kind, payload) to the agent, frames() from it."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn
        self.closed = False

    async def send(self, kind: bytes, payload: bytes) -> None:
        if self.closed:
            raise AgentInterrupted("terminal")
        try:
            self._conn.writer.write(proto.frame(kind, payload))
            await self._conn.writer.drain()
        except (ConnectionError, BrokenPipeError) as exc:
            self.close()
            raise AgentInterrupted("terminal") from exc

    async def frames(self) -> AsyncIterator[tuple[bytes, bytes]]:
        """O frames, then the final J reply's (b"J", payload); a remote error raises as such."""
        try:
            while True:
                try:
                    kind, payload = await proto.read_frame(self._conn.reader)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    if self.closed:
                        return
                    raise AgentInterrupted("terminal") from exc
                if kind == b"J":
                    reply = json.loads(payload)
                    if not reply.get("ok"):
                        raise remote_error(reply.get("error") or {})
                    yield kind, payload
                    return
                yield kind, payload
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.close()
