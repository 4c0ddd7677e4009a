export default {
	async fetch(request, env) {
		const sandbox = env.SANDBOX.get("agent");

		// soulforge (the bundled agent) picks up OPENAI_BASE_URL / OPENAI_API_KEY and
		// streams its work back. No model credentials are passed in by you.
		const stream = await sandbox.execStream(
			`soulforge --headless --model openai/gpt-5.5 "summarize this repository"`,
		);

		return new Response(stream, {
			headers: { "Content-Type": "text/plain; charset=utf-8" },
		});
	},
} satisfies Ploy;
