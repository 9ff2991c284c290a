/**
 * What a core worker tells the master when a stats client connects: the counters of every
 * bridge it talked to, and the requests its bridge connections are serving right now (with
 * their vars, decoded from the packet the connection still holds — only at this moment, so
 * the request path never pays for it).
 */
import type { PoolClient } from '../bridge/pool-client.ts';
import { decodeHeader, decodeVars, isVarsError, UWSGI_HEADER_SIZE } from '../protocol/uwsgi-packet.ts';
import { snapshotBridge, type CoreWorkerStats, type InFlightSnapshot, type PoolStatsSnapshot } from './counters.ts';

/** Per-app request counts of a bridge (the pipeline's request-log counters). */
export type AppRequestsLookup = (pid: number) => readonly number[] | undefined;

export function coreWorkerSnapshot(clients: ReadonlyMap<string, PoolClient>, appRequests: AppRequestsLookup): CoreWorkerStats {
  const pools: Record<string, PoolStatsSnapshot> = {};
  for (const [name, client] of clients) {
    const bridges = [...client.counters.all()].map((c) => snapshotBridge(c, appRequests(c.pid)));
    const inFlight: InFlightSnapshot[] = [];
    for (const conn of client.inFlight()) {
      const id = conn.identity;
      if (!id) continue;
      const packet = conn.requestPacket;
      inFlight.push({ pid: id.pid, core: id.core, since: conn.headSince, vars: packet ? packetVars(packet) : [] });
    }
    pools[name] = { bridges, inFlight };
  }
  return { pools };
}

/** "KEY=VALUE" for every var of a request packet (empty if it cannot be decoded). */
export function packetVars(packet: Buffer): string[] {
  if (packet.length < UWSGI_HEADER_SIZE) return [];
  const size = decodeHeader(packet).datasize;
  const vars = decodeVars(packet.subarray(UWSGI_HEADER_SIZE, UWSGI_HEADER_SIZE + size));
  if (isVarsError(vars)) return [];
  return vars.map(([k, v]) => `${k}=${v}`);
}
