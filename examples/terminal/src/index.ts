// xterm.js comes from npm (package.json) and is bundled into the worker as text, then served by it.
import fitJs from "@xterm/addon-fit/lib/addon-fit.js" with { type: "text" };
import xtermCss from "@xterm/xterm/css/xterm.css" with { type: "text" };
import xtermJs from "@xterm/xterm/lib/xterm.js" with { type: "text" };
import page from "./page.html" with { type: "text" };

const ASSETS: Record<string, [string, string]> = {
	"/": [page, "text/html; charset=utf-8"],
	"/xterm.js": [xtermJs, "text/javascript; charset=utf-8"],
	"/xterm.css": [xtermCss, "text/css; charset=utf-8"],
	"/addon-fit.js": [fitJs, "text/javascript; charset=utf-8"],
};

export default {
	async fetch(request, env) {
		const url = new URL(request.url);

		// The page's WebSocket: an interactive shell in the sandbox.
		if (url.pathname === "/ws") {
			const sandbox = env.SANDBOX.get(url.searchParams.get("id") ?? "terminal");
			const cols = Number(url.searchParams.get("cols")) || 80;
			const rows = Number(url.searchParams.get("rows")) || 24;
			return sandbox.terminal(request, { cols, rows });
		}

		const asset = ASSETS[url.pathname];
		if (asset) return new Response(asset[0], { headers: { "content-type": asset[1] } });
		return new Response("Not found", { status: 404 });
	},
} satisfies Ploy;
