/**
 * Rack conformance over --http-socket with real HTTP clients on kept-alive connections: the
 * request set of wsgi-conformance.test.ts (chunked uploads, large bodies, HEAD, 204/304,
 * streaming, repeated headers, errors, query strings, pipelining, SCRIPT_NAME/PATH_INFO with a
 * mountpoint) against test/fixtures/ruby/suite.ru, which wraps the app in Debian's Rack::Lint.
 *
 * Lint raises on any violation of the Rack SPEC by the server (env keys and types, rack.input,
 * rack.errors...) or in what comes back: before the response that is a 500, after the headers
 * a truncated response. Every test asserts the exact status and body, and the suite ends by
 * asserting that no LintError reached the log.
 *
 * The cases every language shares (a chunk-encoded stream, …) run against the same suite.ru in
 * test/conformance/shared-request-set.test.ts, not here.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chunkEncode, httpRequest, RawHttpConnection, rawHttp, rawRequest } from '../helpers/http-raw.ts';
import { assertRuby, rbFixture } from '../helpers/ruby.ts';
import { sleep, startServer, tmpDir, withServerLog, type ServerHandle, waitForFile } from '../helpers/server.ts';
import { json } from '../helpers/assertions.ts';

const SUITE = rbFixture('suite.ru');

function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/** Rack::Lint found a violation: a LintError (with its message) in the log. */
function lintErrors(log: string): string[] {
  return log.split('\n').filter((l) => /LintError|Rack::Lint/.test(l));
}

beforeAll(() => assertRuby(['rack']));

describe('Rack over --http-socket with Rack::Lint (1 process, 1 thread, keep-alive)', () => {
  let srv: ServerHandle;
  let agent: http.Agent;
  let dir: string;

  beforeAll(async () => {
    dir = tmpDir();
    srv = await startServer(['--plugins', 'rack', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '7', '--rack', SUITE]);
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }, 60000);

  afterAll(async () => {
    agent?.destroy();
    if (srv) expect(await srv.stop()).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);

  const get = (p: string, o: Parameters<typeof httpRequest>[1] = {}) => httpRequest(srv.port, { agent, path: p, ...o });
  const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);

  test('RB1: GET /hello answers 200, Content-Type text/html, "Hello World"', () =>
    withLog(async () => {
      const r = await get('/hello');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html');
      expect(r.body.toString()).toBe('Hello World');
    }));

  test('RB3: the env carries the CGI vars, the rack.* keys of rack 2.2 and a usable rack.input', () =>
    withLog(async () => {
      const r = await get('/env/a/b?x=1&y=two%20words', { headers: { 'X-Test': 'hdr-value', 'User-Agent': 'tsuwsgi-tests' } });
      expect(r.status).toBe(200);
      const e = json(r.body);
      expect(e).toMatchObject({
        REQUEST_METHOD: 'GET',
        PATH_INFO: '/env/a/b',
        SCRIPT_NAME: '',
        QUERY_STRING: 'x=1&y=two%20words',
        REQUEST_URI: '/env/a/b?x=1&y=two%20words',
        SERVER_PROTOCOL: 'HTTP/1.1',
        SERVER_PORT: String(srv.port),
        REMOTE_ADDR: '127.0.0.1',
        HTTP_X_TEST: 'hdr-value',
        HTTP_USER_AGENT: 'tsuwsgi-tests',
        'rack.version': [1, 3],
        'rack.url_scheme': 'http',
        'rack.multithread': false,
        'rack.multiprocess': false,
        'rack.run_once': false,
        'rack.hijack?': false,
        _input_responds: ['gets', 'each', 'read', 'rewind'],
        _errors_responds: ['puts', 'write', 'flush'],
        _has_logger: false,
      });
      expect(e.SERVER_NAME).toBeTruthy();
      expect(typeof e['uwsgi.version']).toBe('string');
      expect(e['uwsgi.node']).toBeTruthy();
      // The body's length and type are CONTENT_LENGTH/CONTENT_TYPE only (Rack SPEC).
      expect(e._keys).not.toContain('HTTP_CONTENT_LENGTH');
      expect(e._keys).not.toContain('HTTP_CONTENT_TYPE');
      // CGI values are binary strings, as uWSGI's rack plugin makes them.
      expect(e._binary_values).toEqual(expect.arrayContaining(['PATH_INFO', 'REQUEST_METHOD', 'QUERY_STRING']));
    }));

  test('PATH_INFO is percent-decoded (bytes), REQUEST_URI and QUERY_STRING are not', () =>
    withLog(async () => {
      const e = json((await get('/env/a%20b/%C3%A9?q=%41')).body);
      expect(e.REQUEST_URI).toBe('/env/a%20b/%C3%A9?q=%41');
      expect(e.PATH_INFO).toBe('/env/a b/\u00c3\u00a9');
      expect(e.QUERY_STRING).toBe('q=%41');
    }));

  test('an empty query string is present and empty; SERVER_NAME and SERVER_PORT are always there', () =>
    withLog(async () => {
      const e = json((await get('/env')).body);
      expect(e.QUERY_STRING).toBe('');
      expect(e._keys).toEqual(expect.arrayContaining(['QUERY_STRING', 'REQUEST_METHOD', 'SERVER_NAME', 'SERVER_PORT', 'PATH_INFO', 'SCRIPT_NAME']));
    }));

  test.each([
    ['read', 'abc', { length: 3, body: 'abc' }],
    ['readall', 'hello body', { length: 10, body: 'hello body' }],
    ['readline', 'one\ntwo\nthree', { lines: ['one\n', 'two\n', 'three'], length: 13 }],
    ['each', 'a\nbb\n', { lines: ['a\n', 'bb\n'] }],
    ['chunks', 'x'.repeat(200_000), { length: 200_000 }],
  ])('RB6: rack.input %s', (mode, body, expected) =>
    withLog(async () => {
      const r = await get(`/echo?mode=${mode}`, { method: 'POST', body, headers: { 'Content-Type': 'text/x-test' } });
      expect(r.status).toBe(200);
      expect(json(r.body)).toMatchObject({ ...expected, content_length: String(body.length), content_type: 'text/x-test' });
    }));

  test('RB6: rack.input is rewindable: read, rewind, read again', () =>
    withLog(async () => {
      const r = await get('/echo?mode=rewind', { method: 'POST', body: 'xyz' });
      expect(r.status).toBe(200);
      expect(json(r.body)).toMatchObject({ body: 'xyzxyz' });
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
        expect(e.content_length).toBe(String(body.length));
      } finally {
        c.close();
      }
    }));

  test('an 8 MiB upload (spooled to a temporary file) arrives intact, rewindable, and the connection stays usable', () =>
    withLog(async () => {
      const body = crypto.randomBytes(8 * 1024 * 1024);
      const r = await get('/echo?mode=chunks', { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 60000 });
      expect(r.status).toBe(200);
      expect(json(r.body)).toMatchObject({ length: body.length, sha256: sha256(body) });
      const again = await get('/echo?mode=rewind', { method: 'POST', body: Buffer.concat([body, body]).subarray(0, 3 * 1024 * 1024), timeoutMs: 60000 });
      expect(json(again.body)).toMatchObject({ length: 6 * 1024 * 1024 });
      const hello = await get('/hello');
      expect(hello.body.toString()).toBe('Hello World');
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
        await c.write(rawRequest('GET', '/hello'));
        const next = await c.readResponse();
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

  test('RB5: a header value with "\\n" becomes repeated headers (two Set-Cookie, two X-Multi), in order', () =>
    withLog(async () => {
      const c = await RawHttpConnection.connect(srv.port);
      try {
        await c.write(rawRequest('GET', '/cookies'));
        const r = await c.readResponse();
        expect(r.status).toBe(200);
        expect(r.headerAll('set-cookie')).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
        expect(r.headerAll('x-multi')).toEqual(['one', 'two']);
        expect(r.body.toString()).toBe('cookies');
      } finally {
        c.close();
      }
    }));

  test('a body yielded by each is streamed (first chunk before the app finishes) and close is called', () =>
    withLog(async () => {
      const gate = path.join(dir, 'gate');
      const marker = path.join(dir, 'stream-closed');
      const c = await RawHttpConnection.connect(srv.port);
      try {
        await c.write(rawRequest('GET', `/stream?n=3&gate=${encodeURIComponent(gate)}&marker=${encodeURIComponent(marker)}`));
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

  test('a file body (each + to_path, as Rack::Files gives) arrives intact', () =>
    withLog(async () => {
      const f = path.join(dir, 'data.bin');
      const data = crypto.randomBytes(300_000);
      fs.writeFileSync(f, data);
      const r = await get(`/file?path=${encodeURIComponent(f)}`);
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(data.length);
      expect(sha256(r.body)).toBe(sha256(data));
    }));

  test('consecutive large responses (1 MiB) on one connection each complete, and so does the next small one', () =>
    withLog(async () => {
      for (let i = 0; i < 3; i++) {
        const r = await get('/big?n=1048576', { timeoutMs: 15000 });
        expect({ status: r.status, length: r.body.length }).toEqual({ status: 200, length: 1048576 });
        const small = await get('/hello', { timeoutMs: 15000 });
        expect(small.body.toString()).toBe('Hello World');
      }
    }), 60000);

  test('an exception in the app gives 500 and the Ruby error in the log; the server keeps serving', () =>
    withLog(async () => {
      const r = await get('/error');
      expect(r.status).toBe(500);
      await srv.waitForLog(/suite_app\.rb:\d+:in `route_error': boom-before-response \(RuntimeError\)/, 10000);
      expect(r.body.toString()).not.toContain('boom-before-response');
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

  test('an HTTP/1.0 request is answered; the app sees SERVER_PROTOCOL HTTP/1.0', () =>
    withLog(async () => {
      const r1 = await rawHttp(srv.port, 'GET /hello HTTP/1.0\r\n\r\n', { timeoutMs: 10000 });
      expect(r1.closed).toBe(true);
      expect(r1.data.toString('latin1')).toMatch(/^HTTP\/1\.[01] 200[\s\S]*\r\n\r\nHello World$/);
      const r2 = await rawHttp(srv.port, 'GET /env HTTP/1.0\r\nHost: x\r\n\r\n', { timeoutMs: 10000 });
      const body = r2.data.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
      expect(json(Buffer.from(body, 'latin1')).SERVER_PROTOCOL).toBe('HTTP/1.0');
    }));

  test('pipelining: three requests in one write get three responses, in order', () =>
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

  test('keep-alive: node:http reuses its socket', () =>
    withLog(async () => {
      const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = await httpRequest(srv.port, { agent: ka, path: '/hello' });
        const second = await httpRequest(srv.port, { agent: ka, path: '/env?i=2' });
        expect(second.reusedSocket).toBe(true);
        expect(second.localPort).toBe(first.localPort);
        expect(second.status).toBe(200);
      } finally {
        ka.destroy();
      }
    }));

  test('Rack::Lint reported nothing during the whole run', () =>
    withLog(async () => {
      // A few requests more, so anything Lint checks at close time has run.
      for (let i = 0; i < 3; i++) await get('/stream?n=2');
      expect(lintErrors(srv.logs())).toEqual([]);
    }));
});

describe('SCRIPT_NAME and PATH_INFO with a mountpoint (--mount /app=suite.ru --manage-script-name)', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    srv = await startServer([
      '--plugins', 'rack', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '7',
      '--mount', `/app=${SUITE}`, '--manage-script-name',
    ]);
  }, 60000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  test('the mountpoint becomes SCRIPT_NAME and the rest PATH_INFO (Lint-clean)', () =>
    withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/app/env/foo?z=1' });
      expect(r.status).toBe(200);
      expect(json(r.body)).toMatchObject({ SCRIPT_NAME: '/app', PATH_INFO: '/env/foo', QUERY_STRING: 'z=1', UWSGI_APPID: '/app' });
      const h = await httpRequest(srv.port, { path: '/app/hello' });
      expect(h.body.toString()).toBe('Hello World');
      expect(lintErrors(srv.logs())).toEqual([]);
    }));
});

describe('--processes 2 --threads 2', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    srv = await startServer(['--plugins', 'rack', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '7', '--rack', SUITE, '--processes', '2', '--threads', '2']);
  }, 60000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  test('rack.multithread and rack.multiprocess are true', () =>
    withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/env' });
      expect(r.status).toBe(200);
      expect(json(r.body)).toMatchObject({ 'rack.multithread': true, 'rack.multiprocess': true });
    }));

  test('32 clients vanishing mid-request do not stop the server from serving new clients', () =>
    withServerLog(srv, async () => {
      const conns = await Promise.all(Array.from({ length: 32 }, () => RawHttpConnection.connect(srv.port)));
      let stop = false;
      const loops = conns.map(async (c, i) => {
        while (!stop) {
          try {
            await c.write(rawRequest('GET', i % 2 ? '/hello' : '/big?n=65536'));
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
      for (let i = 0; i < 3; i++) {
        const r = await httpRequest(srv.port, { path: '/hello', timeoutMs: 10000 });
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('Hello World');
      }
      expect(lintErrors(srv.logs())).toEqual([]);
    }), 60000);
});
