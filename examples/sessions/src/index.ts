export default {
	async fetch(request, env) {
		const sandbox = env.SANDBOX.get("default");

		const session = await sandbox.createSession({
			cwd: "/tmp",
			env: { GREETING: "hello from a session" },
		});

		await session.exec("echo started > log.txt");
		const greeting = await session.exec("echo $GREETING");
		const log = await session.exec("cat /tmp/log.txt");

		console.log(session.sessionId);
		console.log(greeting.stdout.trim());
		console.log(log.stdout.trim());

		return Response.json({
			sessionId: session.sessionId,
			greeting: greeting.stdout.trim(),
			log: log.stdout.trim(),
		});
	},
} satisfies Ploy;
