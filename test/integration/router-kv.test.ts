/**
 * router_memcached (`memcached:`, `memcached-continue:`, `memcachedstore:` / `memcached-store:`)
 * and router_redis (`redis:`, `redis-continue:`, `redisstore:` / `redis-store:`), one conformance
 * suite run against both: responses served from and stored in a real memcached / redis, under
 * tsuwsgi and under Debian's uWSGI 2.0.21 router_memcached / router_redis with the same rules and
 * the same server. The two plugins share core/routing/kv-actions.ts and kv-client.ts, so every
 * case common to both is written once, in `describe.each(BACKENDS)`; what only one protocol has
 * (memcached's key validation, redis's WRONGTYPE replies, keys with spaces, CLIENT KILL) is in
 * that backend's own `describe`.
 *
 * They answer like uWSGI, except where tsuwsgi deliberately differs: failures are logged, after
 * a `*-continue` hit the app is not run at all (uWSGI runs it and its start_response fails with
 * "headers already sent"), a key memcached cannot take is not sent, and redis keys go as RESP
 * bulk strings (uWSGI's inline `get KEY` splits a key at its spaces).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { httpRequest, type HttpResult } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { mcGet, mcSet, mcStats, rawExchange, redisCommand, startMemcached, startRedis, type KvServer } from '../helpers/kv-servers.ts';
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

/** One key-value server and the plugin that talks to it. */
interface Backend {
  name: 'memcached' | 'redis';
  plugin: string;
  /** The action names: lookup, lookup that goes on, store transformation and its alias. */
  lookup: string;
  lookupContinue: string;
  store: string;
  storeAlias: string;
  start(): Promise<KvServer>;
  set(port: number, key: string, value: Buffer | string): Promise<void>;
  /** The value under `key`, or null. */
  get(port: number, key: string): Promise<Buffer | null>;
  /** Milliseconds `key` has left: -1 when it never expires, -2 when it is not there. */
  ttlMs(port: number, key: string): Promise<number>;
  /** Connections the server has accepted since it started. */
  connectionsAccepted(port: number): Promise<number>;
  /** What ends a value in the protocol's replies: a value holding it must still arrive whole. */
  replyEnd: string;
  /** Routes only this backend's own cases use, given `addr=HOST:PORT` of the server. */
  ownRules(addr: string): string[];
  /** This backend's own cases (a describe block), against the running rig. */
  ownCases(rig: Rig): void;
  /**
   * What the start-up checks put in rules the plugin must refuse: the server's usual port, an
   * option it does not know, a store's options lacking addr= or key=, an expires= that is no number.
   */
  refusing: { port: number; unknownKey: string; storeWithout: string; badExpires: string };
}

/** The servers under test, set up by useRig() before the cases run. */
interface Rig {
  kv: KvServer;
  ts: ServerHandle;
  uw: ForeignHandle;
  uwPort: number;
  /** GET `p` from one server. */
  get(port: number, p: string): Promise<HttpResult>;
  /** GET `p` from tsuwsgi, then from uWSGI. */
  both(p: string): Promise<{ mine: HttpResult; theirs: HttpResult }>;
}

const redisText = (v: unknown): string | null => (Buffer.isBuffer(v) ? v.toString() : v === null ? null : String(v));

const MEMCACHED: Backend = {
  name: 'memcached',
  plugin: 'router_memcached',
  lookup: 'memcached',
  lookupContinue: 'memcached-continue',
  store: 'memcachedstore',
  storeAlias: 'memcached-store',
  start: startMemcached,
  set: (port, key, value) => mcSet(port, key, value),
  get: mcGet,
  async ttlMs(port, key) {
    // The meta command `mg KEY t` answers `HD t<seconds left>` (-1: never), or EN for a miss.
    const reply = (await rawExchange(port, `mg ${key} t\r\n`, (b) => b.includes('\r\n'))).toString('latin1');
    if (reply === 'EN\r\n') return -2;
    const seconds = Number(/^HD t(-?\d+)\r\n$/.exec(reply)?.[1] ?? NaN);
    if (Number.isNaN(seconds)) throw new Error(`memcached mg ${key} t: ${reply}`);
    return seconds < 0 ? seconds : seconds * 1000;
  },
  connectionsAccepted: async (port) => Number((await mcStats(port)).get('total_connections')),
  replyEnd: 'END',
  ownRules: (addr) => ['--route', `^/inject/ memcachedstore:${addr},key=\${PATH_INFO}`],
  ownCases: memcachedOnly,
  refusing: { port: 11211, unknownKey: 'content-type=text/plain', storeWithout: 'addr=127.0.0.1:11211', badExpires: 'soon' },
};

const REDIS: Backend = {
  name: 'redis',
  plugin: 'router_redis',
  lookup: 'redis',
  lookupContinue: 'redis-continue',
  store: 'redisstore',
  storeAlias: 'redis-store',
  start: startRedis,
  set: async (port, key, value) => {
    expect(await redisCommand(port, ['SET', key, value])).toBe('OK');
  },
  get: async (port, key) => {
    const v = redisText(await redisCommand(port, ['GET', key]));
    return v === null ? null : Buffer.from(v);
  },
  ttlMs: async (port, key) => Number(await redisCommand(port, ['PTTL', key])),
  connectionsAccepted: async (port) => {
    const info = redisText(await redisCommand(port, ['INFO', 'stats']))!;
    return Number(/total_connections_received:(\d+)/.exec(info)![1]);
  },
  // A nil bulk string.
  replyEnd: '$-1',
  ownRules: () => [],
  ownCases: redisOnly,
  refusing: { port: 6379, unknownKey: 'content_encoding=gzip', storeWithout: 'key=x', badExpires: '-5' },
};

const BACKENDS = [MEMCACHED, REDIS];

/**
 * Start, before the cases of the enclosing describe, the backend's server, a server that accepts
 * connections and never answers, tsuwsgi and uWSGI with the same rules, and the seed values;
 * stop them all after.
 */
function useRig(b: Backend): Rig {
  const dir = tmpDir(`tsuwsgi-${b.name}-`);
  const app = path.join(dir, 'app.py');
  let silent: net.Server;
  const silentSockets = new Set<net.Socket>();
  const get = (port: number, p: string): Promise<HttpResult> => httpRequest(port, { path: p, timeoutMs: 10000 });
  const rig: Rig = {
    kv: undefined as unknown as KvServer,
    ts: undefined as unknown as ServerHandle,
    uw: undefined as unknown as ForeignHandle,
    uwPort: 0,
    get,
    both: (p) =>
      withServerLog(rig.ts, async () => ({ mine: await get(rig.ts.port, p), theirs: await get(rig.uwPort, p) }), () => `--- uWSGI log ---\n${rig.uw.logs().slice(-3000)}`),
  };

  beforeAll(async () => {
    fs.writeFileSync(app, APP);
    rig.kv = await b.start();
    silent = net.createServer((socket) => {
      silentSockets.add(socket);
      socket.on('close', () => silentSockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const deadPort = await freePort();
    const at = (p: number): string => `addr=127.0.0.1:${p}`;
    const kv = at(rig.kv.port);
    const rules = [
      '--socket-timeout', '1',
      '--route', `^/hit/(.*) ${b.lookup}:${kv},key=page:$1`,
      '--route', `^/hit/ log:after-${b.lookup} \${PATH_INFO}`,
      '--route', `^/json/(.*) ${b.lookup}:${kv},key=page:$1,content_type=application/json`,
      '--route', `^/cont/(.*) ${b.lookupContinue}:${kv},key=page:$1,no_offload=1`,
      '--route', '^/cont/ log:after-continue ${PATH_INFO}',
      '--route', `^/down/(.*) ${b.lookup}:${at(deadPort)},key=page:$1`,
      '--route', `^/silent/(.*) ${b.lookup}:${at(silentPort)},key=page:$1`,
      '--route', `^/store/(.*) ${b.store}:${kv},key=stored:$1`,
      '--route', `^/short/(.*) ${b.storeAlias}:${kv},key=short:$1,expires=2`,
      '--route', `^/storedown/(.*) ${b.store}:${at(deadPort)},key=stored:$1`,
      '--route', `^/cached/(.*) ${b.lookup}:${kv},key=stored:$1`,
      ...b.ownRules(kv),
    ];
    rig.ts = await startServer(['--plugin', b.plugin, '--http-socket', '127.0.0.1:0', '--wsgi-file', app, ...rules]);
    rig.uwPort = await freePort();
    rig.uw = await startForeign(UWSGI_BIN, ['--plugin', `python3,${b.plugin}`, '--http-socket', `127.0.0.1:${rig.uwPort}`, '--wsgi-file', app, ...rules], /spawned uWSGI worker 1/);
    await b.set(rig.kv.port, 'page:home', '<h1>cached home</h1>');
    await b.set(rig.kv.port, 'page:api', '{"cached":true}');
    await b.set(rig.kv.port, 'page:empty', '');
    // Bigger than uWSGI's 8 KiB read buffer, with CR LF, the reply end marker and binary bytes inside.
    await b.set(rig.kv.port, 'page:big', Buffer.concat([Buffer.from(`line\r\n${b.replyEnd}\r\n`), Buffer.alloc(300_000, 0xfe), Buffer.from('\r\ntail')]));
  });
  afterAll(async () => {
    await rig.uw?.stop();
    if (rig.ts) expect(await rig.ts.stop()).toBe(0);
    for (const s of silentSockets) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await rig.kv?.stop();
  }, 60000);

  return rig;
}

const sameAnswer = (mine: HttpResult, theirs: HttpResult): void => {
  expect(mine.status).toBe(theirs.status);
  expect(mine.headers['content-type']).toBe(theirs.headers['content-type']);
  expect(mine.body.equals(theirs.body)).toBe(true);
};

describe.each(BACKENDS)('$plugin', (b) => {
  describe(`against uWSGI, with the same ${b.name}`, () => {
    const rig = useRig(b);
    const { get, both } = rig;

    it('a hit is the value as a 200 text/html with its Content-Length, and routing stops', async () => {
      const { mine, theirs } = await both('/hit/home');
      sameAnswer(mine, theirs);
      expect(mine.status).toBe(200);
      expect(mine.headers['content-type']).toBe('text/html');
      expect(mine.headers['content-length']).toBe(theirs.headers['content-length']);
      expect(mine.body.toString()).toBe('<h1>cached home</h1>');
      expect(mine.headers['x-app']).toBeUndefined();
      await sleep(200);
      expect(rig.ts.logs()).not.toMatch(new RegExp(`after-${b.lookup} /hit/home`));
    });

    it('content_type= sets the Content-Type of a hit', async () => {
      const { mine, theirs } = await both('/json/api');
      sameAnswer(mine, theirs);
      expect(mine.headers['content-type']).toBe('application/json');
      expect(mine.body.toString()).toBe('{"cached":true}');
    });

    it(`a value larger than one read, with CR LF and ${b.replyEnd} inside, arrives whole`, async () => {
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
      await rig.ts.waitForLog(new RegExp(`after-${b.lookup} /hit/nothing-here`));
    });

    it('an empty value is a miss, as in uWSGI', async () => {
      const { mine, theirs } = await both('/hit/empty');
      sameAnswer(mine, theirs);
      expect(mine.body.toString()).toBe('app page /hit/empty');
    });

    it(`${b.lookupContinue}: a hit is answered and the next rules still run; a miss goes to the app`, async () => {
      const hit = await both('/cont/home');
      sameAnswer(hit.mine, hit.theirs);
      expect(hit.mine.body.toString()).toBe('<h1>cached home</h1>');
      await rig.ts.waitForLog(/after-continue \/cont\/home/);
      const miss = await both('/cont/nothing-here');
      sameAnswer(miss.mine, miss.theirs);
      expect(miss.mine.body.toString()).toBe('app page /cont/nothing-here');
    });

    it(`a ${b.name} that refuses connections is a miss, logged`, async () => {
      const { mine, theirs } = await both('/down/home');
      sameAnswer(mine, theirs);
      expect(mine.body.toString()).toBe('app page /down/home');
      await rig.ts.waitForLog(new RegExp(`${b.lookup} 127\\.0\\.0\\.1:\\d+: GET "page:home" failed: .*ECONNREFUSED.*routing goes on as for a miss`));
    });

    it(`a ${b.name} that never answers is a miss after --socket-timeout, logged`, async () => {
      const started = Date.now();
      const { mine, theirs } = await both('/silent/home');
      sameAnswer(mine, theirs);
      expect(mine.body.toString()).toBe('app page /silent/home');
      expect(Date.now() - started).toBeLessThan(8000);
      await rig.ts.waitForLog(new RegExp(`${b.lookup} 127\\.0\\.0\\.1:\\d+: GET "page:home" failed: no reply within 1 seconds`));
    });

    it(`${b.store} stores the 200 body the client gets, with no expiry, and ${b.lookup}: serves it (both ways between uWSGI and tsuwsgi)`, async () => {
      const mine = await get(rig.ts.port, '/store/by-ts');
      expect(mine.body.toString()).toBe('app page /store/by-ts');
      const theirs = await get(rig.uwPort, '/store/by-uwsgi');
      expect(theirs.body.toString()).toBe('app page /store/by-uwsgi');
      expect((await b.get(rig.kv.port, 'stored:by-ts'))?.toString()).toBe('app page /store/by-ts');
      expect((await b.get(rig.kv.port, 'stored:by-uwsgi'))?.toString()).toBe('app page /store/by-uwsgi');
      // expires=0 (the default): no expiry.
      expect(await b.ttlMs(rig.kv.port, 'stored:by-ts')).toBe(-1);
      for (const key of ['by-ts', 'by-uwsgi']) {
        const served = await both(`/cached/${key}`);
        sameAnswer(served.mine, served.theirs);
        expect(served.mine.body.toString()).toBe(`app page /store/${key}`);
        expect(served.mine.headers['content-type']).toBe('text/html');
      }
    });

    it(`${b.store} stores nothing for a non-200 response`, async () => {
      expect((await get(rig.ts.port, '/store/missing')).status).toBe(404);
      expect((await get(rig.uwPort, '/store/missing')).status).toBe(404);
      expect(await b.get(rig.kv.port, 'stored:missing')).toBeNull();
    });

    it(`${b.storeAlias} with expires=2 sets the same expiry as uWSGI, and the value is gone after it`, async () => {
      await get(rig.ts.port, '/short/by-ts');
      await get(rig.uwPort, '/short/by-uwsgi');
      for (const who of ['by-ts', 'by-uwsgi']) {
        expect((await b.get(rig.kv.port, `short:${who}`))?.toString()).toBe(`app page /short/${who}`);
        const ttl = await b.ttlMs(rig.kv.port, `short:${who}`);
        expect(ttl > 0 && ttl <= 2000).toBe(true);
      }
      // memcached counts in whole seconds: a 2 s value can live up to 3 s.
      await sleep(3200);
      expect(await b.get(rig.kv.port, 'short:by-ts')).toBeNull();
      expect(await b.get(rig.kv.port, 'short:by-uwsgi')).toBeNull();
    });

    it(`a store to a ${b.name} that is down logs a line and the response is unchanged`, async () => {
      const res = await get(rig.ts.port, '/storedown/x');
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('app page /storedown/x');
      await rig.ts.waitForLog(new RegExp(`${b.store} 127\\.0\\.0\\.1:\\d+: SET "stored:x" failed: .*ECONNREFUSED.*the response is not cached`));
    });

    it('lookups reuse their connections instead of connecting per request', async () => {
      await get(rig.ts.port, '/hit/home');
      const before = await b.connectionsAccepted(rig.kv.port);
      for (let i = 0; i < 20; i++) expect((await get(rig.ts.port, '/hit/home')).status).toBe(200);
      // The stats connection itself counts as one.
      expect((await b.connectionsAccepted(rig.kv.port)) - before).toBeLessThanOrEqual(2);
    });

    b.ownCases(rig);
  });

  describe('rules refused at start-up', () => {
    const { port, unknownKey, storeWithout, badExpires } = b.refusing;
    const addr = `addr=127.0.0.1:${port}`;
    const refused: Array<[string, RegExp]> = [
      [`${b.lookup}:${addr}`, new RegExp(`invalid "${b.lookup}:" route.*both addr= and key= are required`)],
      [`${b.lookupContinue}:key=x`, /both addr= and key= are required/],
      [`${b.lookup}:${addr},key=x,${unknownKey}`, new RegExp(`unknown key "${unknownKey.split('=')[0]}"`)],
      [`${b.store}:${storeWithout}`, new RegExp(`invalid "${b.store}:" transformation.*both addr= and key= are required`)],
      [`${b.storeAlias}:${addr},key=x,expires=${badExpires}`, new RegExp(`expires "${badExpires}" is not a number of seconds`)],
    ];
    it.each(refused)('%s', async (action, message) => {
      const r = await runTsuwsgi(['--plugin', b.plugin, '--http-socket', '127.0.0.1:0', '--route', `^/ ${action}`]);
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(message);
    });
  });
});

function memcachedOnly(rig: Rig): void {
  const { get } = rig;
  describe('memcached only: keys its text protocol cannot carry', () => {
    it('a key memcached cannot take (a space, CR LF) is not sent: a miss, logged (uWSGI writes it raw)', async () => {
      await mcSet(rig.kv.port, 'page:a', 'the value of page:a');
      const res = await get(rig.ts.port, '/hit/a%20b');
      expect(res.body.toString()).toBe('app page /hit/a b');
      await rig.ts.waitForLog(/memcached: key "page:a b" not looked up: the key holds a space/);
      const injected = await get(rig.ts.port, '/inject/z%0d%0aflush_all');
      expect(injected.status).toBe(200);
      await rig.ts.waitForLog(/memcachedstore: key "\/inject\/z\\r\\nflush_all" not stored: the key holds a space or a control character/);
      expect((await mcGet(rig.kv.port, 'page:home'))?.toString()).toBe('<h1>cached home</h1>');
    });
  });
}

function redisOnly(rig: Rig): void {
  const { get, both } = rig;
  describe('redis only: error replies, keys with spaces, connections the server closes', () => {
    beforeAll(async () => {
      await redisCommand(rig.kv.port, ['RPUSH', 'page:list', 'a', 'b']);
    });

    it('an error reply (WRONGTYPE) is a miss, logged', async () => {
      const { mine, theirs } = await both('/hit/list');
      sameAnswer(mine, theirs);
      expect(mine.body.toString()).toBe('app page /hit/list');
      await rig.ts.waitForLog(/redis 127\.0\.0\.1:\d+: GET "page:list" failed: redis answered "-WRONGTYPE/);
    });

    it('a key with a space is looked up as it is (uWSGI\'s inline command splits it: a miss there)', async () => {
      await redisCommand(rig.kv.port, ['SET', 'page:a b', 'spaced']);
      const { mine, theirs } = await both('/hit/a%20b');
      expect(mine.body.toString()).toBe('spaced');
      expect(theirs.body.toString()).toBe('app page /hit/a b');
    });

    it('a pooled connection the server closed is replaced: the next lookup is still a hit', async () => {
      await get(rig.ts.port, '/hit/home');
      await redisCommand(rig.kv.port, ['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
      const res = await get(rig.ts.port, '/hit/home');
      expect(res.body.toString()).toBe('<h1>cached home</h1>');
    });
  });
}
