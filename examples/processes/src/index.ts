// Background processes beyond the docs: an interactive program fed through its stdin, signals,
// stdout and stderr apart, stopping everything and forgetting what finished.
const CALCULATOR = `python3 -u -c '
import sys
for line in sys.stdin:
    try:
        print(line.strip(), "=", eval(line, {}))
    except Exception as e:
        print("error:", e, file=sys.stderr)
print("bye")
'`;

export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const sandbox = env.SANDBOX.get("processes");
		const id = url.searchParams.get("id") ?? "calc";

		// An interactive program under an id of our choosing; its stdin stays open for /send.
		if (url.pathname === "/start") {
			return Response.json(await sandbox.startProcess(CALCULATOR, { processId: id, stdin: true }));
		}

		if (url.pathname === "/send") {
			return Response.json(await sandbox.writeStdin(id, (url.searchParams.get("line") ?? "") + "\n"));
		}

		// What it printed so far, stdout and stderr apart.
		if (url.pathname === "/logs") {
			const { stdout, stderr } = await sandbox.getProcessLogs(id);
			return Response.json({ stdout, stderr });
		}

		// End of input: the program finishes on its own.
		if (url.pathname === "/close") {
			return Response.json(await sandbox.closeStdin(id));
		}

		// A signal of our choosing (SIGINT, SIGTERM, SIGKILL, ...) to the process and its children.
		if (url.pathname === "/signal") {
			return Response.json(await sandbox.killProcess(id, url.searchParams.get("signal") ?? "SIGTERM"));
		}

		if (url.pathname === "/stop-all") {
			return Response.json({ stopped: await sandbox.killAllProcesses() });
		}

		if (url.pathname === "/cleanup") {
			return Response.json({ removed: await sandbox.cleanupCompletedProcesses() });
		}

		return Response.json(await sandbox.listProcesses());
	},
} satisfies Ploy;
