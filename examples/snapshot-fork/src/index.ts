// Install dependencies once, snapshot the whole sandbox, then start ten sandboxes from the snapshot:
// each has node_modules in place from its first command, without installing anything.
export default {
	async fetch(request, env) {
		const url = new URL(request.url);

		// 1. A sandbox runs `npm install`, then its files and packages become a snapshot.
		if (url.pathname === "/snapshot") {
			const base = env.SANDBOX.get("base");
			await base.writeFile(
				"/workspace/app/package.json",
				JSON.stringify({ name: "app", version: "1.0.0", dependencies: { ms: "^2.1.3" } }),
			);
			const install = await base.exec("npm install --no-audit --no-fund", { cwd: "/workspace/app" });
			if (!install.success) {
				return Response.json(install, { status: 500 });
			}
			const snapshot = await base.snapshot({ name: "after npm install" });
			return Response.json(snapshot);
		}

		// 2. Ten forks of it, started side by side; each runs the installed package at once.
		if (url.pathname === "/fork") {
			const from = url.searchParams.get("snapshot");
			if (!from) {
				return new Response("pass ?snapshot=<id from /snapshot>", { status: 400 });
			}
			const started = Date.now();
			const forks = await Promise.all(
				Array.from({ length: 10 }, async (_, i) => {
					const fork = env.SANDBOX.get(`fork-${i}`, { from });
					const result = await fork.exec(`node -e "console.log(require('ms')(${i + 1} * 60000))"`, {
						cwd: "/workspace/app",
					});
					return { id: fork.id, stdout: result.stdout.trim() };
				}),
			);
			return Response.json({ ms: Date.now() - started, forks });
		}

		// 3. Forks are sandboxes like any other: destroy them when done. The snapshot stays until deleted.
		if (url.pathname === "/cleanup") {
			await Promise.all(Array.from({ length: 10 }, (_, i) => env.SANDBOX.get(`fork-${i}`).destroy()));
			const snapshots = await env.SANDBOX.get("base").listSnapshots();
			for (const snapshot of snapshots) {
				await env.SANDBOX.get("base").deleteSnapshot(snapshot.id);
			}
			return Response.json({ deleted: snapshots.length });
		}

		return new Response("Snapshot and fork: /snapshot, then /fork?snapshot=ID, then /cleanup");
	},
} satisfies Ploy;
