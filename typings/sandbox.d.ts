/**
 * The SANDBOX binding: long-lived Linux sandboxes a worker drives by id.
 *
 * The method list mirrors `bindings/sandbox/spec.py`, the one declaration the Python and JS
 * runtimes are built from; a test fails when the two drift apart.
 */

/**
 * Every method that takes an options object accepts `sessionId`: the call then runs in that session
 * (its working directory, environment and shell), as on Cloudflare's Sandbox SDK. On a
 * `SandboxSession` only its own id is accepted. An option name a method does not take rejects with
 * `INVALID_ARGUMENT` (so a typo such as `timeoutMS` is not silently ignored).
 */
export interface SandboxSessionOption {
	/** Run the call in this session (see `createSession`). */
	sessionId?: string;
}

/** Options shared by `exec`, `execStream` and `startProcess`. */
export interface SandboxCommandOptions extends SandboxSessionOption {
	/** Working directory of the command; relative to the sandbox's (or session's) working directory. */
	cwd?: string;
	/** Extra environment variables for this command only; they override `setEnvVars` and AI credentials. */
	env?: Record<string, string>;
	/**
	 * Kill the command and its whole process tree after this many milliseconds. `exec` then
	 * rejects with code `TIMEOUT`, `execStream`'s stream errors with it, and a background process
	 * ends as `"failed"` with `timedOut: true`. In a session, the session's `commandTimeoutMs` is the default.
	 */
	timeoutMs?: number;
}

/** Options for `exec`. */
export interface SandboxExecOptions extends SandboxCommandOptions {
	/** Bytes of stdout (and of stderr) kept; more is dropped and the result says `truncated: true`. Default: the binding's `outputLimit`. */
	outputLimit?: number;
	/** Text the command reads on its stdin (then end-of-file); without it, stdin is empty. */
	stdin?: string;
}

/** Options for `execStream`. */
export interface SandboxExecStreamOptions extends SandboxCommandOptions {
	/** Text the command reads on its stdin (then end-of-file). */
	stdin?: string;
	/**
	 * `"raw"` (default): the stream is the command's output bytes, stdout and stderr merged in the
	 * order written (what the docs describe). `"sse"`: the stream is server-sent events as Cloudflare's
	 * SDK sends them, `data: {json}` per event (`SandboxExecEvent`): `start`, `stdout`, `stderr`,
	 * then `complete` with the `exitCode`, or `error` (e.g. a timeout), so the exit code can be read
	 * from the stream itself (`Content-Type: text/event-stream`).
	 */
	format?: "raw" | "sse";
}

/** Options for `startProcess`. */
export interface SandboxStartProcessOptions extends SandboxCommandOptions {
	/**
	 * `true`: the process's stdin stays open for `writeStdin` until `closeStdin` (an interactive
	 * program). A string: the process reads it, then end-of-file. Without it, stdin is empty.
	 */
	stdin?: boolean | string;
	/** Choose the process id (1-64 letters, digits, `.`, `_`, `-`); a random one by default. `ALREADY_EXISTS` if taken. */
	processId?: string;
}

/** One event of `execStream(command, { format: "sse" })`, sent as `data: <json>` and a blank line. */
export interface SandboxExecEvent {
	/** `start` first; `stdout`/`stderr` as output comes; then `complete` or `error`, and the stream ends. */
	type: "start" | "stdout" | "stderr" | "complete" | "error";
	/** When the event was made (ISO 8601). */
	timestamp: string;
	/** The output (UTF-8 text) of a `stdout` or `stderr` event. */
	data?: string;
	/** The command, on `start`. */
	command?: string;
	/** The exit status, on `complete`. */
	exitCode?: number;
	/** On `complete`: `{ exitCode, success, command }`. */
	result?: { exitCode: number; success: boolean; command: string };
	/** What went wrong, on `error`. */
	error?: string;
	/** The error's code (e.g. `TIMEOUT`), on `error`. */
	code?: string;
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
	 * `killProcess(this.id, ...)`, the same operation: without `signal`, SIGTERM to the process tree,
	 * then SIGKILL after `graceMs`; a given signal (`"SIGINT"`, `"SIGHUP"`, even `"SIGTERM"`) is sent
	 * as it is, never escalated. Resolves with the process's record.
	 */
	kill(signal?: SandboxSignal, options?: SandboxKillProcessOptions): Promise<SandboxProcessInfo>;

	/** The process's status now. */
	getStatus(): Promise<"running" | "completed" | "failed">;

	/** The process's output so far, combined and stdout and stderr apart (as `getProcessLogs`). */
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
	/** Cloudflare's name for `timeoutMs`. */
	timeout?: number;
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
export interface SandboxTerminalOptions extends SandboxSessionOption {
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
	/** Its stdout alone. */
	stdout: string;
	/** Its stderr alone. */
	stderr: string;
	/** The process id asked for. */
	processId: string;
}

/** One entry of `listFiles` (the docs' fields, and those of Cloudflare's `FileInfo`). */
export interface SandboxFileEntry {
	/** The entry's name within its directory. */
	name: string;
	/** The entry's absolute path, usable with the other file methods. */
	path: string;
	/** The same as `path` (Cloudflare's name). */
	absolutePath: string;
	/** The path relative to the listed directory (`sub/file.txt` in a recursive listing). */
	relativePath: string;
	/** Whether the entry is a regular file (or another non-directory) or a directory; a link lists as what it points to. */
	type: "file" | "directory";
	/** Size in bytes. */
	size: number;
	/** Last modification (ISO 8601). */
	modifiedAt: string;
	/** Permission bits as `ls` shows them, e.g. `"rw-r--r--"`. */
	mode: string;
	/** The owner's permissions. */
	permissions: { readable: boolean; writable: boolean; executable: boolean };
}

/** Options for `listFiles`. */
export interface SandboxListFilesOptions extends SandboxSessionOption {
	/** List the whole tree below the directory, not only its entries (default `false`). */
	recursive?: boolean;
	/** Include names starting with a dot (default `false`, as on Cloudflare). */
	includeHidden?: boolean;
}

/** Options for `readFile` returning text. */
export interface SandboxReadFileOptions extends SandboxSessionOption {
	/**
	 * `"utf-8"` decodes the file as text (bytes that are not UTF-8 replaced); `"base64"` returns the
	 * raw bytes base64-encoded. Without it: text when the file is UTF-8 text, else base64 with
	 * `isBinary: true` (nothing is silently replaced). Any other name rejects with `INVALID_ARGUMENT`.
	 */
	encoding?: "utf-8" | "utf8" | "text" | "base64";
}

/** Options for `readFile` returning the raw bytes. */
export interface SandboxReadFileBytesOptions extends SandboxSessionOption {
	/** Return the content as a `Uint8Array`. */
	encoding: "binary" | "bytes" | "buffer" | "uint8array";
}

/** What `readFile` resolves to. */
export interface SandboxReadFileResult {
	/** The file's contents: text, or base64 (asked for, or because the file is not text). */
	content: string;
	/** The encoding of `content`. */
	encoding: "utf-8" | "base64";
	/** The file's absolute path inside the sandbox. */
	path: string;
	/** The file's size in bytes. */
	size: number;
	/** `true` when the file is not UTF-8 text (or has a NUL byte). */
	isBinary: boolean;
	/** The MIME type its name suggests (`text/plain` or `application/octet-stream` when it suggests none). */
	mimeType: string;
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
	/** `true` when the file is not UTF-8 text (or has a NUL byte). */
	isBinary: boolean;
	/** The MIME type its name suggests. */
	mimeType: string;
}

/** Options for `writeFile`. */
export interface SandboxWriteFileOptions extends SandboxSessionOption {
	/**
	 * `"base64"` when `content` is a base64 string of raw bytes to decode before writing; text is
	 * written as UTF-8. Any other name rejects with `INVALID_ARGUMENT`.
	 */
	encoding?: "utf-8" | "utf8" | "base64";
}

/** What `writeFile` takes: text, bytes, or a stream of chunks written as they come. */
export type SandboxWriteFileContent =
	| string
	| Uint8Array
	| ArrayBuffer
	| ReadableStream<Uint8Array | string>
	| AsyncIterable<Uint8Array | string>;

/** What `writeFile` resolves to. */
export interface SandboxWriteFileResult {
	/** The file's absolute path inside the sandbox. */
	path: string;
	/** Bytes written. */
	size: number;
}

/** Options for `deleteFile`. */
export interface SandboxDeleteFileOptions extends SandboxSessionOption {
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
export interface SandboxMkdirOptions extends SandboxSessionOption {
	/** Create missing parent directories too, and do not fail when the directory exists. */
	recursive?: boolean;
}

/** What `mkdir` resolves to. */
export interface SandboxMkdirResult {
	/** The directory's absolute path inside the sandbox. */
	path: string;
}

/** Options for `gitCheckout`. */
export interface SandboxGitCheckoutOptions extends SandboxSessionOption {
	/** Branch (or tag) to check out; the remote's default branch when omitted. */
	branch?: string;
	/** Shallow clone with this many commits of history. */
	depth?: number;
	/** Directory to clone into; defaults to the repository's name. */
	targetDir?: string;
	/** Give up (code `TIMEOUT`) after this many milliseconds; 5 minutes by default. */
	timeoutMs?: number;
	/** The same as `timeoutMs` (Cloudflare's name). */
	cloneTimeoutMs?: number;
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

/** A signal by name (`"SIGTERM"`, `"TERM"`, `"SIGINT"`, ...) or number. */
export type SandboxSignal = string | number;

/** Options for `killProcess` and `killAllProcesses`. */
export interface SandboxKillProcessOptions extends SandboxSessionOption {
	/**
	 * Without `signal`: how long to wait after SIGTERM before SIGKILL (default 3000 ms). With `signal`:
	 * how long to wait for the process to end before resolving (default 100 ms; no SIGKILL follows).
	 */
	graceMs?: number;
	/** Send this signal (once) instead of SIGTERM-then-SIGKILL. */
	signal?: SandboxSignal;
}

/** Options for `writeStdin`. */
export interface SandboxWriteStdinOptions extends SandboxSessionOption {
	/** `"base64"` when `data` is base64 text of raw bytes. */
	encoding?: "utf-8" | "utf8" | "base64";
}

/** What `exists` resolves to. */
export interface SandboxExistsResult {
	/** Whether anything (a file, a directory, a link) is at the path. */
	exists: boolean;
	/** The absolute path that was looked at. */
	path: string;
}

/** What `renameFile` and `moveFile` resolve to. */
export interface SandboxMoveResult {
	/** The old absolute path. */
	path: string;
	/** The new absolute path. */
	newPath: string;
}

/** What `getState` resolves to. Asking never starts, wakes or keeps awake the sandbox. */
export interface SandboxState {
	/** The sandbox id. */
	id: string;
	/**
	 * `running`; `sleeping`: stopped for idleness (`sleepAfter`), files kept, the next call wakes it;
	 * `stopped`: never started, destroyed, or stopped otherwise (the next call starts it).
	 */
	status: "running" | "sleeping" | "stopped";
	/** Since when (ISO 8601); `null` when it never ran. */
	since: string | null;
	/** The container's exit status, when it stopped other than by going to sleep. */
	exitCode?: number;
}

/** What `getMetrics` resolves to: the sandbox's own use, read from its cgroup (never wakes it). */
export interface SandboxMetrics {
	/** The sandbox id. */
	id: string;
	/** As `getState().status`; a sandbox that is not running reports zeros. */
	status: "running" | "sleeping" | "stopped";
	/** When the figures were taken (ISO 8601). */
	timestamp: string;
	/** `percent`: CPU used over about the last second, of `cores` (the sandbox's CPU limit); `totalSeconds` since it started. */
	cpu: { percent: number; cores: number | null; totalSeconds: number };
	/** Bytes in use (page cache the kernel can drop not counted) and the memory limit. */
	memory: { used: number; limit: number | null };
	/** Processes and threads, and the limit. */
	pids: { current: number | null; limit: number | null };
	/** Bytes received and sent since the sandbox started (all interfaces but loopback). */
	network: { rxBytes: number; txBytes: number };
	/** Bytes the sandbox's files take beyond its image; re-measured at most every 10 s (`measuredAt`). */
	disk: { used: number; measuredAt: string | null };
}

/** What `setSleepAfter` and `setKeepAlive` resolve to: this sandbox's idle settings now. */
export interface SandboxIdleSettings {
	/** Seconds of idleness before the sandbox sleeps (0: never). */
	sleepAfter: number;
	/** `true`: the sandbox never sleeps for idleness. */
	keepAlive: boolean;
}

/** What `deleteSession` resolves to. */
export interface SandboxDeleteSessionResult {
	/** The deleted session's id. */
	sessionId: string;
	deleted: true;
	/** How many of its background processes were running and were stopped. */
	killed: number;
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
	/** A name for the session, kept with it. */
	name?: string;
	/** The default `timeoutMs` of the session's `exec`, `execStream` and `startProcess`. */
	commandTimeoutMs?: number;
}

/** Options for `createBackup`. */
export interface SandboxBackupOptions {
	/** Directory to back up: absolute, under `/workspace`, `/home`, `/tmp`, `/var/tmp` or `/app`. */
	dir: string;
	/** A name for people (at most 256 characters); spaces and any Unicode are fine. */
	name?: string;
	/** Seconds the backup is kept; 259200 (3 days) by default. Restoring it later fails with `BACKUP_EXPIRED`. */
	ttl?: number;
	/** Leave out what git ignores when `dir` is in a git repository; `false` by default. */
	gitignore?: boolean;
	/** Glob patterns to leave out: without `/` they match a name at any depth (`node_modules`, `*.log`). */
	excludes?: string[];
	/**
	 * Accepted for code written for Cloudflare (where local development needs it) and ignored: ploy
	 * always keeps backups on this machine.
	 */
	localBucket?: boolean;
}

/** A stored backup: what `createBackup` resolves to and what `listBackups` lists. Keep its `id`. */
export interface SandboxBackup {
	/** The backup's id (a UUID); pass it to `restoreBackup`, or as `from` to `env.SANDBOX.get`. */
	readonly id: string;
	/** The directory it was taken of, and where it is restored by default. */
	readonly dir: string;
	/** The name given to `createBackup`, if any. */
	name: string | null;
	/** Size of the compressed archive in bytes. */
	size: number;
	/** When it was made (ISO 8601). */
	createdAt: string;
	/** When it expires (ISO 8601). */
	expiresAt: string;
	/** Why `gitignore` could not be applied, when it could not. */
	warnings?: string[];
}

/** Options for `restoreBackup`. */
export interface SandboxRestoreBackupOptions {
	/** Restore into this directory instead of the one the backup was taken of (same rules as `dir`). */
	targetDir?: string;
}

/** What `restoreBackup` resolves to. */
export interface SandboxRestoreBackupResult {
	success: true;
	/** The backup's id. */
	id: string;
	/** The directory whose contents are now the backup's. */
	dir: string;
}

/** What `deleteBackup`, `deleteSnapshot` and `deleteCodeContext` resolve to. */
export interface SandboxDeletedResult {
	/** The id that was deleted. */
	id: string;
	deleted: true;
}

/** Options for `snapshot`. */
export interface SandboxSnapshotOptions {
	/** A name for people. */
	name?: string;
}

/** A whole-sandbox snapshot: its files and installed packages (not its running processes). */
export interface SandboxSnapshot {
	/** The snapshot's id (`snap-` and 16 hex digits); pass it as `from` to `env.SANDBOX.get`. */
	readonly id: string;
	/** The name given to `snapshot`, if any. */
	name: string | null;
	/** The id of the sandbox it was taken of. */
	sourceId: string | null;
	/** When it was taken (ISO 8601). */
	createdAt: string | null;
	/** Size of its image in bytes. */
	size: number | null;
	/** The local Podman image holding it. */
	image: string;
}

/** Options for `env.SANDBOX.get`. */
export interface SandboxGetOptions {
	/**
	 * Start a new sandbox from a backup (restored into its directory before the first call runs) or a
	 * snapshot (the whole sandbox). Applies only when the id is new: an existing sandbox is returned as it is.
	 */
	from?: string | SandboxBackup | SandboxSnapshot;
	/** As Cloudflare's getSandbox: `setKeepAlive(keepAlive)` before this client's first operation (`get` starts nothing). */
	keepAlive?: boolean;
	/** As Cloudflare's getSandbox: `setSleepAfter(sleepAfter)` before this client's first operation. */
	sleepAfter?: string | number;
	/** As Cloudflare's getSandbox: lowercase the id (preview host names are case-insensitive). */
	normalizeId?: boolean;
	/** Cloudflare's control path choice; ploy has one (the agent's socket), so any of the three is accepted. */
	transport?: "http" | "websocket" | "rpc";
	/**
	 * Only `false`, ploy's behaviour: a call without a session runs in a fresh shell. `true` (Cloudflare's
	 * default session shared by top-level calls) is refused with INVALID_ARGUMENT; use `createSession()`.
	 */
	enableDefaultSession?: false;
}

/** Options for `watch`. */
export interface SandboxWatchOptions {
	/** Watch subdirectories too; `true` by default. */
	recursive?: boolean;
	/** Only report paths matching one of these globs (`*.ts`); a glob without `/` matches any path component. */
	include?: string[];
	/** Leave out paths matching these globs; `[".git", "node_modules", ".DS_Store"]` unless `include` is given. */
	exclude?: string[];
}

/**
 * One server-sent event of `watch`: each is `event: <type>` and `data: <this, as JSON>`.
 * Within one batch, repeated `modify` events of a path (and a `modify` right after its `create`) are merged.
 */
export type SandboxWatchEvent =
	| { type: "watching"; path: string; watchId: string }
	| { type: "create" | "modify" | "delete"; path: string; isDirectory: boolean; timestamp: string }
	| { type: "rename"; path: string; oldPath: string; isDirectory: boolean; timestamp: string }
	| { type: "overflow"; path: string; isDirectory: true; timestamp: string }
	| { type: "stopped"; reason: string };

/** Options for `checkChanges`. */
export interface SandboxCheckChangesOptions extends SandboxWatchOptions {
	/** The `version` a previous `checkChanges` returned. */
	since?: string;
}

/** What `checkChanges` resolves to. */
export interface SandboxCheckChangesResult {
	success: true;
	/** `resync`: the change log was reset (`reason`); list the directory again. */
	status: "unchanged" | "changed" | "resync";
	/** Pass it as `since` next time. */
	version: string;
	/** When the check was made (ISO 8601). */
	timestamp: string;
	/** With `changed`: the events since `since`, unless more happened than the log keeps (`truncated`). */
	changes?: SandboxWatchEvent[];
	/** With `changed`: the changes are not listed (too many, or the kernel dropped events); rescan. */
	truncated?: true;
	/** With `resync`: `restarted` (the sandbox restarted) or `expired` (unasked for 10 minutes). */
	reason?: "restarted" | "expired";
}

/** Options for `createCodeContext`. */
export interface SandboxCodeContextOptions {
	/** `"python"` (default) or `"javascript"` (node). */
	language?: "python" | "javascript";
	/** Working directory of the context; `/workspace` by default. */
	cwd?: string;
	/** Environment variables of the context. */
	env?: Record<string, string>;
	/** Cloudflare's name for `env`. */
	envVars?: Record<string, string | undefined>;
}

/** A code context: a Python or node process in the sandbox whose variables carry over between runs. */
export interface SandboxCodeContext {
	/** The context's id; pass the context (or its id) as `context` to `runCode`. */
	readonly id: string;
	/** `"python"` or `"javascript"`. */
	readonly language: string;
	/** The context's working directory. */
	readonly cwd: string;
	/** When it was created (ISO 8601). */
	createdAt: string;
	/** When code last ran in it (ISO 8601). */
	lastUsed: string;
}

/** Options for `runCode` and `runCodeStream`. */
export interface SandboxRunCodeOptions {
	/** The context to run in; without one, a default context of `language` (made on first use). */
	context?: SandboxCodeContext | string;
	/** Language of the default context; `"python"` by default. */
	language?: "python" | "javascript";
	/** Interrupt the code after this many milliseconds (60000 by default; 0: no limit). */
	timeoutMs?: number;
	/** Cloudflare's name for `timeoutMs`. */
	timeout?: number;
}

/** One rich result of a run: the value of the last expression, a `display()` call, a matplotlib figure. */
export interface SandboxExecutionResult {
	/** Plain text (`repr` / `util.inspect`). */
	text?: string;
	/** HTML (`_repr_html_`, e.g. a pandas DataFrame). */
	html?: string;
	/** A PNG image, base64. */
	png?: string;
	/** A JPEG image, base64. */
	jpeg?: string;
	/** An SVG image. */
	svg?: string;
	/** LaTeX. */
	latex?: string;
	/** Markdown. */
	markdown?: string;
	/** JavaScript. */
	javascript?: string;
	/** The value as JSON (objects and arrays). */
	json?: unknown;
}

/** An error raised by the code: part of the result, never a rejection of `runCode`. */
export interface SandboxExecutionError {
	/** The error's type, e.g. `NameError`, `ReferenceError`, `TimeoutError`. */
	name: string;
	/** Its message. */
	value: string;
	/** Its message (Cloudflare's name for `value`). */
	message: string;
	/** The traceback, one line per entry, from the user's code down. */
	traceback: string[];
}

/** What `runCode` resolves to. */
export interface SandboxExecution {
	/** The code that ran. */
	code: string;
	/** What the code printed, in the chunks it printed it. */
	logs: { stdout: string[]; stderr: string[] };
	/** Rich results, in order. */
	results: SandboxExecutionResult[];
	/** Set when the code raised. */
	error?: SandboxExecutionError;
	/** How many runs the context has had, this one included. */
	executionCount: number | null;
}

/**
 * Commands, files and background processes: what a sandbox client and a session both offer.
 * On a session, relative paths and commands use the session's working directory and environment.
 * Where Cloudflare's SDK takes a `sessionId` as a last positional argument, a string in place of the
 * options object is that `sessionId` too.
 */
export interface SandboxOperations {
	/**
	 * Run a command through the shell and resolve once it finishes, with its output and exit status.
	 * A non-zero exit status resolves (with `success: false`); it does not reject.
	 */
	exec(command: string, options?: SandboxExecOptions): Promise<SandboxExecResult>;

	/**
	 * Run a command and return a stream of its combined output as it is produced; with
	 * `{ format: "sse" }`, a stream of `SandboxExecEvent`s ending with the exit code.
	 */
	execStream(command: string, options?: SandboxExecStreamOptions): Promise<ReadableStream<Uint8Array>>;

	/**
	 * Write text, bytes or a stream to a file, creating or replacing it and creating missing parent
	 * directories. A stream (or async iterable) is written chunk by chunk as it is read, never held
	 * whole; the file is replaced only once all of it arrived (a failing stream leaves the old file).
	 */
	writeFile(
		path: string,
		content: SandboxWriteFileContent,
		options?: SandboxWriteFileOptions,
	): Promise<SandboxWriteFileResult>;

	/**
	 * Read a file as text (or base64 when it is not text). Rejects with code `NOT_FOUND` when it does not exist,
	 * `IS_DIRECTORY` for a directory.
	 */
	readFile(path: string, options?: SandboxReadFileOptions): Promise<SandboxReadFileResult>;
	/** Read a file's raw bytes. */
	readFile(path: string, options: SandboxReadFileBytesOptions): Promise<SandboxReadFileBytesResult>;

	/** Remove a file (a directory too with `{ recursive: true }`). Rejects with code `NOT_FOUND` when absent. */
	deleteFile(path: string, options?: SandboxDeleteFileOptions | string): Promise<SandboxDeleteFileResult>;

	/** Create a directory; `{ recursive: true }` also creates its parents. */
	mkdir(path: string, options?: SandboxMkdirOptions): Promise<SandboxMkdirResult>;

	/**
	 * List a directory's entries (the working directory by default), sorted by relative path; hidden
	 * names only with `includeHidden`. Rejects with code `NOT_FOUND` when it does not exist,
	 * `NOT_A_DIRECTORY` when `path` is a file.
	 */
	listFiles(path?: string, options?: SandboxListFilesOptions): Promise<SandboxFileEntry[]>;

	/** Clone a git repository into the sandbox. Rejects with code `GIT_ERROR` when git fails. */
	gitCheckout(repoUrl: string, options?: SandboxGitCheckoutOptions): Promise<SandboxGitCheckoutResult>;

	/** Set environment variables that apply to every later command; `null` unsets one. */
	setEnvVars(vars: Record<string, string | null>): Promise<{ ok: true }>;

	/** Launch a command in the background and resolve at once with its handle; it outlives the request. */
	startProcess(command: string, options?: SandboxStartProcessOptions): Promise<SandboxProcess>;

	/** Every background process of the sandbox, running or finished (on a session: the session's). */
	listProcesses(options?: SandboxSessionOption | string): Promise<SandboxProcess[]>;

	/** One background process by id; `null` when no process has that id (or `id` is null). */
	getProcess(id: string | null, options?: SandboxSessionOption | string): Promise<SandboxProcess | null>;

	/** The process's output captured so far: combined, and stdout and stderr apart. */
	getProcessLogs(id: string, options?: SandboxSessionOption | string): Promise<SandboxProcessLogs>;

	/** Replay the process's log from the start, follow it live, and end when the process exits. */
	streamProcessLogs(id: string, options?: SandboxSessionOption | string): Promise<ReadableStream<Uint8Array>>;

	/**
	 * Stop a background process and its child tree (SIGTERM, then SIGKILL after the grace period)
	 * and resolve with its final state; with a `signal`, send only that signal.
	 */
	killProcess(id: string, options?: SandboxKillProcessOptions): Promise<SandboxProcessInfo>;
	/** Send `signal` (e.g. `"SIGINT"`, `"SIGKILL"`) to the process and its child tree. */
	killProcess(id: string, signal?: SandboxSignal, options?: SandboxKillProcessOptions): Promise<SandboxProcessInfo>;

	/** Whether a file or directory exists at `path`. */
	exists(path: string, options?: SandboxSessionOption | string): Promise<SandboxExistsResult>;

	/** Rename a file or directory to exactly `newPath` (a file there is replaced). `NOT_FOUND` when `oldPath` is absent. */
	renameFile(oldPath: string, newPath: string, options?: SandboxSessionOption | string): Promise<SandboxMoveResult>;

	/** Move a file or directory into `destinationPath` when that is a directory, else to that path (as `mv`). */
	moveFile(
		sourcePath: string,
		destinationPath: string,
		options?: SandboxSessionOption | string,
	): Promise<SandboxMoveResult>;

	/** A stream of the file's raw bytes, read from the sandbox as the stream is consumed. */
	readFileStream(path: string, options?: SandboxSessionOption | string): Promise<ReadableStream<Uint8Array>>;

	/** Stop every running background process (on a session: the session's); resolves with how many were running. */
	killAllProcesses(options?: SandboxKillProcessOptions | string): Promise<number>;

	/** Forget finished processes, their records and logs (on a session: the session's); resolves with how many. */
	cleanupCompletedProcesses(options?: SandboxSessionOption | string): Promise<number>;

	/** Write to the stdin of a process started with `{ stdin: true }`. Rejects with `INVALID_ARGUMENT` once its stdin is closed. */
	writeStdin(
		id: string,
		data: string | Uint8Array,
		options?: SandboxWriteStdinOptions | string,
	): Promise<{ id: string; size: number }>;

	/** Close the stdin of a process started with `{ stdin: true }`: it reads end-of-file. */
	closeStdin(id: string, options?: SandboxSessionOption | string): Promise<SandboxProcessInfo>;

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

	/**
	 * Destroy the sandbox and everything in it. The client stays usable: its next call starts a
	 * fresh, empty sandbox under the same id (as on Cloudflare).
	 */
	destroy(): Promise<SandboxDestroyResult>;

	/** Delete a session: its running commands and background processes are stopped. `NOT_FOUND` when unknown. */
	deleteSession(sessionId: string): Promise<SandboxDeleteSessionResult>;

	/** Idle time after which this sandbox sleeps: seconds, or `"30s"`, `"10m"`, `"1h"`; 0 never. Kept until changed. */
	setSleepAfter(duration: string | number): Promise<SandboxIdleSettings>;

	/** `true`: this sandbox never sleeps for idleness (until `setKeepAlive(false)` or `destroy()`). */
	setKeepAlive(keepAlive: boolean): Promise<SandboxIdleSettings>;

	/** Whether the sandbox runs, sleeps or is stopped, and since when; starts and wakes nothing. */
	getState(): Promise<SandboxState>;

	/** CPU, memory, pids, network and disk use of the sandbox; wakes nothing (a stopped one reports zeros). */
	getMetrics(): Promise<SandboxMetrics>;

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
	 * Whether `token` is the preview token of `port` (as in its URL), for a worker that routes previews
	 * its own way. It checks the record, kept until `unexposePort`, not whether the URL forwards now
	 * (`isPortExposed` says that); never starts the sandbox.
	 */
	validatePortToken(port: number, token: string): Promise<boolean>;

	/**
	 * Answer a WebSocket upgrade request by connecting it to the WebSocket server on `port` in the
	 * sandbox: return the Response as it is. The server's refusal comes back as a plain Response.
	 */
	wsConnect(request: Request, port: number): Promise<Response>;

	/**
	 * Archive a directory into the host's backup store (compressed, content-hashed); it outlives the
	 * sandbox and `ploy dev`. Rejects with `INVALID_BACKUP_CONFIG` for a bad option, `NOT_FOUND` when `dir` is missing.
	 */
	createBackup(options: SandboxBackupOptions): Promise<SandboxBackup>;

	/**
	 * Make a directory's contents exactly the backup's (its own directory, or `targetDir`). Checked before
	 * anything is touched: a failed restore leaves the directory as it was. Rejects with
	 * `BACKUP_NOT_FOUND`, `BACKUP_EXPIRED`, `INVALID_BACKUP_CONFIG` or `BACKUP_RESTORE_FAILED`.
	 */
	restoreBackup(
		backup: string | SandboxBackup | { id: string; dir?: string },
		options?: SandboxRestoreBackupOptions,
	): Promise<SandboxRestoreBackupResult>;

	/** The project's backups that have not expired, oldest first. */
	listBackups(): Promise<SandboxBackup[]>;

	/** Remove a backup. Rejects with `BACKUP_NOT_FOUND` when there is none with that id. */
	deleteBackup(id: string | SandboxBackup): Promise<SandboxDeletedResult>;

	/**
	 * Commit the whole sandbox (files, installed packages, env vars; not running processes) as a
	 * snapshot new sandboxes start from: `env.SANDBOX.get(newId, { from: snapshot.id })`.
	 */
	snapshot(options?: SandboxSnapshotOptions): Promise<SandboxSnapshot>;

	/** The project's snapshots, oldest first. */
	listSnapshots(): Promise<SandboxSnapshot[]>;

	/** Remove a snapshot (sandboxes started from it keep running). Rejects with `SNAPSHOT_NOT_FOUND`. */
	deleteSnapshot(id: string | SandboxSnapshot): Promise<SandboxDeletedResult>;

	/**
	 * Watch a directory: resolves once the watch is in place, with a stream of server-sent events
	 * (`SandboxWatchEvent`) that ends when it is cancelled. Return it as a `text/event-stream` Response
	 * to send it on to a browser. Rejects with `NOT_FOUND` for a missing directory.
	 */
	watch(path: string, options?: SandboxWatchOptions): Promise<ReadableStream<Uint8Array>>;

	/**
	 * For polling clients: whether anything changed under `path` since `since` (and what), from a
	 * change log the sandbox keeps between calls.
	 */
	checkChanges(path: string, options?: SandboxCheckChangesOptions): Promise<SandboxCheckChangesResult>;

	/** Start a code context: a Python or node process whose variables and imports carry over between runs. */
	createCodeContext(options?: SandboxCodeContextOptions): Promise<SandboxCodeContext>;

	/**
	 * Run code in a context and resolve with its output and results; the last expression's value is a
	 * result. An error of the code is `error` in the result, not a rejection. Rejects with
	 * `CONTEXT_NOT_FOUND` for an unknown context (`details.lost` when its process ended).
	 */
	runCode(code: string, options?: SandboxRunCodeOptions): Promise<SandboxExecution>;

	/**
	 * Run code and return a stream of server-sent events as it runs (`data: {type: "stdout" | "stderr" |
	 * "result" | "error" | "execution_complete", ...}`). Cancelling the stream interrupts the code.
	 */
	runCodeStream(code: string, options?: SandboxRunCodeOptions): Promise<ReadableStream<Uint8Array>>;

	/** The code contexts that are alive. */
	listCodeContexts(): Promise<SandboxCodeContext[]>;

	/** Stop a code context and forget it. Rejects with `CONTEXT_NOT_FOUND` when unknown. */
	deleteCodeContext(context: string | SandboxCodeContext): Promise<SandboxDeletedResult>;
}

/** The binding declared under `sandbox:` in ploy.yaml (e.g. `env.SANDBOX`). */
export interface SandboxBinding {
	/**
	 * A client for the sandbox with this id: any non-empty string up to 1024 characters without NUL
	 * (an email, a hash, `tenant/42:job`); ids that differ in any way (case, a slash) are different
	 * sandboxes. Nothing starts until the client's first operation.
	 * With `{ from }`, a new id starts from a backup or a snapshot (a fork).
	 */
	get(id: string, options?: SandboxGetOptions): SandboxClient;
}

/** Error codes a sandbox operation rejects with (on the Error's `code`). */
export type SandboxErrorCode =
	| "NOT_FOUND"
	| "IS_DIRECTORY"
	| "NOT_A_DIRECTORY"
	| "TIMEOUT"
	| "INVALID_ARGUMENT"
	| "ALREADY_EXISTS"
	| "GIT_ERROR"
	| "PROCESS_EXITED_BEFORE_READY"
	| "INVALID_BACKUP_CONFIG"
	| "BACKUP_NOT_FOUND"
	| "BACKUP_EXPIRED"
	| "BACKUP_CREATE_FAILED"
	| "BACKUP_RESTORE_FAILED"
	| "SNAPSHOT_NOT_FOUND"
	| "CONTEXT_NOT_FOUND"
	| "JAVASCRIPT_NOT_AVAILABLE"
	| (string & {});
