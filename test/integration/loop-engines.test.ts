/**
 * Loop engines (spec/subsystems.md §31, docs/loop-engines.md): `--async N` as the per-worker
 * concurrency cap with the uwsgi async API, the asyncio and gevent engines, the greenlet
 * suspend engine, harakiri with async cores, and the errors for engines that cannot run.
 *
 * Timing checks use generous bounds (a shared 2-core machine): N concurrent 2-second
 * requests that run at once finish in < 3.5 s; a request that has to wait for a core takes
 * >= 3.8 s. gevent and greenlet come from Debian (python3-gevent, which brings
 * python3-greenlet), so those tests run /usr/bin/python3 and fail — never skip — without them.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { httpRequest, type HttpResult } from '../helpers/http-raw.ts';
import { fixture, runTsuwsgi, startServer, SYSTEM_PYTHON, requireExecutable, withServerLog, type ServerHandle } from '../helpers/server.ts';

const ASYNC_APP = fixture('async_app.py');
const ASYNCIO_APP = fixture('asyncio_app.py');

function requirePythonModule(mod: string, pkg: string): void {
  requireExecutable(SYSTEM_PYTHON, "Debian's python3");
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', `import ${mod}`], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`${SYSTEM_PYTHON} cannot import ${mod} (apt-get install ${pkg}): ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
  }
}

interface Timed {
  ms: number;
  res: HttpResult;
}

/** Fire `count` requests at once (a new connection each); resolves with each one's duration. */
async function concurrent(port: number, path: string, count: number): Promise<Timed[]> {
  const start = Date.now();
  return Promise.all(
    Array.from({ length: count }, async () => {
      const res = await httpRequest(port, { path, timeoutMs: 20000 });
      return { ms: Date.now() - start, res };
    }),
  );
}

function expectAllOk(results: Timed[]): void {
  for (const r of results) expect({ status: r.res.status, body: r.res.body.toString().slice(0, 200) }).toMatchObject({ status: 200 });
}

const maxMs = (rs: Timed[]): number => Math.max(...rs.map((r) => r.ms));

async function stopped(srv: ServerHandle | undefined): Promise<void> {
  if (srv) expect(await srv.stop()).toBe(0);
}

describe('--async N: the per-worker concurrency cap with the uwsgi async API (§31 acceptance)', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '-p', '1', '--async', '10', '--wsgi-file', ASYNC_APP]);
  }, 30000);
  afterAll(() => stopped(srv), 30000);

  test('acceptance 1: 10 concurrent /slow?s=2 (yield uwsgi.async_sleep) finish in about 2 s on 10 cores; the 11th waits (~4 s)', async () => {
    await withServerLog(srv, async () => {
      expect(srv.logs()).toMatch(/async cores set to 10 per worker \(loop engine: async\)/);
      expect(srv.logs()).toMatch(/spawned uWSGI worker 1 \(pid: \d+, cores: 10\)/);
      const results = await concurrent(srv.port, '/slow?s=2', 11);
      expectAllOk(results);
      const sorted = [...results].sort((a, b) => a.ms - b.ms);
      const first10 = sorted.slice(0, 10);
      const eleventh = sorted[10]!;
      expect(maxMs(first10)).toBeLessThan(3500);
      expect(eleventh.ms).toBeGreaterThanOrEqual(3800);
      expect(eleventh.ms).toBeLessThan(6000);
      // One process, ten different cores served the first ten.
      const served = first10.map((r) => r.res.body.toString().split(' '));
      expect(new Set(served.map((p) => p[1])).size).toBe(1);
      expect(new Set(served.map((p) => p[2])).size).toBe(10);
    });
  }, 30000);

  test('uwsgi.loop, uwsgi.cores and environ uwsgi.core', async () => {
    const r = await httpRequest(srv.port, { path: '/info' });
    const info = JSON.parse(r.body.toString()) as { loop: string; cores: number; core: number };
    expect(info).toMatchObject({ loop: 'async', cores: 10 });
    expect(info.core).toBeGreaterThanOrEqual(0);
    expect(info.core).toBeLessThan(10);
  });

  test('wait_fd_read parks a request until its fd is readable (ready_fd), or times out (-1)', async () => {
    const timedOut = await httpRequest(srv.port, { path: '/fd?s=0.3' });
    expect(timedOut.body.toString()).toBe('timeout');
    const waiting = httpRequest(srv.port, { path: '/fd?s=5' });
    await new Promise((r) => setTimeout(r, 300));
    // Another core writes the pipe while the first waits: the waiter wakes with the data.
    expect((await httpRequest(srv.port, { path: '/fd-write' })).body.toString()).toBe('written');
    const woke = await waiting;
    expect(woke.body.toString()).toBe('ping');
  });

  test('a streamed response sleeps between chunks without holding the core', async () => {
    const [stream, quick] = await Promise.all([httpRequest(srv.port, { path: '/stream' }), httpRequest(srv.port, { path: '/info' })]);
    expect(stream.body.toString()).toBe('chunk0\nchunk1\nchunk2\n');
    expect(quick.status).toBe(200);
  });
});

describe('acceptance 3: without async cores requests run one at a time', () => {
  for (const args of [['--async', '1'], []]) {
    test(`${args.length ? args.join(' ') : 'no --async'}: 3 concurrent /slow?s=1 take about 3 s`, async () => {
      const srv = await startServer(['--http-socket', '127.0.0.1:0', '-p', '1', ...args, '--wsgi-file', ASYNC_APP]);
      try {
        await withServerLog(srv, async () => {
          expect(srv.logs()).toMatch(/spawned uWSGI worker 1 \(pid: \d+, cores: 1\)/);
          const results = await concurrent(srv.port, '/slow?s=1', 3);
          expectAllOk(results);
          expect(maxMs(results)).toBeGreaterThanOrEqual(2800);
          expect(maxMs(results)).toBeLessThan(6000);
        });
      } finally {
        await stopped(srv);
      }
    }, 30000);
  }
});

describe('harakiri with async cores', () => {
  test('acceptance 4: --harakiri 3, a core blocked for 5 s gets 504, the worker is dumped, killed and respawned', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '-p', '1', '--async', '4', '--harakiri', '3', '--wsgi-file', ASYNC_APP]);
    try {
      await withServerLog(srv, async () => {
        const before = JSON.parse((await httpRequest(srv.port, { path: '/info' })).body.toString()) as { pid: number };
        const t0 = Date.now();
        const blocked = await httpRequest(srv.port, { path: '/sleep?s=5' });
        const took = Date.now() - t0;
        expect(blocked.status).toBe(504);
        expect(took).toBeGreaterThanOrEqual(2900);
        expect(took).toBeLessThan(5000);
        await srv.waitForLog(new RegExp(`\\*\\*\\* HARAKIRI ON WORKER 1 \\(pid: ${before.pid}, try: 1\\) \\*\\*\\*`));
        await srv.waitForLog(/WAS managing request \/sleep\?s=5/);
        // The stack dump shows where the app was blocked.
        await srv.waitForLog(/async_app\.py", line \d+, in application\n\s+time\.sleep/);
        await srv.waitForLog(/Respawned uWSGI worker 1 \(new pid: \d+\)/, 10000);
        const after = JSON.parse((await httpRequest(srv.port, { path: '/info' })).body.toString()) as { pid: number };
        expect(after.pid).not.toBe(before.pid);
      });
    } finally {
      await stopped(srv);
    }
  }, 40000);

  test('the harakiri timer is per request: requests that waited for a core longer than --harakiri are not killed', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '-p', '1', '--async', '4', '--harakiri', '3', '--wsgi-file', ASYNC_APP]);
    try {
      await withServerLog(srv, async () => {
        // 8 requests on 4 cores: the last four finish after ~4 s, but each ran 2 s on its core
        // (and each took the first core that freed up: none waited behind two others).
        const results = await concurrent(srv.port, '/slow?s=2', 8);
        expectAllOk(results);
        expect(maxMs(results)).toBeGreaterThanOrEqual(3800);
        expect(maxMs(results)).toBeLessThan(5800);
        expect(srv.logs()).not.toMatch(/HARAKIRI/);
      });
    } finally {
      await stopped(srv);
    }
  }, 30000);
});

describe('the asyncio loop engine (--asyncio N)', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    requirePythonModule('greenlet', 'python3-greenlet');
    srv = await startServer(['--http-socket', '127.0.0.1:0', '-p', '1', '--asyncio', '10', '--greenlet', '--python-bin', SYSTEM_PYTHON, '--wsgi-file', ASYNCIO_APP]);
  }, 30000);
  afterAll(() => stopped(srv), 30000);

  test('one worker serves 10 slow `async def` requests at once (await asyncio.sleep(2))', async () => {
    await withServerLog(srv, async () => {
      expect(srv.logs()).toMatch(/async cores set to 10 per worker \(loop engine: asyncio, suspend engine: greenlet\)/);
      const results = await concurrent(srv.port, '/sleep?s=2', 10);
      expectAllOk(results);
      expect(maxMs(results)).toBeLessThan(3500);
      expect(new Set(results.map((r) => r.res.body.toString())).size).toBe(1);
    });
  }, 30000);

  test('the loop asyncio.get_event_loop() returned at import time is the one serving the app', async () => {
    expect((await httpRequest(srv.port, { path: '/loop' })).body.toString()).toBe('True');
  });

  test("uWSGI's greenlet idiom: call_later(me.switch) then me.parent.switch(), 5 at once", async () => {
    await withServerLog(srv, async () => {
      const results = await concurrent(srv.port, '/greenlet?s=1', 5);
      expectAllOk(results);
      for (const r of results) expect(r.res.body.toString()).toBe('greenlet back');
      expect(maxMs(results)).toBeLessThan(2500);
    });
  }, 20000);

  test('request bodies reach wsgi.input whole (small, and 3 MiB spooled to a file)', async () => {
    const small = await httpRequest(srv.port, { method: 'POST', path: '/post', body: 'hello body' });
    expect(small.body.toString()).toBe('hello body');
    const big = crypto.randomBytes(3 * 1024 * 1024);
    const r = await httpRequest(srv.port, { method: 'POST', path: '/post', body: big });
    expect(r.body.length).toBe(big.length);
    expect(r.body.equals(big)).toBe(true);
  });

  test('SIGTERM lets a suspended request finish, then exits 0', async () => {
    const inflight = httpRequest(srv.port, { path: '/sleep?s=1' });
    await new Promise((r) => setTimeout(r, 300));
    srv.signal('SIGTERM');
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(await srv.stop()).toBe(0);
  }, 20000);
});

describe('the greenlet suspend engine with --async', () => {
  test('uwsgi.suspend() from a nested call parks the request: 10 at once in about 2 s', async () => {
    requirePythonModule('greenlet', 'python3-greenlet');
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '-p', '1', '--async', '10', '--greenlet', '--python-bin', SYSTEM_PYTHON, '--wsgi-file', ASYNC_APP]);
    try {
      await withServerLog(srv, async () => {
        const results = await concurrent(srv.port, '/suspend?s=2', 10);
        expectAllOk(results);
        expect(maxMs(results)).toBeLessThan(3500);
      });
    } finally {
      await stopped(srv);
    }
  }, 30000);
});

describe('the gevent loop engine (--gevent N, Debian python3-gevent)', () => {
  beforeAll(() => requirePythonModule('gevent', 'python3-gevent'));

  test('--gevent-monkey-patch: 10 concurrent time.sleep(2) requests in one worker take about 2 s', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '-p', '1', '--gevent', '10', '--gevent-monkey-patch', '--python-bin', SYSTEM_PYTHON, '--wsgi-file', ASYNC_APP]);
    try {
      await withServerLog(srv, async () => {
        expect(srv.logs()).toMatch(/async cores set to 10 per worker \(loop engine: gevent\)/);
        const info = JSON.parse((await httpRequest(srv.port, { path: '/info' })).body.toString()) as { loop: string; cores: number };
        expect(info).toMatchObject({ loop: 'gevent', cores: 10 });
        const results = await concurrent(srv.port, '/sleep?s=2', 10);
        expectAllOk(results);
        expect(maxMs(results)).toBeLessThan(3500);
        expect(new Set(results.map((r) => r.res.body.toString().split(' ')[2])).size).toBe(10);
      });
    } finally {
      await stopped(srv);
    }
  }, 30000);

  test('without monkey patching: gevent.sleep serves 10 at once, a blocking time.sleep does not', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '-p', '1', '--gevent', '10', '--python-bin', SYSTEM_PYTHON, '--wsgi-file', ASYNC_APP]);
    try {
      await withServerLog(srv, async () => {
        const cooperative = await concurrent(srv.port, '/gsleep?s=2', 10);
        expectAllOk(cooperative);
        expect(maxMs(cooperative)).toBeLessThan(3500);
        const blocking = await concurrent(srv.port, '/sleep?s=1', 3);
        expectAllOk(blocking);
        expect(maxMs(blocking)).toBeGreaterThanOrEqual(2800);
        // The uwsgi async API waits on gevent's hub.
        const slow = await concurrent(srv.port, '/slow?s=1', 5);
        expectAllOk(slow);
        expect(maxMs(slow)).toBeLessThan(2500);
      });
    } finally {
      await stopped(srv);
    }
  }, 40000);
});

describe('engines that cannot run are refused with a clear error', () => {
  test('--loop with an unknown name lists the loaded engines', async () => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--loop', 'tornado', '--wsgi-file', ASYNC_APP]);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/TSUWSGI_E_LOOP_ENGINE/);
    expect(r.output).toMatch(/unknown loop engine "tornado" \(--loop tornado\): the loaded loop engines are simple, async, asyncio, gevent/);
  });

  test('--gevent with a non-python plugin names the engines its bridge can run', async () => {
    const r = await runTsuwsgi(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--gevent', '10', '--psgi', fixture('../perl/hello.pl')]);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/TSUWSGI_E_LOOP_ENGINE/);
    expect(r.output).toMatch(/the psgi plugin's Perl bridge cannot run the "gevent" loop engine \(--gevent 10\): it runs only "simple"/);
  });

  test('--gevent 1 (uWSGI: the gevent loop engine requires async mode) and --async with --threads', async () => {
    const one = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--gevent', '1', '--wsgi-file', ASYNC_APP]);
    expect(one.code).toBe(1);
    expect(one.output).toMatch(/the "gevent" loop engine requires async mode with at least 2 cores \(--gevent 1\)/);
    const threads = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--async', '4', '--threads', '2', '--wsgi-file', ASYNC_APP]);
    expect(threads.code).toBe(1);
    expect(threads.output).toMatch(/--threads 2 cannot be combined with the "async" loop engine/);
  });

  test('gevent missing from the interpreter fails start-up loudly', async () => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--gevent', '4', '--pythonpath', fixture('no_gevent'), '--wsgi-file', ASYNC_APP]);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/TSUWSGI_E_LOOP_ENGINE/);
    expect(r.output).toMatch(/the "gevent" loop engine cannot run in the Python bridge: the gevent loop engine needs the gevent module, which \S+ cannot import \(gevent is hidden by the loop-engines test\)/);
  });

  test('--loop-list shows the engines', async () => {
    const r = await runTsuwsgi(['--loop-list']);
    expect(r.code).toBe(0);
    for (const name of ['simple', 'async', 'asyncio', 'gevent', 'greenlet']) expect(r.stdout).toMatch(new RegExp(`^${name}\\s`, 'm'));
  });
});
