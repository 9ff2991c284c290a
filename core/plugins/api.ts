/**
 * The plugin API: the one typed module a plugin (in-tree or third-party) is written against.
 *
 * A plugin is a module whose default export is `definePlugin({...})`, the TypeScript
 * counterpart of uWSGI's `struct uwsgi_plugin`: a name, an optional modifier1, the options
 * it owns, lifecycle hooks, and — for language plugins — a description of the bridge
 * (child runtime) that hosts its apps. See docs/plugins.md.
 */
import type { OptionSpec } from '../options/spec.ts';
import type { ResolvedOptions } from '../options/resolved.ts';
import type { LogEncoderDefinition, LoggerDefinition } from '../logging/api.ts';
import type { LoopEngineDefinition, SuspendEngineDefinition } from '../loop/api.ts';
import type { RouteActionDefinition, RouteConditionDefinition, RouteVarDefinition } from '../routing/api.ts';
import type { FastcgiAdapter } from '../bridge/fastcgi-translator.ts';

export type { LogEncoder, LogEncoderDefinition, LoggerContext, LoggerDefinition, LogTarget } from '../logging/api.ts';
export type { CoreModel, LoopEngineDefinition, SuspendEngineDefinition } from '../loop/api.ts';
export type { RouteActionDefinition, RouteConditionDefinition, RouteContext, RouteOutcome, RouteVarDefinition, RuleOrigin } from '../routing/api.ts';
export type { FastcgiAdapter, FastcgiPlan, FastcgiRequestVars } from '../bridge/fastcgi-translator.ts';
export type { FastcgiParam } from '../bridge/fastcgi-records.ts';

/** Bumped when the descriptor shape changes incompatibly; the loader refuses other versions. */
export const PLUGIN_API_VERSION = 1;

/** One application a language plugin will host, as found in the options. */
export interface AppSpec {
  /** The mountpoint / app id ("" for the default app), as uWSGI's `--mount` and UWSGI_APPID use it. */
  mountpoint: string;
  /** What to load, in the plugin's own terms; passed to the bridge unchanged. */
  load: { kind: string; target: string; [extra: string]: string };
  /** Where the app came from, for error messages ("--wsgi-file hello.py"). */
  origin: string;
}

/** How to start one bridge process of a language plugin. */
export interface BridgeCommand {
  /** Executable (an interpreter: python3, perl, ruby…) resolved through PATH when not absolute. */
  file: string;
  args: string[];
  /** Extra environment for the bridge (merged over the core's environment). */
  env?: Record<string, string>;
  /**
   * Also give the pool socket as fd 0 (stdin) instead of /dev/null: for runtimes that can
   * adopt an inherited socket only there (Java's System.inheritedChannel(), used by the jvm
   * bridge). fd 3 is passed as always. A contract variant: docs/ARCHITECTURE.md, docs/jvm.md.
   */
  listenOnStdin?: boolean;
}

/** A language plugin's bridge: apps run in child runtimes spoken to over the uwsgi protocol. */
export interface BridgeDescriptor {
  /** Which apps the options ask this plugin to host (empty: the plugin hosts nothing). */
  apps(options: ResolvedOptions): AppSpec[];
  /**
   * Claim an app path given to `--mount /x=PATH` or as a bare argument (uWSGI's "magic"):
   * return the load spec when PATH looks like one of this plugin's apps, else null.
   * `bare` is true for a bare command-line argument, where uWSGI's magic is stricter (a
   * Python module needs its `:callable`, so `conf.foo` is not taken for a module).
   */
  claimMount?(path: string, context?: { bare: boolean }): AppSpec['load'] | null;
  /** The command that runs one bridge process. */
  command(options: ResolvedOptions): BridgeCommand;
  /**
   * Plugin settings handed to every bridge as `config.plugin` (docs/bridge-protocol.md §1);
   * the core adds `catchExceptions`.
   */
  settings?(options: ResolvedOptions): Record<string, unknown>;
  /** Human name of the runtime for logs ("Python", "Perl"). */
  runtime: string;
  /**
   * Most threads one bridge process can run (e.g. 1 for Perl): the pool never gets more,
   * whatever `--threads` says, so the core never opens connections no bridge would accept.
   */
  maxThreads?: number;
  /**
   * Loop engines the bridge can run, by name (default: only "simple"). The core refuses any
   * other engine for this plugin's apps before spawning (docs/loop-engines.md), and checks
   * the `loops` list of the bridge's ready message.
   */
  loopEngines?: readonly string[];
  /** Suspend engines the bridge can use with its async engines (e.g. "greenlet"). */
  suspendEngines?: readonly string[];
  /**
   * The bridge hands off a FastCGI responder for each connection (php-cgi), and the core
   * worker talks FastCGI to it directly (docs/bridge-protocol.md §3.4). Called in every core
   * worker with the pool's `settings()`; the adapter turns each request's vars into FastCGI
   * params or an immediate answer.
   */
  fastcgi?(settings: Record<string, unknown>): FastcgiAdapter;
}

/** Context handed to lifecycle hooks. */
export interface PluginContext {
  readonly options: ResolvedOptions;
  /** Server message log (plain uWSGI-style lines). */
  log(message: string): void;
}

export interface PluginDescriptor {
  /** Unique name, as uWSGI names the plugin ("python", "psgi", "http", "router_redirect"). */
  readonly name: string;
  /** Must equal PLUGIN_API_VERSION of the core that loads it. */
  readonly apiVersion: number;
  readonly version?: string;
  /** One line for `--help` and the options reference. */
  readonly description: string;
  /** Other plugins that must be loaded first (by name). */
  readonly requires?: readonly string[];
  /** The request modifier this plugin answers (0 python, 5 psgi, 7 rack, …). */
  readonly modifier1?: number;
  /** Options this plugin owns. */
  readonly options?: readonly OptionSpec[];
  /** Language plugins: the bridge that runs their apps. */
  readonly bridge?: BridgeDescriptor;
  /**
   * Loggers this plugin provides, by uWSGI name (`file`, `socket`, `syslog`…): what
   * `--logger [ID ]NAME:ARGS` and `--req-logger` find (uWSGI's uwsgi_register_logger).
   */
  readonly loggers?: readonly LoggerDefinition[];
  /** Log encoders this plugin provides (`--log-encoder NAME ARGS`; uWSGI's uwsgi_register_log_encoder). */
  readonly logEncoders?: readonly LogEncoderDefinition[];
  /**
   * Loop engines this plugin provides, by uWSGI name (`gevent`, `asyncio`): what `--loop NAME`
   * and the engine's shortcut option select (uWSGI's uwsgi_register_loop). docs/loop-engines.md.
   */
  readonly loopEngines?: readonly LoopEngineDefinition[];
  /** Suspend engines this plugin provides (`greenlet`), enabled by their flag option. */
  readonly suspendEngines?: readonly SuspendEngineDefinition[];
  /**
   * Internal-routing actions (`redirect:`, `basicauth:`…), `route-if` conditions and `${name[key]}`
   * route vars this plugin provides (uWSGI's uwsgi_register_router / _route_condition /
   * _route_var). docs/routing.md.
   */
  readonly routeActions?: readonly RouteActionDefinition[];
  readonly routeConditions?: readonly RouteConditionDefinition[];
  readonly routeVars?: readonly RouteVarDefinition[];
  /** Called once the option list is final, before sockets are bound. May throw to refuse the config. */
  init?(ctx: PluginContext): void | Promise<void>;
}

/**
 * Declare a plugin. Returns the descriptor unchanged; the function exists for type inference
 * and so every plugin reads the same way (fastify's `fp()`, vite's `defineConfig()`).
 */
export function definePlugin<const D extends PluginDescriptor>(descriptor: D): D {
  return descriptor;
}
