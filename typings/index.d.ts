/**
 * @meetploy/types: types for Ploy workers.
 *
 * Importing anything from this package also declares the globals `Ploy` and `PloyEnv`
 * (see worker.d.ts).
 */

import "./worker";

export type * from "./sandbox";
export type * from "./ai";

/** The worker contract (also available as the global `Ploy`). */
export type PloyWorker<Env = PloyDefaultEnv> = Ploy<Env>;
