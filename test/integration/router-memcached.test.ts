/**
 * router_memcached (`memcached:`, `memcached-continue:`, `memcachedstore:` / `memcached-store:`):
 * responses served from and stored in a real memcached, under tsuwsgi and under Debian's
 * uWSGI 2.0.21 router_memcached with the same rules and the same memcached. They answer alike,
 * except where tsuwsgi deliberately differs: a key memcached cannot take is not sent, failures
 * are logged, and after a `memcached-continue` hit the app is not run at all (uWSGI runs it and
 * its start_response fails with "headers already sent").
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { httpRequest, type HttpResult } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { mcGet, mcSet, mcStats, startMemcached, type KvServer } from '../helpers/kv-servers.ts';
import { freePort, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

/** The app behind the cache: a 200 naming the path, or a 404 for paths ending in /missing. */
const APP = `def application(env, start_response):
    path = env['PATH_INFO']
    if path.endswith('/missing'):
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'no such page']
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-App', 'yes')])
    return [('app page ' + path).encode('latin-1')]
`;

describe('memcached: against uWSGI, with the same memcached', () => {
  const dir = tmpDir('tsuwsgi-memcached-');
  const app = path.join(dir, 'app.py');
  let mc: KvServer;
  let silent: net.Server;
  const silentSockets = new Set<net.Socket>();
  let ts: ServerHandle;
  let uw: ForeignHandle;
  let uwPort = 0;

  beforeAll(async () => {
    fs.writeFileSync(app, APP);
    mc = await startMemcached();
    // A server that accepts connections and never answers.
    silent = net.createServer((socket) => {
      silentSockets.add(socket);
      socket.on('close', () => silentSockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const deadPort = await freePort();
    const at = (p: number): string => `addr=127.0.0.1:${p}`;
    const rules = [
      '--socket-timeout', '1',
      '--route', `^/hit/(.*) memcached:${at(mc.port)},key=page:$1`,
      '--route', '^/hit/ log:after-memcached ${PATH_INFO}',
      '--route', `^/json/(.*) memcached:${at(mc.port)},key=page:$1,content_type=application/json`,
      '--route', `^/cont/(.*) memcached-continue:${at(mc.port)},key=page:$1,no_offload=1`,
      '--route', '^/cont/ log:after-continue ${PATH_INFO}',
      '--route', `^/down/(.*) memcached:${at(deadPort)},key=page:$1`,
      '--route', `^/silent/(.*) memcached:${at(silentPort)},key=page:$1`,
      '--route', `^/store/(.*) memcachedstore:${at(mc.port)},key=stored:$1`,
      '--route', `^/short/(.*) memcached-store:${at(mc.port)},key=short:$1,expires=2`,
      '--route', `^/storedown/(.*) memcachedstore:${at(deadPort)},key=stored:$1`,
      '--route', `^/cached/(.*) memcached:${at(mc.port)},key=stored:$1`,
      '--route', `^/inject/ memcachedstore:${at(mc.port)},key=\${PATH_INFO}`,
    ];
    ts = await startServer(['--plugin', 'router_memcached', '--http-socket', '127.0.0.1:0', '--wsgi-file', app, ...rules]);
    uwPort = await freePort();
    uw = await startForeign(UWSGI_BIN, ['--plugin', 'python3,router_memcached', '--http-socket', `127.0.0.1:${uwPort}`, '--wsgi-file', app, ...rules], /spawned uWSGI worker 1/);
    await mcSet(mc.port, 'page:home', '<h1>cached home</h1>');
    await mcSet(mc.port, 'page:api', '{"cached":true}');
    await mcSet(mc.port, 'page:empty', '');
    // Bigger than uWSGI's 8 KiB read buffer, with CR LF and binary bytes inside.
    await mcSet(mc.port, 'page:big', Buffer.concat([Buffer.from('line\r\nEND\r\n'), Buffer.alloc(300_000, 0xfe), Buffer.from('\r\ntail')]));
  });
  afterAll(async () => {
    await uw?.stop();
    if (ts) expect(await ts.stop()).toBe(0);
    for (const s of silentSockets) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await mc?.stop();
  }, 60000);

  const get = (port: number, p: string): Promise<HttpResult> => httpRequest(port, { path: p, timeoutMs: 10000 });

  async function both(p: string): Promise<{ mine: HttpResult; theirs: HttpResult }> {
    return withServerLog(ts, async () => ({ mine: await get(ts.port, p), theirs: await get(uwPort, p) }), () => `--- uWSGI log ---\n${uw.logs().slice(-3000)}`);
  }

  const sameAnswer = (mine: HttpResult, theirs: HttpResult): void => {
    expect(mine.status).toBe(theirs.status);
    expect(mine.headers['content-type']).toBe(theirs.headers['content-type']);
    expect(mine.body.equals(theirs.body)).toBe(true);
  };

  it('a hit is the value as a 200 text/html with its Content-Length, and routing stops', async () => {
    const { mine, theirs } = await both('/hit/home');
    sameAnswer(mine, theirs);
    expect(mine.status).toBe(200);
    expect(mine.headers['content-type']).toBe('text/html');
    expect(mine.headers['content-length']).toBe(theirs.headers['content-length']);
    expect(mine.body.toString()).toBe('<h1>cached home</h1>');
    expect(mine.headers['x-app']).toBeUndefined();
    await sleep(200);
    expect(ts.logs()).not.toMatch(/after-memcached \/hit\/home/);
  });

  it('content_type= sets the Content-Type of a hit', async () => {
    const { mine, theirs } = await both('/json/api');
    sameAnswer(mine, theirs);
    expect(mine.headers['content-type']).toBe('application/json');
    expect(mine.body.toString()).toBe('{"cached":true}');
  });

  it('a value larger than one read, with CR LF and END inside, arrives whole', async () => {
    const { mine, theirs } = await both('/hit/big');
    sameAnswer(mine, theirs);
    expect(mine.body.length).toBe(300_000 + 17);
    expect(mine.headers['content-length']).toBe(String(300_017));
  });

  it('a miss goes on with the next rule and the app answers', async () => {
    const { mine, theirs } = await both('/hit/nothing-here');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /hit/nothing-here');
    expect(mine.headers['x-app']).toBe('yes');
    await ts.waitForLog(/after-memcached \/hit\/nothing-here/);
  });

  it('an empty value is a miss, as in uWSGI', async () => {
    const { mine, theirs } = await both('/hit/empty');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /hit/empty');
  });

  it('memcached-continue: a hit is answered and the next rules still run; a miss goes to the app', async () => {
    const hit = await both('/cont/home');
    sameAnswer(hit.mine, hit.theirs);
    expect(hit.mine.body.toString()).toBe('<h1>cached home</h1>');
    await ts.waitForLog(/after-continue \/cont\/home/);
    const miss = await both('/cont/nothing-here');
    sameAnswer(miss.mine, miss.theirs);
    expect(miss.mine.body.toString()).toBe('app page /cont/nothing-here');
  });

  it('a memcached that refuses connections is a miss, logged', async () => {
    const { mine, theirs } = await both('/down/home');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /down/home');
    await ts.waitForLog(/memcached 127\.0\.0\.1:\d+: GET "page:home" failed: .*ECONNREFUSED.*routing goes on as for a miss/);
  });

  it('a memcached that never answers is a miss after --socket-timeout, logged', async () => {
    const started = Date.now();
    const { mine, theirs } = await both('/silent/home');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /silent/home');
    expect(Date.now() - started).toBeLessThan(8000);
    await ts.waitForLog(/memcached 127\.0\.0\.1:\d+: GET "page:home" failed: no reply within 1 seconds/);
  });

  it('memcachedstore stores the 200 body the client gets, and memcached: serves it (both ways between uWSGI and tsuwsgi)', async () => {
    const mine = await get(ts.port, '/store/by-ts');
    expect(mine.body.toString()).toBe('app page /store/by-ts');
    const theirs = await get(uwPort, '/store/by-uwsgi');
    expect(theirs.body.toString()).toBe('app page /store/by-uwsgi');
    expect((await mcGet(mc.port, 'stored:by-ts'))?.toString()).toBe('app page /store/by-ts');
    expect((await mcGet(mc.port, 'stored:by-uwsgi'))?.toString()).toBe('app page /store/by-uwsgi');
    for (const key of ['by-ts', 'by-uwsgi']) {
      const served = await both(`/cached/${key}`);
      sameAnswer(served.mine, served.theirs);
      expect(served.mine.body.toString()).toBe(`app page /store/${key}`);
      expect(served.mine.headers['content-type']).toBe('text/html');
    }
  });

  it('memcachedstore stores nothing for a non-200 response', async () => {
    expect((await get(ts.port, '/store/missing')).status).toBe(404);
    expect((await get(uwPort, '/store/missing')).status).toBe(404);
    expect(await mcGet(mc.port, 'stored:missing')).toBeNull();
  });

  it('memcached-store with expires=2: the value is gone after its time', async () => {
    await get(ts.port, '/short/e');
    expect((await mcGet(mc.port, 'short:e'))?.toString()).toBe('app page /short/e');
    await sleep(3200);
    expect(await mcGet(mc.port, 'short:e')).toBeNull();
  });

  it('a store to a memcached that is down logs a line and the response is unchanged', async () => {
    const res = await get(ts.port, '/storedown/x');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('app page /storedown/x');
    await ts.waitForLog(/memcachedstore 127\.0\.0\.1:\d+: SET "stored:x" failed: .*ECONNREFUSED.*the response is not cached/);
  });

  it('a key memcached cannot take (a space, CR LF) is not sent: a miss, logged (uWSGI writes it raw)', async () => {
    await mcSet(mc.port, 'page:a', 'the value of page:a');
    const res = await get(ts.port, '/hit/a%20b');
    expect(res.body.toString()).toBe('app page /hit/a b');
    await ts.waitForLog(/memcached: key "page:a b" not looked up: the key holds a space/);
    const injected = await get(ts.port, '/inject/z%0d%0aflush_all');
    expect(injected.status).toBe(200);
    await ts.waitForLog(/memcachedstore: key "\/inject\/z\\r\\nflush_all" not stored: the key holds a space or a control character/);
    expect((await mcGet(mc.port, 'page:home'))?.toString()).toBe('<h1>cached home</h1>');
  });

  it('lookups reuse their connections instead of connecting per request', async () => {
    await get(ts.port, '/hit/home');
    const before = Number((await mcStats(mc.port)).get('total_connections'));
    for (let i = 0; i < 20; i++) expect((await get(ts.port, '/hit/home')).status).toBe(200);
    const after = await mcStats(mc.port);
    // The stats connection itself counts as one.
    expect(Number(after.get('total_connections')) - before).toBeLessThanOrEqual(2);
  });
});

describe('memcached: rules refused at start-up', () => {
  it.each([
    ['memcached:addr=127.0.0.1:11211', /invalid "memcached:" route.*both addr= and key= are required/],
    ['memcached-continue:key=x', /both addr= and key= are required/],
    ['memcached:addr=127.0.0.1:11211,key=x,content-type=text/plain', /unknown key "content-type"/],
    ['memcachedstore:addr=127.0.0.1:11211', /invalid "memcachedstore:" transformation.*both addr= and key= are required/],
    ['memcached-store:addr=127.0.0.1:11211,key=x,expires=soon', /expires "soon" is not a number of seconds/],
  ])('%s', async (action, message) => {
    const r = await runTsuwsgi(['--plugin', 'router_memcached', '--http-socket', '127.0.0.1:0', '--route', `^/ ${action}`]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(message);
  });
});
