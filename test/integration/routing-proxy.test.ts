/**
 * The proxy route actions end to end (spec/subsystems.md §6.6, acceptance checks 14 and 15 of
 * §6.8): a tsuwsgi front end forwards requests with `uwsgi:` / `proxyuwsgi:` to a tsuwsgi
 * backend and to a real uWSGI (Debian's uwsgi-core, the reference), and with `http:` /
 * `proxyhttp:` / `httpdumb:` to HTTP servers (tsuwsgi, python3 -m http.server, and a raw
 * recording server in this process that shows the exact request head). Also `hash:` choosing
 * a backend, checked against uWSGI's own router_hash for the same keys.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { httpRequest, rawHttp, rawRequest, chunkEncode, parseResponse, type HttpResult } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { fixture, freePort, runTsuwsgi, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const BACKEND_APP = fixture('proxy_backend.py');
const PATTERN = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** The bytes proxy_backend.py sends for /big?n=N and /nolen?n=N. */
function pattern(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += 256) PATTERN.copy(out, i, 0, Math.min(256, n - i));
  return out;
}
const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
const json = (r: HttpResult): Record<string, unknown> => JSON.parse(r.body.toString('latin1')) as Record<string, unknown>;

/** A raw HTTP server that answers every request with the request head it received (as JSON). */
interface Recorder {
  port: number;
  heads: string[];
  close(): Promise<void>;
}
async function startRecorder(): Promise<Recorder> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (cl && buf.length - end - 4 < Number(cl[1])) return;
      sock.removeAllListeners('data');
      heads.push(head);
      const body = Buffer.from(JSON.stringify({ head, body: buf.toString('latin1', end + 4) }));
      // A 100 Continue first when asked: interim answers must not reach the client.
      const interim = head.includes('/interim') ? 'HTTP/1.1 100 Continue\r\n\r\n' : '';
      sock.end(
        `${interim}HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nKeep-Alive: timeout=1\r\nX-Recorded: 1\r\nContent-Length: ${body.length}\r\n\r\n${body.toString('latin1')}`,
        'latin1',
      );
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    heads,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A server that accepts connections and never answers (a hung backend). */
async function startSilent(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** GET that reads the first chunk, runs `between` (e.g. opens a gate), then reads the rest. */
function streamedGet(port: number, p: string, between: (first: string) => void): Promise<{ first: string; all: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let all = '';
      let first: string | null = null;
      res.setEncoding('latin1');
      res.on('data', (d: string) => {
        all += d;
        if (first === null) {
          first = all;
          between(first);
        }
      });
      res.on('end', () => resolve({ first: first ?? '', all }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`GET ${p} timed out`)));
  });
}

/**
 * Independent reference implementations of uWSGI's core/hash.c (BigInt arithmetic on the C
 * code's uint32 semantics, x86-64 signed char), to check the plugin's picks.
 */
const M32 = 0xffffffffn;
function refDjb33x(key: Buffer): bigint {
  let h = 5381n;
  for (const b of key) h = (((h << 5n) + h) & M32) ^ (BigInt(b >= 128 ? b - 256 : b) & M32);
  return h;
}
function refMurmur2(key: Buffer): bigint {
  const m = 0x5bd1e995n;
  const signed = (b: number): bigint => BigInt(b >= 128 ? b - 256 : b) & M32;
  let len = key.length;
  let h = BigInt(len) & M32;
  let p = 0;
  while (len >= 4) {
    let k = BigInt(key.readUInt32LE(p));
    k = (k * m) & M32;
    k ^= k >> 24n;
    k = (k * m) & M32;
    h = ((h * m) & M32) ^ k;
    p += 4;
    len -= 4;
  }
  // uWSGI reads the tail through the un-advanced `char *key`: the first bytes, sign-extended.
  if (len >= 3) h ^= (signed(key[2]!) << 16n) & M32;
  if (len >= 2) h ^= (signed(key[1]!) << 8n) & M32;
  if (len >= 1) {
    h ^= signed(key[0]!);
    h = (h * m) & M32;
  }
  h ^= h >> 13n;
  h = (h * m) & M32;
  h ^= h >> 15n;
  return h;
}
const ITEMS = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
const HASH_KEYS = ['a', 'ab', 'abc', 'abcd', 'abcde', '/foo/bar', 'user-12345', 'x'.repeat(33), '\xc3\xa9t\xc3\xa9', '\xff\xfe\xfd', 'abcd\xe9\xe8\xe7'];
const HASH_RULES = [
  '--route', '^/hashcheck hash:key=${HTTP_X_K},var=D,algo=djb33x,items=a;b;c;d;e;f;g',
  '--route', '^/hashcheck hash:key=${HTTP_X_K},var=M,algo=murmur2,items=a;b;c;d;e;f;g',
  '--route', '^/hashcheck hash:key=${HTTP_X_K},var=T,items=a;b;c;',
  '--route', '^/hashcheck addheader:X-D: ${D}',
  '--route', '^/hashcheck addheader:X-M: ${M}',
  '--route', '^/hashcheck addheader:X-T: ${T}',
];

describe('uwsgi:, http: and hash: route actions', () => {
  let tsBack: ServerHandle;
  let tsHttp: ServerHandle;
  let uw: ForeignHandle;
  let uwHash: ForeignHandle;
  let pyHttp: ForeignHandle;
  let recorder: Recorder;
  let silent: { port: number; close(): Promise<void> };
  let front: ServerHandle;
  let uwAddr = '';
  let uwHashPort = 0;
  let deadPort = 0;
  const dir = fs.realpathSync(tmpDir('tsuwsgi-proxy-'));

  beforeAll(async () => {
    fs.mkdirSync(path.join(dir, 'www', 'h'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'www', 'h', 'listed-file.txt'), 'x');
    recorder = await startRecorder();
    silent = await startSilent();
    deadPort = await freePort();
    tsBack = await startServer(['--socket', '127.0.0.1:0', '--socket', path.join(dir, 'back.sock'), '--wsgi-file', BACKEND_APP, '--mount', `/y=${fixture('env_dump.py')}`, '--processes', '2']);
    tsHttp = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', BACKEND_APP, '--processes', '2']);
    const uwPort = await freePort();
    uwAddr = `127.0.0.1:${uwPort}`;
    uw = await startForeign(UWSGI_BIN, ['--plugin', 'python3', '--socket', uwAddr, '--wsgi-file', BACKEND_APP, '--master', '--processes', '2'], /spawned uWSGI worker 2/);
    uwHashPort = await freePort();
    uwHash = await startForeign(
      UWSGI_BIN,
      ['--plugin', 'python3,router_hash', '--http-socket', `127.0.0.1:${uwHashPort}`, '--wsgi-file', fixture('hello.py'), ...HASH_RULES],
      /spawned uWSGI worker 1/,
    );
    const pyPort = await freePort();
    pyHttp = await startForeign('/usr/bin/python3', ['-u', '-m', 'http.server', String(pyPort), '--bind', '127.0.0.1', '--directory', path.join(dir, 'www')], /Serving HTTP/);
    const tsAddr = tsBack.sockets[0]!;
    front = await startServer([
      '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('env_dump.py'), '--socket-timeout', '2',
      '--route', `^/t/ uwsgi:${tsAddr},0,0`,
      '--route', `^/r/ proxyuwsgi:${uwAddr},0,0`,
      '--route', `^/unix/ uwsgi:${path.join(dir, 'back.sock')},0,0`,
      '--route', `^/appid/ uwsgi:${tsAddr},0,0,/y`,
      '--route', '^/local uwsgi:,0,0',
      '--route', '^/local break:500',
      '--route', `^/hb/ http:127.0.0.1:${tsHttp.port}`,
      '--route', `^/h/ http:127.0.0.1:${pyPort},myhost`,
      '--route', `^/rec/ http:127.0.0.1:${recorder.port},myhost`,
      '--route', `^/recurl/ proxyhttp:127.0.0.1:${recorder.port},,/rewritten?a=1,2`,
      '--route', `^/interim http:127.0.0.1:${recorder.port}`,
      '--route', `^/dumb/ httpdumb:127.0.0.1:${recorder.port}`,
      '--route', `^/dead/ uwsgi:127.0.0.1:${deadPort},0,0`,
      '--route', `^/deadh/ http:127.0.0.1:${deadPort}`,
      '--route', `^/silent/ uwsgi:127.0.0.1:${silent.port},0,0`,
      '--route', `^/shard/ hash:key=\${qs[k]},var=SHARD,items=${tsAddr};${uwAddr}`,
      '--route', '^/shard/ uwsgi:${SHARD},0,0',
      ...HASH_RULES,
    ]);
  }, 90000);

  afterAll(async () => {
    const stops: Array<Promise<unknown>> = [];
    for (const s of [front, tsBack, tsHttp]) if (s) stops.push(s.stop());
    for (const f of [uw, uwHash, pyHttp]) if (f) stops.push(f.stop());
    if (recorder) stops.push(recorder.close());
    if (silent) stops.push(silent.close());
    await Promise.all(stops);
  });

  it('§6.8/14 uwsgi: gives the backend body, vars as routing left them (tsuwsgi and real uWSGI backends)', async () => {
    await withServerLog(front, async () => {
      for (const [prefix, version] of [['/t/', /tsuwsgi/], ['/r/', /^2\.0\.\d+(-debian)?$/]] as const) {
        const r = await httpRequest(front.port, { path: `${prefix}x/env?q=1`, headers: { 'X-Custom': 'v1' } });
        expect(r.status).toBe(200);
        const env = json(r);
        expect(env).toMatchObject({ REQUEST_METHOD: 'GET', REQUEST_URI: `${prefix}x/env?q=1`, PATH_INFO: `${prefix}x/env`, QUERY_STRING: 'q=1', HTTP_X_CUSTOM: 'v1' });
        expect(env['uwsgi.version']).toMatch(version);
        // The front end's own app was not run: the answer is the backend's, logged by the front.
        expect(env['_pid']).toBeUndefined();
      }
      await front.waitForLog(/GET \/r\/x\/env\?q=1 => generated \d+ bytes .*\(HTTP\/1\.1 200\)/);
    });
  });

  it('uwsgi: reaches a unix socket backend, and its APPID picks the backend\'s app', async () => {
    const u = await httpRequest(front.port, { path: '/unix/env' });
    expect([u.status, json(u)['PATH_INFO']]).toEqual([200, '/unix/env']);
    // The backend's default app is proxy_backend.py; /y is env_dump.py, which reports its pid.
    const a = await httpRequest(front.port, { path: '/appid/env' });
    expect(a.status).toBe(200);
    expect(json(a)).toMatchObject({ PATH_INFO: '/appid/env' });
    expect(typeof json(a)['_pid']).toBe('number');
  });

  it('bad uwsgi:, http: and hash: arguments are refused at start-up with TSUWSGI_E_ROUTING', async () => {
    const rules = ['uwsgi:127.0.0.1:3031', 'uwsgi:127.0.0.1:3031,300,0', 'uwsgi:127.0.0.1:3031,x,0', 'http:', 'http:127.0.0.1:notaport', 'hash:key=a,var=B', 'hash:key=a,var=B,items=x,algo=sha1', 'hash:key=a,var=B,items=x,colour=red'];
    for (const rule of rules) {
      const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--route-run', rule]);
      expect([rule, r.code]).toEqual([rule, 1]);
      expect(r.output).toMatch(/TSUWSGI_E_ROUTING/);
    }
  });

  it('passes the backend status, reason and headers through', async () => {
    for (const prefix of ['/t/', '/r/', '/hb/']) {
      const r = await httpRequest(front.port, { path: `${prefix}status` });
      expect([prefix, r.status, r.headers['x-backend'], r.body.toString()]).toEqual([prefix, 418, 'yes', 'teapot']);
    }
  });

  it('the local form uwsgi:,m1,m2 only changes the modifiers and runs the app at once', async () => {
    const r = await httpRequest(front.port, { path: '/local' });
    expect(r.status).toBe(200);
    expect(json(r)['PATH_INFO']).toBe('/local');
  });

  it('streams a 20 MB answer intact, with and without Content-Length', async () => {
    const n = 20_000_000;
    const want = sha256(pattern(n));
    for (const prefix of ['/t/', '/r/', '/hb/']) {
      const r = await httpRequest(front.port, { path: `${prefix}big?n=${n}` });
      expect([prefix, r.status, r.headers['content-length'], r.body.length, sha256(r.body)]).toEqual([prefix, 200, String(n), n, want]);
    }
    // No length from the app: real uWSGI ends such a body by closing, tsuwsgi by chunking.
    const m = 3_000_000;
    for (const prefix of ['/t/', '/r/']) {
      const r = await httpRequest(front.port, { path: `${prefix}nolen?n=${m}` });
      expect([prefix, r.status, r.body.length, sha256(r.body)]).toEqual([prefix, 200, m, sha256(pattern(m))]);
    }
  });

  it('streams a slow answer: the first part reaches the client before the backend has finished', async () => {
    for (const prefix of ['/t/', '/r/', '/hb/']) {
      const gate = path.join(dir, `gate-${prefix.replace(/\//g, '')}`);
      let gateExistedAtFirstChunk = true;
      const r = await streamedGet(front.port, `${prefix}stream?gate=${gate}`, () => {
        gateExistedAtFirstChunk = fs.existsSync(gate);
        fs.writeFileSync(gate, '1');
      });
      expect([prefix, r.first, gateExistedAtFirstChunk, r.all]).toEqual([prefix, 'first\n', false, 'first\nsecond\n']);
    }
  });

  it('keeps every byte for a client that reads slowly (backpressure to the backend)', async () => {
    const n = 8_000_000;
    const body = await new Promise<Buffer>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: front.port, path: `/r/big?n=${n}`, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.pause();
        setTimeout(() => {
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.resume();
        }, 1000);
        res.on('error', reject);
      }).on('error', reject);
    });
    expect([body.length, sha256(body)]).toEqual([n, sha256(pattern(n))]);
  });

  it('forwards a POST body of several MB (uwsgi: to both backends, http: to tsuwsgi)', async () => {
    const body = crypto.randomBytes(6 * 1024 * 1024 + 123);
    for (const prefix of ['/t/', '/r/', '/hb/']) {
      const r = await httpRequest(front.port, { method: 'POST', path: `${prefix}echo`, body, headers: { 'Content-Type': 'application/x-test' } });
      expect([prefix, r.status]).toEqual([prefix, 200]);
      expect(json(r)).toEqual({ length: body.length, sha256: sha256(body), CONTENT_TYPE: 'application/x-test', CONTENT_LENGTH: String(body.length) });
    }
  });

  it('forwards a chunked upload through the http front end with its decoded length', async () => {
    const body = crypto.randomBytes(700_000);
    await withServerLog(front, async () => {
    for (const prefix of ['/t/', '/r/', '/hb/']) {
      const req = rawRequest('POST', `${prefix}echo`, { 'Transfer-Encoding': 'chunked', Connection: 'close' }, chunkEncode(body, 65536));
      // rawRequest adds no Content-Length when Transfer-Encoding is given.
      const res = await rawHttp(front.port, req, { timeoutMs: 20000 });
      const parsed = parseResponse(res.data, { eof: true });
      expect(parsed).not.toBeNull();
      expect([prefix, parsed!.response.status]).toEqual([prefix, 200]);
      expect(JSON.parse(parsed!.response.body.toString())).toMatchObject({ length: body.length, sha256: sha256(body), CONTENT_LENGTH: String(body.length) });
    }
    }, () => `--- backend log ---\n${tsBack.logs().split('\n').slice(-15).join('\n')}`);
  });

  it('§6.8/15 http: with a Host override returns python http.server\'s directory listing', async () => {
    const r = await httpRequest(front.port, { path: '/h/' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toContain('listed-file.txt');
    await pyHttp.waitForLog(/"GET \/h\/ HTTP\/1\.0" 200/);
  });

  it('http: rebuilds the request as uWSGI does: HTTP/1.0, Host override, hop-by-hop headers dropped, X-Forwarded-For appended', async () => {
    const r = await httpRequest(front.port, {
      path: '/rec/p?x=1',
      headers: { 'X-Forwarded-For': '10.0.0.1', 'X-Custom': 'keep', TE: 'trailers', 'Keep-Alive': 'timeout=9', Connection: 'keep-alive, TE' },
    });
    expect(r.status).toBe(200);
    const head = String(json(r)['head']);
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('GET /rec/p?x=1 HTTP/1.0');
    expect(lines).toContain('Host: myhost');
    expect(lines).toContain('X-Custom: keep');
    expect(lines).toContain('Connection: close');
    expect(lines).toContain('X-Forwarded-For: 10.0.0.1, 127.0.0.1');
    expect(lines.filter((l) => /^(Host|Connection|X-Forwarded-For):/i.test(l))).toHaveLength(3);
    expect(lines.some((l) => /^(TE|Keep-Alive):/i.test(l))).toBe(false);
    // The backend's answer keeps its own headers but not the hop-by-hop ones about its connection.
    expect(r.headers['x-recorded']).toBe('1');
    expect(r.headers['keep-alive']).not.toBe('timeout=1');
  });

  it('proxyhttp: with an explicit url (commas allowed) and no Host override', async () => {
    const r = await httpRequest(front.port, { path: '/recurl/x', method: 'POST', body: 'abc', headers: { 'Content-Type': 'text/plain' } });
    const j = json(r);
    const lines = String(j['head']).split('\r\n');
    expect(lines[0]).toBe('POST /rewritten?a=1,2 HTTP/1.0');
    expect(lines).toContain(`Host: 127.0.0.1:${front.port}`);
    expect(lines).toContain('Content-Type: text/plain');
    expect(lines).toContain('Content-Length: 3');
    expect(j['body']).toBe('abc');
  });

  it('http: skips a backend\'s 100 Continue and gives the client the final answer', async () => {
    const r = await httpRequest(front.port, { path: '/interim' });
    expect(r.status).toBe(200);
    expect(r.headers['x-recorded']).toBe('1');
  });

  it('httpdumb: keeps the client protocol and its headers, adds no Connection: close', async () => {
    const r = await httpRequest(front.port, { path: '/dumb/z', headers: { 'X-Custom': 'dumb', TE: 'trailers', Connection: 'keep-alive, TE' } });
    const lines = String(json(r)['head']).split('\r\n');
    expect(lines[0]).toBe('GET /dumb/z HTTP/1.1');
    expect(lines).toContain('X-Custom: dumb');
    expect(lines).toContain('Te: trailers');
    expect(lines).toContain('Connection: keep-alive, TE');
    expect(lines).toContain('X-Forwarded-For: 127.0.0.1');
  });

  it('a dead backend gets the client a 502 and a log line; the server goes on serving', async () => {
    await withServerLog(front, async () => {
      for (const [p, kind] of [['/dead/x', 'uwsgi'], ['/deadh/x', 'http']] as const) {
        const r = await httpRequest(front.port, { path: p, method: 'POST', body: Buffer.alloc(300_000, 1) });
        expect([p, r.status, r.body.toString()]).toEqual([p, 502, 'Bad Gateway']);
        await front.waitForLog(new RegExp(`error routing request to ${kind} server 127\\.0\\.0\\.1:${deadPort}: connect ECONNREFUSED`));
      }
      expect((await httpRequest(front.port, { path: '/t/x/env' })).status).toBe(200);
      // On a kept-alive connection the unread body of the failed request does not poison the next one.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const failed = await httpRequest(front.port, { path: '/dead/y', method: 'POST', body: Buffer.alloc(2_000_000, 2), agent });
        const next = await httpRequest(front.port, { path: '/t/x/env', agent });
        expect([failed.status, next.status, next.reusedSocket]).toEqual([502, 200, true]);
      } finally {
        agent.destroy();
      }
    });
  });

  it('a backend that never answers gets a 504 after --socket-timeout, not a hung request', async () => {
    await withServerLog(front, async () => {
      const t0 = Date.now();
      const r = await httpRequest(front.port, { path: '/silent/x', timeoutMs: 15000 });
      expect(r.status).toBe(504);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
      expect(Date.now() - t0).toBeLessThan(8000);
      await front.waitForLog(/error routing request to uwsgi server 127\.0\.0\.1:\d+: no data for 2 seconds \(raise --socket-timeout/);
    });
  });

  it('hash: picks the same item as uWSGI\'s router_hash (djb33x, murmur2, trailing ;) for the same keys', async () => {
    for (const key of HASH_KEYS) {
      const headers = { 'X-K': key };
      const mine = await rawHttp(front.port, rawRequest('GET', '/hashcheck', { ...headers, Connection: 'close' }));
      const ref = await rawHttp(uwHashPort, rawRequest('GET', '/hashcheck', { ...headers, Connection: 'close' }));
      const pick = (data: Buffer): string[] => {
        const p = parseResponse(data, { eof: true })!.response;
        return [p.header('x-d') ?? '', p.header('x-m') ?? '', p.header('x-t') ?? ''];
      };
      const bytes = Buffer.from(key, 'latin1');
      const expected = [ITEMS[Number(refDjb33x(bytes) % 7n)], ITEMS[Number(refMurmur2(bytes) % 7n)], ['a', 'b', 'c'][Number(refDjb33x(bytes) % 3n)]];
      expect([JSON.stringify(key), pick(mine.data)]).toEqual([JSON.stringify(key), expected]);
      expect([JSON.stringify(key), pick(ref.data)]).toEqual([JSON.stringify(key), expected]);
    }
  });

  it('hash: + uwsgi:${VAR} shards requests over backends by key', async () => {
    const backends = [/tsuwsgi/, /^2\.0\.\d+(-debian)?$/];
    const seen = new Set<number>();
    for (const k of ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']) {
      const want = Number(refDjb33x(Buffer.from(k)) % 2n);
      seen.add(want);
      const r = await httpRequest(front.port, { path: `/shard/env?k=${k}` });
      expect([k, r.status]).toEqual([k, 200]);
      expect(String(json(r)['uwsgi.version'])).toMatch(backends[want]!);
    }
    // The keys were chosen so that both backends are used.
    expect(seen.size).toBe(2);
  });
});
