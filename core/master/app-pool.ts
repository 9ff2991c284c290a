/**
 * An app pool: `--processes` bridge processes of one language plugin sharing one unix
 * socket (docs/bridge-protocol.md). This is the master role's supervision of app workers:
 * spawn, wait for readiness, respawn what dies (with uWSGI's anti fork-bomb delay),
 * harakiri kills, graceful reload by generations, graceful stop.
 *
 * Bridges are started with node:child_process rather than execa: a supervised long-lived
 * child needs raw descriptor inheritance (the pool socket on fd 3, the control socket on
 * fd 4) and exit/signal observation, and none of execa's promise/output buffering.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { AppLoadError, BridgeSpawnError, LoopEngineError } from '../errors.ts';
import type { AppSpec, BridgeCommand } from '../plugins/api.ts';
import { bindPoolSocket, closeBoundFd } from '../server/sockets.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { ctime } from '../logging/request-log.ts';
import type { WorkerSlotFacts } from '../stats/document.ts';

export interface AppPoolOptions {
  /** Plugin name; also names the socket file. */
  name: string;
  runtime: string;
  command: BridgeCommand;
  processes: number;
  /** OS threads per bridge process that serve requests (1 for async loop engines). */
  threads: number;
  /** Requests one bridge process serves at once: its threads, or the async cores (docs/loop-engines.md). */
  cores: number;
  /** The loop engine the bridges run (`simple`, `async`, `gevent`…). */
  loop: string;
  apps: AppSpec[];
  /** Everything else in the bridge config (docs/bridge-protocol.md §1). */
  bridgeConfig: Record<string, unknown>;
  /** Environment for bridges (the server's plus --env). */
  env: NodeJS.ProcessEnv;
  /**
   * The server log. Bridges inherit `log.inheritFd` as stdout/stderr, or (log-master mode,
   * inheritFd null) write to pipes whose lines the log routes like any other.
   */
  log: ServerLog;
  /** Directory for pool sockets. */
  runDir: string;
  listenBacklog: number;
  /** Seconds a bridge may take to load its apps. */
  readyTimeout: number;
  /** Seconds workers get to finish requests on reload/stop before SIGKILL. */
  reloadMercy: number;
}

interface Worker {
  id: number;
  proc: ChildProcess;
  pid: number;
  generation: number;
  ready: boolean;
  stopping: boolean;
  spawnedAt: number;
  control: Duplex;
  exited: Promise<void>;
}

interface ReadyMessage {
  event: 'ready';
  pid: number;
  runtime?: string;
  runtimeVersion?: string;
  /** Loop engines the bridge can run (absent: only "simple"). */
  loops?: string[];
}
/** The bridge cannot run the loop engine it was given (e.g. gevent is not importable). */
interface EngineFailedMessage {
  event: 'engine-failed';
  engine?: string;
  message?: string;
}
interface LoadFailedMessage {
  event: 'load-failed';
  app?: number;
  message?: string;
}
type ControlMessage = ReadyMessage | LoadFailedMessage | { event: 'reload' } | { event: 'stop' } | { event: string };

export interface PoolEvents {
  /** The app asked for a reload (uwsgi.reload()) or a stop (uwsgi.stop()). */
  onAppRequest(kind: 'reload' | 'stop'): void;
  /** A new generation's socket is ready: core workers must move there (resolves when they have). */
  onSwitch(pool: AppPool): Promise<void>;
}

/** What the stats server reports about a worker slot beyond its live process (uWSGI keeps these per slot). */
interface SlotHistory {
  /** Spawns, the first included (uWSGI's respawn_count starts at 1). */
  spawns: number;
  harakiris: number;
  /** Epoch seconds of the last spawn. */
  lastSpawn: number;
}

/** uWSGI: a worker respawning within this window sleeps first (anti fork-bomb). */
const FORKBOMB_WINDOW_MS = 2000;

export class AppPool {
  /** Settings of the current generation; `reconfigure` changes them for the next one. */
  opts: AppPoolOptions;
  private generation = 0;
  socketPath = '';
  private socketFd = -1;
  private workers = new Map<number, Worker>();
  /** Per worker id, across respawns and reload generations (stats). */
  private readonly slotHistory = new Map<number, SlotHistory>();
  private stopping = false;
  private readonly events: PoolEvents;
  runtimeVersion = '';

  constructor(opts: AppPoolOptions, events: PoolEvents) {
    this.opts = opts;
    this.events = events;
  }

  /** Bridge cores (threads or async cores) in the current generation: what core workers may connect. */
  get capacity(): number {
    return this.opts.processes * this.opts.cores;
  }

  /** Pids of the current generation's workers, by worker id. */
  workerPids(): Map<number, number> {
    const out = new Map<number, number>();
    for (const w of this.workers.values()) if (w.generation === this.generation && !w.stopping) out.set(w.id, w.pid);
    return out;
  }

  /**
   * The stats server's view of the worker slots 1..processes: the current generation's process
   * in each (pid 0 while a slot waits for its respawn) and the slot's history.
   */
  workerSlots(): WorkerSlotFacts[] {
    const out: WorkerSlotFacts[] = [];
    for (let id = 1; id <= this.opts.processes; id++) {
      let live: Worker | undefined;
      for (const w of this.workers.values()) if (w.id === id && w.generation === this.generation && !w.stopping) live = w;
      const h = this.slotHistory.get(id);
      out.push({
        id,
        pid: live ? live.pid : 0,
        accepting: live?.ready === true,
        lastSpawn: h?.lastSpawn ?? 0,
        respawnCount: h?.spawns ?? 0,
        harakiriCount: h?.harakiris ?? 0,
      });
    }
    return out;
  }

  /** Start the first generation; resolves when every bridge is ready, rejects (fail fast) if an app cannot load. */
  async start(): Promise<void> {
    await this.startGeneration();
  }

  private newSocket(): void {
    this.generation++;
    const p = path.join(this.opts.runDir, `${this.opts.name}.${this.generation}.sock`);
    this.socketPath = p;
    this.socketFd = bindPoolSocket(p);
  }

  private async startGeneration(): Promise<void> {
    this.newSocket();
    const generation = this.generation;
    const spawns: Array<Promise<void>> = [];
    for (let id = 1; id <= this.opts.processes; id++) spawns.push(this.spawnWorker(id, generation, false));
    const results = await Promise.allSettled(spawns);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) {
      // Fail fast: take the whole generation down, then report the first error.
      for (const w of this.workers.values()) if (w.generation === generation) this.kill(w, 'SIGKILL');
      throw failed.reason;
    }
  }

  /** Spawn one bridge and wait for its ready message. */
  private spawnWorker(id: number, generation: number, respawn: boolean): Promise<void> {
    const o = this.opts;
    const config = {
      ...o.bridgeConfig,
      // uwsgi.is_a_reload: true in workers started by a graceful reload.
      isReload: generation > 1,
      workerId: id,
      processes: o.processes,
      threads: o.threads,
      cores: o.cores,
      listenBacklog: o.listenBacklog,
      apps: o.apps.map((a, i) => ({ id: i, mountpoint: a.mountpoint, load: a.load })),
    };
    let proc: ChildProcess;
    try {
      const out = o.log.inheritFd ?? 'pipe';
      proc = spawn(o.command.file, o.command.args, {
        // listenOnStdin: the pool socket at fd 0 too (Java adopts an inherited socket only there).
        stdio: [o.command.listenOnStdin ? this.socketFd : 'ignore', out, out, this.socketFd, 'pipe'],
        env: {
          ...o.env,
          ...o.command.env,
          TSUWSGI_BRIDGE_API: '1',
          TSUWSGI_LISTEN_FD: '3',
          TSUWSGI_CONTROL_FD: '4',
          TSUWSGI_BRIDGE_CONFIG: JSON.stringify(config),
        },
      });
    } catch (err) {
      return Promise.reject(new BridgeSpawnError(`cannot start the ${o.runtime} bridge (${o.command.file}): ${(err as Error).message}`, err));
    }
    const control = proc.stdio[4] as Duplex;
    if (proc.stdout) o.log.attach(proc.stdout, { source: o.name, pid: proc.pid, raw: true });
    if (proc.stderr) o.log.attach(proc.stderr, { source: o.name, pid: proc.pid, raw: true });
    let resolveExit!: () => void;
    const exited = new Promise<void>((r) => (resolveExit = r));
    const worker: Worker = { id, proc, pid: proc.pid ?? -1, generation, ready: false, stopping: false, spawnedAt: Date.now(), control, exited };
    const history = this.slotHistory.get(id) ?? { spawns: 0, harakiris: 0, lastSpawn: 0 };
    history.spawns++;
    history.lastSpawn = Math.floor(worker.spawnedAt / 1000);
    this.slotHistory.set(id, history);

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let loadFailure = '';
      let engineFailure = '';
      const settle = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        settle(new BridgeSpawnError(`${o.runtime} worker ${id} (pid: ${worker.pid}) did not become ready within ${o.readyTimeout} seconds (raise --bridge-ready-timeout if the app is slow to load)`));
        this.kill(worker, 'SIGKILL');
      }, o.readyTimeout * 1000);

      proc.once('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'ENOENT' ? ` — is ${o.command.file} installed? (name another interpreter with the plugin's option, e.g. --python-bin)` : '';
        settle(new BridgeSpawnError(`cannot start the ${o.runtime} bridge "${o.command.file}": ${err.message}${hint}`, err));
        resolveExit();
      });

      readLines(control, (line) => {
        let msg: ControlMessage;
        try {
          msg = JSON.parse(line) as ControlMessage;
        } catch {
          o.log.warn(`${o.name} worker ${id} (pid: ${worker.pid}) sent an unreadable control message: ${line.slice(0, 200)}`);
          return;
        }
        if (msg.event === 'ready') {
          const loops = (msg as ReadyMessage).loops ?? ['simple'];
          if (!loops.includes(o.loop)) {
            settle(new LoopEngineError(`the ${o.runtime} bridge of worker ${id} (pid: ${worker.pid}) cannot run the "${o.loop}" loop engine: it runs ${loops.map((l) => `"${l}"`).join(', ')}`));
            this.kill(worker, 'SIGKILL');
            return;
          }
          worker.ready = true;
          this.runtimeVersion = (msg as ReadyMessage).runtimeVersion ?? this.runtimeVersion;
          o.log.info(
            respawn
              ? `Respawned uWSGI worker ${id} (new pid: ${worker.pid})`
              : `spawned uWSGI worker ${id} (pid: ${worker.pid}, cores: ${o.cores})`,
          );
          settle(null);
        } else if (msg.event === 'engine-failed') {
          const m = msg as EngineFailedMessage;
          engineFailure = `the "${m.engine ?? o.loop}" loop engine cannot run in the ${o.runtime} bridge: ${m.message ?? 'unknown error'}`;
        } else if (msg.event === 'load-failed') {
          const m = msg as LoadFailedMessage;
          loadFailure = m.message ?? 'unknown error';
        } else if (msg.event === 'reload' || msg.event === 'stop') {
          this.events.onAppRequest(msg.event);
        }
      });
      // The control socket is only for messages; errors surface as the process exit.
      control.on('error', () => {});

      proc.once('exit', (code, signal) => {
        resolveExit();
        if (!settled) {
          if (engineFailure) {
            settle(new LoopEngineError(engineFailure));
          } else if (loadFailure || code === 22) {
            const app = o.apps[0];
            settle(new AppLoadError(`${o.runtime} app ${app ? `(${app.origin}) ` : ''}could not be loaded: ${loadFailure || 'the bridge exited with status 22'}; see the error above`));
          } else {
            settle(new BridgeSpawnError(`${o.runtime} worker ${id} exited during start-up (${signal ? `killed by signal ${signal}` : `status ${code}`}) before it was ready`));
          }
        }
        this.onWorkerExit(worker, code, signal);
      });
      this.workers.set(worker.pid, worker);
    });
  }

  private onWorkerExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(w.pid);
    w.control.destroy();
    if (w.stopping || this.stopping || w.generation !== this.generation || !w.ready) return;
    const how = signal ? `killed by signal ${os.constants.signals[signal] ?? signal}` : `exit status ${code}`;
    this.opts.log.warn(`DAMN ! worker ${w.id} (pid: ${w.pid}) died, ${how} :( trying respawn ...`);
    const tooFast = Date.now() - w.spawnedAt < FORKBOMB_WINDOW_MS;
    if (tooFast) {
      this.opts.log.warn('worker respawning too fast !!! i have to sleep a bit (2 seconds)...');
      setTimeout(() => this.respawn(w.id, w.generation, FORKBOMB_WINDOW_MS), FORKBOMB_WINDOW_MS).unref();
    } else this.respawn(w.id, w.generation, FORKBOMB_WINDOW_MS);
  }

  /** Respawn a worker slot; if the new bridge cannot start (e.g. the app no longer loads), try again later, backing off to 30 s. */
  private respawn(id: number, generation: number, delay: number): void {
    if (this.stopping || generation !== this.generation) return;
    this.spawnWorker(id, generation, true).catch((err: Error) => {
      const next = Math.min(delay * 2, 30_000);
      this.opts.log.error(`worker ${id} respawn failed: ${err.message}; trying again in ${Math.round(next / 1000)} seconds`);
      setTimeout(() => this.respawn(id, generation, next), next).unref();
    });
  }

  private kill(w: Worker, signal: NodeJS.Signals): void {
    try {
      w.proc.kill(signal);
    } catch {
      /* already gone */
    }
  }

  private send(w: Worker, msg: object): void {
    if (!w.control.destroyed) w.control.write(JSON.stringify(msg) + '\n');
  }

  /**
   * Harakiri: dump the bridge's stacks, then kill it; the exit handler respawns it. On a
   * FastCGI handoff (docs/bridge-protocol.md §3.4) only the stuck responder (`responderPid`,
   * e.g. one php-cgi) is killed: the bridge restarts it, and the requests its other responders
   * are serving go on.
   */
  harakiri(pid: number, uri: string, startedAt: number, responderPid: number | null = null): void {
    const w = this.workers.get(pid);
    if (!w) return;
    const history = this.slotHistory.get(w.id);
    if (history) history.harakiris++;
    this.opts.log.error(`*** HARAKIRI ON WORKER ${w.id} (pid: ${pid}, try: 1) ***`);
    this.opts.log.error(`HARAKIRI: --- uWSGI worker ${w.id} (pid: ${pid}) WAS managing request ${uri} since ${ctime(startedAt)} ---`);
    this.send(w, { cmd: 'stack' });
    if (responderPid !== null) {
      this.opts.log.error(`HARAKIRI: killing the ${this.opts.runtime} process ${responderPid} that worker ${w.id} handed this request to`);
      // The pid came from the bridge's hello; only ever signal a child of that bridge.
      if (isChildOf(responderPid, pid)) setTimeout(() => signalQuietly(responderPid, 'SIGKILL'), 300).unref();
      else setTimeout(() => this.kill(w, 'SIGKILL'), 300).unref();
      return;
    }
    // Give the bridge a moment to print its stack dump, then kill it for sure.
    setTimeout(() => this.kill(w, 'SIGKILL'), 300).unref();
  }

  /**
   * Graceful reload: start a new generation on a new socket, move core workers there, then
   * let the old generation finish its requests and exit (bounded by worker-reload-mercy).
   * If the new generation cannot start, the old one keeps serving.
   */
  async reload(next?: Partial<AppPoolOptions>): Promise<void> {
    const old = [...this.workers.values()].filter((w) => w.generation === this.generation);
    const oldFd = this.socketFd;
    const oldPath = this.socketPath;
    const oldOpts = this.opts;
    // A re-read configuration applies to the new generation only.
    if (next) this.opts = { ...this.opts, ...next };
    try {
      await this.startGeneration();
    } catch (err) {
      this.opts.log.error(`reload of ${this.opts.name} workers failed, the old workers keep serving: ${(err as Error).message}`);
      // Roll back to the old generation's socket and settings.
      this.generation--;
      this.socketFd = oldFd;
      this.socketPath = oldPath;
      this.opts = oldOpts;
      return;
    }
    await this.events.onSwitch(this);
    await this.retire(old, true);
    closeBoundFd(oldFd);
    fs.rm(oldPath, { force: true }, () => {});
  }

  /** Stop workers: gracefully (finish requests, then exit) or at once. */
  private async retire(workers: Worker[], graceful: boolean): Promise<void> {
    for (const w of workers) {
      w.stopping = true;
      if (graceful) this.send(w, { cmd: 'stop', graceful: true });
      else this.kill(w, 'SIGKILL');
    }
    const mercy = setTimeout(() => {
      for (const w of workers) {
        if (this.workers.has(w.pid)) {
          this.opts.log.warn(`worker ${w.id} (pid: ${w.pid}) did not finish within ${this.opts.reloadMercy} seconds: killing it`);
          this.kill(w, 'SIGKILL');
        }
      }
    }, this.opts.reloadMercy * 1000);
    mercy.unref();
    await Promise.all(workers.map((w) => w.exited));
    clearTimeout(mercy);
  }

  /** Stop the pool (shutdown). */
  async stop(graceful: boolean): Promise<void> {
    this.stopping = true;
    await this.retire([...this.workers.values()], graceful);
    fs.rm(this.socketPath, { force: true }, () => {});
  }
}

/** Call `onLine` for every newline-terminated line read from a stream. */
export function readLines(stream: Duplex, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) onLine(line);
    }
  });
}

/** Is `pid` a child of `parent` (Linux /proc)? False when either is gone or /proc is unreadable. */
function isChildOf(pid: number, parent: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return ppid === parent;
  } catch {
    return false;
  }
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}
