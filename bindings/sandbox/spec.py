"""The SANDBOX binding's API, declared once (see bindings/spec.py)."""

from __future__ import annotations

from bindings.spec import Method, ObjectSpec, register

_FILE_AND_COMMAND_METHODS = (
    Method(
        "exec",
        "async",
        doc="Run a command and resolve once it finishes with {stdout, stderr, exitCode, success}.",
    ),
    Method(
        "execStream",
        "stream",
        doc="Run a command and return a ReadableStream of its output as it is produced.",
    ),
    Method("writeFile", "async", doc="Write text or bytes to a file, creating parent directories."),
    Method(
        "readFile", "async", doc="Read a file: {content} (utf-8 text, or base64 with {encoding: 'base64'})."
    ),
    Method("deleteFile", "async", doc="Remove a file."),
    Method("mkdir", "async", doc="Create a directory ({recursive: true} creates parents)."),
    Method("listFiles", "async", doc="List a directory: [{name, path, type, size}]."),
    Method("gitCheckout", "async", doc="Clone a git repository ({branch, depth, targetDir})."),
    Method("setEnvVars", "async", doc="Set environment variables for later commands."),
    Method(
        "startProcess",
        "async",
        returns="SandboxProcess",
        doc="Start a command in the background and return its SandboxProcess at once.",
    ),
    Method("listProcesses", "async", returns="SandboxProcess", doc="List the background processes."),
    Method(
        "getProcess",
        "async",
        returns="SandboxProcess",
        doc="One background process by id, or null when unknown.",
    ),
    Method("getProcessLogs", "async", doc="{logs}: the process's combined stdout and stderr so far."),
    Method(
        "streamProcessLogs",
        "stream",
        doc="Replay the log from the start, follow it live, end when the process exits.",
    ),
    Method("killProcess", "async", doc="Stop a background process and its child tree."),
)

_TERMINAL = Method(
    "terminal",
    "async",
    doc="Answer a WebSocket upgrade request with an interactive shell on a PTY ({cols, rows, shell}).",
)

SANDBOX_PROCESS = ObjectSpec(
    "SandboxProcess",
    methods=(
        Method(
            "waitForPort", "async", doc="Resolve once the port answers ({mode, path, status, timeoutMs})."
        ),
        Method(
            "waitForLog", "async", doc="Resolve with {line, match?} once a log line matches ({timeoutMs})."
        ),
        Method(
            "waitForExit", "async", doc="Resolve with the final record once the process ends ({timeoutMs})."
        ),
        Method("kill", "async", doc="Send a signal (SIGTERM by default, then SIGKILL) to the process tree."),
        Method("getStatus", "async", doc="The process's current status."),
        Method("getLogs", "async", doc="{logs}: the combined stdout and stderr so far."),
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
        Method("createSession", "async", returns="SandboxSession", doc="Create a session ({cwd, env})."),
        Method("getSession", "async", returns="SandboxSession", doc="Look a session up again by its id."),
        Method("destroy", "async", doc="Destroy the sandbox and its contents."),
        Method("exposePort", "async", doc="Make a port reachable at a preview URL: {url, port, name}."),
        Method("unexposePort", "async", doc="Stop forwarding a port's preview URL."),
        Method(
            "getExposedPorts", "async", doc="The preview URLs that forward now: [{url, port, name, status}]."
        ),
        Method("isPortExposed", "async", doc="Whether the port has a current preview URL."),
        Method(
            "wsConnect", "async", doc="Answer a WebSocket upgrade by connecting it to a port of the sandbox."
        ),
        _TERMINAL,
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
            doc="A client for the sandbox with this id (nothing starts yet).",
        ),
    ),
    doc="The SANDBOX binding declared in ploy.yaml.",
)

register(SANDBOX_PROCESS, SANDBOX_SESSION, SANDBOX_CLIENT, SANDBOX_BINDING)
