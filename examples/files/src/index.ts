// Files beyond the docs: streamed uploads and downloads, binary-safe reads, listing, exists, rename, move.
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const sandbox = env.SANDBOX.get(url.searchParams.get("id") ?? "files");
		const path = url.searchParams.get("path") ?? "upload.bin";

		// Upload: the request body is written into the sandbox as a stream.
		if (request.method === "PUT") {
			return Response.json(await sandbox.writeFile(path, request.body ?? ""));
		}

		// Download: the file streams out of the sandbox as the client reads it.
		if (url.pathname === "/download") {
			const stream = await sandbox.readFileStream(path);
			return new Response(stream, { headers: { "Content-Type": "application/octet-stream" } });
		}

		// A generated file of `mib` MiB, written chunk by chunk: it is never whole in the worker's
		// memory, so even 1 GiB fits in the default 256 MB limit.
		if (url.pathname === "/generate") {
			const mib = Number(url.searchParams.get("mib") ?? "1");
			const chunk = new Uint8Array(1024 * 1024).fill(120);
			let written = 0;
			const body = new ReadableStream<Uint8Array>({
				pull(controller) {
					if (written++ < mib) controller.enqueue(chunk);
					else controller.close();
				},
			});
			return Response.json(await sandbox.writeFile(path, body));
		}

		// Text comes back as text; anything else as base64 with isBinary: true (never mangled).
		if (url.pathname === "/read") {
			const { content, encoding, isBinary, mimeType, size } = await sandbox.readFile(path);
			return Response.json({ content, encoding, isBinary, mimeType, size });
		}

		if (url.pathname === "/ls") {
			const entries = await sandbox.listFiles(url.searchParams.get("dir") ?? ".", {
				recursive: url.searchParams.has("recursive"),
				includeHidden: url.searchParams.has("hidden"),
			});
			return Response.json(entries.map((e) => ({ path: e.relativePath, type: e.type, size: e.size, mode: e.mode })));
		}

		if (url.pathname === "/exists") {
			return Response.json(await sandbox.exists(path));
		}

		if (url.pathname === "/rename" || url.pathname === "/move") {
			const to = url.searchParams.get("to");
			if (!to) return new Response("give ?to=", { status: 400 });
			const moved = url.pathname === "/rename" ? await sandbox.renameFile(path, to) : await sandbox.moveFile(path, to);
			return Response.json(moved);
		}

		return new Response("Files");
	},
} satisfies Ploy;
