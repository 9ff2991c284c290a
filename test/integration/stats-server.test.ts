/**
 * The stats server (spec/core.md §5.6, spec/subsystems.md §30.5 and §31 acceptance 2 and 4,
 * docs/stats.md): one JSON document per connection in uWSGI 2.0's layout, with real values —
 * requests per worker, app and core, tx, response times, busy cores and their vars while
 * requests run, harakiri and respawn counts — over TCP, a unix socket and HTTP; counters of
 * several core worker processes gathered by the master; the SIGUSR1 summary; start-up errors.
 * The key set and order are compared with the document of the real uWSGI 2.0 installed here.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { httpRequest, type HttpResult } from '../helpers/http-raw.ts';
import type { StatsDocument } from '../../core/stats/document.ts';
import { renderStats } from '../../core/stats/render.ts';
import { fixture, freePort, requireExecutable, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const HELLO = fixture('hello.py');
const SLOW = fixture('slow_app.py');
const ASYNC_APP = fixture('async_app.py');
const UWSGI = '/usr/bin/uwsgi';
const CURL = '/usr/bin/curl';

interface Core {
  id: number;
  requests: number;
  in_request: number;
  write_errors: number;
  vars: string[];
  req_info: { request_start?: number };
}
interface App {
  id: number;
  modifier1: number;
  mountpoint: string;
  requests: number;
}
interface Worker {
  id: number;
  pid: number;
  accepting: number;
  requests: number;
  delta_requests: number;
  harakiri_count: number;
  status: string;
  rss: number;
  vsz: number;
  running_time: number;
  last_spawn: number;
  respawn_count: number;
  tx: number;
  avg_rt: number;
  apps: App[];
  cores?: Core[];
}
interface StatsDoc {
  version: string;
  pid: number;
  cwd: string;
  sockets: Array<{ name: string; proto: string; queue: number; max_queue: number }>;
  workers: Worker[];
  [key: string]: unknown;
}

/** Everything a stats socket sends before it closes the connection. */
function readAll(connect: () => net.Socket, send?: string, timeoutMs = 10000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect();
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the stats server did not close the connection within ${timeoutMs} ms`));
    }, timeoutMs);
    if (send !== undefined) sock.on('connect', () => sock.write(send));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const readTcp = (port: number, send?: string): Promise<string> => readAll(() => net.connect(port, '127.0.0.1'), send);

async function statsOf(port: number): Promise<StatsDoc> {
  const text = await readTcp(port);
  try {
    return JSON.parse(text) as StatsDoc;
  } catch (err) {
    throw new Error(`the stats server sent invalid JSON (${(err as Error).message}):\n${text.slice(0, 2000)}`);
  }
}

/** The stats port from `*** Stats server enabled on 127.0.0.1:PORT fd: N ***`. */
async function statsPort(srv: ServerHandle): Promise<number> {
  const m = await srv.waitForLog(/^\*\*\* Stats server enabled on 127\.0\.0\.1:(\d+) fd: \d+ \*\*\*$/m);
  return Number(m[1]);
}

/** Poll the document until `ok` holds (requests end asynchronously), or fail with the last one. */
async function statsUntil(port: number, ok: (d: StatsDoc) => boolean, timeoutMs = 10000): Promise<StatsDoc> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await statsOf(port);
    if (ok(d)) return d;
    if (Date.now() > deadline) throw new Error(`stats never reached the expected state; last document:\n${JSON.stringify(d, null, 1).slice(0, 4000)}`);
    await sleep(100);
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const coresOf = (w: Worker): Core[] => w.cores ?? [];

function inFlight(port: number, p: string): Promise<HttpResult | Error> {
  return httpRequest(port, { path: p, timeoutMs: 60000 }).catch((e: Error) => e);
}

/** Ordered key lists of every object kind in a document, for comparing layouts. */
function layout(d: StatsDoc): Record<string, string[]> {
  const w = d.workers[0]!;
  const idle = coresOf(w)[0] as unknown as Record<string, unknown>;
  return {
    top: Object.keys(d),
    socket: Object.keys(d.sockets[0]!),
    worker: Object.keys(w),
    app: Object.keys(w.apps[0]!),
    core: Object.keys(idle),
    req_info: Object.keys(idle.req_info as object),
  };
}

let servers: ServerHandle[] = [];
async function start(args: string[]): Promise<ServerHandle> {
  const s = await startServer(args);
  servers.push(s);
  return s;
}
afterEach(async () => {
  for (const s of servers) if (!s.hasExited) expect(await s.stop()).toBe(0);
  servers = [];
}, 60000);

describe('the stats document over TCP', () => {
  test('spec acceptance: --master --stats --http-socket: valid JSON with one workers entry per app worker process', async () => {
    const srv = await start(['--master', '-p', '2', '--stats', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--socket', '127.0.0.1:0', '--listen', '64', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      const port = await statsPort(srv);
      const text = await readTcp(port);
      // uWSGI's layout: tab-indented, "key":value, no final newline.
      expect(text.startsWith('{\n\t"version":"')).toBe(true);
      expect(text.endsWith('\n}')).toBe(true);
      const d = JSON.parse(text) as StatsDoc;
      const spawned = [...srv.logs().matchAll(/spawned uWSGI worker (\d+) \(pid: (\d+), cores: 1\)/g)].map((m) => ({ id: Number(m[1]), pid: Number(m[2]) }));
      expect(spawned).toHaveLength(2);
      expect(d.workers.map((w) => ({ id: w.id, pid: w.pid })).sort((a, b) => a.id - b.id)).toEqual(spawned.sort((a, b) => a.id - b.id));
      expect(d.pid).toBe(srv.pid);
      expect(d.cwd).toBe(process.cwd());
      expect(srv.sockets).toHaveLength(2);
      expect(d.sockets).toEqual([
        { name: srv.sockets[0], proto: 'http', queue: 0, max_queue: 64, shared: 0, can_offload: 0 },
        { name: srv.sockets[1], proto: 'uwsgi', queue: 0, max_queue: 64, shared: 0, can_offload: 0 },
      ]);
      for (const w of d.workers) {
        expect(w).toMatchObject({ accepting: 1, requests: 0, status: 'idle', respawn_count: 1, harakiri_count: 0 });
        expect(Math.abs(w.last_spawn - Date.now() / 1000)).toBeLessThan(120);
        // Real memory figures of the bridge process (/proc/PID/statm).
        expect(w.rss).toBeGreaterThan(1024 * 1024);
        expect(w.vsz).toBeGreaterThan(w.rss);
        expect(w.apps).toEqual([{ id: 0, modifier1: 0, mountpoint: '', startup_time: 0, requests: 0, exceptions: 0, chdir: '' }]);
        expect(coresOf(w)).toHaveLength(1);
      }
    });
  }, 60000);

  test('requests, tx, running_time and avg_rt count what was served, per worker, app and core', async () => {
    const srv = await start(['--master', '--stats', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      const port = await statsPort(srv);
      const N = 7;
      for (let i = 0; i < N; i++) expect((await httpRequest(srv.port)).status).toBe(200);
      const d = await statsUntil(port, (x) => x.workers[0]!.requests === N);
      const w = d.workers[0]!;
      expect(w.delta_requests).toBe(N);
      expect(w.apps[0]!.requests).toBe(N);
      expect(sum(coresOf(w).map((c) => c.requests))).toBe(N);
      // tx: the response heads and bodies the app produced (uWSGI: headers + body bytes).
      const bodyAndStatusLine = 'Hello World'.length + 'HTTP/1.1 200 OK\r\n'.length;
      expect(w.tx).toBeGreaterThanOrEqual(N * bodyAndStatusLine);
      expect(w.tx).toBeLessThan(N * 400);
      expect(w.running_time).toBeGreaterThan(0);
      expect(w.avg_rt).toBeGreaterThan(0);
      expect(w.avg_rt).toBeLessThanOrEqual(w.running_time);
      expect(w.status).toBe('idle');
    });
  }, 60000);

  test('--core-workers 2: the master gathers the counters of both core worker processes', async () => {
    const srv = await start(['--core-workers', '2', '-p', '2', '--stats', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      const port = await statsPort(srv);
      const N = 40;
      // Concurrent connections, so both core workers accept some of them.
      const results = await Promise.all(Array.from({ length: N }, () => httpRequest(srv.port)));
      expect(results.every((r) => r.status === 200)).toBe(true);
      const d = await statsUntil(port, (x) => sum(x.workers.map((w) => w.requests)) === N);
      expect(sum(d.workers.map((w) => w.apps[0]!.requests))).toBe(N);
      expect(sum(d.workers.flatMap((w) => coresOf(w).map((c) => c.requests)))).toBe(N);
      // Each core worker holds one connection (its share of 2 single-thread bridges), and a
      // bridge thread serves one connection at a time: both bridges counted requests only if
      // both core workers served some, so both snapshots made it into the sums above.
      for (const w of d.workers) expect(w.requests).toBeGreaterThan(0);
    });
  }, 60000);

  test('listen_queue, load and sockets[].queue show connections waiting to be accepted; a core worker that does not answer is left out', async () => {
    const srv = await start(['--master', '--stats', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      const port = await statsPort(srv);
      const coreWorker = Number((await srv.waitForLog(/spawned tsuwsgi core worker 1 \(pid: (\d+)\)/))[1]);
      // A stopped core worker accepts nothing: the kernel queues the connections.
      process.kill(coreWorker, 'SIGSTOP');
      const clients: net.Socket[] = [];
      try {
        for (let i = 0; i < 3; i++) clients.push(net.connect(srv.port, '127.0.0.1'));
        await Promise.all(clients.map((c) => new Promise((r) => c.once('connect', r))));
        const started = Date.now();
        const d = await statsOf(port);
        // The stopped core worker cannot answer: the master waits 1 s for it, then answers without its counters.
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
        expect(d.sockets[0]!.queue).toBe(3);
        expect(d.listen_queue).toBe(3);
        expect(d.load).toBe(3);
        expect(d.workers).toHaveLength(1);
      } finally {
        process.kill(coreWorker, 'SIGCONT');
        for (const c of clients) c.destroy();
      }
      const after = await statsUntil(port, (x) => x.listen_queue === 0);
      expect(after.sockets[0]!.queue).toBe(0);
    });
  }, 60000);

  test('--stats-minified and --stats-no-cores', async () => {
    const srv = await start(['--stats', '127.0.0.1:0', '--stats-min', '--stats-no-cores', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      const text = await readTcp(await statsPort(srv));
      expect(text.startsWith('{"version":"')).toBe(true);
      expect(text).not.toMatch(/[\n\t]/);
      const d = JSON.parse(text) as StatsDoc;
      expect(d.workers).toHaveLength(1);
      expect(d.workers[0]).not.toHaveProperty('cores');
      expect(d.workers[0]!.apps).toHaveLength(1);
    });
  }, 60000);
});

describe('cores: the bridge concurrency, busy while requests run', () => {
  test('--async 10 (§31 acceptance 2): 10 cores, in_request counts during load, with the vars of each request', async () => {
    const srv = await start(['--master', '--http-socket', '127.0.0.1:0', '-p', '1', '--async', '10', '--stats', '127.0.0.1:0', '--wsgi-file', ASYNC_APP]);
    await withServerLog(srv, async () => {
      const port = await statsPort(srv);
      const idle = await statsOf(port);
      expect(coresOf(idle.workers[0]!)).toHaveLength(10);
      expect(coresOf(idle.workers[0]!).map((c) => c.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const pending = Array.from({ length: 4 }, (_, i) => inFlight(srv.port, `/slow?s=3&n=${i}`));
      const busy = await statsUntil(port, (x) => sum(coresOf(x.workers[0]!).map((c) => c.in_request)) === 4);
      const w = busy.workers[0]!;
      expect(w.status).toBe('busy');
      const running = coresOf(w).filter((c) => c.in_request === 1);
      for (const c of running) {
        expect(c.vars).toContain('PATH_INFO=/slow');
        expect(c.vars).toContain('REQUEST_METHOD=GET');
        expect(Math.abs(c.req_info.request_start! - Date.now() / 1000)).toBeLessThan(10);
      }
      expect(running.map((c) => c.vars.find((v) => v.startsWith('QUERY_STRING='))).sort()).toEqual([0, 1, 2, 3].map((i) => `QUERY_STRING=s=3&n=${i}`));
      for (const c of coresOf(w).filter((x) => x.in_request === 0)) {
        expect(c.vars).toEqual([]);
        expect(c.req_info).toEqual({});
      }
      for (const r of await Promise.all(pending)) expect(r).not.toBeInstanceOf(Error);
      const after = await statsUntil(port, (x) => x.workers[0]!.requests === 4);
      expect(after.workers[0]!.status).toBe('idle');
      expect(sum(coresOf(after.workers[0]!).map((c) => c.in_request))).toBe(0);
      // Each slow request took ~3 s of its core: running_time is in microseconds.
      expect(after.workers[0]!.running_time).toBeGreaterThan(4 * 2_500_000);
    });
  }, 60000);

  test('--threads 4 gives 4 cores per worker', async () => {
    const srv = await start(['--master', '-p', '2', '--threads', '4', '--stats', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      const d = await statsOf(await statsPort(srv));
      expect(d.workers).toHaveLength(2);
      for (const w of d.workers) expect(coresOf(w).map((c) => c.id)).toEqual([0, 1, 2, 3]);
    });
  }, 60000);
});

describe('supervision in the document', () => {
  test('harakiri: harakiri_count and respawn_count go up, the slot gets the new pid', async () => {
    const srv = await start(['--master', '-p', '1', '--harakiri', '1', '--stats', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--wsgi-file', SLOW]);
    await withServerLog(srv, async () => {
      const port = await statsPort(srv);
      const before = (await statsOf(port)).workers[0]!;
      expect(before).toMatchObject({ harakiri_count: 0, respawn_count: 1 });
      const res = await inFlight(srv.port, '/?s=5');
      expect((res as HttpResult).status).toBe(504);
      const respawned = await srv.waitForLog(/Respawned uWSGI worker 1 \(new pid: (\d+)\)/, 20000);
      const after = await statsUntil(port, (x) => x.workers[0]!.pid === Number(respawned[1]) && x.workers[0]!.accepting === 1);
      const w = after.workers[0]!;
      expect(w.pid).not.toBe(before.pid);
      expect(w.harakiri_count).toBe(1);
      expect(w.respawn_count).toBe(2);
      // The slot keeps its counters across the respawn (uWSGI does not reset them); the new process starts afresh.
      expect(w.requests).toBe(1);
      expect(w.delta_requests).toBe(0);
      expect(w.last_spawn).toBeGreaterThanOrEqual(before.last_spawn);
    });
  }, 60000);

  test('async cores: a core blocked past --harakiri is counted in harakiri_count while its siblings keep their slots', async () => {
    const srv = await start(['--master', '-p', '1', '--async', '4', '--harakiri', '3', '--stats', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--wsgi-file', ASYNC_APP]);
    await withServerLog(srv, async () => {
      const port = await statsPort(srv);
      const before = (await statsOf(port)).workers[0]!;
      expect(coresOf(before)).toHaveLength(4);
      expect(before.harakiri_count).toBe(0);
      const blocked = await inFlight(srv.port, '/sleep?s=5');
      expect((blocked as HttpResult).status).toBe(504);
      const respawned = await srv.waitForLog(/Respawned uWSGI worker 1 \(new pid: (\d+)\)/, 20000);
      const after = await statsUntil(port, (x) => x.workers[0]!.pid === Number(respawned[1]) && x.workers[0]!.accepting === 1);
      const w = after.workers[0]!;
      expect(w.harakiri_count).toBe(1);
      expect(coresOf(w)).toHaveLength(4);
      expect(sum(coresOf(w).map((c) => c.in_request))).toBe(0);
    });
  }, 60000);

  test('SIGUSR1 logs the configuration and the requests per worker and app, as uWSGI (no --stats needed)', async () => {
    const srv = await start(['--master', '-p', '2', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      for (let i = 0; i < 3; i++) await httpRequest(srv.port);
      await srv.waitForLogCount(/^\[pid: \d+\|app: 0\|req: \d+\/\d+\] .* GET \/ => generated/m, 3);
      srv.signal('SIGUSR1');
      await srv.waitForLog(/^\tworkers total requests: 3\n-----------------\n\tworker 1 app 0 \[\] requests: \d+ exceptions: 0\n-----------------\n\tworker 2 app 0 \[\] requests: \d+ exceptions: 0\n-----------------\n/m);
      expect(srv.logs()).toMatch(/;uWSGI instance configuration\n\[uwsgi\]\nmaster = true\n/);
      const perWorker = [...srv.logs().matchAll(/^\tworker \d app 0 \[\] requests: (\d+)/gm)].map((m) => Number(m[1]));
      expect(sum(perWorker)).toBe(3);
      // The master is still serving: SIGUSR1 did not start Node's inspector or stop anything.
      expect((await httpRequest(srv.port)).status).toBe(200);
      expect(srv.logs()).not.toMatch(/Debugger listening/);
    });
  }, 60000);
});

describe('addresses and modes', () => {
  test('a unix socket stats server (removed at exit)', async () => {
    const dir = tmpDir();
    const sock = path.join(dir, 'stats.sock');
    const srv = await start(['--stats', sock, '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      expect(srv.logs()).toContain(`*** Stats server enabled on ${sock} fd: `);
      const d = JSON.parse(await readAll(() => net.connect(sock))) as StatsDoc;
      expect(d.workers).toHaveLength(1);
      expect(await srv.stop()).toBe(0);
      expect(fs.existsSync(sock)).toBe(false);
    });
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);

  test('--stats-http answers curl with HTTP/1.0 200 and application/json', async () => {
    requireExecutable(CURL, 'curl');
    const srv = await start(['--stats', '127.0.0.1:0', '--stats-http', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      const port = await statsPort(srv);
      const out = await new Promise<string>((resolve, reject) =>
        execFile(CURL, ['-s', '-i', '--max-time', '10', `http://127.0.0.1:${port}/`], (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
      const [head, body] = out.split('\r\n\r\n');
      expect(head!.split('\r\n')[0]).toBe('HTTP/1.0 200 OK');
      expect(head).toMatch(/^Content-Type: application\/json$/m);
      expect(head).toMatch(/^Connection: close$/m);
      expect((JSON.parse(body!) as StatsDoc).workers).toHaveLength(1);
    });
  }, 60000);

  test('a bad --stats address stops start-up with a clear message and nothing left running', async () => {
    const notHere = await runTsuwsgi(['--stats', '192.0.2.1:9191', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    expect(notHere.code).toBe(1);
    expect(notHere.output).toMatch(/error TSUWSGI_E_BIND: cannot start the stats server on 192\.0\.2\.1:9191: EADDRNOTAVAIL \(that address does not belong to this machine/);
    const badPort = await runTsuwsgi(['--stats', '127.0.0.1:99999', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    expect(badPort.code).toBe(1);
    expect(badPort.output).toMatch(/error TSUWSGI_E_INVALID_OPTION: --stats 127\.0\.0\.1:99999: invalid socket address/);
    const abstract = await runTsuwsgi(['--stats', '@tsuwsgi-stats', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    expect(abstract.code).toBe(1);
    expect(abstract.output).toMatch(/--stats @tsuwsgi-stats: abstract unix sockets are not supported .*use a socket file path/);
    // Taken by someone else.
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const inUse = await runTsuwsgi(['--stats', `127.0.0.1:${taken}`, '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
      expect(inUse.code).toBe(1);
      expect(inUse.output).toMatch(/TSUWSGI_E_BIND: cannot start the stats server on 127\.0\.0\.1:\d+: EADDRINUSE/);
      expect(inUse.output).not.toMatch(/spawned uWSGI worker/);
    } finally {
      blocker.close();
    }
  }, 60000);
});

describe('compatibility with uWSGI 2.0', () => {
  /**
   * Run real uWSGI (--threads 2) with a stats server; return its document's text, read while
   * `busyPath` (if any) is in flight, then stop it.
   */
  async function uwsgiStatsText(app: string, busyPath?: string): Promise<string> {
    requireExecutable(UWSGI, 'uWSGI 2.0 (the reference implementation, apt-get install uwsgi-core uwsgi-plugin-python3)');
    const [httpPort, port] = [await freePort(), await freePort()];
    const proc = spawn(UWSGI, ['--plugin', 'python3', '--master', '--threads', '2', '--stats', `127.0.0.1:${port}`, '--http-socket', `127.0.0.1:${httpPort}`, '--wsgi-file', app], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<void>((r) => proc.once('close', () => r()));
    try {
      const deadline = Date.now() + 15000;
      while (!/Stats server enabled/.test(log)) {
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`uWSGI did not start its stats server:\n${log}`);
        await sleep(50);
      }
      await httpRequest(httpPort);
      if (busyPath === undefined) {
        // The client can have the answer before uWSGI's core has finished its bookkeeping
        // (in_request 1, a request_start in req_info): wait for the idle document.
        for (;;) {
          const text = await readTcp(port);
          if (!text.includes('"in_request":1')) return text;
          if (Date.now() > deadline) throw new Error(`uWSGI never went idle:\n${text}`);
          await sleep(50);
        }
      }
      const busy = inFlight(httpPort, busyPath);
      try {
        for (;;) {
          const text = await readTcp(port);
          if (text.includes('"in_request":1')) return text;
          if (Date.now() > deadline) throw new Error(`uWSGI never showed a request in flight:\n${text}`);
          await sleep(50);
        }
      } finally {
        await busy;
      }
    } finally {
      // SIGINT stops uWSGI and its workers (SIGTERM would only reload it).
      proc.kill('SIGINT');
      await exited;
    }
  }

  test('the same keys in the same order as the real uWSGI document', async () => {
    const theirs = JSON.parse(await uwsgiStatsText(HELLO)) as StatsDoc;
    const srv = await start(['--master', '--threads', '2', '--stats', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    await withServerLog(srv, async () => {
      await httpRequest(srv.port);
      const ours = await statsOf(await statsPort(srv));
      expect(layout(ours)).toEqual(layout(theirs));
      expect(coresOf(ours.workers[0]!)).toHaveLength(coresOf(theirs.workers[0]!).length);
      // Types too: numbers stay numbers, strings strings.
      const types = (o: object): Record<string, string> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Array.isArray(v) ? 'array' : typeof v]));
      expect(types(ours)).toEqual(types(theirs));
      expect(types(ours.workers[0]!)).toEqual(types(theirs.workers[0]!));
    });
  }, 60000);

  test('the renderer writes uWSGI\'s own document back byte for byte (indented and minified)', async () => {
    const text = await uwsgiStatsText(SLOW, '/?s=2');
    const parsed = JSON.parse(text) as StatsDocument;
    // uWSGI ends a busy core's vars with an empty string, which the renderer adds itself.
    const model = JSON.parse(text) as StatsDocument;
    for (const w of model.workers) for (const c of w.cores) if (c.vars.length > 0) expect(c.vars.pop()).toBe('');
    expect(renderStats(model, { minified: false, noCores: false })).toBe(text);
    expect(renderStats(model, { minified: true, noCores: false })).toBe(JSON.stringify(parsed));
  }, 60000);
});
