/**
 * How the stats document merges what the master and several core workers know
 * (core/stats/document.ts, docs/stats.md): slots keep counters across respawns, apps and
 * delta_requests count the current process only, avg_rt is the freshest running average, and
 * busy cores carry their request's vars.
 */
import { BridgeCounters, snapshotBridge, type CoreWorkerStats } from '../../core/stats/counters.ts';
import { buildStatsDocument, type StatsFacts } from '../../core/stats/document.ts';
import { formatUsr1Stats } from '../../core/stats/usr1.ts';

function counted(pid: number, workerId: number, requests: Array<{ core: number; bytes: number; micros: number; at: number }>, apps: number[]): ReturnType<typeof snapshotBridge> {
  const c = new BridgeCounters(pid, workerId);
  for (const r of requests) c.done(r.core, r.bytes, r.micros, r.at);
  return snapshotBridge(c, apps);
}

function facts(coreWorkers: CoreWorkerStats[]): StatsFacts {
  return {
    version: 'v',
    pid: 1,
    uid: 0,
    gid: 0,
    cwd: '/',
    sockets: [
      { name: ':9090', proto: 'http', queue: 2, maxQueue: 100 },
      { name: '/tmp/s.sock', proto: 'uwsgi', queue: 1, maxQueue: 100 },
    ],
    pools: [
      {
        name: 'python',
        modifier1: 0,
        cores: 2,
        mountpoints: ['', '/admin'],
        slots: [
          { id: 1, pid: 200, accepting: true, lastSpawn: 1000, respawnCount: 2, harakiriCount: 1 },
          { id: 2, pid: 300, accepting: true, lastSpawn: 900, respawnCount: 1, harakiriCount: 0 },
        ],
      },
      { name: 'psgi', modifier1: 5, cores: 1, mountpoints: [''], slots: [{ id: 1, pid: 0, accepting: false, lastSpawn: 950, respawnCount: 3, harakiriCount: 0 }] },
    ],
    coreWorkers,
    memory: (pid) => ({ rss: pid * 10, vsz: pid * 100 }),
  };
}

describe('the stats document model', () => {
  const cw1: CoreWorkerStats = {
    pools: {
      python: {
        bridges: [
          // pid 100 was slot 1 before harakiri replaced it with pid 200.
          counted(100, 1, [{ core: 0, bytes: 50, micros: 1000, at: 10 }], [1]),
          counted(200, 1, [{ core: 1, bytes: 60, micros: 3000, at: 20 }], [0, 1]),
        ],
        inFlight: [{ pid: 200, core: 0, since: 5_000_500, vars: ['PATH_INFO=/slow'] }],
      },
    },
  };
  const cw2: CoreWorkerStats = {
    pools: {
      python: {
        bridges: [
          counted(200, 1, [{ core: 0, bytes: 70, micros: 400, at: 30 }, { core: 0, bytes: 30, micros: 800, at: 40 }], [2]),
          counted(300, 2, [{ core: 1, bytes: 5, micros: 10, at: 5 }], [1]),
        ],
        inFlight: [],
      },
    },
  };
  const doc = buildStatsDocument(facts([cw1, cw2]));

  it('numbers workers pool after pool, one per slot, with the slot history from the master', () => {
    expect(doc.workers.map((w) => [w.id, w.pid, w.accepting, w.respawn_count, w.harakiri_count, w.last_spawn])).toEqual([
      [1, 200, 1, 2, 1, 1000],
      [2, 300, 1, 1, 0, 900],
      [3, 0, 0, 3, 0, 950],
    ]);
    expect(doc.workers[2]!.apps).toEqual([{ id: 0, modifier1: 5, mountpoint: '', startup_time: 0, requests: 0, exceptions: 0, chdir: '' }]);
    expect(doc.workers[2]!.rss).toBe(0);
    expect(doc.workers[0]!.rss).toBe(2000);
    expect(doc.workers[0]!.vsz).toBe(20000);
  });

  it('sums a slot over its processes and the core workers; apps and delta_requests only count the current process', () => {
    const w = doc.workers[0]!;
    expect(w.requests).toBe(4);
    expect(w.delta_requests).toBe(3);
    expect(w.tx).toBe(50 + 60 + 70 + 30);
    expect(w.running_time).toBe(1000 + 3000 + 400 + 800);
    expect(w.apps.map((a) => [a.mountpoint, a.requests])).toEqual([
      ['', 2],
      ['/admin', 1],
    ]);
    expect(w.cores.map((c) => c.requests)).toEqual([3, 1]);
  });

  it("keeps uWSGI's running average: the freshest core worker's (avg + rt) / 2", () => {
    // cw2 saw pid 200 last (at 40): avg = ((0 + 400) / 2 + 800) / 2 = 500.
    expect(doc.workers[0]!.avg_rt).toBe(500);
    expect(doc.workers[1]!.avg_rt).toBe(5);
  });

  it('marks the worker busy and its core in_request with the vars and start of the request', () => {
    const [w1, w2] = doc.workers;
    expect(w1!.status).toBe('busy');
    expect(w1!.cores[0]).toMatchObject({ in_request: 1, vars: ['PATH_INFO=/slow'], req_info: { request_start: 5000 } });
    expect(w1!.cores[1]).toMatchObject({ in_request: 0, vars: [], req_info: {} });
    expect(w2!.status).toBe('idle');
  });

  it('reads load and listen_queue from the sockets queues, as uWSGI', () => {
    expect(doc.listen_queue).toBe(3);
    expect(doc.load).toBe(3);
    expect(doc.sockets[1]).toEqual({ name: '/tmp/s.sock', proto: 'uwsgi', queue: 1, max_queue: 100, shared: 0, can_offload: 0 });
  });

  it('formats the SIGUSR1 block as uWSGI', () => {
    const text = formatUsr1Stats([{ key: 'master', value: 'true', origin: 'command line' }], doc);
    expect(text).toBe(
      '\n;uWSGI instance configuration\n[uwsgi]\nmaster = true\n;end of configuration\n\n' +
        '\tworkers total requests: 5\n-----------------\n' +
        '\tworker 1 app 0 [] requests: 2 exceptions: 0\n\tworker 1 app 1 [/admin] requests: 1 exceptions: 0\n-----------------\n' +
        '\tworker 2 app 0 [] requests: 1 exceptions: 0\n\tworker 2 app 1 [/admin] requests: 0 exceptions: 0\n-----------------\n' +
        '\tworker 3 app 0 [] requests: 0 exceptions: 0\n-----------------\n\n',
    );
  });
});
