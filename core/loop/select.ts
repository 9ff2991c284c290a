/**
 * Choosing the loop engine for a configuration (uWSGI: `--loop`, `--async`, and shortcuts
 * such as `--gevent N`), and checking that a plugin's bridge can run it.
 * See docs/loop-engines.md.
 */
import { LoopEngineError } from '../errors.ts';
import type { ResolvedOptions } from '../options/resolved.ts';
import type { PluginDescriptor } from '../plugins/api.ts';
import type { LoopEngineDefinition, LoopSelection, SuspendEngineDefinition } from './api.ts';

/** The engines of the core itself, as uWSGI's core/loop.c registers `simple` and `async`. */
export const BUILTIN_LOOP_ENGINES: readonly LoopEngineDefinition[] = [
  {
    name: 'simple',
    description: "one request at a time per core; the cores are each worker's --threads (uWSGI's default loop)",
    cores: 'threads',
  },
  {
    name: 'async',
    description: '--async N cooperative cores per worker, driven by the uwsgi async API (yield after async_sleep, wait_fd_read/write; suspend with a suspend engine)',
    cores: 'async',
  },
];

/** What the selection needs from the plugin registry. */
export interface LoopEngineSource {
  loopEngines(): Array<{ engine: LoopEngineDefinition; plugin: string }>;
  suspendEngines(): Array<{ engine: SuspendEngineDefinition; plugin: string }>;
  unloadedLoopEnginePlugin(name: string): string | undefined;
}

/** Every loop engine this configuration can select: the core's, then the loaded plugins' (first wins). */
export function availableLoopEngines(source: LoopEngineSource): Array<{ engine: LoopEngineDefinition; provider: string }> {
  const out = BUILTIN_LOOP_ENGINES.map((engine) => ({ engine, provider: 'core' }));
  for (const { engine, plugin } of source.loopEngines()) {
    if (!out.some((e) => e.engine.name === engine.name)) out.push({ engine, provider: plugin });
  }
  return out;
}

/** `--loop-list`: uWSGI prints "*** uWSGI loop engines ***" then one name a line. */
export function formatLoopList(source: LoopEngineSource): string {
  const lines = ['*** uWSGI loop engines ***'];
  for (const { engine, provider } of availableLoopEngines(source)) {
    lines.push(`${engine.name.padEnd(8)} ${engine.description}${provider === 'core' ? '' : ` [plugin ${provider}]`}`);
  }
  const suspend = source.suspendEngines();
  if (suspend.length > 0) {
    lines.push('*** suspend engines ***');
    for (const { engine, plugin } of suspend) lines.push(`${engine.name.padEnd(8)} ${engine.description} (--${engine.option}) [plugin ${plugin}]`);
  }
  return lines.join('\n') + '\n';
}

function wholeNumber(key: string, value: string): number {
  const v = value.trim();
  if (!/^\d+$/.test(v)) throw new LoopEngineError(`--${key} needs a whole number of async cores, got "${value}"`);
  return Number(v);
}

/**
 * The engine this configuration selects. Options are applied in the order given, as uWSGI
 * does: `--async N` sets the cores, a shortcut (`--gevent N`) sets cores and engine,
 * `--loop NAME` sets the engine. Without an engine: `async` when `--async` > 1, else `simple`.
 */
export function selectLoop(options: ResolvedOptions, source: LoopEngineSource): LoopSelection {
  const engines = availableLoopEngines(source);
  const shortcuts = new Map<string, LoopEngineDefinition>();
  for (const { engine } of engines) if (engine.shortcut) shortcuts.set(engine.shortcut, engine);

  let asyncCores = 0;
  let asyncOrigin = '';
  let name: string | null = null;
  let origin = '';
  for (const e of options.entries) {
    if (e.key === 'async') {
      asyncCores = wholeNumber('async', e.value);
      asyncOrigin = `--async ${e.value}`;
    } else if (e.key === 'loop') {
      name = e.value.trim();
      origin = `--loop ${e.value}`;
    } else {
      const engine = shortcuts.get(e.key);
      if (engine) {
        asyncCores = wholeNumber(e.key, e.value);
        asyncOrigin = `--${e.key} ${e.value}`;
        name = engine.name;
        origin = asyncOrigin;
      }
    }
  }
  if (name === null) {
    name = asyncCores > 1 ? 'async' : 'simple';
    origin = asyncCores > 1 ? asyncOrigin : 'the default';
  }

  const found = engines.find((e) => e.engine.name === name);
  if (!found) {
    const plugin = source.unloadedLoopEnginePlugin(name);
    if (plugin) {
      throw new LoopEngineError(`the "${name}" loop engine (${origin}) is provided by plugin "${plugin}", which is not loaded: add --plugins ${plugin}`);
    }
    throw new LoopEngineError(
      `unknown loop engine "${name}" (${origin}): the loaded loop engines are ${engines.map((e) => e.engine.name).join(', ')} (--loop-list describes them; a plugin may provide more)`,
    );
  }
  const { engine, provider } = found;
  const threads = options.int('threads', 1);

  let suspend: string | null = null;
  for (const { engine: s } of source.suspendEngines()) {
    if (options.flag(s.option)) {
      suspend = s.name;
      break;
    }
  }

  const settings = engine.settings?.(options) ?? {};
  if (engine.cores === 'threads') {
    return { engine: engine.name, provider, model: 'threads', cores: threads, threads, suspend: null, settings, origin };
  }
  const cores = asyncCores > 0 ? asyncCores : 1;
  const min = engine.minCores ?? 1;
  if (cores < min) {
    const how = engine.shortcut ? `--${engine.shortcut} N` : `--async N`;
    throw new LoopEngineError(`the "${engine.name}" loop engine requires async mode with at least ${min} cores (${asyncOrigin || origin}): use ${how} with N >= ${min}`);
  }
  if (threads > 1) {
    throw new LoopEngineError(
      `--threads ${threads} cannot be combined with the "${engine.name}" loop engine (${origin}): its ${cores} cores take turns on one thread per worker; drop --threads and raise --processes (or the async cores) instead`,
    );
  }
  return { engine: engine.name, provider, model: 'async', cores, threads: 1, suspend, settings, origin };
}

/** Refuse an engine (or suspend engine) that a plugin's bridge cannot run, before spawning it. */
export function checkBridgeRunsLoop(selection: LoopSelection, plugin: PluginDescriptor): void {
  const bridge = plugin.bridge;
  if (!bridge) return;
  const engines = bridge.loopEngines ?? ['simple'];
  if (!engines.includes(selection.engine)) {
    const who = engines.length === 1 ? `it runs only "${engines[0]}"` : `it runs ${engines.map((e) => `"${e}"`).join(', ')}`;
    const hint = selection.model === 'async' ? '; for concurrency use --processes (and --threads where the bridge has them)' : '';
    throw new LoopEngineError(`the ${plugin.name} plugin's ${bridge.runtime} bridge cannot run the "${selection.engine}" loop engine (${selection.origin}): ${who}${hint}`);
  }
  if (selection.suspend) {
    const suspend = bridge.suspendEngines ?? [];
    if (!suspend.includes(selection.suspend)) {
      throw new LoopEngineError(`the ${plugin.name} plugin's ${bridge.runtime} bridge cannot use the "${selection.suspend}" suspend engine (--${selection.suspend})`);
    }
  }
}
