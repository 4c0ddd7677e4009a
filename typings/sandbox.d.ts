/**
 * The SANDBOX binding: long-lived Linux sandboxes a worker drives by id.
 *
 * The method list mirrors `bindings/sandbox/spec.py`, the one declaration the Python and JS
 * runtimes are built from; a test fails when the two drift apart.
 */

/** Options for `exec`, `execStream` and `startProcess`. */
export interface SandboxExecOptions {
	/** Working directory of the command; relative to the sandbox's (or session's) working directory. */
	cwd?: string;
	/** Extra environment variables for this command only; they override `setEnvVars` and AI credentials. */
	env?: Record<string, string>;
	/** Kill the command after this many milliseconds (`exec` then rejects with code `TIMEOUT`). */
	timeoutMs?: number;
}

/** What `exec` resolves to once the command has finished. */
export interface SandboxExecResult {
	/** Everything the command wrote to stdout, decoded as UTF-8. */
	stdout: string;
	/** Everything the command wrote to stderr, decoded as UTF-8. */
	stderr: string;
	/** The command's exit status. */
	exitCode: number;
	/** `true` when `exitCode` is 0. */
	success: boolean;
}

/** A background process started with `startProcess`. */
export interface SandboxProcessInfo {
	/** Process id; persist it to check back on the process from later requests. */
	id: string;
	/** Process group id inside the sandbox; `null` when the process could not be started. */
	pid: number | null;
	/** The command line as given to `startProcess`. */
	command: string;
	/** `"running"` until the process exits; then `"completed"` (exit code 0) or `"failed"`. */
	status: "running" | "completed" | "failed";
	/** Set once the process has finished. */
	exitCode: number | null;
	/** When the process was started (ISO 8601). */
	startedAt: string;
}

/** What `getProcessLogs` resolves to. */
export interface SandboxProcessLogs {
	/** The process's combined stdout and stderr captured so far. */
	logs: string;
}

/** One entry of `listFiles`. */
export interface SandboxFileEntry {
	/** The entry's name within the listed directory. */
	name: string;
	/** The entry's path, usable with the other file methods. */
	path: string;
	/** Whether the entry is a regular file or a directory. */
	type: "file" | "directory";
	/** Size in bytes (files only). */
	size?: number;
}

/** Options for `readFile`. */
export interface SandboxReadFileOptions {
	/** `"utf-8"` (default) decodes the file as text; `"base64"` returns the raw bytes base64-encoded. */
	encoding?: "utf-8" | "base64";
}

/** What `readFile` resolves to. */
export interface SandboxReadFileResult {
	/** The file's contents, as text or base64 depending on the requested encoding. */
	content: string;
}

/** Options for `writeFile`. */
export interface SandboxWriteFileOptions {
	/** `"base64"` when `content` is a base64 string of raw bytes to decode before writing. */
	encoding?: "utf-8" | "base64";
}

/** Options for `mkdir`. */
export interface SandboxMkdirOptions {
	/** Create missing parent directories too, and do not fail when the directory exists. */
	recursive?: boolean;
}

/** Options for `gitCheckout`. */
export interface SandboxGitCheckoutOptions {
	/** Branch (or tag) to check out; the remote's default branch when omitted. */
	branch?: string;
	/** Shallow clone with this many commits of history. */
	depth?: number;
	/** Directory to clone into; defaults to the repository's name. */
	targetDir?: string;
}

/** Options for `createSession`. */
export interface SandboxSessionOptions {
	/** Working directory the session starts in; relative file paths resolve against it. */
	cwd?: string;
	/** Environment variables every command of the session sees. */
	env?: Record<string, string>;
}

/**
 * Commands, files and background processes: what a sandbox client and a session both offer.
 * On a session, relative paths and commands use the session's working directory and environment.
 */
export interface SandboxOperations {
	/**
	 * Run a command through the shell and resolve once it finishes, with its output and exit status.
	 * A non-zero exit status resolves (with `success: false`); it does not reject.
	 */
	exec(command: string, options?: SandboxExecOptions): Promise<SandboxExecResult>;

	/** Run a command and return a stream of its combined output as it is produced. */
	execStream(command: string, options?: SandboxExecOptions): Promise<ReadableStream<Uint8Array>>;

	/** Write text (or bytes) to a file, creating or replacing it and creating missing parent directories. */
	writeFile(path: string, content: string | Uint8Array, options?: SandboxWriteFileOptions): Promise<void>;

	/** Read a file. Rejects with code `NOT_FOUND` when it does not exist, `IS_DIRECTORY` for a directory. */
	readFile(path: string, options?: SandboxReadFileOptions): Promise<SandboxReadFileResult>;

	/** Remove a file. Rejects with code `NOT_FOUND` when it does not exist. */
	deleteFile(path: string): Promise<void>;

	/** Create a directory; `{ recursive: true }` also creates its parents. */
	mkdir(path: string, options?: SandboxMkdirOptions): Promise<void>;

	/** List a directory's entries. Rejects with code `NOT_A_DIRECTORY` when `path` is a file. */
	listFiles(path: string): Promise<SandboxFileEntry[]>;

	/** Clone a git repository into the sandbox. */
	gitCheckout(repoUrl: string, options?: SandboxGitCheckoutOptions): Promise<void>;

	/** Set environment variables that apply to every later command. */
	setEnvVars(vars: Record<string, string>): Promise<void>;

	/** Launch a command in the background and resolve at once with its handle; it outlives the request. */
	startProcess(command: string, options?: SandboxExecOptions): Promise<SandboxProcessInfo>;

	/** Every background process of the sandbox, running or finished. */
	listProcesses(): Promise<SandboxProcessInfo[]>;

	/** One background process by id; `null` when no process has that id (or `id` is null). */
	getProcess(id: string | null): Promise<SandboxProcessInfo | null>;

	/** The process's combined stdout and stderr captured so far. */
	getProcessLogs(id: string): Promise<SandboxProcessLogs>;

	/** Replay the process's log from the start, follow it live, and end when the process exits. */
	streamProcessLogs(id: string): Promise<ReadableStream<Uint8Array>>;

	/** Stop a background process and its child tree. */
	killProcess(id: string): Promise<void>;
}

/**
 * A persistent execution context within a sandbox: its working directory and environment
 * variables carry across commands and file operations.
 */
export interface SandboxSession extends SandboxOperations {
	/** The session's id; pass it to `getSession` to reach the same session from a later request. */
	readonly sessionId: string;
}

/**
 * A client scoped to one sandbox (what `env.SANDBOX.get(id)` returns). The sandbox starts lazily
 * on the first operation and keeps its files and state across requests.
 */
export interface SandboxClient extends SandboxOperations {
	/** The sandbox id given to `get`. */
	readonly id: string;

	/** Create a session: a working directory and environment shared by the commands run through it. */
	createSession(options?: SandboxSessionOptions): Promise<SandboxSession>;

	/** Reach an existing session again by its `sessionId`. Rejects with code `NOT_FOUND` when unknown. */
	getSession(sessionId: string): Promise<SandboxSession>;

	/** Destroy the sandbox and everything in it; later calls on this client reject with `SANDBOX_DESTROYED`. */
	destroy(): Promise<void>;
}

/** The binding declared under `sandbox:` in ploy.yaml (e.g. `env.SANDBOX`). */
export interface SandboxBinding {
	/** A client for the sandbox with this id. Nothing starts until the client's first operation. */
	get(id: string): SandboxClient;
}

/** Error codes a sandbox operation rejects with (on the Error's `code`). */
export type SandboxErrorCode =
	| "NOT_FOUND"
	| "IS_DIRECTORY"
	| "NOT_A_DIRECTORY"
	| "TIMEOUT"
	| "INVALID_ARGUMENT"
	| "SANDBOX_DESTROYED"
	| (string & {});
