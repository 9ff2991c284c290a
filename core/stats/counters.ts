/**
 * Per-bridge request counters kept by a core worker for the stats server, and the
 * serialisable snapshot a core worker hands the master when a stats client connects.
 *
 * Only a core worker sees requests end, so it counts them; the master only knows the
 * processes. The request hot path does a handful of additions on an object the connection
 * already holds (BridgeConnection looks it up once, when its hello names the bridge): no
 * map lookup, no allocation, no message per request. Everything else (in-flight requests,
 * their vars) is read from the live connections only when a stats client asks.
 */

/** What one core worker counted for one bridge process (pid). */
export class BridgeCounters {
  readonly pid: number;
  /** The bridge's worker slot in its pool (uWSGI's worker id), from its hello. */
  readonly workerId: number;
  /** Requests whose exchange with the bridge ended (completed, or failed: harakiri, bridge death, client gone). */
  requests = 0;
  /** Bytes of response head and body the bridge produced (uWSGI's tx: headers + body). */
  tx = 0;
  /** Microseconds the bridge spent on those requests (uWSGI's running_time). */
  runningTime = 0;
  /** uWSGI's avg_rt: after each request, (avg_rt + rt) / 2, in microseconds. */
  avgRt = 0;
  /** Epoch ms of the last request's end (to pick the freshest avg_rt across core workers). */
  lastDoneAt = 0;
  /** Requests per core (bridge thread or async core), by core index. */
  readonly coreRequests: number[] = [];
  /** Responses cut because the client went away, per core. */
  readonly coreWriteErrors: number[] = [];

  constructor(pid: number, workerId: number) {
    this.pid = pid;
    this.workerId = workerId;
  }

  /** One request ended on `core` after `micros`, having produced `bytes`. */
  done(core: number, bytes: number, micros: number, now: number): void {
    this.requests++;
    this.tx += bytes;
    this.runningTime += micros;
    this.avgRt = (this.avgRt + micros) / 2;
    this.lastDoneAt = now;
    this.coreRequests[core] = (this.coreRequests[core] ?? 0) + 1;
  }

  /** The client went away in the middle of a response on `core`. */
  writeError(core: number): void {
    this.coreWriteErrors[core] = (this.coreWriteErrors[core] ?? 0) + 1;
  }
}

/** One core worker's counters for one pool's bridges, by pid. */
export class PoolCounters {
  private readonly byPid = new Map<number, BridgeCounters>();

  /** The counters of a bridge process (created at its first connection's hello). */
  of(pid: number, workerId: number): BridgeCounters {
    let c = this.byPid.get(pid);
    if (!c) {
      c = new BridgeCounters(pid, workerId);
      this.byPid.set(pid, c);
    }
    return c;
  }

  all(): IterableIterator<BridgeCounters> {
    return this.byPid.values();
  }
}

/** A bridge's counters as one core worker sends them to the master. */
export interface BridgeStatsSnapshot {
  pid: number;
  workerId: number;
  requests: number;
  tx: number;
  runningTime: number;
  avgRt: number;
  lastDoneAt: number;
  coreRequests: number[];
  coreWriteErrors: number[];
  /** Requests per app index, as the request log counts them (the pipeline's counters). */
  appRequests: number[];
}

/** A request a bridge core is serving right now. */
export interface InFlightSnapshot {
  pid: number;
  core: number;
  /** Epoch ms when the bridge started it. */
  since: number;
  /** The request's uwsgi vars as "KEY=VALUE". */
  vars: string[];
}

export interface PoolStatsSnapshot {
  bridges: BridgeStatsSnapshot[];
  inFlight: InFlightSnapshot[];
}

/** Everything one core worker knows, by pool name (JSON-safe: it crosses the IPC channel). */
export interface CoreWorkerStats {
  pools: Record<string, PoolStatsSnapshot>;
}

export function snapshotBridge(c: BridgeCounters, appRequests: readonly number[] | undefined): BridgeStatsSnapshot {
  return {
    pid: c.pid,
    workerId: c.workerId,
    requests: c.requests,
    tx: c.tx,
    runningTime: Math.round(c.runningTime),
    avgRt: Math.floor(c.avgRt),
    lastDoneAt: c.lastDoneAt,
    coreRequests: Array.from(c.coreRequests, (n) => n ?? 0),
    coreWriteErrors: Array.from(c.coreWriteErrors, (n) => n ?? 0),
    appRequests: appRequests ? Array.from(appRequests, (n) => n ?? 0) : [],
  };
}
