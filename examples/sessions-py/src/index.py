from typing import Any

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    sandbox = env.SANDBOX.get("default")

    session = await sandbox.createSession({"cwd": "/tmp", "env": {"GREETING": "hello from a session"}})

    await session.exec("echo started > log.txt")
    greeting = await session.exec("echo $GREETING")
    log = await session.exec("cat /tmp/log.txt")

    print(session.sessionId)
    print(greeting["stdout"].strip())
    print(log["stdout"].strip())

    return Response.json(
        {"sessionId": session.sessionId, "greeting": greeting["stdout"].strip(), "log": log["stdout"].strip()}
    )
