// The docs' coding agent, run so that its end is known: execStream's events format (as Cloudflare's
// SDK sends it) ends with `complete` and the exit code, or with `error`.
import type { SandboxExecEvent } from "@meetploy/types";

const AGENT = `soulforge --headless --model openai/gpt-5.5 "summarize this repository"`;

// The `data: {json}` events of a stream, one at a time.
async function* events(stream: ReadableStream<Uint8Array>): AsyncGenerator<SandboxExecEvent> {
	const reader = stream.getReader();
	const decoder = new TextDecoder();
	let buffer = "";
	for (;;) {
		const { value, done } = await reader.read();
		if (done) return;
		buffer += decoder.decode(value, { stream: true });
		let end: number;
		while ((end = buffer.indexOf("\n\n")) >= 0) {
			const block = buffer.slice(0, end);
			buffer = buffer.slice(end + 2);
			if (block.startsWith("data: ")) yield JSON.parse(block.slice(6)) as SandboxExecEvent;
		}
	}
}

export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const sandbox = env.SANDBOX.get("agent");
		const command = url.searchParams.get("cmd") ?? AGENT;

		// The client reads the events: stdout, stderr, then `complete` with the exit code.
		if (url.pathname === "/events") {
			const stream = await sandbox.execStream(command, { format: "sse" });
			return new Response(stream, { headers: { "Content-Type": "text/event-stream" } });
		}

		// The worker reads them, and says whether the agent succeeded.
		let output = "";
		let exitCode: number | null = null;
		let error: string | null = null;
		for await (const event of events(await sandbox.execStream(command, { format: "sse" }))) {
			if (event.type === "stdout" || event.type === "stderr") output += event.data;
			else if (event.type === "complete") exitCode = event.exitCode ?? null;
			else if (event.type === "error") error = event.error ?? "failed";
		}
		const ok = exitCode === 0;
		return Response.json({ ok, exitCode, error, output }, { status: ok ? 200 : 502 });
	},
} satisfies Ploy;
