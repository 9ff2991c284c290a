/**
 * Process supervision (spec/core.md §3.1, §3.4 harakiri, §3.6 signals, §3.7 reload): what
 * happens to clients when bridges die, hang or get reloaded, and how the server stops.
 * Every test starts its own server and stops it; the helpers' afterEach then proves no
 * process (bridge, core worker) outlived it.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { httpRequest, type HttpResult } from '../helpers/http-raw.ts';
import { fixture, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const SUITE = fixture('suite.py');

/** Start a request without awaiting it; never rejects (the error is the result). */
function inFlight(port: number, p: string, timeoutMs = 60000): Promise<HttpResult | Error> {
  return httpRequest(port, { path: p, timeoutMs }).catch((e: Error) => e);
}

const withLog = <T,>(srv: ServerHandle | undefined, f: () => Promise<T>): Promise<T> => withServerLog(srv, f);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

describe('bridge death and harakiri', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    if (srv && !srv.hasExited) await srv.stop('SIGINT');
    srv = undefined;
  }, 30000);

  test('kill -9 of the bridge serving a slow request: that client gets 502, DAMN/Respawned in the log, next requests succeed', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--processes', '1']);
    const s = srv;
    await withLog(s, async () => {
      const pending = inFlight(s.port, '/slow?s=30&t=kill9');
      const started = await s.waitForLog(/slow-start pid=(\d+) uri=\/slow\?s=30&t=kill9/, 15000);
      const pid = Number(started[1]);
      process.kill(pid, 'SIGKILL');
      const res = await pending;
      expect(res).not.toBeInstanceOf(Error);
      expect((res as HttpResult).status).toBe(502);
      await s.waitForLog(new RegExp(`DAMN ! worker 1 \\(pid: ${pid}\\) died, killed by signal 9 :\\( trying respawn \\.\\.\\.`), 10000);
      const respawned = await s.waitForLog(/Respawned uWSGI worker 1 \(new pid: (\d+)\)/, 20000);
      const newPid = Number(respawned[1]);
      expect(newPid).not.toBe(pid);
      for (let i = 0; i < 3; i++) {
        const r = await httpRequest(s.port, { path: '/pid', timeoutMs: 30000 });
        expect(r.status).toBe(200);
        expect(Number(r.body.toString())).toBe(newPid);
      }
    });
    expect(await s.stop()).toBe(0);
  }, 90000);

  test('harakiri 1: a 5 s request gets 504 within 4 s, HARAKIRI in the log, the next request is served by a new pid', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--processes', '1', '--harakiri', '1']);
    const s = srv;
    await withLog(s, async () => {
      const before = Number((await httpRequest(s.port, { path: '/pid' })).body.toString());
      const t0 = Date.now();
      const res = await inFlight(s.port, '/slow?s=5&t=harakiri');
      const elapsed = Date.now() - t0;
      expect(res).not.toBeInstanceOf(Error);
      expect((res as HttpResult).status).toBe(504);
      expect(elapsed).toBeLessThan(4000);
      await s.waitForLog(new RegExp(`\\*\\*\\* HARAKIRI ON WORKER 1 \\(pid: ${before}, try: 1\\) \\*\\*\\*`), 5000);
      // The request is logged with its 504, and the bridge's stack dump shows where the app was.
      await s.waitForLog(/GET \/slow\?s=5&t=harakiri => generated \d+ bytes in \d+ msecs \(HTTP\/1\.1 504\)/, 5000);
      await s.waitForLog(/python bridge stack dump[\s\S]*slow_app\.py[\s\S]*end of the stack dump/, 5000);
      const after = await httpRequest(s.port, { path: '/pid', timeoutMs: 30000 });
      expect(after.status).toBe(200);
      expect(Number(after.body.toString())).not.toBe(before);
      await until('the killed bridge to be gone', () => (isAlive(before) ? undefined : true), 10000);
    });
    expect(await s.stop()).toBe(0);
  }, 90000);

  test('--master: kill -9 of the core worker (node child of the master) → respawned, requests succeed again', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--master', '--processes', '1']);
    const s = srv;
    await withLog(s, async () => {
      const coreWorkers = () => s.descendants().filter((p) => p.ppid === s.pid && p.cmd.includes('tsuwsgi.js'));
      const first = await until('a core worker child', () => (coreWorkers().length === 1 ? coreWorkers()[0] : undefined));
      expect((await httpRequest(s.port, { path: '/hello' })).status).toBe(200);
      process.kill(first.pid, 'SIGKILL');
      await s.waitForLog(new RegExp(`DAMN ! .*\\(pid: ${first.pid}\\) died, killed by signal 9`), 10000);
      const second = await until('a new core worker child', () => {
        const c = coreWorkers();
        return c.length === 1 && c[0]!.pid !== first.pid ? c[0] : undefined;
      });
      expect(second.pid).not.toBe(first.pid);
      const ok = await until('a successful request after the respawn', async () => {
        const r = await httpRequest(s.port, { path: '/hello', timeoutMs: 5000 });
        return r.status === 200 ? r : undefined;
      });
      expect(ok.body.toString()).toBe('Hello World');
      for (let i = 0; i < 5; i++) expect((await httpRequest(s.port, { path: '/pid' })).status).toBe(200);
    });
    expect(await s.stop()).toBe(0);
  }, 90000);

  test('--core-workers 2 with one single-threaded app worker: one core worker runs (a warning says what to raise) and every request is answered', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--core-workers', '2', '--processes', '1']);
    const s = srv;
    await withLog(s, async () => {
      await s.waitForLog(/--core-workers 2 is more than the 1 connection\(s\) an app pool takes .*running 1 core worker/);
      // Fresh connections, so each could land on any core worker: none may hang.
      const answers = await Promise.all(Array.from({ length: 12 }, () => httpRequest(s.port, { path: '/hello', headers: { Connection: 'close' }, timeoutMs: 5000 })));
      for (const r of answers) expect(r.status).toBe(200);
    });
    expect(await s.stop()).toBe(0);
  }, 60000);

  test('--master: a request sent while the core worker is down is served after the respawn (the master keeps the socket)', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--master', '--processes', '1']);
    const s = srv;
    await withLog(s, async () => {
      const core = await until('a core worker child', () => s.descendants().find((p) => p.ppid === s.pid && p.cmd.includes('tsuwsgi.js')));
      process.kill(core.pid, 'SIGKILL');
      await until('the core worker to die', () => (isAlive(core.pid) ? undefined : true), 5000);
      const r = await httpRequest(s.port, { path: '/hello', timeoutMs: 20000 });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('Hello World');
    });
    expect(await s.stop()).toBe(0);
  }, 90000);
});

describe('graceful reload (SIGHUP)', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    if (srv && !srv.hasExited) await srv.stop('SIGINT');
    srv = undefined;
  }, 30000);

  test.each([['with --master', ['--master']], ['in one process', []]])('two SIGHUPs under load %s (4 clients, keep-alive and fresh connections, 300+ requests): zero failures, worker pids change', async (_label, extra) => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, ...(extra as string[]), '--processes', '2', '--threads', '2']);
    const s = srv;
    await withLog(s, async () => {
      const initial = (await s.waitForLogCount(/spawned uWSGI worker \d+ \(pid: (\d+), cores: \d+\)/, 2)).map((m) => Number(m[1]));
      const agents = [new http.Agent({ keepAlive: true, maxSockets: 1 }), new http.Agent({ keepAlive: true, maxSockets: 1 })];
      let done = 0;
      let stopLoad = false;
      const failures: string[] = [];
      const seen: Array<{ at: number; pid: number }> = [];
      const servedDuringReload: number[] = [];
      const client = async (i: number): Promise<void> => {
        let n = 0;
        while (!stopLoad) {
          n++;
          const p = n % 3 === 0 ? '/slow?s=0.05' : '/pid';
          try {
            const r = await httpRequest(s.port, { path: p, agent: i < 2 ? agents[i] : false, timeoutMs: 30000 });
            if (r.status !== 200) failures.push(`client ${i} ${p}: HTTP ${r.status} ${r.body.toString().slice(0, 100)}`);
            else {
              const pid = Number(r.body.toString().replace(/^done /, ''));
              seen.push({ at: Date.now(), pid });
            }
          } catch (err) {
            failures.push(`client ${i} ${p}: ${(err as Error).message}`);
          }
          done++;
        }
      };
      const clients = [0, 1, 2, 3].map(client);
      try {
        await until('60 requests', () => (done >= 60 ? true : undefined), 60000);
        let atSignal = done;
        s.signal('SIGHUP');
        await s.waitForLogCount(/spawned uWSGI worker \d+ \(pid: \d+, cores: \d+\)/, 4, 60000);
        servedDuringReload.push(done - atSignal);
        const mark = done;
        await until('60 more requests', () => (done >= mark + 60 ? true : undefined), 60000);
        atSignal = done;
        s.signal('SIGHUP');
        await s.waitForLogCount(/spawned uWSGI worker \d+ \(pid: \d+, cores: \d+\)/, 6, 60000);
        servedDuringReload.push(done - atSignal);
        await until('300 requests in total', () => (done >= 300 ? true : undefined), 120000);
        // The new generation serves for a while before the load stops.
        const mark2 = done;
        await until('40 requests after the second reload', () => (done >= mark2 + 40 ? true : undefined), 60000);
      } finally {
        stopLoad = true;
        await Promise.all(clients);
        for (const a of agents) a.destroy();
      }
      expect(failures).toEqual([]);
      expect(done).toBeGreaterThanOrEqual(300);
      // The old generation keeps serving while the new one starts (no stop-the-world reload).
      for (const n of servedDuringReload) expect(n).toBeGreaterThan(0);
      const spawned = [...s.logs().matchAll(/spawned uWSGI worker \d+ \(pid: (\d+), cores: \d+\)/g)].map((m) => Number(m[1]));
      const finalGen = spawned.slice(-2);
      // The last requests were served by the last generation only.
      const lastPids = new Set(seen.slice(-20).map((x) => x.pid));
      for (const pid of lastPids) expect(finalGen).toContain(pid);
      for (const pid of initial) expect(finalGen).not.toContain(pid);
      // The old generations exit once their requests are done.
      await until('the first generation to exit', () => (initial.some(isAlive) ? undefined : true), 30000);
    });
    expect(await s.stop()).toBe(0);
  }, 240000);

  test('SIGHUP keeps the master pid and the pidfile; a request in flight during the reload completes', async () => {
    const dir = tmpDir();
    const pidfile = path.join(dir, 'u.pid');
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--master', '--processes', '1', '--pidfile', pidfile]);
    const s = srv;
    await withLog(s, async () => {
      expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(s.pid));
      const pending = inFlight(s.port, '/slow?s=2&t=hup');
      await s.waitForLog(/slow-start pid=\d+ uri=\/slow\?s=2&t=hup/, 15000);
      s.signal('SIGHUP');
      const res = await pending;
      expect(res).not.toBeInstanceOf(Error);
      expect((res as HttpResult).status).toBe(200);
      expect((res as HttpResult).body.toString()).toMatch(/^done \d+$/);
      await s.waitForLogCount(/spawned uWSGI worker \d+ \(pid: \d+, cores: \d+\)/, 2, 30000);
      expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(s.pid));
      expect((await httpRequest(s.port, { path: '/hello' })).status).toBe(200);
    });
    expect(await s.stop()).toBe(0);
    expect(fs.existsSync(pidfile)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 90000);
});

describe('stopping', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    if (srv && !srv.hasExited) await srv.stop('SIGKILL');
    srv = undefined;
  }, 30000);

  test('SIGTERM with a request in flight: the request completes, then the server exits 0', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--processes', '1']);
    const s = srv;
    await withLog(s, async () => {
      const pending = inFlight(s.port, '/slow?s=2&t=term');
      await s.waitForLog(/slow-start pid=\d+ uri=\/slow\?s=2&t=term/, 15000);
      const code = s.stop('SIGTERM', 30000);
      const res = await pending;
      expect(res).not.toBeInstanceOf(Error);
      expect((res as HttpResult).status).toBe(200);
      expect((res as HttpResult).body.toString()).toMatch(/^done \d+$/);
      expect(await code).toBe(0);
      expect(s.logs()).toMatch(/goodbye to uWSGI\./);
    });
  }, 60000);

  test('SIGTERM with --master: same graceful stop through the core worker child', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--master', '--processes', '2']);
    const s = srv;
    await withLog(s, async () => {
      const pending = inFlight(s.port, '/slow?s=2&t=mterm');
      await s.waitForLog(/slow-start pid=\d+ uri=\/slow\?s=2&t=mterm/, 15000);
      const code = s.stop('SIGTERM', 30000);
      const res = await pending;
      expect(res).not.toBeInstanceOf(Error);
      expect((res as HttpResult).status).toBe(200);
      expect(await code).toBe(0);
    });
  }, 60000);

  test('SIGINT exits quickly with 0, even with a long request in flight', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--master', '--processes', '2']);
    const s = srv;
    await withLog(s, async () => {
      const pending = inFlight(s.port, '/slow?s=60&t=int', 30000);
      await s.waitForLog(/slow-start pid=\d+ uri=\/slow\?s=60&t=int/, 15000);
      const t0 = Date.now();
      expect(await s.stop('SIGINT', 20000)).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(s.logs()).toMatch(/goodbye to uWSGI\./);
      const res = await pending;
      // The client must not hang: it gets an error or an error status, not the app's answer.
      if (!(res instanceof Error)) expect(res.status).not.toBe(200);
    });
  }, 60000);

  test('SIGQUIT exits quickly with 0', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE]);
    const s = srv;
    const t0 = Date.now();
    expect(await s.stop('SIGQUIT', 20000)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  }, 60000);
});

describe('start-up failures', () => {
  test('an app that fails to import: exit status 22 and the Python traceback in the output', async () => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('broken_import.py'), '--processes', '2']);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 22, signal: null });
    expect(r.output).toMatch(/Traceback \(most recent call last\)/);
    expect(r.output).toMatch(/ModuleNotFoundError: No module named 'tsuwsgi_no_such_module_for_tests'/);
    expect(r.output).not.toMatch(/tsuwsgi is ready/);
  }, 60000);

  test('the same with --master: exit 22, nothing left running', async () => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('broken_import.py'), '--master']);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/ModuleNotFoundError/);
  }, 60000);

  test('a configuration error (no socket): exit 1 with a "tsuwsgi: error TSUWSGI_E_…" line', async () => {
    const r = await runTsuwsgi(['--wsgi-file', fixture('hello.py')]);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/^tsuwsgi: error TSUWSGI_E_[A-Z_]+: .+/m);
  }, 60000);

  test('a missing Python interpreter is a clear start-up error, not a hang', async () => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--python-bin', '/nonexistent/python3']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/\/nonexistent\/python3/);
  }, 60000);
});
