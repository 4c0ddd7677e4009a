from typing import Any

from runtime.http import Request, Response


async def fetch(request: Request, env: Any) -> Response:
    sandbox = env.SANDBOX.get("agent")

    # soulforge (the bundled agent) picks up OPENAI_BASE_URL / OPENAI_API_KEY and
    # streams its work back. No model credentials are passed in by you.
    stream = await sandbox.execStream(
        'soulforge --headless --model openai/gpt-5.5 "summarize this repository"'
    )

    return Response(stream, headers={"Content-Type": "text/plain; charset=utf-8"})
