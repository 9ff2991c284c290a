/**
 * The command-line entry: parse the configuration, answer introspection options, then run
 * the server (core/master/master.ts). Errors end the process with their code and a message
 * that says what to do; they never print a Node stack trace.
 */
import { loadConfig } from './config/loader.ts';
import { formatShowConfig, getValues } from './config/introspect.ts';
import { ConfigError, TsuwsgiError } from './errors.ts';
import { POSITIONAL_KEY } from './config/builtin-options.ts';
import type { ServerLog } from './logging/server-log.ts';
import { createMasterLog, formatLoggerList, type MasterLog } from './logging/setup.ts';
import { formatLoopList } from './loop/select.ts';
import { formatRouterList } from './routing/router.ts';
import { runCoreWorkerChild, runServer } from './master/master.ts';
import { CORE_OPTIONS } from './options/core-options.ts';
import { formatHelp } from './options/help.ts';
import { ResolvedOptions } from './options/resolved.ts';
import { defaultPluginSource } from './plugins/catalog.ts';
import { PluginRegistry } from './plugins/registry.ts';
import { UWSGI_COMPAT_VERSION } from './version.ts';
import { EMBEDDED_CONFIG } from './paths.ts';

/**
 * Thrown by fail() instead of exiting when `fallback-config` applies: main() is run again,
 * in the same process, with the fallback file as its only argument (spec/core.md §4.12).
 */
class FallbackRestart {
  constructor(readonly file: string) {}
}

/** How many fallbacks may chain (a fallback file may name another, or itself). */
const MAX_FALLBACKS = 8;

/** Exit statuses that run the fallback config: uWSGI's 1, and 22 (an app failed to load). */
const FALLBACK_STATUSES = new Set([1, 22]);

interface RunState {
  /** The last `fallback-config` parsed so far, if any. */
  fallbackConfig?: string;
  fallbacksUsed: number;
}

function fail(err: unknown, state: RunState, log?: ServerLog): never {
  const write = (line: string): void => {
    if (log) log.error(line);
    else process.stderr.write(line + '\n');
  };
  let status = 1;
  if (err instanceof TsuwsgiError) {
    write(`tsuwsgi: error ${err.code}: ${err.message}`);
    status = err.exitCode;
  } else write(`tsuwsgi: internal error (please report it): ${(err as Error)?.stack ?? String(err)}`);
  if (state.fallbackConfig !== undefined && FALLBACK_STATUSES.has(status) && state.fallbacksUsed < MAX_FALLBACKS) {
    // uWSGI's atexit hook prints these two lines and execs itself with the fallback file;
    // Node 20 cannot exec, so main() starts over in this process (same pid, as in uWSGI).
    write(`!!! tsuwsgi (pid: ${process.pid}) exited with status ${status} !!!`);
    write(`!!! Fallback config to ${state.fallbackConfig} !!!`);
    log?.flushSync();
    throw new FallbackRestart(state.fallbackConfig);
  }
  if (state.fallbackConfig !== undefined && FALLBACK_STATUSES.has(status)) {
    write(`!!! not falling back again: ${MAX_FALLBACKS} fallback configs in a row failed (check each fallback-config file) !!!`);
  }
  log?.flushSync();
  process.exit(status);
}

/**
 * A bare argument that is not a config file must be an app some loaded plugin recognises
 * (`app.py`, `module:callable`), else uWSGI stops with "unable to load configuration from
 * X" (spec/core.md §4.2) — checked before `--show-config`/`--no-server`, as uWSGI does.
 */
function checkBareArguments(options: ResolvedOptions, registry: PluginRegistry): void {
  for (const arg of options.all(POSITIONAL_KEY)) {
    if (registry.plugins().some((d) => d.bridge?.claimMount?.(arg, { bare: true }))) continue;
    throw new ConfigError(
      `unable to load configuration from ${arg}: it is not a config file (.ini, .xml, .yaml, .yml, .json, .js; use --ini ${arg} for another extension) and no loaded plugin takes it as an app (load the language plugin with --plugins NAME)`,
    );
  }
}

async function main(argv: string[], state: RunState, startCwd: string): Promise<void> {
  const registry = new PluginRegistry(CORE_OPTIONS, defaultPluginSource());
  // The same sources are read again on SIGHUP (uWSGI re-reads its config on a reload).
  const readConfig = (): ResolvedOptions =>
    new ResolvedOptions(
      loadConfig({
        argv,
        env: process.env,
        cwd: startCwd,
        lookup: registry,
        ...(EMBEDDED_CONFIG !== undefined ? { embeddedIni: EMBEDDED_CONFIG } : {}),
        log: (line) => process.stderr.write(line + '\n'),
        onFallbackConfig: (file) => {
          state.fallbackConfig = file;
        },
      }).entries,
    );
  let options: ResolvedOptions;
  try {
    options = readConfig();
    checkBareArguments(options, registry);
  } catch (err) {
    fail(err, state);
  }

  if (options.flag('version')) {
    process.stdout.write(UWSGI_COMPAT_VERSION + '\n');
    process.exit(0);
  }
  if (options.flag('help')) {
    process.stdout.write(formatHelp(registry.allOptions(), (o) => o === 'core' || registry.isLoaded(o)));
    process.exit(0);
  }
  if (options.has('get')) {
    for (const key of options.all('get')) for (const v of getValues(options.entries, key)) process.stdout.write(v + '\n');
    process.exit(0);
  }
  if (options.flag('loop-list')) {
    process.stdout.write(formatLoopList(registry));
    process.exit(0);
  }
  if (options.flag('router-list')) {
    process.stdout.write(formatRouterList(registry.plugins()));
    process.exit(0);
  }
  if (options.flag('logger-list')) {
    process.stdout.write(formatLoggerList(registry));
    process.exit(0);
  }
  if (options.has('build-plugin')) {
    try {
      // Loaded on demand: the bundler is only needed for this command.
      const { buildPlugin } = await import('./build/build-plugin.ts');
      await buildPlugin(options.string('build-plugin') ?? '', process.cwd(), (line) => process.stdout.write(line + '\n'));
    } catch (err) {
      fail(err, state);
    }
    process.exit(0);
  }
  if (options.flag('plugins-list')) {
    const names = new Set([...registry.availableNames(), ...registry.plugins().map((d) => d.name)]);
    for (const name of [...names].sort()) {
      const file = registry.pluginFile(name);
      process.stdout.write(`${name}${registry.isLoaded(name) ? ` (loaded${file ? ` from ${file}` : ''})` : ''}\n`);
    }
    process.exit(0);
  }

  // Loggers, routes and encoders (core/logging/setup.ts); a bad one stops here with a clear error.
  let log: MasterLog;
  try {
    log = await createMasterLog(options, registry);
  } catch (err) {
    fail(err, state);
  }
  for (const msg of options.all('print')) log.info(msg);
  if (options.flag('show-config')) log.info(formatShowConfig(options.entries).replace(/\n$/, ''));
  if (options.flag('no-server')) {
    log.info('no-server mode requested. Goodbye.');
    await log.close();
    process.exit(0);
  }
  try {
    const { done } = await runServer(options, registry, log, readConfig);
    const code = await done;
    await log.close();
    process.exit(code);
  } catch (err) {
    try {
      fail(err, state, log);
    } finally {
      // Only reached by a fallback restart: release log targets (pipe commands, sockets) first.
      await log.close();
    }
  }
}

async function start(): Promise<void> {
  if (process.env.TSUWSGI_ROLE === 'core-worker') {
    runCoreWorkerChild();
    return;
  }
  const startCwd = process.cwd();
  const state: RunState = { fallbacksUsed: 0 };
  let argv = process.argv.slice(2);
  for (;;) {
    try {
      await main(argv, state, startCwd);
      return;
    } catch (err) {
      if (!(err instanceof FallbackRestart)) throw err;
      // The original options are discarded: only the fallback file counts (§4.12).
      argv = [err.file];
      process.chdir(startCwd);
      state.fallbacksUsed++;
      state.fallbackConfig = undefined;
    }
  }
}

void start();
