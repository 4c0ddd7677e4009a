export default {
	async fetch(request) {
		if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
			return new Response("Connect a WebSocket to this URL: every message comes back.\n");
		}
		const [client, server] = Object.values(new WebSocketPair());
		server.accept();
		server.addEventListener("message", (event) => server.send(event.data));
		server.addEventListener("close", (event) => console.log(`closed: ${event.code}`));
		return new Response(null, { status: 101, webSocket: client });
	},
} satisfies Ploy;
