"""The agent's operations, each declared once: name, request fields, result and how its data moves.

Stdlib only and imported by both sides, like proto.py (frames): the host as
`bindings.sandbox.agent.wire`, the agent as `wire`. The agent's dispatch table is built from OPS
(server.py), and the host sends only names declared here (client.py, manager.py, containers.py), so
an operation cannot exist on one side only; tests/bindings/sandbox/test_wire_contract.py checks both against the
SANDBOX binding's spec.

A request is one J frame `{"op": NAME, **fields}`. Every op a SandboxSession has also takes `session`
(the session id), which scopes it to that session's shell, cwd and environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, TypeVar

# How an op moves its data (see proto.py for the frame types):
CALL = "call"  # one J request, one J reply
UPLOAD = "upload"  # J request, then D frames ended by an empty D frame; one J reply
DOWNLOAD = "download"  # J request; D frames, then the J reply (read whole by the host)
STREAM = "stream"  # J request; O or D frames as they come, then the J reply; the host closing the
#                    connection stops the op (kills the command / stops following the log)
DUPLEX = "duplex"  # J request; an empty O frame once the op runs (or its J error); then both ways at
#                    once: the host sends D (input) and J (control) frames, the agent O frames, until
#                    its J reply; the host closing the connection stops the op

EXEC_FIELDS = ("command", "cwd", "env", "timeoutMs", "outputLimit", "stdin")


class Op(NamedTuple):
    name: str
    moves: str  # CALL, UPLOAD, DOWNLOAD, STREAM or DUPLEX
    fields: tuple[str, ...]  # request fields besides "op" and "session"
    result: str  # the J reply's result (and the data frames before it)
    session: bool = True  # accepts "session"


PING = Op(
    "ping",
    CALL,
    (),
    "{version, boot, startedAt}: ploy's own health check, which has no effect",
    session=False,
)
EXEC = Op(
    "exec",
    DOWNLOAD,
    EXEC_FIELDS,
    "O and E frames: stdout and stderr (also before a TIMEOUT error); then {exitCode, success, truncated?}",
)
EXEC_STREAM = Op(
    "execStream",
    STREAM,
    (*EXEC_FIELDS, "split"),
    "O frames: merged stdout and stderr (split: O stdout, E stderr); then {exitCode, success}",
)
WRITE_FILE = Op("writeFile", UPLOAD, ("path",), "{path, size}")
READ_FILE = Op("readFile", DOWNLOAD, ("path",), "D frames: the file; then {path, size}")
DELETE_FILE = Op("deleteFile", CALL, ("path", "recursive"), "{path, deleted}")
MKDIR = Op("mkdir", CALL, ("path", "recursive"), "{path}")
LIST_FILES = Op(
    "listFiles",
    CALL,
    ("path", "recursive", "includeHidden"),
    "[{name, path, absolutePath, relativePath, type, size, modifiedAt, mode, permissions}] by relativePath",
)
GIT_CHECKOUT = Op(
    "gitCheckout",
    CALL,
    ("repoUrl", "branch", "depth", "targetDir", "timeoutMs"),
    "{success, repoUrl, targetDir, commit, branch}",
)
SET_ENV_VARS = Op("setEnvVars", CALL, ("vars",), "{ok}")
START_PROCESS = Op(
    "startProcess", CALL, ("command", "cwd", "env", "timeoutMs", "stdin", "processId"), "the process record"
)
LIST_PROCESSES = Op("listProcesses", CALL, (), "[process record] (of the session, on a session)")
GET_PROCESS = Op("getProcess", CALL, ("id",), "the process record, or null for an unknown id")
GET_PROCESS_LOGS = Op(
    "getProcessLogs",
    DOWNLOAD,
    ("id",),
    "D frames: the combined log so far, O: its stdout, E: its stderr; then {size, stdout, stderr} (sizes)",
)
STREAM_PROCESS_LOGS = Op(
    "streamProcessLogs",
    STREAM,
    ("id",),
    "D frames: the log from its start, then live until the process ends; then its record",
)
KILL_PROCESS = Op("killProcess", CALL, ("id", "graceMs", "signal"), "the process record")
CREATE_SESSION = Op("createSession", CALL, ("options",), "{sessionId, cwd}", session=False)
GET_SESSION = Op("getSession", CALL, ("sessionId",), "{sessionId, cwd}", session=False)

# ---- added for parity with Cloudflare's Sandbox SDK (issue 13) ----
EXISTS = Op("exists", CALL, ("path",), "{exists, path}")
RENAME_FILE = Op("renameFile", CALL, ("oldPath", "newPath"), "{path, newPath}")
MOVE_FILE = Op("moveFile", CALL, ("sourcePath", "destinationPath"), "{path, newPath}")
READ_FILE_STREAM = Op(
    "readFileStream", STREAM, ("path",), "D frames: the file as it is read; then {path, size}"
)
KILL_ALL_PROCESSES = Op(
    "killAllProcesses", CALL, ("graceMs", "signal"), "{count}: running processes signalled"
)
CLEANUP_COMPLETED_PROCESSES = Op(
    "cleanupCompletedProcesses", CALL, (), "{count}: finished process records removed"
)
WRITE_STDIN = Op("writeStdin", UPLOAD, ("id",), "{size}: bytes written to the process's stdin")
CLOSE_STDIN = Op("closeStdin", CALL, ("id",), "the process record")
DELETE_SESSION = Op("deleteSession", CALL, ("sessionId",), "{sessionId, deleted, killed}", session=False)
SET_SLEEP_AFTER = Op(
    "setSleepAfter",
    CALL,
    ("seconds",),
    "{sleepAfter, keepAlive}: this sandbox's idle settings",
    session=False,
)
SET_KEEP_ALIVE = Op(
    "setKeepAlive",
    CALL,
    ("keepAlive",),
    "{sleepAfter, keepAlive}: this sandbox's idle settings",
    session=False,
)
METRICS = Op(
    "metrics",
    CALL,
    (),
    "{cpu: {percent, cores, totalSeconds}, memory: {used, limit}, pids: {current, limit}, "
    "network: {rxBytes, txBytes}}: SandboxClient.getMetrics's part from inside; no activity",
    session=False,
)
# ---- sandbox state: backups, forks, file watching, code contexts ----------------------------------
# Directories a backup may be taken of or restored into (Cloudflare's roots); both sides check.
BACKUP_ROOTS = ("/workspace", "/home", "/tmp", "/var/tmp", "/app")
ARCHIVE_DIR = Op(
    "archiveDir",
    STREAM,
    ("dir", "excludes", "gitignore"),
    "D frames: the directory as a tar; then {dir, size, crc32, files, bytes, warnings}",
    session=False,
)
EXTRACT_ARCHIVE = Op(
    "extractArchive",
    UPLOAD,
    ("dir", "crc32", "size"),
    "{dir, files, ms}: dir's contents replaced by the uploaded tar, once its size and CRC-32 match",
    session=False,
)
WATCH = Op(
    "watch",
    STREAM,
    ("path", "recursive", "include", "exclude"),
    "D frames: server-sent events (watching, then create/modify/delete/rename/overflow, stopped); then {stopped}",
    session=False,
)
CHECK_CHANGES = Op(
    "checkChanges",
    CALL,
    ("path", "recursive", "include", "exclude", "since"),
    "{success, status: unchanged|changed|resync, version, timestamp, changes?, truncated?, reason?}",
    session=False,
)
CREATE_CODE_CONTEXT = Op(
    "createCodeContext", CALL, ("options",), "{id, language, cwd, createdAt, lastUsed}", session=False
)
RUN_CODE = Op(
    "runCode",
    CALL,
    ("code", "context", "language", "timeoutMs"),
    "{code, logs: {stdout, stderr}, results, error?, executionCount}",
    session=False,
)
RUN_CODE_STREAM = Op(
    "runCodeStream",
    STREAM,
    ("code", "context", "language", "timeoutMs"),
    "D frames: server-sent events (stdout, stderr, result, error, execution_complete); then {executionCount}",
    session=False,
)
LIST_CODE_CONTEXTS = Op(
    "listCodeContexts", CALL, (), "[{id, language, cwd, createdAt, lastUsed}]", session=False
)
DELETE_CODE_CONTEXT = Op("deleteCodeContext", CALL, ("contextId",), "{id, deleted}", session=False)

# Readiness and terminals (the process object's waits, SandboxClient.terminal / SandboxSession.terminal)
WAIT_FOR_PORT = Op(
    "waitForPort",
    CALL,
    ("port", "mode", "path", "status", "timeoutMs", "intervalMs", "processId"),
    "{port, status?} once 127.0.0.1:port (or ::1) accepts, and in http mode answers `path` with `status`",
    session=False,
)
WAIT_FOR_EXIT = Op(
    "waitForExit", CALL, ("id", "timeoutMs"), "the process record once it has ended", session=False
)
TERMINAL = Op(
    "terminal",
    DUPLEX,
    ("cols", "rows", "shell"),
    "O frames: the PTY's output; the host sends D (keystrokes) and J {resize: [cols, rows]}; then {exitCode}",
)

# ---- faults on demand (issue 11): `ploy sandbox fault` and `ploy sandbox sleep`, not worker API ----
DROP_CONNECTIONS = Op(
    "dropConnections",
    CALL,
    (),
    "{dropped}: every other host connection closed at once (`ploy sandbox fault --drop-connections`)",
    session=False,
)
SLEEP = Op(
    "sleep",
    CALL,
    (),
    "{sleeping}: then the sandbox stops as its idle stop would, whatever runs (`ploy sandbox sleep`)",
    session=False,
)

OPS: tuple[Op, ...] = (
    PING,
    EXEC,
    EXEC_STREAM,
    WRITE_FILE,
    READ_FILE,
    DELETE_FILE,
    MKDIR,
    LIST_FILES,
    GIT_CHECKOUT,
    SET_ENV_VARS,
    START_PROCESS,
    LIST_PROCESSES,
    GET_PROCESS,
    GET_PROCESS_LOGS,
    STREAM_PROCESS_LOGS,
    KILL_PROCESS,
    CREATE_SESSION,
    GET_SESSION,
    EXISTS,
    RENAME_FILE,
    MOVE_FILE,
    READ_FILE_STREAM,
    KILL_ALL_PROCESSES,
    CLEANUP_COMPLETED_PROCESSES,
    WRITE_STDIN,
    CLOSE_STDIN,
    DELETE_SESSION,
    SET_SLEEP_AFTER,
    SET_KEEP_ALIVE,
    METRICS,
    WAIT_FOR_PORT,
    WAIT_FOR_EXIT,
    TERMINAL,
    DROP_CONNECTIONS,
    SLEEP,
    ARCHIVE_DIR,
    EXTRACT_ARCHIVE,
    WATCH,
    CHECK_CHANGES,
    CREATE_CODE_CONTEXT,
    RUN_CODE,
    RUN_CODE_STREAM,
    LIST_CODE_CONTEXTS,
    DELETE_CODE_CONTEXT,
)
BY_NAME = {op.name: op for op in OPS}

# Methods of the SANDBOX binding's spec (bindings/sandbox/spec.py) that are no agent op: the host does
# them itself. Every other method of SandboxClient and SandboxSession is the op of the same name.
HOST_ONLY = {
    "get": "SandboxBinding.get: makes a client for an id; nothing reaches the agent",
    "destroy": "SandboxClient.destroy: removes the container and its files with Podman",
    "getState": "SandboxClient.getState: a ping that starts nothing, else the host's own records",
    "getMetrics": "SandboxClient.getMetrics: the `metrics` op when the sandbox runs (it is not woken), "
    "plus the host's measure of its disk use",
    "exposePort": "SandboxClient.exposePort: host-side preview records; pings the agent for its boot",
    "unexposePort": "SandboxClient.unexposePort: host-side preview records only",
    "getExposedPorts": "SandboxClient.getExposedPorts: host-side preview records only (never wakes)",
    "isPortExposed": "SandboxClient.isPortExposed: host-side preview records only (never wakes)",
    "validatePortToken": "SandboxClient.validatePortToken: host-side preview records only (never wakes)",
    "wsConnect": "SandboxClient.wsConnect: a WebSocket to the sandbox's address; pings the agent first",
    "createBackup": "SandboxClient.createBackup: archiveDir into the host's backup store (backups.py)",
    "restoreBackup": "SandboxClient.restoreBackup: extractArchive from the host's backup store",
    "listBackups": "SandboxClient.listBackups: reads the host's backup store; nothing reaches the agent",
    "deleteBackup": "SandboxClient.deleteBackup: removes from the host's backup store",
    "snapshot": "SandboxClient.snapshot: `podman commit` of the container (snapshots.py)",
    "listSnapshots": "SandboxClient.listSnapshots: the project's snapshot images, from Podman",
    "deleteSnapshot": "SandboxClient.deleteSnapshot: removes a snapshot image with Podman",
}

H = TypeVar("H")


def table(handlers: Mapping[Op, H]) -> dict[str, H]:
    """op name -> handler, for exactly the declared ops (so a missing or unknown one fails at start-up)."""
    missing = [op.name for op in OPS if op not in handlers]
    unknown = [op.name for op in handlers if BY_NAME.get(op.name) != op]
    if missing or unknown:
        raise ValueError(f"agent handlers do not match wire.OPS: missing {missing}, undeclared {unknown}")
    return {op.name: handlers[op] for op in OPS}
