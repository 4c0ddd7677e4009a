// A sandbox's life beyond the docs: any id, its state and metrics, idle settings at run time,
// sessions by id, and destroy() after which the same client starts afresh.
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		// Any string is an id: an email, a path, a hash. Ids that differ in any way are different sandboxes.
		const sandbox = env.SANDBOX.get(url.searchParams.get("id") ?? "default");

		// Running, sleeping or stopped, and since when; asking starts and wakes nothing.
		if (url.pathname === "/state") {
			return Response.json(await sandbox.getState());
		}

		if (url.pathname === "/metrics") {
			const { cpu, memory, pids, network, disk } = await sandbox.getMetrics();
			return Response.json({ cpu, memory, pids, network, disk });
		}

		if (url.pathname === "/keep-alive") {
			return Response.json(await sandbox.setKeepAlive(url.searchParams.get("on") === "1"));
		}

		if (url.pathname === "/sleep-after") {
			return Response.json(await sandbox.setSleepAfter(url.searchParams.get("after") ?? "10m"));
		}

		// Sessions reached by id from any request; `sessionId` runs a call of the client in one.
		const sessionId = url.searchParams.get("session") ?? "work";
		if (url.pathname === "/session/create") {
			const session = await sandbox.createSession({ id: sessionId, cwd: "/tmp", commandTimeoutMs: 30_000 });
			return Response.json({ sessionId: session.sessionId });
		}
		if (url.pathname === "/session/exec") {
			const result = await sandbox.exec(url.searchParams.get("cmd") ?? "pwd", { sessionId });
			return Response.json(result);
		}
		if (url.pathname === "/session/delete") {
			return Response.json(await sandbox.deleteSession(sessionId));
		}

		// Destroy, then keep using the same client: its next call gets a fresh, empty sandbox.
		if (url.pathname === "/destroy") {
			await sandbox.writeFile("mark.txt", "before");
			const { destroyed } = await sandbox.destroy();
			const after = await sandbox.exists("mark.txt");
			return Response.json({ destroyed, markAfter: after.exists });
		}

		return Response.json(await sandbox.exec("hostname"));
	},
} satisfies Ploy;
