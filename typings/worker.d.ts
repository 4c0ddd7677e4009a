/**
 * The worker contract: what `export default { ... } satisfies Ploy` checks.
 *
 * `Ploy` is global so the docs' examples type-check without importing it; it becomes visible as
 * soon as anything in the program imports "@meetploy/types" (the env.d.ts `ploy types` writes does).
 */

declare global {
	/**
	 * The `env` of this project. Empty here; the env.d.ts that `ploy types` writes merges the
	 * project's `Env` into it, so `satisfies Ploy` types `env` without a type argument.
	 */
	interface PloyEnv {}

	/** `PloyEnv` once `ploy types` has filled it in; `any` before, so untyped projects still compile. */
	type PloyDefaultEnv = keyof PloyEnv extends never ? any : PloyEnv;

	/**
	 * A Ploy worker module's default export. `fetch` is called once per HTTP request with the
	 * request and the project's bindings and vars, and returns (a promise of) the response.
	 *
	 * @example
	 * export default {
	 *   async fetch(request, env) {
	 *     return new Response("hello");
	 *   },
	 * } satisfies Ploy;
	 */
	interface Ploy<Env = PloyDefaultEnv> {
		/**
		 * Handle one HTTP request. `env` holds the bindings and vars declared in ploy.yaml; `ctx`
		 * is optional to declare (`fetch(request, env)` is fine).
		 */
		fetch(request: Request, env: Env, ctx: PloyExecutionContext): Response | Promise<Response>;
	}

	/** The third argument of `fetch` (the same shape as on Cloudflare Workers, for ported code). */
	interface PloyExecutionContext {
		/**
		 * Let work finish after the response has been sent. Ploy never cancels a request's pending
		 * promises, so this only makes sure a rejection is reported in the log.
		 */
		waitUntil(promise: Promise<unknown>): void;
		/** Accepted for compatibility; does nothing (there is no origin to fall back to). */
		passThroughOnException(): void;
		/** Per-request properties; always empty under ploy dev. */
		readonly props: Record<string, unknown>;
	}

	/**
	 * The Error a binding rejects with (`name` is "PloyError"): `code` is stable and
	 * machine-readable; `message` is for humans.
	 *
	 * @example
	 * try { await sandbox.readFile("missing.txt"); }
	 * catch (e) { if ((e as PloyError).code === "NOT_FOUND") { ... } }
	 */
	/**
	 * Cloudflare's helper, called first in `fetch`: the sandbox server's Response for a request to a
	 * preview URL (`sandbox.exposePort`), or `null` for any other request.
	 *
	 * @example
	 * const proxied = await proxyToSandbox(request, env);
	 * if (proxied) return proxied;
	 */
	function proxyToSandbox(request: Request, env: unknown): Promise<Response | null>;

	/**
	 * Two connected WebSockets (Cloudflare Workers): return `[0]` in a 101 Response, `accept()` and
	 * use `[1]`.
	 *
	 * @example
	 * const [client, server] = Object.values(new WebSocketPair());
	 * server.accept();
	 * server.addEventListener("message", (event) => server.send(event.data));
	 * return new Response(null, { status: 101, webSocket: client });
	 */
	var WebSocketPair: {
		// an object type, not an interface: `Object.values(pair)` is then typed WebSocket[]
		new (): { 0: WebSocket; 1: WebSocket };
	};

	interface WebSocket {
		/** Start delivering this (server) end's events; before it, messages wait. */
		accept(): void;
	}

	interface ResponseInit {
		/** With status 101: the client end of a WebSocketPair (or a WebSocket a binding returned). */
		webSocket?: WebSocket | null;
	}

	interface Response {
		/** The WebSocket of a 101 response (`sandbox.terminal`, `wsConnect`, an upgrade fetch), else null. */
		readonly webSocket: WebSocket | null;
	}

	interface PloyError extends Error {
		/** NOT_FOUND, IS_DIRECTORY, NOT_A_DIRECTORY, TIMEOUT, INVALID_ARGUMENT, ALREADY_EXISTS, ... */
		code: string;
		/** Details of the failure, e.g. `path`, or the `stdout`/`stderr` of an exec that timed out. */
		[detail: string]: unknown;
	}
}

export {};
