/**
 * The AI binding (`env.AI` when ploy.yaml has `ai: true`): chat with models through Ploy's AI gateway.
 *
 * The method list mirrors `bindings/ai/spec.py`. Requests and responses follow the OpenAI chat
 * completions format whatever the provider; only the commonly used fields are typed, the rest
 * pass through untouched.
 */

/** One message of a chat. */
export interface AiChatMessage {
	role: "system" | "developer" | "user" | "assistant" | "tool";
	/** Text, or content parts (OpenAI format); `null` on an assistant message that only calls tools. */
	content: string | Array<Record<string, unknown>> | null;
	/** The tool calls an assistant message made. */
	tool_calls?: AiToolCall[];
	/** On a `tool` message: the id of the call it answers. */
	tool_call_id?: string;
	name?: string;
}

/** A function the model may call. */
export interface AiTool {
	type: "function";
	function: {
		name: string;
		description?: string;
		/** JSON Schema of the arguments. */
		parameters?: Record<string, unknown>;
	};
}

/** A call of a tool the model asked for. */
export interface AiToolCall {
	id: string;
	type: "function";
	function: {
		name: string;
		/** The arguments as a JSON string. */
		arguments: string;
	};
}

/** An OpenAI-style chat completion request. */
export interface AiChatRequest {
	/** `openai/<model>` or `anthropic/<model>` picks the provider; a bare name goes to the default one. */
	model: string;
	messages: AiChatMessage[];
	tools?: AiTool[];
	tool_choice?: "auto" | "none" | "required" | { type: "function"; function: { name: string } };
	temperature?: number;
	max_tokens?: number;
	/** Any other OpenAI chat-completions field, passed through to the provider. */
	[field: string]: unknown;
}

/** An OpenAI-style chat completion. */
export interface AiChatResponse {
	id: string;
	object: "chat.completion";
	created: number;
	model: string;
	choices: Array<{
		index: number;
		message: AiChatMessage & { role: "assistant" };
		finish_reason: "stop" | "length" | "tool_calls" | "content_filter" | (string & {}) | null;
	}>;
	usage?: {
		prompt_tokens: number;
		completion_tokens: number;
		total_tokens: number;
	};
}

/** Error codes an AI call rejects with (on the Error's `code`). */
export type AiErrorCode =
	| "INVALID_ARGUMENT"
	| "UNAUTHORIZED"
	| "UPSTREAM_ERROR"
	| "AI_NOT_CONFIGURED"
	| "UNAVAILABLE"
	| (string & {});

/** The AI binding declared by `ai: true` in ploy.yaml (`env.AI`). */
export interface AiBinding {
	/** The gateway's `/v1` endpoint: the base URL for the OpenAI or Anthropic SDKs. */
	readonly baseUrl: string;
	/** A project-scoped gateway token: the API key for the OpenAI or Anthropic SDKs. */
	readonly apiKey: string;

	/** Create a chat completion through the gateway and resolve with the completion. */
	chat(request: AiChatRequest): Promise<AiChatResponse>;

	/**
	 * Same request as `chat`; resolves with a stream of the provider's server-sent events
	 * (`data: {chat.completion.chunk}` lines, ending with `data: [DONE]`) as they arrive.
	 */
	chatStream(request: AiChatRequest): Promise<ReadableStream<Uint8Array>>;
}
