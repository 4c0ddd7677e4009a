"""Background processes beyond the docs: an interactive program fed through its stdin, signals, stdout and
stderr apart, stopping everything and forgetting what finished."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.http import Request, Response

CALCULATOR = """python3 -u -c '
import sys
for line in sys.stdin:
    try:
        print(line.strip(), "=", eval(line, {}))
    except Exception as e:
        print("error:", e, file=sys.stderr)
print("bye")
'"""


async def fetch(request: Request, env: Any) -> Response:
    url = urlsplit(request.url)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    sandbox = env.SANDBOX.get("processes")
    id = query.get("id", "calc")

    # An interactive program under an id of our choosing; its stdin stays open for /send.
    if url.path == "/start":
        return Response.json(await sandbox.startProcess(CALCULATOR, {"processId": id, "stdin": True}))

    if url.path == "/send":
        return Response.json(await sandbox.writeStdin(id, query.get("line", "") + "\n"))

    # What it printed so far, stdout and stderr apart.
    if url.path == "/logs":
        logs = await sandbox.getProcessLogs(id)
        return Response.json({"stdout": logs["stdout"], "stderr": logs["stderr"]})

    # End of input: the program finishes on its own.
    if url.path == "/close":
        return Response.json(await sandbox.closeStdin(id))

    # A signal of our choosing (SIGINT, SIGTERM, SIGKILL, ...) to the process and its children.
    if url.path == "/signal":
        return Response.json(await sandbox.killProcess(id, query.get("signal", "SIGTERM")))

    if url.path == "/stop-all":
        return Response.json({"stopped": await sandbox.killAllProcesses()})

    if url.path == "/cleanup":
        return Response.json({"removed": await sandbox.cleanupCompletedProcesses()})

    return Response.json(await sandbox.listProcesses())
