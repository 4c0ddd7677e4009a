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
        doc="Start a command in the background and return its SandboxProcessInfo at once.",
    ),
    Method("listProcesses", "async", doc="List the background processes."),
    Method("getProcess", "async", doc="One background process by id, or null when unknown."),
    Method("getProcessLogs", "async", doc="{logs}: the process's combined stdout and stderr so far."),
    Method(
        "streamProcessLogs",
        "stream",
        doc="Replay the log from the start, follow it live, end when the process exits.",
    ),
    Method("killProcess", "async", doc="Stop a background process and its child tree."),
)

SANDBOX_SESSION = ObjectSpec(
    "SandboxSession",
    methods=_FILE_AND_COMMAND_METHODS,
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
    )
    + (
        # backups and snapshots: kept by the host, so they outlive the sandbox and `ploy dev`
        Method(
            "createBackup",
            "async",
            doc="Archive a directory ({dir, name, ttl, gitignore, excludes}) to the host.",
        ),
        Method("restoreBackup", "async", doc="Replace a directory's contents with a backup ({targetDir})."),
        Method("listBackups", "async", doc="The project's backups that have not expired."),
        Method("deleteBackup", "async", doc="Remove a backup."),
        Method(
            "snapshot", "async", doc="Commit the whole sandbox (files, installed packages) as a snapshot."
        ),
        Method("listSnapshots", "async", doc="The project's snapshots."),
        Method("deleteSnapshot", "async", doc="Remove a snapshot."),
        # file watching
        Method(
            "watch", "stream", doc="Server-sent events of file changes under a directory, until cancelled."
        ),
        Method(
            "checkChanges", "async", doc="Whether a directory changed since a version ({since}), for polling."
        ),
        # code interpreter
        Method(
            "createCodeContext", "async", doc="Start a Python or JavaScript context that keeps its state."
        ),
        Method("runCode", "async", doc="Run code in a context: {results, logs, error?}."),
        Method("runCodeStream", "stream", doc="Run code; server-sent events of its output and results."),
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
        ),
    ),
    doc="The SANDBOX binding declared in ploy.yaml.",
)

register(SANDBOX_SESSION, SANDBOX_CLIENT, SANDBOX_BINDING)
