export default {
	async fetch(request, env) {
		const sandbox = env.SANDBOX.get("default");

		const stream = await sandbox.execStream("npm install");

		return new Response(stream, {
			headers: { "Content-Type": "text/plain; charset=utf-8" },
		});
	},
} satisfies Ploy;
