/**
 * The jvm, jwsgi and ring plugins and the Java bridge (spec/languages.md §11, docs/jvm.md):
 * JWSGI env, query strings, uploads (chunked, 3 MB), every response body form, HEAD,
 * repeated headers, streaming, File bodies, exceptions, the uwsgi Java API, --threads,
 * modifier2 dispatch, nginx uwsgi_pass with uwsgi_modifier1 8; a Clojure Ring app; load
 * failures (exit 22); and the control channel (harakiri stack dump, reload, graceful stop,
 * exit when the core dies).
 *
 * JVMs start slowly (Clojure most), so servers are shared: A hosts JWSGI and Ring in one JVM
 * (HTTP for JWSGI, the uwsgi socket for both), R is the Ring-only config of the uWSGI docs.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chunkEncode, httpRequest, parseResponse, RawHttpConnection, rawRequest, type RawResponse } from '../helpers/http-raw.ts';
import { startNginx, type NginxHandle } from '../helpers/nginx.ts';
import { readProc } from '../helpers/procs.ts';
import { REPO_ROOT, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';
import { exchange, stdVars, uwsgiPacket } from '../helpers/uwsgi-client.ts';
import { findOrBuildBridgeJar } from '../../plugins/jvm/bridge-jar.ts';
import { json } from '../helpers/assertions.ts';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'jvm');
const RING_APP = path.join(FIXTURES, 'ring_app.clj');
const CLOJURE_JAR = '/usr/share/java/clojure.jar';
/** Where Forms.java is compiled (once per run). */
let classes = '';

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/** A missing runtime fails the suite with what to install (never a skip). */
function assertJvmRuntimes(): void {
  for (const tool of ['java', 'javac']) {
    const r = spawnSync(tool, ['-version'], { encoding: 'utf8', timeout: 30000 });
    if (r.error || r.status !== 0) {
      throw new Error(`the JVM tests need ${tool} (JDK 17+; Debian: apt-get install default-jdk-headless, see .ci/apt-packages.txt): ${r.error?.message ?? r.stderr}`);
    }
  }
  if (!fs.existsSync(CLOJURE_JAR)) throw new Error(`the Ring tests need ${CLOJURE_JAR} (Debian: apt-get install clojure, see .ci/apt-packages.txt)`);
}

beforeAll(() => {
  assertJvmRuntimes();
  // The fixture app uses the uwsgi API class, so it compiles against the bridge jar.
  const jar = findOrBuildBridgeJar({ java: 'java' });
  classes = tmpDir('tsuwsgi-jvm-classes-');
  const r = spawnSync('javac', ['--release', '17', '-cp', jar, '-d', classes, path.join(FIXTURES, 'Forms.java')], { encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) throw new Error(`javac Forms.java failed: ${r.stderr}`);
}, 180000);

afterAll(() => {
  if (classes) fs.rmSync(classes, { recursive: true, force: true });
});

/** The response of one uwsgi request (connection closed by the bridge: one request per connection). */
async function uwsgiHttp(addr: string, vars: Record<string, string | undefined>, opts: { modifier2?: number; body?: Buffer; head?: boolean } = {}): Promise<RawResponse> {
  const v = stdVars(vars);
  if (opts.body) v.push(['CONTENT_LENGTH', String(opts.body.length)]);
  const r = await exchange(addr, uwsgiPacket(v, { modifier1: 8, modifier2: opts.modifier2 ?? 0, body: opts.body }), { timeoutMs: 20000 });
  const parsed = parseResponse(r.data, { eof: true, head: opts.head });
  if (!parsed) throw new Error(`no complete response: ${JSON.stringify(r.data.toString('latin1').slice(0, 300))}`);
  return parsed.response;
}

describe('server A: JWSGI and Ring in one JVM (--threads 4, --master)', () => {
  let srv: ServerHandle;
  let dir: string;
  let c: RawHttpConnection;
  let uwsgiAddr = '';

  beforeAll(async () => {
    dir = tmpDir();
    srv = await startServer(
      [
        '--plugins', 'jvm,jwsgi,ring',
        '--http-socket', '127.0.0.1:0',
        '--socket', '127.0.0.1:0',
        '--jwsgi', 'Forms',
        '--jvm-classpath', classes,
        '--ring-load', RING_APP,
        '--ring-app', 'ring-app:handler',
        '--threads', '4',
        '--bridge-pipeline', '0',
        '--env', 'A=1', '--env', 'B=2',
        '--master',
        '--jvm-main-class', 'FormsInit',
        '--jvm-class', 'FormsLoaded',
        '--jvm-opt', '-Dforms.opt=from-jvm-opt',
      ],
      { readyTimeoutMs: 90000 },
    );
    uwsgiAddr = srv.sockets[1]!;
  }, 120000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);
  beforeEach(async () => {
    c = await RawHttpConnection.connect(srv.port);
  });
  afterEach(() => c.close());

  const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);
  async function req(target: string, method = 'GET', headers: Record<string, string> = {}, body?: Buffer) {
    await c.write(rawRequest(method, target, headers, body));
    return c.readResponse({ head: method === 'HEAD', timeoutMs: 30000 });
  }
  async function stillUsable(): Promise<void> {
    const r = await req('/hello');
    expect(r.status).toBe(200);
  }

  test('JVM1: MyApp-style JWSGI app as the uWSGI docs write it (two Server headers from a String[])', () =>
    withLog(async () => {
      const r = await req('/hello');
      expect(r.status).toBe(200);
      expect(r.header('content-type')).toBe('text/html');
      expect(r.headerAll('server')).toEqual(['uWSGI', 'Unbit']);
      expect(r.header('content-length')).toBe('26');
      expect(r.body.toString()).toBe('<h1>Hello World</h1>/hello');
      expect(srv.logs()).toMatch(/JWSGI app "Forms" loaded/);
    }));

  test('env: CGI vars as Strings, raw query strings, headers as HTTP_*, jwsgi.input is a uwsgi.RequestBody', () =>
    withLog(async () => {
      const r = await req('/env?a=1&b=%20x&c', 'GET', { 'X-Custom': 'yes', Cookie: 'k=v' });
      expect(r.status).toBe(200);
      const e = json(r.body);
      expect(e).toMatchObject({
        REQUEST_METHOD: 'GET',
        QUERY_STRING: 'a=1&b=%20x&c',
        PATH_INFO: '/env',
        REQUEST_URI: '/env?a=1&b=%20x&c',
        SERVER_PROTOCOL: 'HTTP/1.1',
        HTTP_X_CUSTOM: 'yes',
        HTTP_COOKIE: 'k=v',
        REMOTE_ADDR: '127.0.0.1',
        input_class: 'uwsgi$RequestBody',
        input_is_request_body: true,
        'uwsgi.version': expect.stringMatching(/tsuwsgi/),
      });
      expect(e.thread).toMatch(/^tsuwsgi-core-\d$/);
      // A POST's CONTENT_TYPE and CONTENT_LENGTH.
      const p = json((await req('/env', 'POST', { 'Content-Type': 'application/x-www-form-urlencoded' }, Buffer.from('x=1'))).body);
      expect(p).toMatchObject({ REQUEST_METHOD: 'POST', CONTENT_TYPE: 'application/x-www-form-urlencoded', CONTENT_LENGTH: '3' });
    }));

  test('uploads: a small body read with read(byte[]), a 3 MB body (spooled to disk), a chunked upload', () =>
    withLog(async () => {
      const small = await req('/read-one', 'POST', {}, Buffer.from('hello jwsgi'));
      expect(small.body.toString()).toBe('hello jwsgi');
      const big = crypto.randomBytes(3 * 1024 * 1024 + 5);
      const r = await req('/sha', 'POST', { 'Content-Type': 'application/octet-stream' }, big);
      expect(r.body.toString()).toBe(`${big.length} ${sha(big)}`);
      const echo = await req('/echo', 'POST', {}, big);
      expect(echo.header('x-length')).toBe(String(big.length));
      expect(echo.body.equals(big)).toBe(true);
      const chunkedBody = crypto.randomBytes(200 * 1024);
      await c.write(Buffer.concat([rawRequest('POST', '/sha', { 'Transfer-Encoding': 'chunked' }), chunkEncode(chunkedBody, 7000)]));
      const ch = await c.readResponse({ timeoutMs: 30000 });
      expect(ch.body.toString()).toBe(`${chunkedBody.length} ${sha(chunkedBody)}`);
      await stillUsable();
    }));

  test('RequestBody.readLine(byte[]), seek(int) and available()', () =>
    withLog(async () => {
      const r = await req('/readline', 'POST', {}, Buffer.from('one\ntwo\nthree'));
      expect(json(r.body)).toEqual({ lines: ['one\n', 'two\n', 'three'], after_seek_2: 'e\ntwo\nthree', available_at_end: 0 });
    }));

  test('a 3 MB byte[] body is sent whole with its Content-Length', () =>
    withLog(async () => {
      const n = 3 * 1024 * 1024;
      const r = await req(`/big?n=${n}`);
      expect(r.header('content-length')).toBe(String(n));
      expect(r.body.length).toBe(n);
      expect(r.body[1000]).toBe(1000 % 251);
      expect(r.body[n - 1]).toBe((n - 1) % 251);
      await stillUsable();
    }));

  test('HEAD: headers as for GET (Content-Length too) and no body bytes; the connection stays usable', () =>
    withLog(async () => {
      const r = await req('/hello', 'HEAD');
      expect(r.status).toBe(200);
      expect(r.header('content-length')).toBe('26');
      expect(r.body.length).toBe(0);
      await stillUsable();
      const big = await req('/big?n=100000', 'HEAD');
      expect(big.header('content-length')).toBe('100000');
      await stillUsable();
    }));

  test('repeated headers from String[] and Iterable values; non-String values converted', () =>
    withLog(async () => {
      const r = await req('/headers');
      expect(r.headerAll('x-multi')).toEqual(['a', 'b']);
      expect(r.headerAll('x-list')).toEqual(['c', 'd']);
      expect(r.headerAll('set-cookie')).toEqual(['one=1; Path=/', 'two=2; Path=/']);
      expect(r.header('x-number')).toBe('42');
    }));

  test('an Iterable body is streamed chunk by chunk (chunked on keep-alive), mixing String, byte[] and objects', () =>
    withLog(async () => {
      const r = await req('/stream');
      expect(r.chunked).toBe(true);
      expect(r.body.toString()).toBe('part1,part2,built,bytes!');
      // The first chunk leaves before the app's pause ends.
      const times = await new Promise<{ first: number; end: number; body: string }>((resolve, reject) => {
        const t0 = Date.now();
        let first = 0;
        let body = '';
        http
          .get({ host: '127.0.0.1', port: srv.port, path: '/stream?delay=800', agent: false }, (res) => {
            res.on('data', (d: Buffer) => {
              if (!first) first = Date.now() - t0;
              body += d.toString();
            });
            res.on('end', () => resolve({ first, end: Date.now() - t0, body }));
          })
          .on('error', reject);
      });
      expect(times.body).toBe('part1,part2,built,bytes!');
      expect(times.end - times.first).toBeGreaterThanOrEqual(600);
      await stillUsable();
    }));

  test('other bodies: String[] and ArrayList get a Content-Length; InputStream is streamed; null is empty', () =>
    withLog(async () => {
      const a = await req('/string-array');
      expect(a.header('content-length')).toBe('6');
      expect(a.body.toString()).toBe('abbccc');
      const l = await req('/list');
      expect(l.header('content-length')).toBe('4');
      expect(l.body.toString()).toBe('xyy7');
      const s = await req('/input-stream?n=100000');
      expect(s.chunked).toBe(true);
      expect(s.body.length).toBe(100000);
      expect(s.body.toString('latin1', 0, 5)).toBe('abcde');
      const n = await req('/null-body');
      expect(n.status).toBe(200);
      expect(n.header('content-length')).toBe('0');
      await stillUsable();
    }));

  test('JVM2: a java.io.File body is sent from the file with its size; a missing file is a 500', () =>
    withLog(async () => {
      const f = path.join(dir, 'payload.bin');
      const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
      fs.writeFileSync(f, data);
      const r = await req(`/file?path=${encodeURIComponent(f)}`);
      expect(r.status).toBe(200);
      expect(r.header('content-length')).toBe(String(data.length));
      expect(r.body.equals(data)).toBe(true);
      const services = await req('/file?path=/etc/services');
      expect(services.body.equals(fs.readFileSync('/etc/services'))).toBe(true);
      const missing = await req('/file?path=/nonexistent/tsuwsgi-file');
      expect(missing.status).toBe(500);
      await srv.waitForLog(/NoSuchFileException: \/nonexistent\/tsuwsgi-file/, 5000);
      await stillUsable();
    }));

  test('UTF-8 header values and bodies are sent as their UTF-8 bytes', () =>
    withLog(async () => {
      const r = await req('/utf8');
      expect(Buffer.from(r.header('x-name')!, 'latin1').toString('utf8')).toBe('caf\u00e9');
      expect(r.body.toString('utf8')).toBe('h\u00e9llo w\u00f6rld');
    }));

  test('status 204 and 304 carry no body; other statuses get their reason phrase', () =>
    withLog(async () => {
      for (const code of [204, 304]) {
        const r = await req(`/status?code=${code}`);
        expect(r.status).toBe(code);
        expect(r.body.length).toBe(0);
        expect(r.header('content-length')).toBeUndefined();
      }
      const t = await req('/status?code=418');
      expect(t.statusLine).toBe("HTTP/1.1 418 I'm a teapot");
      await stillUsable();
    }));

  test('an exception is a 500 with the Java stack trace in the log; the connection stays usable', () =>
    withLog(async () => {
      const r = await req('/boom');
      expect(r.status).toBe(500);
      expect(r.body.toString()).toBe('Internal Server Error');
      await srv.waitForLog(/JWSGI app Forms raised an exception, during GET \/boom \(127\.0\.0\.1\)\njava\.lang\.RuntimeException: jwsgi boom from the test app\n\s+at (?:app\/\/)?Forms\.application\(Forms\.java:\d+\)/, 5000);
      await stillUsable();
      const h = await req('/bad-header');
      expect(h.status).toBe(500);
      await srv.waitForLog(/invalid response header name "Bad Header"/, 5000);
      const b = await req('/bad-response');
      expect(b.status).toBe(500);
      await srv.waitForLog(/invalid JWSGI response from JWSGI app Forms: expected Object\[\]\{status, headers, body\}, got an array of 2 elements/, 5000);
      await stillUsable();
    }));

  test('an exception after the headers went out cuts the response (connection closed) and is logged', () =>
    withLog(async () => {
      await c.write(rawRequest('GET', '/stream-fail'));
      await c.readUntil('first chunk,', 10000);
      expect(await c.waitClosed(10000)).toBe(true);
      await srv.waitForLog(/IllegalStateException: iterable failed after the first chunk/, 5000);
    }));

  test('a body shorter than its Content-Length closes the connection (logged)', () =>
    withLog(async () => {
      await c.write(rawRequest('GET', '/cl-short'));
      expect(await c.waitClosed(10000)).toBe(true);
      await srv.waitForLog(/response shorter than its Content-Length \(95 bytes missing\)/, 5000);
    }));

  test('the uwsgi Java API: worker_id, numproc, masterpid, version, opt, request_id, log; pending subsystems throw', () =>
    withLog(async () => {
      const u = json((await req('/uwsgi')).body);
      expect(u).toMatchObject({ worker_id: 1, numproc: 1, opt_threads: '4', opt_env: ['A=1', 'B=2'], opt_master: true });
      expect(u.version).toMatch(/tsuwsgi/);
      expect(u.VERSION).toBe(u.version);
      expect(u.masterpid).toBe(srv.pid);
      expect(u.pid).not.toBe(srv.pid);
      await srv.waitForLog(/log line from the JWSGI app/, 5000);
      const p = await req('/pending');
      expect(p.status).toBe(500);
      await srv.waitForLog(/UnsupportedOperationException: uwsgi\.cache_get\(\): the cache subsystem is pending in tsuwsgi/, 5000);
    }));

  test('--jvm-main-class runs main() before the handlers load, --jvm-class initialises a class, --jvm-opt reaches the JVM', () =>
    withLog(async () => {
      expect(json((await req('/props')).body)).toEqual({ init: 'main ran in worker 1', loaded: 'static initialiser ran', opt: 'from-jvm-opt' });
    }));

  test('--threads 4: four slow requests run at once in one JVM, on four threads', () =>
    withLog(async () => {
      const t0 = Date.now();
      const rs = await Promise.all([0, 1, 2, 3].map(() => httpRequest(srv.port, { path: '/slow?ms=1500', timeoutMs: 20000 })));
      const elapsed = Date.now() - t0;
      const seen = rs.map((r) => r.body.toString().split(' '));
      expect(new Set(seen.map((s) => s[1])).size).toBe(1);
      expect(new Set(seen.map((s) => s[0]))).toEqual(new Set(['tsuwsgi-core-0', 'tsuwsgi-core-1', 'tsuwsgi-core-2', 'tsuwsgi-core-3']));
      expect(elapsed).toBeLessThan(2 * 1500);
    }));

  test('modifier2 picks the handler: 0 is JWSGI, 1 is Ring (uwsgi socket, one JVM)', () =>
    withLog(async () => {
      const j = await uwsgiHttp(uwsgiAddr, { PATH_INFO: '/hello', REQUEST_URI: '/hello' }, { modifier2: 0 });
      expect(j.body.toString()).toBe('<h1>Hello World</h1>/hello');
      const r = await uwsgiHttp(uwsgiAddr, { PATH_INFO: '/foo', REQUEST_URI: '/foo' }, { modifier2: 1 });
      expect(r.headerAll('server')).toEqual(['uWSGI']);
      expect(r.body.toString()).toBe('<h1>The requested uri is /foo</h1>');
      const body = crypto.randomBytes(70000);
      const e = await uwsgiHttp(uwsgiAddr, { REQUEST_METHOD: 'POST', PATH_INFO: '/echo' }, { modifier2: 1, body });
      expect(e.body.equals(body)).toBe(true);
      const none = await uwsgiHttp(uwsgiAddr, { PATH_INFO: '/foo' }, { modifier2: 7 });
      expect(none.status).toBe(500);
      await srv.waitForLog(/no JVM request handler for modifier2 7 \(loaded: 0 = JWSGI app Forms, 1 = Ring app ring-app:handler\)/, 5000);
    }));

  describe('nginx uwsgi_pass to the --socket with uwsgi_modifier1 8 (and uwsgi_modifier2 1 for Ring)', () => {
    let ngx: NginxHandle;
    let ngxRing: NginxHandle;
    beforeAll(async () => {
      ngx = await startNginx({ upstream: uwsgiAddr, locationExtra: 'uwsgi_modifier1 8;' });
      ngxRing = await startNginx({ upstream: uwsgiAddr, locationExtra: 'uwsgi_modifier1 8; uwsgi_modifier2 1;' });
    }, 30000);
    afterAll(async () => {
      await ngx?.stop();
      await ngxRing?.stop();
    }, 30000);
    const withLogs = <T,>(f: () => Promise<T>): Promise<T> =>
      withServerLog(srv, f, () => `--- nginx error.log (tail) ---\n${ngx.errorLog().split('\n').slice(-15).join('\n')}`);

    test('JWSGI through nginx: env, a 2 MB POST, streaming, repeated headers', () =>
      withLogs(async () => {
        const r = await httpRequest(ngx.port, { path: '/hello' });
        expect(r.body.toString()).toBe('<h1>Hello World</h1>/hello');
        const e = json((await httpRequest(ngx.port, { path: '/env?x=1', headers: { 'X-Test': 'via-nginx' } })).body);
        expect(e).toMatchObject({ QUERY_STRING: 'x=1', HTTP_X_TEST: 'via-nginx', SERVER_PORT: String(ngx.port) });
        const body = crypto.randomBytes(2 * 1024 * 1024);
        const p = await httpRequest(ngx.port, { method: 'POST', path: '/sha', body, timeoutMs: 60000 });
        expect(p.body.toString()).toBe(`${body.length} ${sha(body)}`);
        expect((await httpRequest(ngx.port, { path: '/stream' })).body.toString()).toBe('part1,part2,built,bytes!');
        expect((await httpRequest(ngx.port, { path: '/headers' })).headers['set-cookie']).toEqual(['one=1; Path=/', 'two=2; Path=/']);
      }));

    test('Ring through nginx (uwsgi_modifier2 1)', () =>
      withLogs(async () => {
        const r = await httpRequest(ngxRing.port, { path: '/foo' });
        expect(r.body.toString()).toBe('<h1>The requested uri is /foo</h1>');
      }));
  });
});

describe('server R: a Ring app as the uWSGI docs configure it (JVM3: http-modifier1 8, http-modifier2 1, clojure-load)', () => {
  let srv: ServerHandle;
  let dir: string;
  let c: RawHttpConnection;

  beforeAll(async () => {
    dir = tmpDir();
    srv = await startServer(
      ['--plugins', 'jvm,ring', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '8', '--http-socket-modifier2', '1', '--clojure-load', RING_APP, '--ring-app', 'ring-app:handler', '--threads', '2'],
      { readyTimeoutMs: 90000 },
    );
  }, 120000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);
  beforeEach(async () => {
    c = await RawHttpConnection.connect(srv.port);
  });
  afterEach(() => c.close());

  const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);
  async function req(target: string, method = 'GET', headers: Record<string, string> = {}, body?: Buffer) {
    await c.write(rawRequest(method, target, headers, body));
    return c.readResponse({ head: method === 'HEAD', timeoutMs: 30000 });
  }

  test('JVM3: GET /foo answers "<h1>The requested uri is /foo</h1>"', () =>
    withLog(async () => {
      const r = await req('/foo');
      expect(r.status).toBe(200);
      expect(r.header('content-type')).toBe('text/plain');
      expect(r.body.toString()).toBe('<h1>The requested uri is /foo</h1>');
      expect(srv.logs()).toMatch(/clojure\/ring app "ring-app:handler" loaded/);
      expect(srv.logs()).not.toMatch(/WARNING/);
    }));

  test('the Ring request map: keywords, lower-cased headers, Integer port, InputStream body', () =>
    withLog(async () => {
      const r = await req('/env?a=1&b=2', 'POST', { 'X-Custom-Thing': 'yes', 'Content-Type': 'text/plain' }, Buffer.from('abc'));
      const edn = r.body.toString();
      expect(edn).toContain(':request-method :post');
      expect(edn).toContain(':uri "/env"');
      expect(edn).toContain(':query-string "a=1&b=2"');
      expect(edn).toContain(':scheme :http');
      expect(edn).toContain(`:server-port ${srv.port}`);
      expect(edn).toContain(':server-port-class "java.lang.Integer"');
      expect(edn).toContain(':remote-addr "127.0.0.1"');
      expect(edn).toContain(':protocol "HTTP/1.1"');
      expect(edn).toContain(':content-type "text/plain"');
      expect(edn).toContain(':content-length 3');
      expect(edn).toContain('"x-custom-thing" "yes"');
      expect(edn).toContain('"content-type" "text/plain"');
      expect(edn).toContain(':body-class "uwsgi$RequestBody"');
      expect(edn).toMatch(/:thread "tsuwsgi-core-\d"/);
      const g = (await req('/env')).body.toString();
      expect(g).not.toContain(':query-string');
      expect(g).not.toContain(':content-length');
    }));

  test('uploads: 3 MB and chunked bodies read from :body; a byte[] response (uWSGI extension)', () =>
    withLog(async () => {
      const big = crypto.randomBytes(3 * 1024 * 1024 + 1);
      expect((await req('/sha', 'POST', {}, big)).body.toString()).toBe(`${big.length} ${sha(big)}`);
      const small = crypto.randomBytes(50000);
      await c.write(Buffer.concat([rawRequest('POST', '/echo', { 'Transfer-Encoding': 'chunked' }), chunkEncode(small, 4096)]));
      const e = await c.readResponse({ timeoutMs: 30000 });
      expect(e.header('content-length')).toBe(String(small.length));
      expect(e.body.equals(small)).toBe(true);
    }));

  test('HEAD: no body bytes, the Content-Length a GET gets', () =>
    withLog(async () => {
      const r = await req('/foo', 'HEAD');
      expect(r.status).toBe(200);
      expect(r.header('content-length')).toBe('34');
      expect(r.body.length).toBe(0);
      expect((await req('/foo')).body.toString()).toBe('<h1>The requested uri is /foo</h1>');
    }));

  test('bodies: a lazy seq is streamed (chunked), a vector gets a Content-Length, File, InputStream, nil; repeated headers from a vector', () =>
    withLog(async () => {
      const s = await req('/seq');
      expect(s.chunked).toBe(true);
      expect(s.body.toString()).toBe('one two three');
      expect(s.headerAll('x-multi')).toEqual(['a', 'b']);
      const v = await req('/vector');
      expect(v.header('content-length')).toBe('5');
      expect(v.body.toString()).toBe('v1,v2');
      const f = path.join(dir, 'ring.bin');
      const data = crypto.randomBytes(1024 * 1024 + 3);
      fs.writeFileSync(f, data);
      const fr = await req(`/file?path=${encodeURIComponent(f)}`);
      expect(fr.header('content-length')).toBe(String(data.length));
      expect(fr.body.equals(data)).toBe(true);
      expect((await req('/stream')).body.toString()).toBe('from an input stream');
      const n = await req('/nil-body');
      expect(n.status).toBe(200);
      expect(n.body.length).toBe(0);
      const st = await req('/status?code=204');
      expect(st.status).toBe(204);
      expect(st.body.length).toBe(0);
    }));

  test('pipelined requests on one connection are answered in order', () =>
    withLog(async () => {
      await c.write(Buffer.concat([rawRequest('GET', '/foo'), rawRequest('GET', '/vector'), rawRequest('GET', '/seq')]));
      expect((await c.readResponse()).body.toString()).toBe('<h1>The requested uri is /foo</h1>');
      expect((await c.readResponse()).body.toString()).toBe('v1,v2');
      expect((await c.readResponse()).body.toString()).toBe('one two three');
    }));

  test('a Clojure exception and a response that is not a map are 500s, logged with the Clojure error', () =>
    withLog(async () => {
      const r = await req('/boom');
      expect(r.status).toBe(500);
      await srv.waitForLog(/Ring app ring-app:handler raised an exception, during GET \/boom[\s\S]*ExceptionInfo: ring boom from the test app/, 5000);
      const m = await req('/not-a-map');
      expect(m.status).toBe(500);
      await srv.waitForLog(/invalid Ring response: expected a map with :status, :headers and :body, got java\.lang\.String/, 5000);
      expect((await req('/foo')).status).toBe(200);
    }));
});

describe('load failures fail fast (exit 22) with a clear error', () => {
  test('a JWSGI class that is not on the class path', async () => {
    const r = await runTsuwsgi(['--plugins', 'jvm,jwsgi', '--http-socket', '127.0.0.1:0', '--jwsgi', 'NoSuchClass:application'], { timeoutMs: 60000 });
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/JWSGI app NoSuchClass:application: class NoSuchClass not found on the class path \([^)]*\): compile it with javac and add its directory or jar with --jvm-classpath/);
    expect(r.output).toMatch(/JVM app \(--jwsgi NoSuchClass:application\) could not be loaded/);
  }, 60000);

  test('a JWSGI class without the method', async () => {
    const r = await runTsuwsgi(['--plugins', 'jwsgi', '--http-socket', '127.0.0.1:0', '--jwsgi', 'Forms:nope', '--jvm-classpath', classes], { timeoutMs: 60000 });
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/class Forms has no method nope\(java\.util\.HashMap env\)/);
  }, 60000);

  test('a Clojure script that does not compile, and a Ring function that does not exist', async () => {
    const broken = await runTsuwsgi(['--plugins', 'ring', '--http-socket', '127.0.0.1:0', '--ring-load', path.join(FIXTURES, 'broken.clj'), '--ring-app', 'broken:handler'], { timeoutMs: 90000 });
    expect(broken.code).toBe(22);
    expect(broken.output).toMatch(/Ring app broken:handler: error loading \S*broken\.clj: .*undefined-symbol-in-broken-clj/);
    const missing = await runTsuwsgi(['--plugins', 'ring', '--http-socket', '127.0.0.1:0', '--ring-load', RING_APP, '--ring-app', 'ring-app:no-such-fn'], { timeoutMs: 90000 });
    expect(missing.code).toBe(22);
    expect(missing.output).toMatch(/Ring app ring-app:no-such-fn: namespace ring-app defines no function no-such-fn/);
  }, 120000);

  test('--jwsgi without the jwsgi plugin names the plugin to load; a missing --jvm-bin is named', async () => {
    const r = await runTsuwsgi(['--plugins', 'jvm', '--http-socket', '127.0.0.1:0', '--jwsgi', 'Forms']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/jwsgi/);
    const b = await runTsuwsgi(['--plugins', 'jwsgi', '--http-socket', '127.0.0.1:0', '--jwsgi', 'Forms', '--jvm-bin', '/nonexistent/java']);
    expect(b.code).not.toBe(0);
    expect(b.output).toMatch(/\/nonexistent\/java/);
  }, 60000);
});

describe('the control channel: harakiri stack dump, reload, graceful stop, exit when the core dies', () => {
  const JW = () => ['--plugins', 'jvm,jwsgi', '--http-socket', '127.0.0.1:0', '--jwsgi', 'Forms:application', '--jvm-classpath', classes];

  test('harakiri: 504 and a stack dump of every JVM thread showing the app; SIGHUP reloads to new JVMs; SIGTERM lets the request in flight finish', async () => {
    const srv = await startServer([...JW(), '--processes', '2', '--harakiri', '2'], { readyTimeoutMs: 60000 });
    await withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/slow?ms=8000', timeoutMs: 15000 });
      expect(r.status).toBe(504);
      await srv.waitForLog(/jvm bridge stack dump[\s\S]*thread tsuwsgi-core-0 \(TIMED_WAITING\):[\s\S]*at (?:app\/\/)?Forms\.application\(Forms\.java:\d+\)[\s\S]*end of the stack dump/, 5000);
      const pidOf = async (): Promise<string> => (await httpRequest(srv.port, { path: '/slow?ms=0', timeoutMs: 15000 })).body.toString().split(' ')[1]!;
      const before = new Set([await pidOf(), await pidOf(), await pidOf()]);
      srv.signal('SIGHUP');
      await srv.waitForLogCount(/spawned uWSGI worker \d+ \(pid: \d+, cores: 1\)/, 4, 30000);
      await sleep(500);
      for (let i = 0; i < 4; i++) expect(before.has(await pidOf())).toBe(false);
      const pending = httpRequest(srv.port, { path: '/slow?ms=1200', timeoutMs: 15000 });
      await sleep(400);
      srv.signal('SIGTERM');
      const done = await pending;
      expect(done.status).toBe(200);
      expect(done.body.toString()).toMatch(/^tsuwsgi-core-0 \d+$/);
    });
    expect(await srv.stop('SIGTERM')).toBe(0);
  }, 90000);

  test('uwsgi.reload() from the app reloads the workers; --catch-exceptions puts the stack trace in the 500 body', async () => {
    const srv = await startServer([...JW(), '--catch-exceptions'], { readyTimeoutMs: 60000 });
    await withServerLog(srv, async () => {
      const boom = await httpRequest(srv.port, { path: '/boom' });
      expect(boom.status).toBe(500);
      expect(boom.body.toString()).toMatch(/^java\.lang\.RuntimeException: jwsgi boom from the test app\n\s+at (?:app\/\/)?Forms\.application/);
      const r = await httpRequest(srv.port, { path: '/reload' });
      expect(r.body.toString()).toBe('reloading');
      await srv.waitForLogCount(/spawned uWSGI worker 1 \(pid: \d+, cores: 1\)/, 2, 30000);
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);

  test('the JVM exits by itself when the core dies (EOF on the control channel)', async () => {
    const srv = await startServer(JW(), { readyTimeoutMs: 60000 });
    const java = srv.descendants().filter((p) => /java/.test(p.cmd));
    expect(java.length).toBe(1);
    srv.signal('SIGKILL');
    await srv.exited;
    const deadline = Date.now() + 10000;
    while (readProc(java[0]!.pid) && readProc(java[0]!.pid)!.state !== 'Z' && Date.now() < deadline) await sleep(50);
    const left = readProc(java[0]!.pid);
    expect(left === null || left.state === 'Z').toBe(true);
    await srv.stop('SIGKILL');
  }, 60000);
});
