export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		return new Response(`Hello from ploy! You asked for ${url.pathname}\n`, {
			headers: { "Content-Type": "text/plain; charset=utf-8" },
		});
	},
} satisfies Ploy;
