export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const id = url.searchParams.get("id") ?? "default";
		const sandbox = env.SANDBOX.get(id);

		// Run a command
		if (url.pathname === "/exec") {
			const result = await sandbox.exec("echo hello from ploy sandbox");
			return Response.json(result);
		}

		// Write then read a file back
		if (url.pathname === "/file") {
			await sandbox.writeFile("note.txt", "written by the worker\n");
			const { content } = await sandbox.readFile("note.txt");
			return Response.json({ content });
		}

		return new Response("Sandbox Worker");
	},
} satisfies Ploy;
