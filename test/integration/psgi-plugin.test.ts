/**
 * The psgi plugin (modifier1 5) and the Perl bridge: spec/languages.md §6 (PL1–PL8, PL10,
 * PL11), every PSGI response form, the env, request bodies (chunked uploads, large bodies,
 * seek), HEAD/204/304, repeated headers, errors, load failures, dispatch without modifier
 * flags, nginx uwsgi_pass, a Plack::Builder app with middleware, the uwsgi:: API,
 * harakiri's stack dump, psgix.harakiri.commit, --perl-auto-reload and graceful stop.
 *
 * Apps are in test/fixtures/perl/. Perl and Plack are required: the tests fail (never skip)
 * when they are missing.
 *
 * The cases every language shares (repeated response headers of /repeated, …) run against the
 * same suite.psgi in test/conformance/shared-request-set.test.ts, not here.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chunkEncode, httpRequest, RawHttpConnection, rawRequest } from '../helpers/http-raw.ts';
import { startNginx } from '../helpers/nginx.ts';
import { REPO_ROOT, requireExecutable, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';
import { stdVars, uwsgiRequest } from '../helpers/uwsgi-client.ts';
import { json, md5, waitFor } from '../helpers/assertions.ts';

const PERL = '/usr/bin/perl';
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'perl');
const pl = (name: string): string => path.join(FIXTURES, name);

beforeAll(() => {
  requireExecutable(PERL, 'perl');
  const probe = spawnSync(PERL, ['-MPlack::Util', '-MPlack::Builder', '-MPlack::Middleware::Session', '-e', '1'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`Plack is required by these tests but cannot be loaded (apt-get install libplack-perl libplack-middleware-session-perl): ${probe.stderr}`);
});

describe('PSGI apps over --http-socket (1 process, keep-alive)', () => {
  let srv: ServerHandle;
  let agent: http.Agent;
  let dir: string;
  let uwsgiAddr: string;

  beforeAll(async () => {
    dir = tmpDir('tsuwsgi-psgi-');
    srv = await startServer([
      '--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--socket', '127.0.0.1:0', '--psgi', pl('suite.psgi'),
      '--perl-exec', pl('exec.pl'), '--perl-exec-post-fork', pl('exec_post.pl'), '--perl-args', 'a b', '--perl-arg', 'c d',
    ]);
    uwsgiAddr = srv.sockets[1]!;
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }, 60000);

  afterAll(async () => {
    agent?.destroy();
    if (srv) expect(await srv.stop()).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);

  const get = (p: string, o: Parameters<typeof httpRequest>[1] = {}) => httpRequest(srv.port, { agent, path: p, ...o });
  const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);

  test('the app answers; the log names the Perl app', () =>
    withLog(async () => {
      const r = await get('/hello');
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('Hello World');
      expect(srv.logs()).toMatch(/Perl app 0 \(mountpoint=''\) ready \(--psgi .*suite\.psgi\)/);
    }));

  test('PL3: the PSGI 1.1 env is complete', () =>
    withLog(async () => {
      const r = await get('/env?y=1', { headers: { 'X-Test': 'v', 'Content-Type': 'text/x' } });
      const e = json(r.body);
      expect(e).toMatchObject({
        REQUEST_METHOD: 'GET',
        PATH_INFO: '/env',
        QUERY_STRING: 'y=1',
        SCRIPT_NAME: '',
        SERVER_PROTOCOL: 'HTTP/1.1',
        SERVER_PORT: String(srv.port),
        REMOTE_ADDR: '127.0.0.1',
        HTTP_X_TEST: 'v',
        'psgi.version': 'ARRAY',
        '_psgi.version': [1, 1],
        'psgi.url_scheme': 'http',
        'psgi.input': 'tsuwsgi::Input',
        '_input.can': ['read', 'seek'],
        'psgi.errors': 'GLOB',
        '_errors.can_print': 1,
        'psgi.multithread': 0,
        'psgi.multiprocess': 0,
        'psgi.run_once': 0,
        'psgi.nonblocking': 0,
        'psgi.streaming': 1,
        'psgix.input.buffered': 1,
        'psgix.logger': 'CODE',
        'psgix.cleanup': 1,
        'psgix.cleanup.handlers': 'ARRAY',
        'psgix.harakiri': 1,
      });
      // PSGI: the body's type/length are CONTENT_TYPE/CONTENT_LENGTH only.
      expect(e).not.toHaveProperty('HTTP_CONTENT_LENGTH');
      expect(e).not.toHaveProperty('HTTP_CONTENT_TYPE');
      expect(e).not.toHaveProperty('psgix.io');
    }));

  test('UWSGI_SCHEME and HTTPS=on set psgi.url_scheme (uwsgi socket)', () =>
    withLog(async () => {
      const a = await uwsgiRequest(uwsgiAddr, stdVars({ PATH_INFO: '/env', REQUEST_URI: '/env', HTTPS: 'on' }), { modifier1: 5 });
      expect(a.toString()).toMatch(/"psgi\.url_scheme":"https"/);
      const b = await uwsgiRequest(uwsgiAddr, stdVars({ PATH_INFO: '/env', REQUEST_URI: '/env', UWSGI_SCHEME: 'https' }), { modifier1: 5 });
      expect(b.toString()).toMatch(/"psgi\.url_scheme":"https"/);
    }));

  describe('request bodies (psgi.input)', () => {
    test('PL7: read($buf, CONTENT_LENGTH) and CONTENT_TYPE', () =>
      withLog(async () => {
        const r = await get('/echo?mode=read', { method: 'POST', body: 'abc', headers: { 'Content-Type': 'text/x-test' } });
        expect(json(r.body)).toMatchObject({ length: 3, body: 'abc', content_length: '3', content_type: 'text/x-test', buffered: 1 });
      }));

    test('read() with an offset appends (Plack::Test::Suite\'s "big POST" way)', () =>
      withLog(async () => {
        const body = Buffer.from('0123456789'.repeat(5000));
        const r = await get('/echo?mode=chunks&digest', { method: 'POST', body });
        expect(json(r.body)).toMatchObject({ length: body.length, md5: md5(body) });
      }));

    test('seek(0, 0) rewinds a buffered body', () =>
      withLog(async () => {
        const r = await get('/echo?mode=seek', { method: 'POST', body: 'hello body' });
        expect(json(r.body)).toEqual({ first: 'hel', seek: 1, body: 'hello body' });
      }));

    test('getline() returns the body line by line', () =>
      withLog(async () => {
        const r = await get('/echo?mode=lines', { method: 'POST', body: 'one\ntwo\nthree' });
        expect(json(r.body)).toEqual({ lines: ['one\n', 'two\n', 'three'] });
      }));

    test('getline() on a streamed (large) body', () =>
      withLog(async () => {
        const lines = Array.from({ length: 60000 }, (_, i) => `line number ${i} of the upload\n`).join('');
        const body = Buffer.from(lines + 'no newline at the end');
        const r = await get('/echo?mode=linecount', { method: 'POST', body });
        expect(json(r.body)).toEqual({ count: 60001, md5: md5(body), buffered: 0 });
      }));

    test('a chunked upload reaches the app de-chunked, with CONTENT_LENGTH', () =>
      withLog(async () => {
        const body = crypto.randomBytes(300_000);
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('POST', '/echo?mode=read&digest', { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' }));
          await c.write(chunkEncode(body, 7000));
          const r = await c.readResponse();
          expect(r.status).toBe(200);
          expect(json(r.body)).toMatchObject({ length: body.length, content_length: String(body.length), md5: md5(body) });
        } finally {
          c.close();
        }
      }));

    test('a large body (5 MB) is streamed to the app (psgix.input.buffered false) intact', () =>
      withLog(async () => {
        const body = crypto.randomBytes(5 * 1024 * 1024);
        const r = await get('/echo?mode=chunks&digest', { method: 'POST', body });
        expect(json(r.body)).toMatchObject({ length: body.length, buffered: 0, md5: md5(body) });
      }));

    test('a body the app does not read is consumed: the next request on the connection works', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          const big = crypto.randomBytes(3 * 1024 * 1024);
          await c.write(Buffer.concat([rawRequest('POST', '/echo?mode=ignore', {}, big), rawRequest('POST', '/echo?mode=ignore', {}, 'small'), rawRequest('GET', '/hello')]));
          for (const want of ['ignored', 'ignored', 'Hello World']) {
            const r = await c.readResponse();
            expect(r.status).toBe(200);
            expect(r.body.toString()).toBe(want);
          }
        } finally {
          c.close();
        }
      }));
  });

  describe('response forms', () => {
    test('an array body gets a Content-Length', () =>
      withLog(async () => {
        const r = await get('/array');
        expect(r.body.toString()).toBe('abcdef');
        expect(r.headers['content-length']).toBe('6');
      }));

    test("the app's Content-Length is kept", () =>
      withLog(async () => {
        const r = await get('/array-length');
        expect(r.body.toString()).toBe('hello');
        expect(r.headers['content-length']).toBe('5');
      }));

    test('PL6: a filehandle body is sent whole, with its length', () =>
      withLog(async () => {
        const want = fs.readFileSync(pl('data.txt'));
        const r = await get('/file');
        expect(r.headers['content-length']).toBe(String(want.length));
        expect(md5(r.body)).toBe(md5(want));
      }));

    test('a filehandle the app already read from is sent from its current position', () =>
      withLog(async () => {
        const want = fs.readFileSync(pl('data.txt')).subarray(28); // the first line is 28 bytes
        const r = await get('/file-partly-read');
        expect(r.body.toString()).toBe(want.toString());
      }));

    test('a big file (8 MB) arrives intact', () =>
      withLog(async () => {
        const file = path.join(dir, 'big.bin');
        const data = crypto.randomBytes(8 * 1024 * 1024);
        fs.writeFileSync(file, data);
        const r = await get(`/bigfile?path=${file}`);
        expect(r.status).toBe(200);
        expect(r.body.length).toBe(data.length);
        expect(md5(r.body)).toBe(md5(data));
      }));

    test('a pipe filehandle (no size) is streamed chunked', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('GET', '/pipe'));
          const r = await c.readResponse();
          expect(r.chunked).toBe(true);
          expect(r.body.toString()).toBe('from a pipe\n'.repeat(3));
        } finally {
          c.close();
        }
      }));

    test('an IO::Handle-like object: getline until undef, then close', () =>
      withLog(async () => {
        const marker = path.join(dir, 'closed.txt');
        const r = await get(`/io-like?marker=${marker}`);
        expect(r.body.toString()).toBe('line0\nline1\nline2\n');
        expect(fs.readFileSync(marker, 'utf8')).toBe('closed\n');
      }));

    test('PL4: a delayed response (the responder called with a full response)', () =>
      withLog(async () => {
        const r = await get('/delayed');
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('delayed');
      }));

    test('PL5: a streaming writer: write() chunks then close(), chunked on the wire', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('GET', '/stream'));
          const r = await c.readResponse();
          expect(r.status).toBe(200);
          expect(r.chunked).toBe(true);
          expect(r.body.toString()).toBe('ab' + 'c'.repeat(100000));
        } finally {
          c.close();
        }
      }));

    test("a streaming writer with the app's Content-Length", () =>
      withLog(async () => {
        const r = await get('/stream-length');
        expect(r.headers['content-length']).toBe('6');
        expect(r.body.toString()).toBe('abcdef');
      }));

    test('a writer the app never closes ends when the app returns', () =>
      withLog(async () => {
        const r = await get('/stream-unclosed');
        expect(r.body.toString()).toBe('not closed by the app');
        expect((await get('/hello')).body.toString()).toBe('Hello World');
      }));

    test('204 and 304 carry no body and no framing headers', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(Buffer.concat([rawRequest('GET', '/status?code=204'), rawRequest('GET', '/status?code=304'), rawRequest('GET', '/hello')]));
          for (const code of [204, 304]) {
            const r = await c.readResponse();
            expect(r.status).toBe(code);
            expect(r.body.length).toBe(0);
            expect(r.header('content-length')).toBeUndefined();
            expect(r.header('transfer-encoding')).toBeUndefined();
          }
          expect((await c.readResponse()).body.toString()).toBe('Hello World');
        } finally {
          c.close();
        }
      }));

    test('HEAD gets the headers a GET gets and no body (array, file and streamed bodies)', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(Buffer.concat([rawRequest('HEAD', '/array'), rawRequest('HEAD', '/file'), rawRequest('HEAD', '/stream'), rawRequest('GET', '/hello')]));
          const a = await c.readResponse({ head: true });
          expect(a.status).toBe(200);
          expect(a.header('content-length')).toBe('6');
          const f = await c.readResponse({ head: true });
          expect(f.header('content-length')).toBe(String(fs.statSync(pl('data.txt')).size));
          const s = await c.readResponse({ head: true });
          expect(s.status).toBe(200);
          const g = await c.readResponse();
          expect(g.body.toString()).toBe('Hello World');
        } finally {
          c.close();
        }
      }));

    test('repeated request headers from nginx-style vars are joined with ", "', () =>
      withLog(async () => {
        const vars: Array<[string, string]> = [...stdVars({ PATH_INFO: '/env', REQUEST_URI: '/env' }), ['HTTP_X_DUP', 'one'], ['HTTP_X_DUP', 'two']];
        const out = (await uwsgiRequest(uwsgiAddr, vars, { modifier1: 5 })).toString();
        expect(out).toMatch(/"HTTP_X_DUP":"one, two"/);
      }));

    test('pipelined requests on one connection are answered in order', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(Buffer.concat([rawRequest('GET', '/hello'), rawRequest('GET', '/array'), rawRequest('GET', '/delayed'), rawRequest('GET', '/hello')]));
          const bodies: string[] = [];
          for (let i = 0; i < 4; i++) bodies.push((await c.readResponse()).body.toString());
          expect(bodies).toEqual(['Hello World', 'abcdef', 'delayed', 'Hello World']);
        } finally {
          c.close();
        }
      }));
  });

  describe('errors', () => {
    test('an exception answers 500 and logs the Perl error with its stack', () =>
      withLog(async () => {
        const r = await get('/die-deep');
        expect(r.status).toBe(500);
        expect(r.body.toString()).toBe('Internal Server Error');
        const m = await srv.waitForLog(/\[uwsgi-perl error\] GET \/die-deep: died in inner_die at \S*suite\.psgi line \d+\.\n\t.*inner_die called at \S*suite\.psgi line \d+/);
        expect(m[0]).not.toMatch(/bridge\.pl/);
      }));

    test('an exception object, a malformed response and a header with CR/LF answer 500 with a log line', () =>
      withLog(async () => {
        for (const [p, log] of [
          ['/die-object', /\[uwsgi-perl error\] GET \/die-object: HASH\(0x/],
          ['/bad-response', /\[uwsgi-perl error\] GET \/bad-response: PSGI response must be an array reference \[status, headers, body\] or a code reference \(got 'not an array'\)/],
          ['/bad-header', /\[uwsgi-perl error\] GET \/bad-header: CR or LF in the PSGI response status or headers/],
        ] as const) {
          const r = await get(p);
          expect(r.status).toBe(500);
          await srv.waitForLog(log);
        }
        // The connection and the worker are still fine.
        expect((await get('/hello')).body.toString()).toBe('Hello World');
      }));

    test('text strings: latin-1 ones are sent as bytes, wider ones answer 500 with what to do', () =>
      withLog(async () => {
        const u = await get('/upgraded');
        expect(u.status).toBe(200);
        expect(u.body).toEqual(Buffer.from('caf\xe9caf\xe9', 'latin1'));
        expect(u.headers['content-length']).toBe('8');
        const w = await get('/wide');
        expect(w.status).toBe(500);
        await srv.waitForLog(/\[uwsgi-perl error\] GET \/wide: the PSGI response contains characters above 255 \(a text string\): encode it to bytes/);
        expect((await get('/hello')).body.toString()).toBe('Hello World');
      }));

    test('an exception after the headers went out truncates the response (logged)', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('GET', '/die-streaming'));
          await c.readUntil('partial');
          expect(await c.waitClosed()).toBe(true);
          expect(c.pending.toString()).not.toMatch(/0\r\n\r\n$/); // no final chunk: visibly truncated
        } finally {
          c.close();
        }
        await srv.waitForLog(/\[uwsgi-perl error\] GET \/die-streaming: died while streaming/);
      }));
  });

  test('psgix.logger, psgi.errors and STDERR reach the server log', () =>
    withLog(async () => {
      expect((await get('/logger')).body.toString()).toBe('logged');
      await srv.waitForLog(/^\[warn\] hello from psgix\.logger$/m);
      await srv.waitForLog(/^hello from psgi\.errors$/m);
      await srv.waitForLog(/^hello from STDERR$/m);
    }));

  test('psgix.cleanup.handlers run after the response', () =>
    withLog(async () => {
      const marker = path.join(dir, 'cleanup.txt');
      const r = await get(`/cleanup?marker=${marker}`);
      expect(r.body.toString()).toBe('cleanup registered');
      expect(await waitFor('the cleanup handler', () => (fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : undefined))).toBe('cleanup ran for /cleanup\n');
    }));

  test('the uwsgi:: API, --perl-exec, --perl-exec-post-fork, --perl-args/--perl-arg and uwsgi::postfork', () =>
    withLog(async () => {
      const u = json((await get('/uwsgi')).body);
      expect(u).toMatchObject({
        worker_id: 1,
        numproc: 1,
        masterpid: expect.any(Number),
        hostname: os.hostname(),
        logged: 1,
        argv: ['a', 'b', 'c d'],
        exec_ran: 1,
        exec_post_ran: 1,
        postfork_ran: 1,
        // Core services that do not exist yet are absent, not stubbed.
        has_cache_get: 0,
      });
      expect(u.VERSION).toMatch(/^2\.0\.\d+-tsuwsgi/);
      expect((u.opt as Record<string, unknown>).psgi).toBe(pl('suite.psgi'));
      expect((u.opt as Record<string, unknown>)['perl-arg']).toBe('c d');
      await srv.waitForLog(/^hello from uwsgi::log$/m);
    }));
});

describe('--catch-exceptions and --perl-no-die-catch', () => {
  test('the error is the 500 body; without the __DIE__ handler the log has no stack', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('suite.psgi'), '--catch-exceptions', '--perl-no-die-catch']);
    try {
      await withServerLog(srv, async () => {
        const r = await httpRequest(srv.port, { path: '/die-deep' });
        expect(r.status).toBe(500);
        expect(r.body.toString()).toMatch(/^died in inner_die at \S*suite\.psgi line \d+\.\n$/);
        const m = await srv.waitForLog(/\[uwsgi-perl error\] GET \/die-deep: died in inner_die at \S*suite\.psgi line \d+\.\n(.*)/);
        expect(m[1]).not.toMatch(/called at/);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);
});

describe('dispatch', () => {
  test('PL1: --http-socket-modifier1 5 --psgi myapp.pl', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '5', '--psgi', pl('hello.pl')]);
    try {
      const r = await httpRequest(srv.port);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html');
      expect(r.body.toString()).toBe('<h1>Hello World</h1>');
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('PL2: --plugins http,psgi --http :PORT --psgi app.pl works with no modifier flags', async () => {
    const srv = await startServer(['--plugins', 'http,psgi', '--http', '127.0.0.1:0', '--psgi', pl('hello.pl')]);
    try {
      const r = await httpRequest(srv.port);
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('<h1>Hello World</h1>');
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('PL8: two mounted PSGI apps selected by UWSGI_APPID (and --perl-no-plack loads them with do FILE)', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--socket', '127.0.0.1:0', '--mount', 'app1=' + pl('hello.pl'), '--mount', 'app2=' + pl('suite.psgi'), '--perl-no-plack']);
    try {
      await withServerLog(srv, async () => {
        const addr = srv.sockets[0]!;
        const a = await uwsgiRequest(addr, stdVars({ UWSGI_APPID: 'app2', PATH_INFO: '/hello', REQUEST_URI: '/hello' }), { modifier1: 5 });
        expect(a.toString()).toMatch(/\r\n\r\nHello World$/);
        const b = await uwsgiRequest(addr, stdVars({ UWSGI_APPID: 'app1' }), { modifier1: 5 });
        expect(b.toString()).toMatch(/\r\n\r\n<h1>Hello World<\/h1>$/);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('a WSGI and a PSGI app in one server: modifier1 0 goes to Python, 5 to Perl', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--socket', '127.0.0.1:0', '--http-socket', '127.0.0.1:0', '--wsgi-file', path.join(REPO_ROOT, 'test', 'fixtures', 'python', 'hello.py'), '--psgi', pl('hello.pl')]);
    try {
      await withServerLog(srv, async () => {
        const addr = srv.sockets[0]!;
        const perl = (await uwsgiRequest(addr, stdVars(), { modifier1: 5 })).toString();
        expect(perl).toMatch(/\r\n\r\n<h1>Hello World<\/h1>$/);
        const python = (await uwsgiRequest(addr, stdVars({ SCRIPT_NAME: '' }), { modifier1: 0 })).toString();
        expect(python).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\nHello World$/);
        // With a Python app loaded, modifier1 0 stays Python's (no auto-fix to the first app).
        const viaHttp = await httpRequest(Number(srv.sockets[1]!.split(':').pop()));
        expect(viaHttp.body.toString()).toBe('Hello World');
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('nginx uwsgi_pass with uwsgi_modifier1 5', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--socket', '127.0.0.1:0', '--psgi', pl('suite.psgi')]);
    const nginx = await startNginx({ upstream: srv.sockets[0]!, locationExtra: 'uwsgi_modifier1 5;' });
    try {
      await withServerLog(
        srv,
        async () => {
          const h = await httpRequest(nginx.port, { path: '/hello' });
          expect(h.body.toString()).toBe('Hello World');
          const body = crypto.randomBytes(200_000);
          const e = json((await httpRequest(nginx.port, { path: '/echo?mode=read&digest', method: 'POST', body })).body);
          expect(e).toMatchObject({ length: body.length, md5: md5(body) });
          // Without the hello packet the connection carries one request: a streamed body
          // ends when the bridge closes it, and nginx delivers it whole.
          const s = await httpRequest(nginx.port, { path: '/stream' });
          expect(s.body.toString()).toBe('ab' + 'c'.repeat(100000));
          const f = await httpRequest(nginx.port, { path: '/file' });
          expect(md5(f.body)).toBe(md5(fs.readFileSync(pl('data.txt'))));
          const d = await httpRequest(nginx.port, { path: '/die' });
          expect(d.status).toBe(500);
        },
        () => `--- nginx error.log ---\n${nginx.errorLog()}`,
      );
    } finally {
      await nginx.stop();
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);
});

describe('a Plack::Builder app with middleware (Runtime, ContentLength, Session, Static, mount)', () => {
  test('serves mounted apps, sessions, static files and uploads', async () => {
    const srv = await startServer(['--plugins', 'http,psgi', '--http', '127.0.0.1:0', '--psgi', pl('builder.psgi')]);
    try {
      await withServerLog(srv, async () => {
        const a = await httpRequest(srv.port, { path: '/app/x' });
        expect(a.status).toBe(200);
        expect(a.body.toString()).toBe('count=1 path=/x script=/app');
        expect(a.headers['x-runtime']).toMatch(/^\d+(\.\d+)?$/);
        expect(a.headers['content-length']).toBe(String(a.body.length));
        const cookie = String(a.headers['set-cookie']).split(';')[0]!;
        expect(cookie).toMatch(/^plack_session=/);
        const b = await httpRequest(srv.port, { path: '/app/x', headers: { Cookie: cookie } });
        expect(b.body.toString()).toBe('count=2 path=/x script=/app');
        expect((await httpRequest(srv.port, { path: '/' })).body.toString()).toBe('root');
        const s = await httpRequest(srv.port, { path: '/static/hello.txt' });
        expect(s.status).toBe(200);
        expect(s.body.toString()).toBe('static file\n');
        const boundary = 'XyZzY';
        const file = crypto.randomBytes(50_000);
        const form = Buffer.concat([
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nperl\r\n`),
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
          file,
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]);
        const u = await httpRequest(srv.port, { path: '/app/form', method: 'POST', body: form, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
        expect(u.body.toString()).toBe(`name=perl upload=${file.length}`);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);
});

describe('app load failures (exit 22 with the Perl error)', () => {
  test('a syntax error', async () => {
    const r = await runTsuwsgi(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('broken_syntax.psgi')]);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/syntax error at \S*broken_syntax\.psgi line \d+|Missing right curly/);
    expect(r.output).toMatch(/unable to load PSGI app \S*broken_syntax\.psgi/);
    expect(r.output).toMatch(/Perl app \(--psgi \S*broken_syntax\.psgi\) could not be loaded/);
  }, 60000);

  test('a file that does not return a code reference', async () => {
    const r = await runTsuwsgi(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('not_code.psgi')]);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/the file must return a code reference \(it returned HASH\)/);
  }, 60000);

  test('a missing file', async () => {
    const r = await runTsuwsgi(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('no-such-app.psgi')]);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/no-such-app\.psgi.*No such file or directory/);
  }, 60000);

  test('bad options get clear errors', async () => {
    const url = await runTsuwsgi(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', 'http://example.com/app.psgi']);
    expect(url.code).not.toBe(0);
    expect(url.output).toMatch(/not supported: give a path to a \.psgi or \.pl file/);
    const bin = await runTsuwsgi(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('hello.pl'), '--perl-bin', '/nonexistent/perl']);
    expect(bin.code).not.toBe(0);
    expect(bin.output).toMatch(/cannot start the Perl bridge "\/nonexistent\/perl".*is \/nonexistent\/perl installed\?/);
    const missing = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--psgi', pl('hello.pl')]);
    expect(missing.code).not.toBe(0);
    expect(missing.output).toMatch(/psgi/);
  }, 60000);
});

describe('workers', () => {
  test('harakiri: 504, then the Perl stack of the stuck request in the log; --threads is refused with a warning', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('suite.psgi'), '--harakiri', '1', '--threads', '4', '--processes', '2']);
    try {
      await withServerLog(srv, async () => {
        expect(srv.logs()).toMatch(/--threads 4 does not apply to Perl apps: each psgi worker serves one request at a time/);
        expect(srv.logs()).toMatch(/spawned uWSGI worker 1 \(pid: \d+, cores: 1\)/);
        const r = await httpRequest(srv.port, { path: '/sleep?s=6' });
        expect(r.status).toBe(504);
        await srv.waitForLog(/\*\*\* perl bridge stack dump \(pid \d+, worker \d\) \*\*\*\n(.*\n)*.*suite\.psgi line \d+/);
        await srv.waitForLog(/main::sleeping_in_the_app|sleeping_in_the_app/);
        // Two requests at once on two processes: both answered.
        const both = await Promise.all([httpRequest(srv.port, { path: '/sleep?s=0.3' }), httpRequest(srv.port, { path: '/sleep?s=0.3' })]);
        expect(both.map((x) => x.status)).toEqual([200, 200]);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('PL10: psgix.harakiri.commit replaces the worker after the request', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('suite.psgi'), '--processes', '1']);
    try {
      await withServerLog(srv, async () => {
        const first = (await httpRequest(srv.port, { path: '/harakiri' })).body.toString();
        await srv.waitForLog(/psgix\.harakiri\.commit set by the app: worker 1 \(pid: \d+\) exits after this request/);
        const second = (await httpRequest(srv.port, { path: '/pid', timeoutMs: 15000 })).body.toString();
        expect(second).toMatch(/^\d+$/);
        expect(second).not.toBe(first);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('graceful stop (SIGTERM) lets the request in progress finish', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('suite.psgi')]);
    const pending = httpRequest(srv.port, { path: '/sleep?s=1' });
    await srv.waitForLog(/./); // started
    await sleep(300);
    const status = srv.stop('SIGTERM');
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('slept 1');
    expect(await status).toBe(0);
  }, 60000);

  test('graceful reload (SIGHUP): the request in progress finishes, new workers take over', async () => {
    const srv = await startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', pl('suite.psgi')]);
    try {
      await withServerLog(srv, async () => {
        const before = (await httpRequest(srv.port, { path: '/pid' })).body.toString();
        const pending = httpRequest(srv.port, { path: '/sleep?s=1' });
        await sleep(300);
        srv.signal('SIGHUP');
        const r = await pending;
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('slept 1');
        await srv.waitForLog(/workers reloaded/);
        const after = (await httpRequest(srv.port, { path: '/pid' })).body.toString();
        expect(after).toMatch(/^\d+$/);
        expect(after).not.toBe(before);
        // The old worker exited.
        await waitFor('the old worker to exit', () => (srv.descendants().some((p) => p.pid === Number(before)) ? undefined : true));
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('PL11: --perl-auto-reload reloads the workers when a module in %INC changes', async () => {
    const dir = tmpDir('tsuwsgi-psgi-reload-');
    try {
      fs.mkdirSync(path.join(dir, 'lib'));
      const mod = path.join(dir, 'lib', 'Greeting.pm');
      fs.writeFileSync(mod, "package Greeting; sub text { 'v1' } 1;\n");
      fs.writeFileSync(path.join(dir, 'app.psgi'), "use lib '" + path.join(dir, 'lib') + "'; use Greeting; my $app = sub { [200, ['Content-Type' => 'text/plain'], [Greeting::text()]] };\n");
      const srv = await startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', path.join(dir, 'app.psgi'), '--perl-auto-reload', '1']);
      try {
        await withServerLog(srv, async () => {
          expect((await httpRequest(srv.port)).body.toString()).toBe('v1');
          fs.writeFileSync(mod, "package Greeting; sub text { 'v2' } 1;\n");
          const future = new Date(Date.now() + 5000);
          fs.utimesSync(mod, future, future);
          const body = await waitFor(
            'the reloaded code',
            async () => {
              const r = (await httpRequest(srv.port)).body.toString();
              return r === 'v2' ? r : undefined;
            },
            20000,
          );
          expect(body).toBe('v2');
          expect(srv.logs()).toMatch(/\[perl-auto-reload\] \S*Greeting\.pm has been modified !!! reloading/);
        });
      } finally {
        expect(await srv.stop()).toBe(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);

  test('--perl-local-lib puts its lib/perl5 in @INC', async () => {
    const dir = tmpDir('tsuwsgi-psgi-ll-');
    try {
      fs.mkdirSync(path.join(dir, 'll', 'lib', 'perl5'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'll', 'lib', 'perl5', 'LocalThing.pm'), "package LocalThing; sub hi { 'from local::lib' } 1;\n");
      fs.writeFileSync(path.join(dir, 'app.psgi'), "use LocalThing; my $app = sub { [200, [], [LocalThing::hi()]] };\n");
      const srv = await startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--psgi', path.join(dir, 'app.psgi'), '--perl-local-lib', path.join(dir, 'll')]);
      try {
        expect((await httpRequest(srv.port)).body.toString()).toBe('from local::lib');
      } finally {
        expect(await srv.stop()).toBe(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});
