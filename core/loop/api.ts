/**
 * The loop-engine plugin API: uWSGI's `uwsgi_register_loop()` (spec/subsystems.md §31.2)
 * mapped onto tsuwsgi's processes. See docs/loop-engines.md.
 *
 * In uWSGI a loop engine replaces a worker's accept/dispatch loop. In tsuwsgi the core's
 * own loop is Node's and never changes; what an engine decides is how many requests
 * ("cores") each bridge process of a pool serves at once, and what the bridge runs them
 * with. The core side of an engine is this declaration: the pool opens `cores` persistent
 * connections per bridge process and never has more requests in flight there. The bridge
 * side (accepting per core, the wait/sleep hooks, suspend/resume, graceful stop) lives in
 * each bridge, which lists the engines it can run (BridgeDescriptor.loopEngines and its
 * ready message).
 */
import type { ResolvedOptions } from '../options/resolved.ts';

/**
 * How an engine's cores run inside a bridge process:
 * - `threads`: each core is an OS thread serving one request at a time; cores = `--threads`
 *   (uWSGI's `simple` loop, run by every thread).
 * - `async`: cores = `--async N` cooperative request contexts on one thread (coroutines or
 *   green threads); a request gives way to the others where it waits.
 */
export type CoreModel = 'threads' | 'async';

/** A loop engine a plugin registers by name (uWSGI: simple, async, gevent, asyncio…). */
export interface LoopEngineDefinition {
  /** The name `--loop NAME` selects, as uWSGI registers it. */
  readonly name: string;
  /** One line for `--loop-list` and the docs. */
  readonly description: string;
  readonly cores: CoreModel;
  /**
   * The option (owned by the same plugin) that is uWSGI's shortcut for this engine: its
   * number is the async cores and it selects the engine (`--gevent N` = `--async N --loop gevent`).
   */
  readonly shortcut?: string;
  /** Fewest cores the engine runs with (uWSGI's gevent and asyncio exit below 2). */
  readonly minCores?: number;
  /** Engine settings handed to the bridge as `config.loop.settings` (e.g. gevent's monkey patching). */
  settings?(options: ResolvedOptions): Record<string, unknown>;
}

/**
 * A suspend/resume engine (uWSGI: greenlet, ugreen, stackless, fiber): how an async core's
 * request is parked and resumed from any call depth (`uwsgi.suspend()`). Enabled by a flag
 * option; only meaningful with an `async` engine that the bridge runs without its own.
 */
export interface SuspendEngineDefinition {
  readonly name: string;
  readonly description: string;
  /** The flag option that enables it (`--greenlet`). */
  readonly option: string;
}

/** The engine chosen for this configuration (core/loop/select.ts). */
export interface LoopSelection {
  /** Engine name (`simple`, `async`, `gevent`…). */
  readonly engine: string;
  /** Who provides it: "core" or a plugin name. */
  readonly provider: string;
  readonly model: CoreModel;
  /** Requests one bridge process serves at once. */
  readonly cores: number;
  /** OS threads per bridge process that serve requests (1 for async engines). */
  readonly threads: number;
  /** The suspend engine, when one is enabled (`greenlet`). */
  readonly suspend: string | null;
  readonly settings: Record<string, unknown>;
  /** How the user asked for it, for messages ("--gevent 10", "--loop asyncio"). */
  readonly origin: string;
}
