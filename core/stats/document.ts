/**
 * The stats document (spec/subsystems.md §30.5): uWSGI 2.0's layout, filled from what the
 * master knows (sockets, worker processes, spawns, harakiri) and what the core workers
 * counted (requests, bytes, times, requests in flight). Field names are uWSGI's, so the model
 * is rendered key by key (render.ts) and read by the SIGUSR1 summary (usr1.ts).
 *
 * tsuwsgi's uWSGI "workers" are the bridge processes (app workers). With several language
 * pools they are listed pool after pool and numbered on from one pool to the next.
 */
import type { BridgeStatsSnapshot, CoreWorkerStats, InFlightSnapshot } from './counters.ts';

export interface StatsSocket {
  name: string;
  proto: string;
  queue: number;
  max_queue: number;
  shared: number;
  can_offload: number;
}

export interface StatsApp {
  id: number;
  modifier1: number;
  mountpoint: string;
  startup_time: number;
  requests: number;
  exceptions: number;
  chdir: string;
}

export interface StatsCore {
  id: number;
  requests: number;
  static_requests: number;
  routed_requests: number;
  offloaded_requests: number;
  write_errors: number;
  read_errors: number;
  in_request: number;
  vars: string[];
  /** request_start (epoch seconds) while in a request, else empty. */
  req_info: { request_start?: number };
}

export interface StatsWorker {
  id: number;
  pid: number;
  accepting: number;
  requests: number;
  delta_requests: number;
  exceptions: number;
  harakiri_count: number;
  signals: number;
  signal_queue: number;
  status: 'idle' | 'busy';
  rss: number;
  vsz: number;
  running_time: number;
  last_spawn: number;
  respawn_count: number;
  tx: number;
  avg_rt: number;
  apps: StatsApp[];
  cores: StatsCore[];
}

export interface StatsDocument {
  version: string;
  listen_queue: number;
  listen_queue_errors: number;
  signal_queue: number;
  load: number;
  pid: number;
  uid: number;
  gid: number;
  cwd: string;
  locks: Array<Record<string, number>>;
  sockets: StatsSocket[];
  workers: StatsWorker[];
}

/** A worker slot of a pool, as the master supervises it. */
export interface WorkerSlotFacts {
  /** Slot id in its pool (1-based, uWSGI's worker id). */
  id: number;
  /** The process now in the slot (0 while it is being respawned). */
  pid: number;
  accepting: boolean;
  /** Epoch seconds of the last spawn. */
  lastSpawn: number;
  /** Spawns of this slot, the first included (uWSGI starts at 1). */
  respawnCount: number;
  harakiriCount: number;
}

export interface PoolFacts {
  name: string;
  /** modifier1 the pool's plugin answers to. */
  modifier1: number;
  /** Requests one bridge serves at once: --threads, or the async cores. */
  cores: number;
  mountpoints: string[];
  slots: WorkerSlotFacts[];
}

export interface StatsFacts {
  version: string;
  pid: number;
  uid: number;
  gid: number;
  cwd: string;
  sockets: Array<{ name: string; proto: string; queue: number; maxQueue: number }>;
  pools: PoolFacts[];
  /** One snapshot per core worker that answered. */
  coreWorkers: CoreWorkerStats[];
  memory(pid: number): { rss: number; vsz: number };
}

export function buildStatsDocument(f: StatsFacts): StatsDocument {
  const listenQueue = f.sockets.reduce((n, s) => n + s.queue, 0);
  const workers: StatsWorker[] = [];
  let nextId = 1;
  for (const pool of f.pools) {
    const bridges: BridgeStatsSnapshot[] = [];
    const inFlight: InFlightSnapshot[] = [];
    for (const cw of f.coreWorkers) {
      const p = cw.pools[pool.name];
      if (!p) continue;
      bridges.push(...p.bridges);
      inFlight.push(...p.inFlight);
    }
    for (const slot of pool.slots) workers.push(buildWorker(nextId++, pool, slot, bridges, inFlight, f.memory));
  }
  return {
    version: f.version,
    listen_queue: listenQueue,
    listen_queue_errors: 0,
    signal_queue: 0,
    // uWSGI's load is the listen queue it reads with TCP_INFO (get_linux_tcp_info), not busy cores.
    load: listenQueue,
    pid: f.pid,
    uid: f.uid,
    gid: f.gid,
    cwd: f.cwd,
    // tsuwsgi has none of uWSGI's shared-memory locks (user, signal, filemon, timer, rpc…).
    locks: [],
    sockets: f.sockets.map((s) => ({ name: s.name, proto: s.proto, queue: s.queue, max_queue: s.maxQueue, shared: 0, can_offload: 0 })),
    workers,
  };
}

function buildWorker(
  id: number,
  pool: PoolFacts,
  slot: WorkerSlotFacts,
  bridges: readonly BridgeStatsSnapshot[],
  inFlight: readonly InFlightSnapshot[],
  memory: StatsFacts['memory'],
): StatsWorker {
  // Every process that ever filled this slot (uWSGI keeps a slot's counters across
  // respawns and reloads), counted by every core worker.
  const ofSlot = bridges.filter((b) => b.workerId === slot.id);
  const current = ofSlot.filter((b) => b.pid === slot.pid);
  const sum = (list: readonly BridgeStatsSnapshot[], pick: (b: BridgeStatsSnapshot) => number): number => list.reduce((n, b) => n + pick(b), 0);
  // avg_rt is a running average that no sum can merge: the freshest one is the most telling.
  const freshest = ofSlot.reduce<BridgeStatsSnapshot | null>((best, b) => (!best || b.lastDoneAt > best.lastDoneAt ? b : best), null);
  const busy = slot.pid !== 0 ? inFlight.filter((r) => r.pid === slot.pid) : [];
  const apps: StatsApp[] = pool.mountpoints.map((mountpoint, i) => ({
    id: i,
    modifier1: pool.modifier1,
    mountpoint,
    startup_time: 0,
    // Apps live in a process: a respawned worker starts its apps' counters again (as uWSGI).
    requests: sum(current, (b) => b.appRequests[i] ?? 0),
    exceptions: 0,
    chdir: '',
  }));
  const cores: StatsCore[] = [];
  for (let c = 0; c < pool.cores; c++) {
    const req = busy.find((r) => r.core === c);
    cores.push({
      id: c,
      requests: sum(ofSlot, (b) => b.coreRequests[c] ?? 0),
      static_requests: 0,
      routed_requests: 0,
      offloaded_requests: 0,
      write_errors: sum(ofSlot, (b) => b.coreWriteErrors[c] ?? 0),
      read_errors: 0,
      in_request: req ? 1 : 0,
      vars: req ? req.vars : [],
      req_info: req ? { request_start: Math.floor(req.since / 1000) } : {},
    });
  }
  const mem = slot.pid !== 0 ? memory(slot.pid) : { rss: 0, vsz: 0 };
  return {
    id,
    pid: slot.pid,
    accepting: slot.accepting ? 1 : 0,
    requests: sum(ofSlot, (b) => b.requests),
    delta_requests: sum(current, (b) => b.requests),
    exceptions: 0,
    harakiri_count: slot.harakiriCount,
    signals: 0,
    signal_queue: 0,
    status: busy.length > 0 ? 'busy' : 'idle',
    rss: mem.rss,
    vsz: mem.vsz,
    running_time: sum(ofSlot, (b) => b.runningTime),
    last_spawn: slot.lastSpawn,
    respawn_count: slot.respawnCount,
    tx: sum(ofSlot, (b) => b.tx),
    avg_rt: freshest ? freshest.avgRt : 0,
    apps,
    cores,
  };
}
