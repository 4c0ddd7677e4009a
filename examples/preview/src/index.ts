export default {
	async fetch(request, env) {
		// Requests for a preview URL are answered by the server in the sandbox.
		const proxied = await proxyToSandbox(request, env);
		if (proxied) return proxied;

		const url = new URL(request.url);
		const sandbox = env.SANDBOX.get(url.searchParams.get("id") ?? "preview");

		// Start a web server in the sandbox, wait until it answers, and hand out its preview URL.
		if (url.pathname === "/start") {
			const [current] = await sandbox.getExposedPorts();
			if (current) return Response.json({ url: current.url });

			await sandbox.writeFile("/srv/site/index.html", "<h1>Hello from the sandbox</h1>\n");
			const server = await sandbox.startProcess("python3 -m http.server 8080", { cwd: "/srv/site" });
			await server.waitForPort(8080, { timeoutMs: 15000 });
			const { url: preview } = await sandbox.exposePort(8080, { name: "site" });
			return Response.json({ url: preview, process: server.id });
		}

		return new Response("GET /start runs a web server in a sandbox and returns its preview URL\n");
	},
} satisfies Ploy;
