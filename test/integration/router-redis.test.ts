/**
 * router_redis (`redis:`, `redis-continue:`, `redisstore:` / `redis-store:`): responses served
 * from and stored in a real redis, under tsuwsgi and under Debian's uWSGI 2.0.21 router_redis
 * with the same rules and the same redis. They answer alike, except where tsuwsgi deliberately
 * differs: keys go as RESP bulk strings (uWSGI's inline `get KEY` splits a key at its spaces),
 * failures are logged, and after a `redis-continue` hit the app is not run at all (uWSGI runs
 * it and its start_response fails with "headers already sent").
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { httpRequest, type HttpResult } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { redisCommand, startRedis, type KvServer } from '../helpers/kv-servers.ts';
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

const text = (v: unknown): string | null => (Buffer.isBuffer(v) ? v.toString() : v === null ? null : String(v));

async function connectionsReceived(port: number): Promise<number> {
  const info = text(await redisCommand(port, ['INFO', 'stats']))!;
  return Number(/total_connections_received:(\d+)/.exec(info)![1]);
}

describe('redis: against uWSGI, with the same redis', () => {
  const dir = tmpDir('tsuwsgi-redis-');
  const app = path.join(dir, 'app.py');
  let rd: KvServer;
  let silent: net.Server;
  const silentSockets = new Set<net.Socket>();
  let ts: ServerHandle;
  let uw: ForeignHandle;
  let uwPort = 0;

  beforeAll(async () => {
    fs.writeFileSync(app, APP);
    rd = await startRedis();
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
      '--route', `^/hit/(.*) redis:${at(rd.port)},key=page:$1`,
      '--route', '^/hit/ log:after-redis ${PATH_INFO}',
      '--route', `^/json/(.*) redis:${at(rd.port)},key=page:$1,content_type=application/json`,
      '--route', `^/cont/(.*) redis-continue:${at(rd.port)},key=page:$1,no_offload=1`,
      '--route', '^/cont/ log:after-continue ${PATH_INFO}',
      '--route', `^/down/(.*) redis:${at(deadPort)},key=page:$1`,
      '--route', `^/silent/(.*) redis:${at(silentPort)},key=page:$1`,
      '--route', `^/store/(.*) redisstore:${at(rd.port)},key=stored:$1`,
      '--route', `^/short/(.*) redis-store:${at(rd.port)},key=short:$1,expires=2`,
      '--route', `^/storedown/(.*) redisstore:${at(deadPort)},key=stored:$1`,
      '--route', `^/cached/(.*) redis:${at(rd.port)},key=stored:$1`,
    ];
    ts = await startServer(['--plugin', 'router_redis', '--http-socket', '127.0.0.1:0', '--wsgi-file', app, ...rules]);
    uwPort = await freePort();
    uw = await startForeign(UWSGI_BIN, ['--plugin', 'python3,router_redis', '--http-socket', `127.0.0.1:${uwPort}`, '--wsgi-file', app, ...rules], /spawned uWSGI worker 1/);
    await redisCommand(rd.port, ['SET', 'page:home', '<h1>cached home</h1>']);
    await redisCommand(rd.port, ['SET', 'page:api', '{"cached":true}']);
    await redisCommand(rd.port, ['SET', 'page:empty', '']);
    await redisCommand(rd.port, ['RPUSH', 'page:list', 'a', 'b']);
    // Bigger than uWSGI's 8 KiB read buffer, with CR LF and binary bytes inside.
    await redisCommand(rd.port, ['SET', 'page:big', Buffer.concat([Buffer.from('line\r\n$-1\r\n'), Buffer.alloc(300_000, 0xfe), Buffer.from('\r\ntail')])]);
  });
  afterAll(async () => {
    await uw?.stop();
    if (ts) expect(await ts.stop()).toBe(0);
    for (const s of silentSockets) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await rd?.stop();
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
    expect(ts.logs()).not.toMatch(/after-redis \/hit\/home/);
  });

  it('content_type= sets the Content-Type of a hit', async () => {
    const { mine, theirs } = await both('/json/api');
    sameAnswer(mine, theirs);
    expect(mine.headers['content-type']).toBe('application/json');
    expect(mine.body.toString()).toBe('{"cached":true}');
  });

  it('a value larger than one read, with CR LF inside, arrives whole', async () => {
    const { mine, theirs } = await both('/hit/big');
    sameAnswer(mine, theirs);
    expect(mine.body.length).toBe(300_000 + 17);
    expect(mine.headers['content-length']).toBe(String(300_017));
  });

  it('a miss (nil) goes on with the next rule and the app answers', async () => {
    const { mine, theirs } = await both('/hit/nothing-here');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /hit/nothing-here');
    expect(mine.headers['x-app']).toBe('yes');
    await ts.waitForLog(/after-redis \/hit\/nothing-here/);
  });

  it('an empty value is a miss, as in uWSGI', async () => {
    const { mine, theirs } = await both('/hit/empty');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /hit/empty');
  });

  it('an error reply (WRONGTYPE) is a miss, logged', async () => {
    const { mine, theirs } = await both('/hit/list');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /hit/list');
    await ts.waitForLog(/redis 127\.0\.0\.1:\d+: GET "page:list" failed: redis answered "-WRONGTYPE/);
  });

  it('redis-continue: a hit is answered and the next rules still run; a miss goes to the app', async () => {
    const hit = await both('/cont/home');
    sameAnswer(hit.mine, hit.theirs);
    expect(hit.mine.body.toString()).toBe('<h1>cached home</h1>');
    await ts.waitForLog(/after-continue \/cont\/home/);
    const miss = await both('/cont/nothing-here');
    sameAnswer(miss.mine, miss.theirs);
    expect(miss.mine.body.toString()).toBe('app page /cont/nothing-here');
  });

  it('a redis that refuses connections is a miss, logged', async () => {
    const { mine, theirs } = await both('/down/home');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /down/home');
    await ts.waitForLog(/redis 127\.0\.0\.1:\d+: GET "page:home" failed: .*ECONNREFUSED.*routing goes on as for a miss/);
  });

  it('a redis that never answers is a miss after --socket-timeout, logged', async () => {
    const started = Date.now();
    const { mine, theirs } = await both('/silent/home');
    sameAnswer(mine, theirs);
    expect(mine.body.toString()).toBe('app page /silent/home');
    expect(Date.now() - started).toBeLessThan(8000);
    await ts.waitForLog(/redis 127\.0\.0\.1:\d+: GET "page:home" failed: no reply within 1 seconds/);
  });

  it('redisstore stores the 200 body the client gets, and redis: serves it (both ways between uWSGI and tsuwsgi)', async () => {
    const mine = await get(ts.port, '/store/by-ts');
    expect(mine.body.toString()).toBe('app page /store/by-ts');
    const theirs = await get(uwPort, '/store/by-uwsgi');
    expect(theirs.body.toString()).toBe('app page /store/by-uwsgi');
    expect(text(await redisCommand(rd.port, ['GET', 'stored:by-ts']))).toBe('app page /store/by-ts');
    expect(text(await redisCommand(rd.port, ['GET', 'stored:by-uwsgi']))).toBe('app page /store/by-uwsgi');
    // expires=0 (the default): no expiry.
    expect(await redisCommand(rd.port, ['TTL', 'stored:by-ts'])).toBe(-1);
    for (const key of ['by-ts', 'by-uwsgi']) {
      const served = await both(`/cached/${key}`);
      sameAnswer(served.mine, served.theirs);
      expect(served.mine.body.toString()).toBe(`app page /store/${key}`);
      expect(served.mine.headers['content-type']).toBe('text/html');
    }
  });

  it('redisstore stores nothing for a non-200 response', async () => {
    expect((await get(ts.port, '/store/missing')).status).toBe(404);
    expect((await get(uwPort, '/store/missing')).status).toBe(404);
    expect(await redisCommand(rd.port, ['GET', 'stored:missing'])).toBeNull();
  });

  it('redis-store with expires=2 sets the same TTL as uWSGI, and the value is gone after it', async () => {
    await get(ts.port, '/short/by-ts');
    await get(uwPort, '/short/by-uwsgi');
    for (const who of ['by-ts', 'by-uwsgi']) {
      expect(text(await redisCommand(rd.port, ['GET', `short:${who}`]))).toBe(`app page /short/${who}`);
      const ttl = await redisCommand(rd.port, ['PTTL', `short:${who}`]);
      expect(typeof ttl === 'number' && ttl > 0 && ttl <= 2000).toBe(true);
    }
    await sleep(2300);
    expect(await redisCommand(rd.port, ['GET', 'short:by-ts'])).toBeNull();
    expect(await redisCommand(rd.port, ['GET', 'short:by-uwsgi'])).toBeNull();
  });

  it('a store to a redis that is down logs a line and the response is unchanged', async () => {
    const res = await get(ts.port, '/storedown/x');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('app page /storedown/x');
    await ts.waitForLog(/redisstore 127\.0\.0\.1:\d+: SET "stored:x" failed: .*ECONNREFUSED.*the response is not cached/);
  });

  it('a key with a space is looked up as it is (uWSGI\'s inline command splits it: a miss there)', async () => {
    await redisCommand(rd.port, ['SET', 'page:a b', 'spaced']);
    const { mine, theirs } = await both('/hit/a%20b');
    expect(mine.body.toString()).toBe('spaced');
    expect(theirs.body.toString()).toBe('app page /hit/a b');
  });

  it('lookups reuse their connections instead of connecting per request', async () => {
    await get(ts.port, '/hit/home');
    const before = await connectionsReceived(rd.port);
    for (let i = 0; i < 20; i++) expect((await get(ts.port, '/hit/home')).status).toBe(200);
    // The INFO connection itself counts as one.
    expect((await connectionsReceived(rd.port)) - before).toBeLessThanOrEqual(2);
  });

  it('a pooled connection the server closed is replaced: the next lookup is still a hit', async () => {
    await get(ts.port, '/hit/home');
    await redisCommand(rd.port, ['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
    const res = await get(ts.port, '/hit/home');
    expect(res.body.toString()).toBe('<h1>cached home</h1>');
  });
});

describe('redis: rules refused at start-up', () => {
  it.each([
    ['redis:addr=127.0.0.1:6379', /invalid "redis:" route.*both addr= and key= are required/],
    ['redis-continue:key=x', /both addr= and key= are required/],
    ['redis:addr=127.0.0.1:6379,key=x,content_encoding=gzip', /unknown key "content_encoding"/],
    ['redisstore:key=x', /invalid "redisstore:" transformation.*both addr= and key= are required/],
    ['redis-store:addr=127.0.0.1:6379,key=x,expires=-5', /expires "-5" is not a number of seconds/],
  ])('%s', async (action, message) => {
    const r = await runTsuwsgi(['--plugin', 'router_redis', '--http-socket', '127.0.0.1:0', '--route', `^/ ${action}`]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(message);
  });
});
