export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const sandbox = env.SANDBOX.get("builder");

		// Kick off a long job and return its handle right away.
		if (url.pathname === "/build/start") {
			const proc = await sandbox.startProcess("npm run build");
			return Response.json(proc);
			// → { id, pid, command, status: "running", exitCode: null, startedAt }
		}

		// Later request: check whether it finished.
		if (url.pathname === "/build/status") {
			const id = url.searchParams.get("id");
			const proc = await sandbox.getProcess(id);
			return Response.json(proc);
		}

		return new Response("Builder");
	},
} satisfies Ploy;
