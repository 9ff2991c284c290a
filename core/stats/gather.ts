/**
 * The master's side of a stats request: read the sockets' queues and the pools' worker
 * slots, ask every core worker for its counters (over the master↔core-worker channel, only
 * now — never per request), and build the document.
 */
import type { BoundSocket } from '../server/sockets.ts';
import type { CoreWorkerStats } from './counters.ts';
import { buildStatsDocument, type PoolFacts, type StatsDocument } from './document.ts';
import { listenQueues, processMemory } from './proc.ts';

export interface MasterStatsSources {
  version: string;
  sockets: readonly BoundSocket[];
  /** --listen: every socket's backlog (uWSGI's max_queue). */
  listenBacklog: number;
  pools(): PoolFacts[];
  /** Snapshots of the core workers that answered in time. */
  coreWorkers(): Promise<CoreWorkerStats[]>;
}

/** How long the master waits for a core worker's counters before leaving it out. */
export const CORE_WORKER_STATS_TIMEOUT_MS = 1000;

export async function gatherStats(src: MasterStatsSources): Promise<StatsDocument> {
  const coreWorkers = await src.coreWorkers();
  const queues = listenQueues(src.sockets.map((s) => s.fd));
  return buildStatsDocument({
    version: src.version,
    pid: process.pid,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    cwd: process.cwd(),
    sockets: src.sockets.map((s, i) => ({ name: s.name, proto: s.protocol, queue: queues[i] ?? 0, maxQueue: src.listenBacklog })),
    pools: src.pools(),
    coreWorkers,
    memory: processMemory,
  });
}
