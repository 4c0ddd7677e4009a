"""The SANDBOX binding's API, declared once (see bindings/spec.py).

`options` lists the names each method's options object takes: client.py rejects any other name with
INVALID_ARGUMENT, and tests/typings/test_types_drift.py keeps typings/sandbox.d.ts to the same lists.
`sessionId` runs a client's call in that session (on a session, only its own id is accepted).
"""

from __future__ import annotations

from bindings.spec import Method, ObjectSpec, register

_EXEC_OPTIONS = ("cwd", "env", "timeoutMs", "sessionId")

_FILE_AND_COMMAND_METHODS = (
    Method(
        "exec",
        "async",
        doc="Run a command and resolve once it finishes with {stdout, stderr, exitCode, success}.",
        options=(*_EXEC_OPTIONS, "outputLimit", "stdin"),
    ),
    Method(
        "execStream",
        "stream",
        doc="Run a command and return a ReadableStream of its output as it is produced.",
        options=(*_EXEC_OPTIONS, "stdin", "format"),
    ),
    Method(
        "writeFile",
        "async",
        doc="Write text, bytes or a stream of bytes to a file, creating parent directories.",
        options=("encoding", "sessionId"),
        stream_args=(1,),
    ),
    Method(
        "readFile",
        "async",
        doc="Read a file: {content} (utf-8 text, or base64 with {encoding: 'base64'}).",
        options=("encoding", "sessionId"),
    ),
    Method("deleteFile", "async", doc="Remove a file.", options=("recursive", "sessionId")),
    Method(
        "mkdir",
        "async",
        doc="Create a directory ({recursive: true} creates parents).",
        options=("recursive", "sessionId"),
    ),
    Method(
        "listFiles",
        "async",
        doc="List a directory: [{name, path, type, size, ...}].",
        options=("recursive", "includeHidden", "sessionId"),
    ),
    Method(
        "gitCheckout",
        "async",
        doc="Clone a git repository ({branch, depth, targetDir}).",
        options=("branch", "depth", "targetDir", "timeoutMs", "cloneTimeoutMs", "sessionId"),
    ),
    Method("setEnvVars", "async", doc="Set environment variables for later commands."),
    Method(
        "startProcess",
        "async",
        returns="SandboxProcess",
        doc="Start a command in the background and return its SandboxProcess at once.",
        options=(*_EXEC_OPTIONS, "stdin", "processId"),
    ),
    Method(
        "listProcesses",
        "async",
        returns="SandboxProcess",
        doc="List the background processes.",
        options=("sessionId",),
    ),
    Method(
        "getProcess",
        "async",
        returns="SandboxProcess",
        doc="One background process by id, or null when unknown.",
        options=("sessionId",),
    ),
    Method(
        "getProcessLogs",
        "async",
        doc="{logs, stdout, stderr}: the process's output so far.",
        options=("sessionId",),
    ),
    Method(
        "streamProcessLogs",
        "stream",
        doc="Replay the log from the start, follow it live, end when the process exits.",
        options=("sessionId",),
    ),
    Method(
        "killProcess",
        "async",
        doc="Stop a background process and its child tree (or send it a signal).",
        options=("signal", "graceMs", "sessionId"),
    ),
    # ---- added for parity with Cloudflare's Sandbox SDK (issue 13) ----
    Method("exists", "async", doc="{exists}: whether a file or directory exists.", options=("sessionId",)),
    Method("renameFile", "async", doc="Rename a file or directory.", options=("sessionId",)),
    Method(
        "moveFile",
        "async",
        doc="Move a file or directory (into a destination directory, or to a new path).",
        options=("sessionId",),
    ),
    Method(
        "readFileStream",
        "stream",
        doc="A ReadableStream of a file's bytes, read as it is consumed.",
        options=("sessionId",),
    ),
    Method(
        "killAllProcesses",
        "async",
        doc="Stop every running background process; resolves with how many were running.",
        options=("signal", "graceMs", "sessionId"),
    ),
    Method(
        "cleanupCompletedProcesses",
        "async",
        doc="Forget finished processes (records and logs); resolves with how many were removed.",
        options=("sessionId",),
    ),
    Method(
        "writeStdin",
        "async",
        doc="Write to the stdin of a process started with {stdin: true}.",
        options=("encoding", "sessionId"),
    ),
    Method(
        "closeStdin", "async", doc="Close a process's stdin (it reads end-of-file).", options=("sessionId",)
    ),
)

_TERMINAL = Method(
    "terminal",
    "async",
    doc="Answer a WebSocket upgrade request with an interactive shell on a PTY ({cols, rows, shell}).",
    options=("cols", "rows", "shell", "sessionId"),
)

SANDBOX_PROCESS = ObjectSpec(
    "SandboxProcess",
    methods=(
        Method(
            "waitForPort",
            "async",
            doc="Resolve once the port answers ({mode, path, status, timeoutMs}).",
            options=("mode", "path", "status", "timeoutMs", "timeout", "intervalMs"),
        ),
        Method(
            "waitForLog",
            "async",
            doc="Resolve with {line, match?} once a log line matches ({timeoutMs}).",
            options=("timeoutMs", "timeout"),
        ),
        Method(
            "waitForExit",
            "async",
            doc="Resolve with the final record once the process ends ({timeoutMs}).",
            options=("timeoutMs", "timeout"),
        ),
        Method(
            "kill",
            "async",
            doc="killProcess(this id): no signal: SIGTERM, then SIGKILL; a given signal is sent as it is.",
            options=("signal", "graceMs", "sessionId"),
        ),
        Method("getStatus", "async", doc="The process's current status."),
        Method("getLogs", "async", doc="{logs, stdout, stderr}: the process's output so far."),
    ),
    props=(
        "id",
        "pid",
        "command",
        "status",
        "exitCode",
        "startedAt",
        "endedAt",
        "timedOut",
        "killed",
        "logTruncated",
        "error",
        "sessionId",
    ),
    data=True,
    doc="A background process: its SandboxProcessInfo (a snapshot, JSON as before) plus methods.",
)
_WATCH_OPTIONS = ("recursive", "include", "exclude")
_RUN_CODE_OPTIONS = ("context", "language", "timeoutMs", "timeout")

SANDBOX_SESSION = ObjectSpec(
    "SandboxSession",
    methods=_FILE_AND_COMMAND_METHODS + (_TERMINAL,),
    props=("sessionId",),
    doc="A persistent shell inside a sandbox: cwd and environment carry across commands.",
)

SANDBOX_CLIENT = ObjectSpec(
    "SandboxClient",
    methods=_FILE_AND_COMMAND_METHODS
    + (
        Method(
            "createSession",
            "async",
            returns="SandboxSession",
            doc="Create a session ({id, cwd, env, commandTimeoutMs}).",
            options=("id", "name", "cwd", "env", "commandTimeoutMs"),
        ),
        Method("getSession", "async", returns="SandboxSession", doc="Look a session up again by its id."),
        Method("destroy", "async", doc="Destroy the sandbox and its contents."),
        # ---- added for parity (issue 13) ----
        Method("deleteSession", "async", doc="Delete a session, killing its running commands and processes."),
        Method("setSleepAfter", "async", doc="Change this sandbox's idle suspension delay at run time."),
        Method("setKeepAlive", "async", doc="Keep this sandbox from idle suspension (true) or not (false)."),
        Method("getState", "async", doc="{status: running | sleeping | stopped, since}; starts nothing."),
        Method("getMetrics", "async", doc="CPU, memory, disk, pids and network use of the sandbox."),
        Method(
            "exposePort",
            "async",
            doc="Make a port reachable at a preview URL: {url, port, name}.",
            options=("name", "hostname", "token"),
        ),
        Method("unexposePort", "async", doc="Stop forwarding a port's preview URL."),
        Method(
            "getExposedPorts", "async", doc="The preview URLs that forward now: [{url, port, name, status}]."
        ),
        Method("isPortExposed", "async", doc="Whether the port has a current preview URL."),
        Method("validatePortToken", "async", doc="Whether a token is the port's preview token."),
        Method(
            "wsConnect", "async", doc="Answer a WebSocket upgrade by connecting it to a port of the sandbox."
        ),
        _TERMINAL,
    )
    + (
        # ---- sandbox state (issue 14): backups and snapshots, kept by the host, so they outlive the
        # sandbox and `ploy dev`
        Method(
            "createBackup",
            "async",
            doc="Archive a directory ({dir, name, ttl, gitignore, excludes}) to the host.",
            options=("dir", "name", "ttl", "gitignore", "excludes", "localBucket"),
        ),
        Method(
            "restoreBackup",
            "async",
            doc="Replace a directory's contents with a backup ({targetDir}).",
            options=("targetDir",),
        ),
        Method("listBackups", "async", doc="The project's backups that have not expired."),
        Method("deleteBackup", "async", doc="Remove a backup."),
        Method(
            "snapshot",
            "async",
            doc="Commit the whole sandbox (files, installed packages) as a snapshot.",
            options=("name",),
        ),
        Method("listSnapshots", "async", doc="The project's snapshots."),
        Method("deleteSnapshot", "async", doc="Remove a snapshot."),
        # file watching
        Method(
            "watch",
            "stream",
            doc="Server-sent events of file changes under a directory, until cancelled.",
            options=_WATCH_OPTIONS,
        ),
        Method(
            "checkChanges",
            "async",
            doc="Whether a directory changed since a version ({since}), for polling.",
            options=(*_WATCH_OPTIONS, "since"),
        ),
        # code interpreter
        Method(
            "createCodeContext",
            "async",
            doc="Start a Python or JavaScript context that keeps its state.",
            options=("language", "cwd", "env", "envVars"),
        ),
        Method(
            "runCode",
            "async",
            doc="Run code in a context: {results, logs, error?}.",
            options=_RUN_CODE_OPTIONS,
        ),
        Method(
            "runCodeStream",
            "stream",
            doc="Run code; server-sent events of its output and results.",
            options=_RUN_CODE_OPTIONS,
        ),
        Method("listCodeContexts", "async", doc="The code contexts that are alive."),
        Method("deleteCodeContext", "async", doc="Stop a code context."),
    ),
    props=("id",),
    doc="A client scoped to one sandbox; the container starts lazily on the first operation.",
)

SANDBOX_BINDING = ObjectSpec(
    "SandboxBinding",
    methods=(
        Method(
            "get",
            "sync",
            returns="SandboxClient",
            props_from_args=("id",),
            doc="A client for the sandbox with this id (nothing starts yet); {from} forks a new one.",
            # from: ploy's forks; the others are Cloudflare's getSandbox options
            options=("from", "keepAlive", "sleepAfter", "normalizeId", "transport", "enableDefaultSession"),
        ),
    ),
    doc="The SANDBOX binding declared in ploy.yaml.",
)

register(SANDBOX_PROCESS, SANDBOX_SESSION, SANDBOX_CLIENT, SANDBOX_BINDING)
