/**
 * WSGI (PEP 3333) conformance over --http-socket, with real HTTP clients on kept-alive
 * connections: spec/languages.md §4.7 (PY1, PY4–PY10) and the HTTP front end's framing
 * duties (chunked uploads, HEAD/204/304, pipelining, 100-continue, HTTP/1.0, limits).
 *
 * Apps are in test/fixtures/python/, served together by suite.py and wrapped in
 * wsgiref.validate, so any PEP 3333 violation by the server (environ types, missing keys,
 * close() not called) turns into a 500 and a traceback in the log.
 *
 * The cases every language shares (repeated response headers, a chunk-encoded stream, …) run
 * against the same suite.py in test/conformance/shared-request-set.test.ts, not here.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chunkEncode, httpRequest, RawHttpConnection, rawHttp, rawRequest } from '../helpers/http-raw.ts';
import { fixture, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle, waitForFile } from '../helpers/server.ts';
import { json } from '../helpers/assertions.ts';

const SUITE = fixture('suite.py');

function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

describe('WSGI over --http-socket (1 process, 1 thread, keep-alive)', () => {
  let srv: ServerHandle;
  let agent: http.Agent;
  let dir: string;

  beforeAll(async () => {
    dir = tmpDir();
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE]);
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }, 60000);

  afterAll(async () => {
    agent?.destroy();
    if (srv) expect(await srv.stop()).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);

  const get = (p: string, o: Parameters<typeof httpRequest>[1] = {}) => httpRequest(srv.port, { agent, path: p, ...o });

  /** A failing expectation shows the server's recent log. */
  const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);

  test('PY1: GET / answers 200, Content-Type text/html, "Hello World"', () =>
    withLog(async () => {
      const r = await get('/hello');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html');
      expect(r.body.toString()).toBe('Hello World');
    }));

  test('PY4: the environ carries method, path, query string and the wsgi.* keys', () =>
    withLog(async () => {
      const r = await get('/env/a/b?x=1&y=two%20words', { headers: { 'X-Test': 'hdr-value', 'User-Agent': 'tsuwsgi-tests' } });
      expect(r.status).toBe(200);
      const e = json(r.body);
      expect(e).toMatchObject({
        REQUEST_METHOD: 'GET',
        PATH_INFO: '/env/a/b',
        QUERY_STRING: 'x=1&y=two%20words',
        REQUEST_URI: '/env/a/b?x=1&y=two%20words',
        SERVER_PROTOCOL: 'HTTP/1.1',
        SERVER_PORT: String(srv.port),
        REMOTE_ADDR: '127.0.0.1',
        HTTP_X_TEST: 'hdr-value',
        HTTP_USER_AGENT: 'tsuwsgi-tests',
        'wsgi.version': [1, 0],
        'wsgi.url_scheme': 'http',
        'wsgi.multithread': false,
        'wsgi.multiprocess': false,
        'wsgi.run_once': false,
        _has_file_wrapper: true,
      });
      expect(e.SCRIPT_NAME ?? '').toBe('');
      expect(typeof e['uwsgi.version']).toBe('string');
      expect(e['uwsgi.node']).toBeTruthy();
    }));

  test('PATH_INFO is percent-decoded, REQUEST_URI and QUERY_STRING are not', () =>
    withLog(async () => {
      const e = json((await get('/env/a%20b/%C3%A9?q=%41')).body);
      expect(e.REQUEST_URI).toBe('/env/a%20b/%C3%A9?q=%41');
      // latin-1 decoded bytes, as PEP 3333 requires ("native strings")
      expect(e.PATH_INFO).toBe('/env/a b/\u00c3\u00a9');
      expect(e.QUERY_STRING).toBe('q=%41');
    }));

  test('an empty query string is present and empty', () =>
    withLog(async () => {
      const e = json((await get('/env')).body);
      expect(e.QUERY_STRING).toBe('');
      expect(e._keys).toEqual(expect.arrayContaining(['QUERY_STRING', 'REQUEST_METHOD', 'SERVER_NAME', 'SERVER_PORT', 'PATH_INFO']));
    }));

  test('PY6: POST body read with read(CONTENT_LENGTH), CONTENT_TYPE passed', () =>
    withLog(async () => {
      const r = await get('/echo?mode=read', { method: 'POST', body: 'abc', headers: { 'Content-Type': 'text/x-test' } });
      expect(r.status).toBe(200);
      expect(json(r.body)).toMatchObject({ length: 3, body: 'abc', content_length: '3', content_type: 'text/x-test' });
    }));

  test('PY6: read() without a size returns the whole body (uWSGI extension)', () =>
    withLog(async () => {
      const r = await get('/echo?mode=readall', { method: 'POST', body: 'hello body' });
      expect(json(r.body)).toMatchObject({ length: 10, body: 'hello body' });
    }));

  test('PY6: readline() returns the body line by line', () =>
    withLog(async () => {
      const r = await get('/echo?mode=readline', { method: 'POST', body: 'one\ntwo\nthree' });
      expect(json(r.body)).toMatchObject({ lines: ['one\n', 'two\n', 'three'], length: 13 });
    }));

  test('iterating wsgi.input yields lines', () =>
    withLog(async () => {
      const r = await get('/echo?mode=iter', { method: 'POST', body: 'a\nbb\n' });
      expect(json(r.body)).toMatchObject({ lines: ['a\n', 'bb\n'] });
    }));

  test('a chunked upload (Transfer-Encoding: chunked) reaches the app de-chunked with CONTENT_LENGTH', () =>
    withLog(async () => {
      const body = crypto.randomBytes(100_000);
      const c = await RawHttpConnection.connect(srv.port);
      try {
        await c.write(rawRequest('POST', '/echo?mode=chunks', { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' }));
        await c.write(chunkEncode(body, 7000));
        const r = await c.readResponse();
        expect(r.status).toBe(200);
        const e = json(r.body);
        expect(e).toMatchObject({ length: body.length, sha256: sha256(body) });
        // apps see the length, never the framing
        expect(e.content_length).toBe(String(body.length));
      } finally {
        c.close();
      }
    }));

  test('an 8 MiB upload arrives intact (sha256) and the connection stays usable', () =>
    withLog(async () => {
      const body = crypto.randomBytes(8 * 1024 * 1024);
      const r = await get('/echo?mode=chunks', { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 60000 });
      expect(r.status).toBe(200);
      expect(json(r.body)).toMatchObject({ length: body.length, sha256: sha256(body) });
      const again = await get('/hello');
      expect(again.body.toString()).toBe('Hello World');
    }), 90000);

  test('HEAD: same status and headers as GET, no body bytes on the wire', () =>
    withLog(async () => {
      const c = await RawHttpConnection.connect(srv.port);
      try {
        await c.write(rawRequest('GET', '/head'));
        const g = await c.readResponse();
        await c.write(rawRequest('HEAD', '/head'));
        const h = await c.readResponse({ head: true });
        expect(h.status).toBe(200);
        expect(h.header('content-type')).toBe('text/plain');
        expect(h.header('x-head-test')).toBe('yes');
        expect(h.header('content-length')).toBe(g.header('content-length'));
        expect(g.body.length).toBe(1234);
        // If any body byte had been sent after the HEAD response, the next response would not parse.
        await c.write(rawRequest('GET', '/hello'));
        const next = await c.readResponse();
        expect(next.status).toBe(200);
        expect(next.body.toString()).toBe('Hello World');
        expect(c.pending.length).toBe(0);
      } finally {
        c.close();
      }
    }));

  test.each(['204', '304'])('%s: no body, and the next response on the connection parses', (code) =>
    withLog(async () => {
      const c = await RawHttpConnection.connect(srv.port);
      try {
        await c.write(rawRequest('GET', `/status/${code}`));
        const r = await c.readResponse();
        expect(r.status).toBe(Number(code));
        expect(r.header('x-status')).toBe(code);
        expect(r.header('transfer-encoding')).toBeUndefined();
        await c.write(rawRequest('GET', '/hello'));
        const next = await c.readResponse();
        expect(next.statusLine).toMatch(/^HTTP\/1\.1 200/);
        expect(next.body.toString()).toBe('Hello World');
        expect(c.pending.length).toBe(0);
      } finally {
        c.close();
      }
    }));

  test('PY8: a generator body is streamed (first chunk before the app finishes) and close() is called', () =>
    withLog(async () => {
      const gate = path.join(dir, 'gate');
      const marker = path.join(dir, 'stream-closed');
      const c = await RawHttpConnection.connect(srv.port);
      try {
        await c.write(rawRequest('GET', `/stream?n=3&gate=${encodeURIComponent(gate)}&marker=${encodeURIComponent(marker)}`));
        // The app blocks after its first chunk until the gate file exists: chunk-0 must arrive first.
        await c.readUntil('chunk-0\n', 15000);
        expect(c.pending.includes('chunk-1')).toBe(false);
        fs.writeFileSync(gate, 'go');
        const r = await c.readResponse();
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('chunk-0\nchunk-1\nchunk-2\n');
        expect(await waitForFile(marker)).toBe('closed');
      } finally {
        c.close();
      }
    }));

  test('the write() callable from start_response sends data before the returned iterable', () =>
    withLog(async () => {
      const r = await get('/write');
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('written-1;written-2;returned-3');
    }));

  test.each([
    ['iterated by the validator', '/file'],
    ['returned as is (sendfile path)', '/file/raw'],
  ])('PY7: wsgi.file_wrapper over a real file, %s', (_name, route) =>
    withLog(async () => {
      const f = path.join(dir, 'data.bin');
      const data = crypto.randomBytes(300_000);
      fs.writeFileSync(f, data);
      const r = await get(`${route}?path=${encodeURIComponent(f)}`);
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(data.length);
      expect(sha256(r.body)).toBe(sha256(data));
    }));

  test('consecutive large responses (1 MiB) on one bridge connection each complete, and so does the next small one', () =>
    withLog(async () => {
      const f = path.join(dir, 'big.bin');
      const data = crypto.randomBytes(1024 * 1024);
      fs.writeFileSync(f, data);
      for (const route of ['/file', '/file/raw', '/file', '/file/raw']) {
        const r = await get(`${route}?path=${encodeURIComponent(f)}`, { timeoutMs: 15000 });
        expect({ route, status: r.status, length: r.body.length }).toEqual({ route, status: 200, length: data.length });
        const small = await get('/hello', { timeoutMs: 15000 });
        expect(small.body.toString()).toBe('Hello World');
      }
    }), 90000);

  test('PY9: an exception before start_response gives 500 and the traceback in the log; the server keeps serving', () =>
    withLog(async () => {
      const r = await get('/error');
      expect(r.status).toBe(500);
      await srv.waitForLog(/Traceback \(most recent call last\)[\s\S]*RuntimeError: boom-before-start-response/, 10000);
      // The traceback is not leaked to the client without --catch-exceptions.
      expect(r.body.toString()).not.toContain('boom-before-start-response');
      const ok = await get('/hello');
      expect(ok.status).toBe(200);
    }));

  test('Expect: 100-continue gets an interim 100 before the body is sent', () =>
    withLog(async () => {
      const c = await RawHttpConnection.connect(srv.port);
      try {
        await c.write(rawRequest('POST', '/echo?mode=read', { 'Content-Length': '11', Expect: '100-continue' }));
        const interim = await c.readResponse({ timeoutMs: 10000 });
        expect(interim.status).toBe(100);
        await c.write('hello there');
        const r = await c.readResponse();
        expect(r.status).toBe(200);
        expect(json(r.body)).toMatchObject({ length: 11, body: 'hello there' });
      } finally {
        c.close();
      }
    }));

  test('an HTTP/1.0 request is answered and the connection closed; the app sees SERVER_PROTOCOL HTTP/1.0', () =>
    withLog(async () => {
      const r1 = await rawHttp(srv.port, 'GET /hello HTTP/1.0\r\n\r\n', { timeoutMs: 10000 });
      expect(r1.closed).toBe(true);
      const c = await RawHttpConnection.connect(srv.port);
      await c.write('GET /hello HTTP/1.0\r\n\r\n');
      const res = await c.readResponse();
      c.close();
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('Hello World');
      const r2 = await rawHttp(srv.port, 'GET /env HTTP/1.0\r\nHost: x\r\n\r\n', { timeoutMs: 10000 });
      const body = r2.data.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
      expect(json(Buffer.from(body, 'latin1')).SERVER_PROTOCOL).toBe('HTTP/1.0');
    }));

  test('pipelining: two requests in one write get two responses, in order', () =>
    withLog(async () => {
      const c = await RawHttpConnection.connect(srv.port);
      try {
        await c.write(Buffer.concat([rawRequest('GET', '/env/first?n=1'), rawRequest('POST', '/echo?mode=read', {}, 'second'), rawRequest('GET', '/hello')]));
        const a = await c.readResponse();
        const b = await c.readResponse();
        const d = await c.readResponse();
        expect(json(a.body).PATH_INFO).toBe('/env/first');
        expect(json(b.body)).toMatchObject({ body: 'second' });
        expect(d.body.toString()).toBe('Hello World');
      } finally {
        c.close();
      }
    }));

  test('keep-alive: several requests reuse one connection', () =>
    withLog(async () => {
      const c = await RawHttpConnection.connect(srv.port);
      try {
        for (let i = 0; i < 6; i++) {
          await c.write(rawRequest('GET', i % 2 ? '/hello' : `/env?i=${i}`));
          const r = await c.readResponse();
          expect(r.status).toBe(200);
          expect(r.header('connection') ?? 'keep-alive').not.toMatch(/close/i);
        }
        expect(c.closed).toBe(false);
      } finally {
        c.close();
      }
      // node:http's keep-alive agent reuses its socket too.
      const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = await httpRequest(srv.port, { agent: ka, path: '/hello' });
        const second = await httpRequest(srv.port, { agent: ka, path: '/hello' });
        expect(second.reusedSocket).toBe(true);
        expect(second.localPort).toBe(first.localPort);
      } finally {
        ka.destroy();
      }
    }));

  test('a malformed request line gets 400, and the server still serves the next client', () =>
    withLog(async () => {
      const bad = await rawHttp(srv.port, 'THIS IS NOT HTTP\r\n\r\n', { timeoutMs: 10000 });
      expect(bad.data.toString('latin1')).toMatch(/^HTTP\/1\.[01] 400 /);
      const ok = await httpRequest(srv.port, { path: '/hello' });
      expect(ok.status).toBe(200);
      expect(ok.body.toString()).toBe('Hello World');
    }));

  test('validator never saw an unclosed iterable (close() is always called)', () =>
    withLog(async () => {
      // A few requests more so garbage collection of earlier iterables has happened.
      for (let i = 0; i < 3; i++) await get('/stream?n=2');
      expect(srv.logs()).not.toMatch(/garbage collected without being closed/);
      expect(srv.logs()).not.toMatch(/AssertionError/);
    }));
});

describe('request header limits (--buffer-size 4096)', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--buffer-size', '4096']);
  }, 60000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  test('headers larger than --buffer-size get 431 and a log line naming --buffer-size', async () => {
    const res = await rawHttp(srv.port, rawRequest('GET', '/', { Cookie: 'c=' + 'x'.repeat(6000) }), { timeoutMs: 10000 });
    expect(res.data.toString('latin1')).toMatch(/^HTTP\/1\.[01] 431 /);
    await srv.waitForLog(/--buffer-size/, 5000);
    const ok = await httpRequest(srv.port, { path: '/', headers: { Cookie: 'c=' + 'x'.repeat(1000) } });
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe('Hello World');
  });

  test('a request the HTTP parser refuses (a raw non-ASCII byte in the URL) gets 400 and a log line saying why', async () => {
    const res = await rawHttp(srv.port, Buffer.concat([Buffer.from('GET /caf'), Buffer.from([0xc3, 0xa9]), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')]), { timeoutMs: 10000 });
    expect(res.data.toString('latin1')).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    await srv.waitForLog(/invalid HTTP request from 127\.0\.0\.1: Invalid char in url path \[HPE_INVALID_URL\] \(bytes outside ASCII must be percent-encoded\): answered 400/, 5000);
  });
});

describe('PY5: --processes 2 --threads 2', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('env_dump.py'), '--processes', '2', '--threads', '2']);
  }, 60000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  test('wsgi.multithread and wsgi.multiprocess are True', async () => {
    const r = await httpRequest(srv.port, { path: '/' });
    expect(r.status).toBe(200);
    expect(json(r.body)).toMatchObject({ 'wsgi.multithread': true, 'wsgi.multiprocess': true });
  });

  test('two bridge processes serve requests', async () => {
    const spawned = await srv.waitForLogCount(/spawned uWSGI worker (\d+) \(pid: (\d+), cores: 2\)/, 2);
    expect(new Set(spawned.map((m) => m[1]))).toEqual(new Set(['1', '2']));
  });
});

describe('PY10: --mount with --manage-script-name', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    srv = await startServer([
      '--http-socket',
      '127.0.0.1:0',
      '--mount',
      `/app1=${fixture('hello.py')}`,
      '--mount',
      `/app2=${fixture('env_dump.py')}`,
      '--manage-script-name',
    ]);
  }, 60000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  test('the mountpoint becomes SCRIPT_NAME and the rest PATH_INFO', async () => {
    const r = await httpRequest(srv.port, { path: '/app2/foo?z=1' });
    expect(r.status).toBe(200);
    expect(json(r.body)).toMatchObject({ SCRIPT_NAME: '/app2', PATH_INFO: '/foo', QUERY_STRING: 'z=1' });
    const h = await httpRequest(srv.port, { path: '/app1/' });
    expect(h.body.toString()).toBe('Hello World');
  });
});

describe('clients that disconnect abruptly (what wrk does when a run ends)', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--processes', '2']);
  }, 60000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  /** 32 keep-alive clients request `target` in a loop for a second, then all vanish at once. */
  async function hammerAndVanish(target: string): Promise<void> {
    const conns = await Promise.all(Array.from({ length: 32 }, () => RawHttpConnection.connect(srv.port)));
    let stop = false;
    const loops = conns.map(async (c) => {
      while (!stop) {
        try {
          await c.write(rawRequest('GET', target));
          await c.readResponse({ timeoutMs: 10000 });
        } catch {
          return;
        }
      }
    });
    await sleep(1000);
    stop = true;
    for (const c of conns) c.close();
    await Promise.all(loops);
    await sleep(300);
  }

  test.each([
    ['small responses', '/hello'],
    ['64 KiB responses', '/big?n=65536'],
  ])('after 32 clients vanish mid-request (%s), new clients are still served', (_name, target) =>
    withServerLog(srv, async () => {
      await hammerAndVanish(target);
      for (let i = 0; i < 3; i++) {
        const r = await httpRequest(srv.port, { path: '/hello', timeoutMs: 10000 });
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('Hello World');
      }
    }), 60000);
});

describe('app loading and per-option behaviour', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    if (srv && !srv.hasExited) expect(await srv.stop()).toBe(0);
    srv = undefined;
  }, 30000);

  test('--http (the router) serves the app and logs "uWSGI http bound on"', async () => {
    srv = await startServer(['--http', '127.0.0.1:0', '--wsgi-file', fixture('hello.py')]);
    const s = srv;
    await withServerLog(s, async () => {
      expect(s.logs()).toMatch(/^uWSGI http bound on 127\.0\.0\.1:\d+ fd \d+/m);
      expect(s.sockets[0]).toBe(`127.0.0.1:${s.port}`);
      const r = await httpRequest(s.port, { path: '/' });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('Hello World');
    });
  });

  test.each([['hello'], ['hello:application']])('PY3: --module %s loads the same app as --wsgi-file', async (spec) => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--pythonpath', path.dirname(SUITE), '--module', spec]);
    const s = srv;
    await withServerLog(s, async () => {
      const r = await httpRequest(s.port, { path: '/' });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('Hello World');
    });
  });

  test('PY9 with --catch-exceptions: the traceback is the 500 body', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--catch-exceptions']);
    const s = srv;
    await withServerLog(s, async () => {
      const r = await httpRequest(s.port, { path: '/error' });
      expect(r.status).toBe(500);
      expect(r.body.toString()).toMatch(/RuntimeError: boom-before-start-response/);
    });
  });

  test('--limit-post 10: a 100-byte body is refused (413, "Invalid (too big) CONTENT_LENGTH" logged), a 5-byte one is served', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', SUITE, '--limit-post', '10']);
    const s = srv;
    await withServerLog(s, async () => {
      const big = await httpRequest(s.port, { method: 'POST', path: '/echo?mode=read', body: 'x'.repeat(100) });
      expect(big.status).toBe(413);
      await s.waitForLog(/Invalid \(too big\) CONTENT_LENGTH/, 5000);
      const small = await httpRequest(s.port, { method: 'POST', path: '/echo?mode=read', body: 'hello' });
      expect(small.status).toBe(200);
      expect(json(small.body)).toMatchObject({ body: 'hello' });
    });
  });

  test('PY2: --wsgi-file with a callable that does not exist fails fast with exit 22', async () => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--callable', 'no_such_callable']);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/no_such_callable/);
  }, 60000);
});
