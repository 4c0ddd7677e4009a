/**
 * @meetploy/types: types for Ploy workers.
 *
 * Importing anything from this package also declares the globals `Ploy` and `PloyEnv`
 * (see worker.d.ts).
 */

import "./worker";

export type {
	SandboxBinding,
	SandboxClient,
	SandboxErrorCode,
	SandboxExecOptions,
	SandboxExecResult,
	SandboxFileEntry,
	SandboxGitCheckoutOptions,
	SandboxMkdirOptions,
	SandboxOperations,
	SandboxProcessInfo,
	SandboxProcessLogs,
	SandboxReadFileOptions,
	SandboxReadFileResult,
	SandboxSession,
	SandboxSessionOptions,
	SandboxWriteFileOptions,
} from "./sandbox";
export type * from "./ai";

/** The worker contract (also available as the global `Ploy`). */
export type PloyWorker<Env = PloyDefaultEnv> = Ploy<Env>;
