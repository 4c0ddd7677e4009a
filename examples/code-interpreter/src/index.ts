// A code interpreter: POST code to /run and get its output and results back. Variables persist
// between requests (the default context of each language lives in the sandbox); /context makes a
// separate one, /stream sends the output while the code runs.
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const sandbox = env.SANDBOX.get("interpreter");
		const language = url.searchParams.get("language") === "javascript" ? "javascript" : "python";
		const context = url.searchParams.get("context") ?? undefined;

		// Run code: { results, logs: { stdout, stderr }, error? }
		if (url.pathname === "/run" && request.method === "POST") {
			const execution = await sandbox.runCode(await request.text(), { language, context });
			return Response.json(execution);
		}

		// The same, as server-sent events while it runs.
		if (url.pathname === "/stream" && request.method === "POST") {
			const stream = await sandbox.runCodeStream(await request.text(), { language, context });
			return new Response(stream, { headers: { "Content-Type": "text/event-stream" } });
		}

		// A fresh context with its own variables; pass its id as ?context= to /run.
		if (url.pathname === "/context" && request.method === "POST") {
			const created = await sandbox.createCodeContext({ language });
			return Response.json(created);
		}

		if (url.pathname === "/contexts") {
			return Response.json(await sandbox.listCodeContexts());
		}

		return new Response("Code Interpreter");
	},
} satisfies Ploy;
