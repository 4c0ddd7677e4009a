"""The AI binding's API (`env.AI` when ploy.yaml has `ai: true`), declared once (see bindings/spec.py)."""

from __future__ import annotations

from bindings.spec import Method, ObjectSpec, register

AI_BINDING = ObjectSpec(
    "AiBinding",
    methods=(
        Method(
            "chat",
            "async",
            doc=(
                "Create a chat completion through the project's AI gateway. Takes an OpenAI-style request "
                "({model, messages, tools?, ...}; `openai/x` and `anthropic/x` pick the provider, a bare name "
                "the default one) and resolves with the OpenAI-style completion JSON."
            ),
        ),
        Method(
            "chatStream",
            "stream",
            doc=(
                "Same request as chat(); resolves with a stream of the provider's server-sent events "
                "(`data: {chat.completion.chunk}` lines, ending with `data: [DONE]`) as they arrive."
            ),
        ),
    ),
    props=("baseUrl", "apiKey"),
    doc=(
        "The AI binding: chat with models through ploy's AI gateway. `baseUrl` (the gateway's /v1 endpoint) "
        "and `apiKey` (a project-scoped gateway token) configure the OpenAI or Anthropic SDKs."
    ),
)

register(AI_BINDING)
