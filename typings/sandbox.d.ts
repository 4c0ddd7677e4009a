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
	/**
	 * Kill the command and its whole process tree after this many milliseconds. `exec` then
	 * rejects with code `TIMEOUT`, `execStream`'s stream errors with it, and a background process
	 * ends as `"failed"` with `timedOut: true`.
	 */
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
	/** Present (`true`) when stdout or stderr exceeded the binding's `outputLimit` and was cut. */
	truncated?: true;
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
	/** When the process ended (ISO 8601); set once it has finished. */
	endedAt?: string | null;
	/** `true` when `timeoutMs` ran out and the process was killed. */
	timedOut?: boolean;
	/** `true` when `killProcess` stopped it. */
	killed?: boolean;
	/** `true` when the log exceeded the binding's `processLogLimit` and later output was dropped. */
	logTruncated?: boolean;
	/** Why the process failed without exiting by itself (e.g. the sandbox was stopped while it ran). */
	error?: string;
	/** The session it was started from, if any. */
	sessionId?: string;
}

/**
 * A background process as `startProcess`, `getProcess` and `listProcesses` return it: its
 * `SandboxProcessInfo` (a snapshot of when it was fetched; `JSON.stringify` gives exactly that JSON)
 * plus methods to wait on it. The waits reject with code `TIMEOUT` after `timeoutMs`.
 */
export interface SandboxProcess extends SandboxProcessInfo {
	/** Process id; persist it to check back on the process from later requests. */
	readonly id: string;
	/** Process group id inside the sandbox; `null` when the process could not be started. */
	readonly pid: number | null;
	/** The command line as given to `startProcess`. */
	readonly command: string;
	/** The status when this object was fetched; `getStatus()` asks again. */
	readonly status: "running" | "completed" | "failed";
	/** Set once the process has finished (as of when this object was fetched). */
	readonly exitCode: number | null;
	/** When the process was started (ISO 8601). */
	readonly startedAt: string;
	/** When the process ended (ISO 8601), if it had when this object was fetched. */
	readonly endedAt?: string | null;
	/** `true` when `timeoutMs` ran out and the process was killed. */
	readonly timedOut?: boolean;
	/** `true` when it was killed (`killProcess`, `kill`). */
	readonly killed?: boolean;
	/** `true` when the log exceeded the binding's `processLogLimit`. */
	readonly logTruncated?: boolean;
	/** Why the process failed without exiting by itself. */
	readonly error?: string;
	/** The session it was started from, if any. */
	readonly sessionId?: string;

	/**
	 * Resolve once `port` is ready, checked from inside the sandbox: it answers `path` (default `/`)
	 * with a status in `status` (default 200-399), or just accepts connections with `mode: "tcp"`.
	 * Rejects with `PROCESS_EXITED_BEFORE_READY` if this process ends first, `TIMEOUT` after `timeoutMs`.
	 */
	waitForPort(port: number, options?: SandboxWaitForPortOptions): Promise<SandboxWaitForPortResult>;

	/**
	 * Resolve with the first log line (from the start of the log) that contains `pattern`, or matches
	 * it when it is a RegExp (`match` then holds the match and its groups). Rejects with
	 * `PROCESS_EXITED_BEFORE_READY` if the process ends without one, `TIMEOUT` after `timeoutMs`.
	 * Also takes a bare number of milliseconds, as Cloudflare's SDK does.
	 */
	waitForLog(pattern: string | RegExp, options?: SandboxWaitOptions | number): Promise<SandboxWaitForLogResult>;

	/** Resolve with the final record (`exitCode`, `status`, ...) once the process has ended. */
	waitForExit(options?: SandboxWaitOptions | number): Promise<SandboxProcessInfo>;

	/**
	 * Send `signal` (default `"SIGTERM"`, then SIGKILL after `graceMs`) to the process tree; other
	 * signals (`"SIGINT"`, `"SIGHUP"`, ...) are sent as they are. Resolves with the process's record.
	 */
	kill(signal?: string | number, options?: SandboxKillProcessOptions): Promise<SandboxProcessInfo>;

	/** The process's status now. */
	getStatus(): Promise<"running" | "completed" | "failed">;

	/** The process's combined stdout and stderr so far (as `getProcessLogs`). */
	getLogs(): Promise<SandboxProcessLogs>;
}

/** Options for `SandboxProcess.waitForPort`. */
export interface SandboxWaitForPortOptions {
	/** `"http"` (default): `path` must answer with `status`; `"tcp"`: a connection is enough. */
	mode?: "http" | "tcp";
	/** The path an HTTP check requests; `/` by default. */
	path?: string;
	/** The status an HTTP check accepts: one code, or a range; 200-399 by default. */
	status?: number | { min: number; max: number };
	/** Give up (code `TIMEOUT`) after this many milliseconds; no limit by default. */
	timeoutMs?: number;
	/** Cloudflare's name for `timeoutMs`. */
	timeout?: number;
	/** Milliseconds between checks; 10 by default. */
	intervalMs?: number;
}

/** What `waitForPort` resolves to. */
export interface SandboxWaitForPortResult {
	port: number;
	/** The HTTP status that made it ready (http mode). */
	status?: number;
}

/** Options for `waitForLog` and `waitForExit`. */
export interface SandboxWaitOptions {
	/** Give up (code `TIMEOUT`) after this many milliseconds; no limit by default. */
	timeoutMs?: number;
}

/** What `waitForLog` resolves to. */
export interface SandboxWaitForLogResult {
	/** The matching log line, without its line ending. */
	line: string;
	/** For a RegExp: the match and its capture groups. */
	match?: string[];
}

/** Options for `exposePort`. */
export interface SandboxExposePortOptions {
	/** A name for the port, returned with it. */
	name?: string;
	/** The host the URL is made under; `localhost:<port of ploy dev>` by default. */
	hostname?: string;
	/** A token of your choosing (1-16 of `a-z 0-9 _`) instead of a random one. */
	token?: string;
}

/** What `exposePort` resolves to. */
export interface SandboxExposedPort {
	/** The preview URL: `http://{port}-{sandbox}-{token}.localhost:{devport}/`. */
	url: string;
	port: number;
	name?: string | null;
}

/** One entry of `getExposedPorts`. */
export interface SandboxExposedPortInfo extends SandboxExposedPort {
	status: "active";
}

/** Options for `terminal`. */
export interface SandboxTerminalOptions {
	/** Columns of the terminal (80 by default); the client can resize it later. */
	cols?: number;
	/** Rows of the terminal (24 by default). */
	rows?: number;
	/** The shell to run; `/bin/bash` by default. */
	shell?: string;
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
	encoding?: "utf-8" | "utf8" | "text" | "base64";
}

/** Options for `readFile` returning the raw bytes. */
export interface SandboxReadFileBytesOptions {
	/** Return the content as a `Uint8Array`. */
	encoding: "binary" | "bytes" | "buffer" | "uint8array";
}

/** What `readFile` resolves to. */
export interface SandboxReadFileResult {
	/** The file's contents: text, or base64 when `encoding: "base64"` was asked for. */
	content: string;
	/** The encoding of `content`. */
	encoding: "utf-8" | "base64";
	/** The file's absolute path inside the sandbox. */
	path: string;
	/** The file's size in bytes. */
	size: number;
}

/** What `readFile` with a binary encoding resolves to. */
export interface SandboxReadFileBytesResult {
	/** The file's raw bytes. */
	content: Uint8Array;
	/** The encoding that was asked for. */
	encoding: "binary" | "bytes" | "buffer" | "uint8array";
	/** The file's absolute path inside the sandbox. */
	path: string;
	/** The file's size in bytes. */
	size: number;
}

/** Options for `writeFile`. */
export interface SandboxWriteFileOptions {
	/** `"base64"` when `content` is a base64 string of raw bytes to decode before writing. */
	encoding?: "utf-8" | "base64";
}

/** What `writeFile` resolves to. */
export interface SandboxWriteFileResult {
	/** The file's absolute path inside the sandbox. */
	path: string;
	/** Bytes written. */
	size: number;
}

/** Options for `deleteFile`. */
export interface SandboxDeleteFileOptions {
	/** Also remove a directory and everything in it. */
	recursive?: boolean;
}

/** What `deleteFile` resolves to. */
export interface SandboxDeleteFileResult {
	/** The removed path (absolute). */
	path: string;
	deleted: true;
}

/** Options for `mkdir`. */
export interface SandboxMkdirOptions {
	/** Create missing parent directories too, and do not fail when the directory exists. */
	recursive?: boolean;
}

/** What `mkdir` resolves to. */
export interface SandboxMkdirResult {
	/** The directory's absolute path inside the sandbox. */
	path: string;
}

/** Options for `gitCheckout`. */
export interface SandboxGitCheckoutOptions {
	/** Branch (or tag) to check out; the remote's default branch when omitted. */
	branch?: string;
	/** Shallow clone with this many commits of history. */
	depth?: number;
	/** Directory to clone into; defaults to the repository's name. */
	targetDir?: string;
	/** Give up (code `TIMEOUT`) after this many milliseconds; 5 minutes by default. */
	timeoutMs?: number;
}

/** What `gitCheckout` resolves to once the clone is done. */
export interface SandboxGitCheckoutResult {
	success: true;
	repoUrl: string;
	/** Absolute path of the checkout inside the sandbox. */
	targetDir: string;
	/** The checked-out commit (full hash). */
	commit: string | null;
	/** The checked-out branch. */
	branch: string | null;
}

/** Options for `killProcess`. */
export interface SandboxKillProcessOptions {
	/** How long to wait after SIGTERM before SIGKILL, in milliseconds. */
	graceMs?: number;
}

/** What `destroy` resolves to. */
export interface SandboxDestroyResult {
	/** The sandbox id. */
	id: string;
	/** `false` when there was nothing to destroy (the sandbox had never started). */
	destroyed: boolean;
}

/** Options for `createSession`. */
export interface SandboxSessionOptions {
	/** Working directory the session starts in; relative file paths resolve against it. */
	cwd?: string;
	/** Environment variables every command of the session sees. */
	env?: Record<string, string>;
	/** Choose the session id (1-64 letters, digits, `-` or `_`); a random one by default. */
	id?: string;
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
	writeFile(
		path: string,
		content: string | Uint8Array,
		options?: SandboxWriteFileOptions,
	): Promise<SandboxWriteFileResult>;

	/**
	 * Read a file as text (or base64). Rejects with code `NOT_FOUND` when it does not exist,
	 * `IS_DIRECTORY` for a directory.
	 */
	readFile(path: string, options?: SandboxReadFileOptions): Promise<SandboxReadFileResult>;
	/** Read a file's raw bytes. */
	readFile(path: string, options: SandboxReadFileBytesOptions): Promise<SandboxReadFileBytesResult>;

	/** Remove a file (a directory too with `{ recursive: true }`). Rejects with code `NOT_FOUND` when absent. */
	deleteFile(path: string, options?: SandboxDeleteFileOptions): Promise<SandboxDeleteFileResult>;

	/** Create a directory; `{ recursive: true }` also creates its parents. */
	mkdir(path: string, options?: SandboxMkdirOptions): Promise<SandboxMkdirResult>;

	/**
	 * List a directory's entries (the working directory by default), sorted by name. Rejects with
	 * code `NOT_FOUND` when it does not exist, `NOT_A_DIRECTORY` when `path` is a file.
	 */
	listFiles(path?: string): Promise<SandboxFileEntry[]>;

	/** Clone a git repository into the sandbox. Rejects with code `GIT_ERROR` when git fails. */
	gitCheckout(repoUrl: string, options?: SandboxGitCheckoutOptions): Promise<SandboxGitCheckoutResult>;

	/** Set environment variables that apply to every later command; `null` unsets one. */
	setEnvVars(vars: Record<string, string | null>): Promise<{ ok: true }>;

	/** Launch a command in the background and resolve at once with its handle; it outlives the request. */
	startProcess(command: string, options?: SandboxExecOptions): Promise<SandboxProcess>;

	/** Every background process of the sandbox, running or finished. */
	listProcesses(): Promise<SandboxProcess[]>;

	/** One background process by id; `null` when no process has that id (or `id` is null). */
	getProcess(id: string | null): Promise<SandboxProcess | null>;

	/** The process's combined stdout and stderr captured so far. */
	getProcessLogs(id: string): Promise<SandboxProcessLogs>;

	/** Replay the process's log from the start, follow it live, and end when the process exits. */
	streamProcessLogs(id: string): Promise<ReadableStream<Uint8Array>>;

	/**
	 * Stop a background process and its child tree (SIGTERM, then SIGKILL after the grace period)
	 * and resolve with its final state.
	 */
	killProcess(id: string, options?: SandboxKillProcessOptions): Promise<SandboxProcessInfo>;

	/**
	 * Answer a WebSocket upgrade request with an interactive shell on a terminal in the sandbox (on a
	 * session: in its working directory, with its environment). Binary messages are terminal bytes both
	 * ways; the client sends `{"type":"resize","cols","rows"}` as text; the sandbox sends
	 * `{"type":"ready"}` and, when the shell exits, `{"type":"exit","code"}`. Closing the socket ends
	 * the shell. Rejects with `INVALID_ARGUMENT` for a request that is no upgrade.
	 */
	terminal(request: Request, options?: SandboxTerminalOptions): Promise<Response>;
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

	/** Reach an existing session again by its `sessionId` (e.g. from a later request). Rejects with code `NOT_FOUND` when unknown. */
	getSession(sessionId: string): Promise<SandboxSession>;

	/** Destroy the sandbox and everything in it; later calls on this client reject with `SANDBOX_DESTROYED`. */
	destroy(): Promise<SandboxDestroyResult>;

	/**
	 * Make `port` of the sandbox reachable at a preview URL, which the worker serves by calling
	 * `proxyToSandbox(request, env)` first. Starts the sandbox if needed. The URL stays the same until
	 * `unexposePort`; after the sandbox's container restarts it answers 410 until `exposePort` is
	 * called again. Ports are 1-65535 (`INVALID_ARGUMENT` otherwise).
	 */
	exposePort(port: number, options?: SandboxExposePortOptions): Promise<SandboxExposedPort>;

	/** Stop forwarding the port's preview URL (it answers 404 from then on). */
	unexposePort(port: number): Promise<void>;

	/** The preview URLs that forward now (exposed in the container's current start); never starts the sandbox. */
	getExposedPorts(hostname?: string): Promise<SandboxExposedPortInfo[]>;

	/** Whether `port` has a preview URL that forwards now; never starts the sandbox. */
	isPortExposed(port: number): Promise<boolean>;

	/**
	 * Answer a WebSocket upgrade request by connecting it to the WebSocket server on `port` in the
	 * sandbox: return the Response as it is. The server's refusal comes back as a plain Response.
	 */
	wsConnect(request: Request, port: number): Promise<Response>;
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
	| "ALREADY_EXISTS"
	| "GIT_ERROR"
	| "PROCESS_EXITED_BEFORE_READY"
	| (string & {});
