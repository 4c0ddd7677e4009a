// Stream a sandbox's file changes to the browser as server-sent events: the page below subscribes
// with EventSource; /write changes a file so there is something to see.
const PAGE = `<!doctype html>
<title>Sandbox file changes</title>
<p id="status">connecting…</p>
<ul id="events"></ul>
<script>
	const list = document.getElementById("events");
	const source = new EventSource("/events");
	source.addEventListener("watching", () => (document.getElementById("status").textContent = "watching"));
	for (const type of ["create", "modify", "delete", "rename"]) {
		source.addEventListener(type, (e) => {
			const event = JSON.parse(e.data);
			const item = document.createElement("li");
			item.textContent = event.type + " " + event.path + (event.isDirectory ? "/" : "");
			list.append(item);
		});
	}
</script>`;

export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const sandbox = env.SANDBOX.get("watched");

		// The stream ends when the browser goes away (or the page closes the EventSource).
		if (url.pathname === "/events") {
			await sandbox.mkdir("/workspace/site", { recursive: true });
			const events = await sandbox.watch("/workspace/site", { exclude: ["*.tmp"] });
			return new Response(events, {
				headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" },
			});
		}

		if (url.pathname === "/write") {
			const name = url.searchParams.get("name") ?? "index.html";
			await sandbox.writeFile(`/workspace/site/${name}`, `written at ${new Date().toISOString()}\n`);
			return Response.json({ written: name });
		}

		return new Response(PAGE, { headers: { "Content-Type": "text/html; charset=utf-8" } });
	},
} satisfies Ploy;
