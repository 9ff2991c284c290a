/**
 * The master role: from the final options, find the apps, bind the sockets, start the app
 * pools, start the core worker(s), and handle signals — SIGINT/SIGQUIT stop now, SIGTERM
 * stops gracefully (the container-friendly meaning; uWSGI's "brutal reload" on SIGTERM is
 * its users' most reported trap), SIGHUP reloads the app workers without dropping a request.
 *
 * Without --master this all runs in one process together with the core worker role.
 * With --master the core worker(s) are child processes that inherit the sockets, so a
 * crash in the request path is survivable: the master respawns them and the sockets stay open.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ENTRY_SCRIPT } from '../paths.ts';
import { ConfigError, InvalidOptionError, TsuwsgiError } from '../errors.ts';
import type { ServerLog } from '../logging/server-log.ts';
import type { ResolvedOptions } from '../options/resolved.ts';
import type { AppSpec, PluginDescriptor } from '../plugins/api.ts';
import { runInitHooks } from '../plugins/lifecycle.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import { CoreWorker, type CoreWorkerPlan, type FastcgiHandoff, type MasterLink } from '../server/core-worker.ts';
import { routingPlan } from '../routing/router.ts';
import { bindAddress, parseAddress, type BoundSocket, type SocketProtocol } from '../server/sockets.ts';
import { UWSGI_COMPAT_VERSION } from '../version.ts';
import { ctime } from '../logging/request-log.ts';
import { createChildLog, requestLogSettings } from '../logging/worker-log.ts';
import type { Readable } from 'node:stream';
import { AppPool, type AppPoolOptions } from './app-pool.ts';
import { dropPrivileges } from './privileges.ts';
import { checkBridgeRunsLoop, selectLoop } from '../loop/select.ts';
import type { LoopSelection } from '../loop/api.ts';
import { staticPlanFrom } from '../static/plan.ts';
import type { CoreWorkerStats } from '../stats/counters.ts';
import type { StatsDocument } from '../stats/document.ts';
import { CORE_WORKER_STATS_TIMEOUT_MS, gatherStats } from '../stats/gather.ts';
import { parseStatsAddress, StatsServer } from '../stats/server.ts';
import { formatUsr1Stats } from '../stats/usr1.ts';


/** Apps per language plugin, from the plugin's own options, --mount and bare arguments. */
export function collectApps(options: ResolvedOptions, registry: PluginRegistry): Map<PluginDescriptor, AppSpec[]> {
  const byPlugin = new Map<PluginDescriptor, AppSpec[]>();
  const add = (d: PluginDescriptor, app: AppSpec): void => {
    const list = byPlugin.get(d) ?? [];
    if (list.some((a) => a.mountpoint === app.mountpoint)) {
      throw new ConfigError(`two apps are mounted at "${app.mountpoint || '/'}" (${list.find((a) => a.mountpoint === app.mountpoint)!.origin} and ${app.origin}): give each a different mountpoint`);
    }
    list.push(app);
    byPlugin.set(d, list);
  };
  const bridged = registry.plugins().filter((d) => d.bridge);
  for (const d of bridged) for (const app of d.bridge!.apps(options)) add(d, app);
  const claim = (target: string, mountpoint: string, origin: string, bare = false): void => {
    for (const d of bridged) {
      const load = d.bridge!.claimMount?.(target, { bare });
      if (load) {
        add(d, { mountpoint, load, origin });
        return;
      }
    }
    throw new ConfigError(`unable to load configuration from ${target} (${origin}): no loaded plugin recognises it (load the language plugin with --plugins NAME)`);
  };
  for (const m of options.all('mount')) {
    const eq = m.indexOf('=');
    if (eq <= 0) throw new InvalidOptionError(`invalid --mount "${m}": use MOUNTPOINT=APP, e.g. --mount /app=app.py`);
    let mp = m.slice(0, eq).trim();
    if (mp === '/') mp = '';
    claim(m.slice(eq + 1).trim(), mp, `--mount ${m}`);
  }
  for (const p of options.all('__positional__')) claim(p, '', p, true);
  return byPlugin;
}

interface SocketRequest {
  option: string;
  spec: string;
  protocol: SocketProtocol;
}

function socketRequests(options: ResolvedOptions, registry: PluginRegistry): SocketRequest[] {
  const proto = (options.string('protocol') ?? 'uwsgi').toLowerCase();
  if (proto !== 'uwsgi' && proto !== 'http') {
    throw new InvalidOptionError(`--protocol ${proto} is not supported yet: use uwsgi or http`);
  }
  const out: SocketRequest[] = [];
  for (const e of options.entries) {
    if (e.key === 'socket') out.push({ option: 'socket', spec: e.value, protocol: proto });
    else if (e.key === 'http-socket') out.push({ option: 'http-socket', spec: e.value, protocol: 'http' });
    else if (e.key === 'http' && registry.isLoaded('http')) out.push({ option: 'http', spec: e.value, protocol: 'http' });
  }
  return out;
}

/** Close the descriptors of sockets bound by a startup that failed (a fallback config may need the ports). */
function closeBoundSockets(sockets: readonly { fd: number }[]): void {
  for (const s of sockets) {
    try {
      fs.closeSync(s.fd);
    } catch {
      // already closed
    }
  }
}

function bindSockets(requests: SocketRequest[], chmodSocket: string | undefined, log: ServerLog): BoundSocket[] {
  const bound: BoundSocket[] = [];
  try {
    requests.forEach((r, index) => bound.push(bindOne(r, index, chmodSocket, log)));
  } catch (err) {
    closeBoundSockets(bound);
    throw err;
  }
  return bound;
}

function bindOne(r: SocketRequest, index: number, chmodSocket: string | undefined, log: ServerLog): BoundSocket {
  {
    const addr = parseAddress(r.spec);
    const bound = bindAddress(addr, r.spec);
    if (chmodSocket !== undefined && addr.family === 'unix' && !addr.abstract) {
      // uWSGI: --chmod-socket without a value means 666.
      const mode = chmodSocket === '' || chmodSocket === 'true' ? 0o666 : Number.parseInt(chmodSocket, 8);
      if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new InvalidOptionError(`--chmod-socket ${chmodSocket}: use an octal mode such as 660`);
      fs.chmodSync(addr.path, mode);
      log.info(`chmod() socket to ${mode.toString(8)} for ${addr.path}`);
    }
    const auto = addr.family === 'tcp' && addr.port === 0 ? ' (port auto-assigned)' : '';
    if (r.option === 'http') log.info(`uWSGI http bound on ${bound.name} fd ${bound.fd}${auto}`);
    else log.info(`uwsgi socket ${index} bound to ${bound.family === 'unix' ? 'UNIX' : 'TCP'} address ${bound.name} fd ${bound.fd}${auto}`);
    return { index, protocol: r.protocol, option: r.option, spec: r.spec, name: bound.name, fd: bound.fd, family: bound.family };
  }
}

function parseModifierList(text: string, option: string): number[] {
  return text.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0 || n > 255) throw new InvalidOptionError(`--${option}: "${s}" is not a modifier (0..255)`);
    return n;
  });
}

export interface RunResult {
  /** Resolves with the exit status when the server stops. */
  done: Promise<number>;
}

/**
 * Options a graceful reload applies to the new app workers (uWSGI re-reads its config on
 * SIGHUP); options of language plugins count too. Any other change needs a restart, and the
 * reload says so.
 */
const WORKER_OPTIONS = new Set(['processes', 'workers', 'threads', 'async', 'loop', 'env', 'mount', 'catch-exceptions', 'bridge-ready-timeout', 'enable-threads', 'lazy-apps', 'lazy', 'need-app']);
/** Options that only print or exit: never "changed" in a way that matters. */
const INTROSPECTION_OPTIONS = new Set(['show-config', 'print', 'get', 'version', 'help', 'plugins-list', 'ini', 'include', 'inherit', 'set', 'set-placeholder', 'strict']);

/** Options whose value differs between two configurations and that a reload cannot apply. */
export function restartOnlyChanges(before: ResolvedOptions, after: ResolvedOptions, registry: PluginRegistry): string[] {
  const keys = new Set([...before.entries.map((e) => e.key), ...after.entries.map((e) => e.key)]);
  const out: string[] = [];
  for (const key of keys) {
    const owner = registry.lookup(key);
    if (!owner || WORKER_OPTIONS.has(key) || INTROSPECTION_OPTIONS.has(key)) continue;
    const plugin = owner.owner !== 'core' ? registry.plugins().find((d) => d.name === owner.owner) : undefined;
    // Options of language plugins and of loop/suspend engines apply to the new workers.
    if (plugin?.bridge || plugin?.loopEngines || plugin?.suspendEngines) continue;
    if (JSON.stringify(before.all(key)) !== JSON.stringify(after.all(key))) out.push(key);
  }
  return out;
}

function appEnvironment(options: ResolvedOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const e of options.all('env')) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new InvalidOptionError(`invalid --env "${e}": use NAME=VALUE`);
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  // Internal variables of a parent tsuwsgi must not leak into bridges.
  delete env.TSUWSGI_ROLE;
  return env;
}

function workerCounts(options: ResolvedOptions): { processes: number; threads: number } {
  const processes = options.int('processes', 1);
  const threads = options.int('threads', 1);
  if (processes < 1) throw new InvalidOptionError('--processes must be at least 1');
  if (threads < 1) throw new InvalidOptionError('--threads must be at least 1');
  return { processes, threads };
}

/** The settings of one language plugin's pool that come from the configuration. */
function poolSettings(
  options: ResolvedOptions,
  d: PluginDescriptor,
  apps: AppSpec[],
  bridgeBase: Record<string, unknown>,
  loop: LoopSelection,
): Pick<AppPoolOptions, 'processes' | 'threads' | 'cores' | 'loop' | 'command' | 'apps' | 'bridgeConfig' | 'env' | 'readyTimeout'> {
  const bridge = d.bridge!;
  const { processes } = workerCounts(options);
  checkBridgeRunsLoop(loop, d);
  // Cores are what one bridge process serves at once: its threads (simple loop, capped by
  // what the bridge can run), or the async cores of an async engine (docs/loop-engines.md).
  let { threads, cores } = loop;
  if (loop.model === 'threads' && bridge.maxThreads !== undefined) threads = cores = Math.min(threads, bridge.maxThreads);
  return {
    processes,
    threads,
    cores,
    loop: loop.engine,
    command: bridge.command(options),
    apps,
    bridgeConfig: {
      ...bridgeBase,
      options: options.toObject(),
      loop: { name: loop.engine, cores, suspend: loop.suspend, settings: loop.settings },
      plugin: { catchExceptions: options.flag('catch-exceptions'), ...bridge.settings?.(options) },
    },
    env: appEnvironment(options),
    readyTimeout: options.int('bridge-ready-timeout', 60),
  };
}

export async function runServer(
  initialOptions: ResolvedOptions,
  registry: PluginRegistry,
  log: ServerLog,
  /** Re-read the configuration (SIGHUP); throws when it is invalid. */
  rereadConfig?: () => ResolvedOptions,
): Promise<RunResult> {
  const options = initialOptions;
  log.info(`*** Starting uWSGI ${UWSGI_COMPAT_VERSION} (64bit) on [${ctime(Date.now())}] ***`);
  const chdir = options.string('chdir');
  if (chdir) {
    try {
      process.chdir(chdir);
    } catch (err) {
      throw new InvalidOptionError(`--chdir ${chdir}: ${(err as Error).message}`);
    }
  }
  for (const [from, to] of options.all('remap-modifier').map((r) => r.split(':'))) {
    if (from === undefined || to === undefined) throw new InvalidOptionError('--remap-modifier needs FROM:TO');
    registry.remap(Number(from), Number(to));
  }

  await runInitHooks(registry.plugins(), { options, log: (m) => log.info(m) });
  // Routing rules are checked here, before any socket is bound: a bad rule is fatal (as uWSGI).
  const routing = routingPlan(options, registry.plugins(), (a) => registry.unloadedRouteActionPlugin(a), (line) => log.info(line), (name) => registry.pluginFile(name));
  const apps = collectApps(options, registry);
  workerCounts(options);
  // Static options are checked before any socket is bound, like routing rules.
  const staticPlan = staticPlanFrom(options);
  // The loop engine: refused here (before any socket is bound) when unknown or when a
  // plugin's bridge cannot run it (docs/loop-engines.md).
  const loop = selectLoop(options, registry);
  for (const d of apps.keys()) checkBridgeRunsLoop(loop, d);
  if (loop.model === 'async') {
    log.info(`async cores set to ${loop.cores} per worker (loop engine: ${loop.engine}${loop.suspend ? `, suspend engine: ${loop.suspend}` : ''})`);
  }
  const bufferSize = options.int('buffer-size', 65535);
  if (bufferSize < 1024 || bufferSize > 65535) throw new InvalidOptionError('--buffer-size must be between 1024 and 65535 (the uwsgi packet limit)');

  // A bad --stats address fails here, before anything is bound.
  const statsAddress = options.string('stats');
  if (statsAddress !== undefined) parseStatsAddress(statsAddress);

  const requests = socketRequests(options, registry);
  if (requests.length === 0) {
    throw new ConfigError('no socket to serve: add --http-socket ADDR (HTTP), --socket ADDR (uwsgi, for nginx uwsgi_pass) or --http ADDR');
  }
  const sockets = bindSockets(requests, options.has('chmod-socket') ? options.string('chmod-socket') : undefined, log);

  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-'));
  dropPrivileges(options, runDir, log);
  log.openLate?.();

  // Several core workers need a master to supervise them: --core-workers N>1 implies it
  // (as several uWSGI options imply --master).
  const master = options.flag('master') || options.int('core-workers', 1) > 1;
  if (master) log.info(`spawned uWSGI master process (pid: ${process.pid})`);
  const pools = new Map<string, AppPool>();
  let coreWorkers: CoreWorkerHandle[] = [];
  let localCore: CoreWorker | null = null;
  const reloadMercy = options.int('worker-reload-mercy', 60);

  // The stats server (core/stats/): the master builds the document from its pools and the
  // core workers' counters, gathered when a client connects (and on SIGUSR1).
  const produceStats = (): Promise<StatsDocument> =>
    gatherStats({
      version: UWSGI_COMPAT_VERSION,
      sockets,
      listenBacklog: options.int('listen', 100),
      pools: () =>
        [...pools.values()].map((p) => ({
          name: p.opts.name,
          modifier1: registry.plugins().find((d) => d.name === p.opts.name)?.modifier1 ?? 0,
          cores: p.opts.cores,
          mountpoints: p.opts.apps.map((a) => a.mountpoint),
          slots: p.workerSlots(),
        })),
      coreWorkers: async () => {
        if (localCore) return [localCore.statsSnapshot()];
        const all = await Promise.all(coreWorkers.map((cw) => cw.stats(CORE_WORKER_STATS_TIMEOUT_MS)));
        return all.filter((s): s is CoreWorkerStats => s !== null);
      },
    });
  let statsServer: StatsServer | null = null;
  if (statsAddress !== undefined) {
    try {
      statsServer = await StatsServer.start({
        address: statsAddress,
        http: options.flag('stats-http'),
        minified: options.flag('stats-minified'),
        noCores: options.flag('stats-no-cores'),
        produce: produceStats,
        log,
      });
    } catch (err) {
      fs.rmSync(runDir, { recursive: true, force: true });
      closeBoundSockets(sockets);
      throw err;
    }
  }

  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  /** Move every core worker to a pool's new generation; resolves when all have moved. */
  const switchPool = async (pool: AppPool): Promise<void> => {
    const { fastcgi } = fastcgiHandoff(pool.opts.name, pool);
    localCore?.switchPool(pool.opts.name, pool.socketPath, pool.capacity, fastcgi);
    await Promise.all(coreWorkers.map((cw) => cw.switchPool(pool.opts.name, pool.socketPath, pool.capacity, fastcgi)));
  };
  /**
   * Re-read the configuration for a reload: per pool, the settings its new workers get.
   * null keeps the running settings (no re-read possible, an invalid file, or a change of
   * app layout, which needs a restart).
   */
  let current = options;
  const rereadSettings = (): Map<string, Partial<AppPoolOptions>> | null => {
    if (!rereadConfig) return null;
    let next: ResolvedOptions;
    let nextApps: Map<PluginDescriptor, AppSpec[]>;
    let nextLoop: LoopSelection;
    try {
      next = rereadConfig();
      nextApps = collectApps(next, registry);
      workerCounts(next);
      nextLoop = selectLoop(next, registry);
      for (const d of nextApps.keys()) checkBridgeRunsLoop(nextLoop, d);
      appEnvironment(next);
    } catch (err) {
      log.error(`configuration not reloaded: ${(err as Error).message}; the workers restart with the running configuration`);
      return null;
    }
    const restart = restartOnlyChanges(current, next, registry);
    if (restart.length) log.warn(`configuration re-read; changes to ${restart.map((k) => `--${k}`).join(', ')} need a restart of tsuwsgi to apply`);
    const layout = (m: Map<PluginDescriptor, AppSpec[]>): string =>
      JSON.stringify([...m].map(([d, list]) => [d.name, list.map((a) => a.mountpoint)]).sort());
    if (layout(nextApps) !== layout(apps)) {
      log.warn('configuration re-read; the apps or their mountpoints changed, which needs a restart of tsuwsgi: the workers restart with the running apps');
      return null;
    }
    current = next;
    const out = new Map<string, Partial<AppPoolOptions>>();
    for (const [d, list] of nextApps) out.set(d.name, poolSettings(next, d, list, bridgeBase, nextLoop));
    return out;
  };
  // Reloads run one at a time; a SIGHUP during a reload schedules one more afterwards.
  let reloading: Promise<void> | null = null;
  let reloadAgain = false;
  const reload = async (): Promise<void> => {
    if (stopping) return;
    if (reloading) {
      reloadAgain = true;
      return;
    }
    reloading = (async () => {
      do {
        reloadAgain = false;
        log.info('...gracefully killing workers...');
        // uWSGI --log-reopen: reopen the log files on reload (after an external logrotate).
        if (current.flag('log-reopen')) log.reopen();
        const next = rereadSettings();
        for (const pool of pools.values()) await pool.reload(next?.get(pool.opts.name));
        log.info('workers reloaded');
      } while (reloadAgain && !stopping);
    })();
    await reloading;
    reloading = null;
  };
  const stop = async (graceful: boolean): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info(graceful ? 'SIGTERM received: stopping gracefully...' : 'SIGINT/SIGQUIT received...killing workers...');
    await Promise.all([
      localCore?.stop(graceful, reloadMercy * 1000),
      ...coreWorkers.map((cw) => cw.stop(graceful, reloadMercy * 1000)),
    ]);
    await Promise.all([...pools.values()].map((p) => p.stop(graceful)));
    await statsServer?.close();
    fs.rmSync(runDir, { recursive: true, force: true });
    const pidfile = options.string('pidfile');
    if (pidfile) fs.rmSync(pidfile, { force: true });
    log.info('goodbye to uWSGI.');
    resolveDone(0);
  };

  const bridgeBase = {
    masterPid: process.pid,
    version: UWSGI_COMPAT_VERSION,
    hostname: os.hostname(),
    bufferSize,
    isReload: false,
    startedOn: Math.floor(Date.now() / 1000),
  };
  try {
    await Promise.all(
      [...apps].map(async ([d, list]) => {
        const bridge = d.bridge!;
        const pool = new AppPool(
          {
            name: d.name,
            runtime: bridge.runtime,
            ...poolSettings(options, d, list, bridgeBase, loop),
            log,
            runDir,
            listenBacklog: options.int('listen', 100),
            reloadMercy,
          },
          {
            onAppRequest: (kind) => void (kind === 'reload' ? reload() : stop(true)),
            onSwitch: switchPool,
          },
        );
        pools.set(d.name, pool);
        await pool.start();
        list.forEach((a, i) => log.info(`${bridge.runtime} app ${i} (mountpoint='${a.mountpoint}') ready (${a.origin})`));
      }),
    );
  } catch (err) {
    await Promise.all([...pools.values()].map((p) => p.stop(false)));
    await statsServer?.close();
    fs.rmSync(runDir, { recursive: true, force: true });
    closeBoundSockets(sockets);
    throw err;
  }
  if (apps.size === 0) log.warn('*** no app loaded: add --wsgi-file, --module or --mount; every request will be refused ***');

  // modifier1 → pool, honouring N:name binding and remap-modifier.
  const modifierRoutes: Record<number, string> = {};
  for (let m = 0; m < 256; m++) {
    const d = registry.pluginAt(m);
    if (d && pools.has(d.name)) modifierRoutes[m] = d.name;
  }
  const firstPool = [...pools.keys()][0] ?? null;
  /** A pool whose bridges hand off FastCGI responders: what a core worker needs to make its adapter. */
  const fastcgiHandoff = (name: string, pool: AppPool = pools.get(name)!): { fastcgi?: FastcgiHandoff } => {
    const d = registry.plugins().find((p) => p.name === name);
    if (!d?.bridge?.fastcgi) return {};
    const file = registry.pluginFile(name);
    return { fastcgi: { plugin: name, ...(file !== undefined ? { file: path.resolve(file) } : {}), settings: (pool.opts.bridgeConfig.plugin ?? {}) as Record<string, unknown> } };
  };
  const plan: CoreWorkerPlan = {
    sockets,
    pools: [...pools.values()].map((p) => ({
      name: p.opts.name,
      socketPath: p.socketPath,
      capacity: p.capacity,
      mountpoints: p.opts.apps.map((a) => a.mountpoint),
      ...fastcgiHandoff(p.opts.name),
    })),
    modifierRoutes,
    defaultPool: firstPool,
    allowedModifiers: options.has('allowed-modifiers') ? parseModifierList(options.string('allowed-modifiers')!, 'allowed-modifiers') : null,
    manageScriptName: options.flag('manage-script-name'),
    noDefaultApp: options.flag('no-default-app'),
    bufferSize,
    maxVars: options.int('max-vars', 64),
    socketTimeout: options.int('socket-timeout', 4),
    limitPost: options.int('limit-post', 0),
    keepAliveSeconds: options.string('http-keepalive') === 'true' ? 5 : options.int('http-keepalive', 5),
    listenBacklog: options.int('listen', 100),
    httpSocketModifier1: options.int('http-socket-modifier1', 0),
    httpSocketModifier2: options.int('http-socket-modifier2', 0),
    httpModifier1: registry.isLoaded('http') ? options.int('http-modifier1', 0) : 0,
    httpModifier2: registry.isLoaded('http') ? options.int('http-modifier2', 0) : 0,
    harakiri: options.int('harakiri', 0),
    bridgePipeline: options.int('bridge-pipeline', 4),
    requestLog: requestLogSettings(options),
    childLog: { reqFd: null, json: options.flag('log-json'), logDate: options.has('log-date') ? (options.string('log-date') ?? '') : null },
    workerIndex: 0,
    workerCount: 1,
    routing,
    staticFiles: staticPlan,
    statsTiming: statsServer !== null,
  };

  const masterLink: MasterLink = {
    harakiri: (poolName, pid, uri, startedAt, responderPid) => pools.get(poolName)?.harakiri(pid, uri, startedAt, responderPid),
  };

  if (master) {
    const count = coreWorkerCount(options.int('core-workers', 1), [...pools.values()].map((p) => p.capacity), log);
    coreWorkers = Array.from({ length: count }, (_, i) => new CoreWorkerHandle({ ...plan, workerIndex: i, workerCount: count }, log, masterLink, () => stopping));
    await Promise.all(coreWorkers.map((cw) => cw.start())).catch(async (err: unknown) => {
      // Release the stats address too: a fallback config started in this process may need it.
      await statsServer?.close();
      throw err;
    });
  } else {
    localCore = new CoreWorker(plan, log, masterLink);
    localCore.start();
  }

  const pidfile = options.string('pidfile');
  if (pidfile) {
    log.info(`writing pidfile to ${pidfile}`);
    fs.writeFileSync(pidfile, `${process.pid}\n`);
  }

  process.on('SIGINT', () => void stop(false));
  process.on('SIGQUIT', () => void stop(false));
  process.on('SIGTERM', () => void stop(true));
  process.on('SIGHUP', () => void reload());
  // uWSGI's master logs its stats on SIGUSR1 (this listener also keeps Node's default,
  // starting the inspector, from happening).
  process.on('SIGUSR1', () => {
    produceStats()
      .then((doc) => log.info(formatUsr1Stats(current.entries, doc).replace(/\n$/, '')))
      .catch((err: Error) => log.error(`SIGUSR1: cannot gather the stats: ${err.message}`));
  });

  log.info(`*** tsuwsgi is ready: ${sockets.length} socket(s), ${pools.size} app pool(s), pid ${process.pid} ***`);
  return { done };
}

/** A core worker child process (with --master): respawned by the master if it dies. */
class CoreWorkerHandle {
  private child: ChildProcess | null = null;
  private readonly plan: CoreWorkerPlan;
  private readonly log: ServerLog;
  private readonly master: MasterLink;
  private readonly isStopping: () => boolean;
  private exited: Promise<void> = Promise.resolve();
  private switches = new Map<string, { socketPath: string; capacity: number; fastcgi?: FastcgiHandoff }>();
  /** Ids of stats requests, to match the child's answers; a child's exit answers them all (null). */
  private statsRequests = 0;
  private readonly pendingStats = new Map<number, (stats: CoreWorkerStats | null) => void>();

  constructor(plan: CoreWorkerPlan, log: ServerLog, master: MasterLink, isStopping: () => boolean) {
    this.plan = plan;
    this.log = log;
    this.master = master;
    this.isStopping = isStopping;
  }

  start(): Promise<void> {
    // Sockets are passed as inherited descriptors after the IPC channel: child fd = 4 + index.
    // In log-master mode stdout/stderr are pipes, and one more pipe after the sockets carries
    // request lines (so the master can tell them from other output, for --req-logger).
    const out = this.log.inheritFd ?? 'pipe';
    const reqFd = this.log.inheritFd === null ? 4 + this.plan.sockets.length : null;
    const stdio: Array<'ignore' | 'ipc' | 'pipe' | number> = ['ignore', out, out, 'ipc', ...this.plan.sockets.map((s) => s.fd)];
    if (reqFd !== null) stdio.push('pipe');
    const childPlan: CoreWorkerPlan = {
      ...this.plan,
      sockets: this.plan.sockets.map((s, i) => ({ ...s, fd: 4 + i })),
      pools: this.plan.pools.map((p) => ({ ...p, ...this.switches.get(p.name) })),
      childLog: { ...this.plan.childLog, reqFd },
    };
    const child = fork(ENTRY_SCRIPT, [], { stdio, env: { ...process.env, TSUWSGI_ROLE: 'core-worker' } });
    this.child = child;
    if (child.stdout) this.log.attach(child.stdout, { source: 'core', pid: child.pid, raw: false });
    if (child.stderr) this.log.attach(child.stderr, { source: 'core', pid: child.pid, raw: false });
    if (reqFd !== null) this.log.attachRequests(child.stdio[reqFd] as Readable);
    let resolveExit!: () => void;
    this.exited = new Promise((r) => (resolveExit = r));
    return new Promise((resolve, reject) => {
      let ready = false;
      child.on('message', (msg: { type: string; pool?: string; pid?: number; uri?: string; startedAt?: number; responderPid?: number | null; error?: string; id?: number; stats?: CoreWorkerStats }) => {
        if (msg.type === 'ready') {
          ready = true;
          this.log.info(`spawned tsuwsgi core worker ${this.plan.workerIndex + 1} (pid: ${child.pid})`);
          resolve();
        } else if (msg.type === 'harakiri') this.master.harakiri(msg.pool!, msg.pid!, msg.uri!, msg.startedAt!, msg.responderPid ?? null);
        else if (msg.type === 'stats') this.pendingStats.get(msg.id!)?.(msg.stats ?? null);
        else if (msg.type === 'error') reject(new TsuwsgiError('TSUWSGI_E_CORE_WORKER', `core worker failed to start: ${msg.error}`));
      });
      child.on('exit', (code, signal) => {
        resolveExit();
        for (const answer of [...this.pendingStats.values()]) answer(null);
        if (!ready) {
          reject(new TsuwsgiError('TSUWSGI_E_CORE_WORKER', `core worker exited during start-up (${signal ?? code})`));
          return;
        }
        if (this.isStopping()) return;
        const sigNum = signal ? os.constants.signals[signal] : null;
        this.log.warn(`DAMN ! core worker ${this.plan.workerIndex + 1} (pid: ${child.pid}) died, ${sigNum ? `killed by signal ${sigNum}` : `exit status ${code}`} :( trying respawn ...`);
        setTimeout(() => void this.start().catch((e: Error) => this.log.error(e.message)), 100).unref();
      });
      child.send({ type: 'plan', plan: childPlan });
    });
  }

  /**
   * Move the child to a pool's new generation. Resolves when it confirms (it has stopped
   * sending to the old generation and flushed what it sent), so the old bridges are only
   * told to stop after that; a child that does not answer within 5 s is not waited for.
   */
  switchPool(name: string, socketPath: string, capacity: number, fastcgi?: FastcgiHandoff): Promise<void> {
    this.switches.set(name, { socketPath, capacity, ...(fastcgi ? { fastcgi } : {}) });
    const child = this.child;
    if (!child?.connected) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, 5000);
      function done(): void {
        clearTimeout(timer);
        child!.off('message', onMessage);
        resolve();
      }
      const onMessage = (m: { type: string; name?: string }): void => {
        if (m.type === 'switched' && m.name === name) done();
      };
      child.on('message', onMessage);
      child.send({ type: 'switch', name, socketPath, capacity, fastcgi });
    });
  }

  /**
   * Ask the child for its stats counters (only when a stats client connects). Resolves null
   * when it is not running or does not answer within `timeoutMs`.
   */
  stats(timeoutMs: number): Promise<CoreWorkerStats | null> {
    const child = this.child;
    if (!child?.connected) return Promise.resolve(null);
    const id = ++this.statsRequests;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (result: CoreWorkerStats | null): void => {
        clearTimeout(timer);
        this.pendingStats.delete(id);
        resolve(result);
      };
      this.pendingStats.set(id, done);
      child.send({ type: 'stats', id });
    });
  }

  async stop(graceful: boolean, mercyMs: number): Promise<void> {
    this.child?.send({ type: 'stop', graceful, mercyMs });
    const kill = setTimeout(() => this.child?.kill('SIGKILL'), mercyMs + 1000);
    await this.exited;
    clearTimeout(kill);
  }
}

/** Entry point of a core worker child process. */
export function runCoreWorkerChild(): void {
  let worker: CoreWorker | null = null;
  let log: ServerLog | null = null;
  const send = (m: object): void => {
    process.send?.(m);
  };
  process.on('message', (msg: { type: string; plan?: CoreWorkerPlan; name?: string; socketPath?: string; capacity?: number; fastcgi?: FastcgiHandoff; graceful?: boolean; mercyMs?: number; id?: number }) => {
    if (msg.type === 'plan' && msg.plan) {
      try {
        log = createChildLog(msg.plan.childLog);
        worker = new CoreWorker(msg.plan, log, {
          harakiri: (pool, pid, uri, startedAt, responderPid) => send({ type: 'harakiri', pool, pid, uri, startedAt, responderPid }),
        });
        worker.start();
        send({ type: 'ready' });
      } catch (err) {
        send({ type: 'error', error: (err as Error).message });
        process.exit(1);
      }
    } else if (msg.type === 'stats' && worker) {
      send({ type: 'stats', id: msg.id, stats: worker.statsSnapshot() });
    } else if (msg.type === 'switch' && worker) {
      worker.switchPool(msg.name!, msg.socketPath!, msg.capacity!, msg.fastcgi);
      send({ type: 'switched', name: msg.name });
    }
    else if (msg.type === 'stop' && worker) {
      void worker.stop(msg.graceful ?? true, msg.mercyMs ?? 60000).then(async () => {
        await log?.close();
        process.exit(0);
      });
    }
  });
  // The master owns signals; a terminal's Ctrl-C reaches the whole group.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('SIGHUP', () => {});
  process.on('SIGQUIT', () => {});
  // SIGUSR1 is the master's (stats); Node's default would start the inspector here.
  process.on('SIGUSR1', () => {});
  // If the master dies, so do we.
  process.on('disconnect', () => process.exit(0));
}

/**
 * How many core workers to run: each needs at least one connection to every app pool (a
 * bridge serves one connection per core, so a core worker with none would hold its requests
 * forever). More than the smallest pool can take is cut down, with a warning saying what to
 * raise.
 */
export function coreWorkerCount(requested: number, poolCapacities: readonly number[], log: ServerLog): number {
  const smallest = poolCapacities.length > 0 ? Math.min(...poolCapacities) : Infinity;
  const count = Math.max(1, Math.min(requested, smallest));
  if (count < requested) {
    log.warn(`--core-workers ${requested} is more than the ${smallest} connection(s) an app pool takes (--processes × --threads or --async): running ${count} core worker(s); raise --processes or --threads to use more`);
  }
  return count;
}
