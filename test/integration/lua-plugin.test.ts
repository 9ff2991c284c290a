/**
 * The lua plugin (modifier1 6) and the Lua bridge: spec/languages.md §10.6 (LUA1–LUA5), the
 * WSAPI env, request bodies (chunked uploads, 3 MB bodies, unread bodies), every body form
 * (coroutine.wrap, coroutine, function, string, table), HEAD/204/304, repeated headers,
 * streaming, errors (500 + traceback, truncation after the headers, --catch-exceptions),
 * load failures (exit 22 with the Lua error), nginx uwsgi_pass with uwsgi_modifier1 6,
 * --lua-load, the uwsgi Lua API, --processes 2, harakiri's stack dump, graceful
 * stop/reload, and LuaJIT through --lua-bin.
 *
 * Apps are in test/fixtures/lua/. lua5.4, luajit and LuaSocket (Debian lua5.4, luajit,
 * lua-socket) are required: the tests fail (never skip) when they are missing.
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

const LUA = '/usr/bin/lua5.4';
const LUAJIT = '/usr/bin/luajit';
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'lua');
const lua = (name: string): string => path.join(FIXTURES, name);

const PIPPO_BODY = '<html><body><p>Hello Wsapi!</p><p>PATH_INFO: /foo</p><p>SCRIPT_NAME: </p></body></html>';

beforeAll(() => {
  for (const bin of [LUA, LUAJIT]) {
    requireExecutable(bin, path.basename(bin));
    const probe = spawnSync(bin, ['-e', "require('socket'); require('socket.unix')"], { encoding: 'utf8' });
    if (probe.status !== 0) throw new Error(`LuaSocket is required by these tests but ${bin} cannot load it (apt-get install lua-socket): ${probe.stderr}`);
  }
});

/** The shared request set, run against one interpreter (lua5.4, then LuaJIT). */
describe.each([
  ['lua5.4', LUA],
  ['LuaJIT', LUAJIT],
])('WSAPI apps on %s over --http-socket (1 process, keep-alive)', (_name, bin) => {
  let srv: ServerHandle;
  let agent: http.Agent;
  let uwsgiAddr: string;

  beforeAll(async () => {
    srv = await startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--socket', '127.0.0.1:0', '--lua', lua('suite.lua'), '--lua-load', lua('preload.lua'), '--lua-bin', bin]);
    uwsgiAddr = srv.sockets[1]!;
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }, 60000);

  afterAll(async () => {
    agent?.destroy();
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  const get = (p: string, o: Parameters<typeof httpRequest>[1] = {}) => httpRequest(srv.port, { agent, path: p, ...o });
  const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);

  test('the app answers; the log names the Lua app and the runtime', () =>
    withLog(async () => {
      const r = await get('/hello');
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('Hello World');
      expect(srv.logs()).toMatch(/Lua app 0 \(mountpoint=''\) ready \(--lua .*suite\.lua\)/);
      expect(srv.logs()).toMatch(/^preload\.lua ran in worker 1$/m);
    }));

  test('the WSAPI env: CGI vars, defaults, input and error', () =>
    withLog(async () => {
      const r = await get('/env?y=1&z', { headers: { 'X-Test': 'v' } });
      const e = json(r.body);
      expect(e).toMatchObject({
        REQUEST_METHOD: 'GET',
        PATH_INFO: '/env',
        QUERY_STRING: 'y=1&z',
        REQUEST_URI: '/env?y=1&z',
        SCRIPT_NAME: '',
        CONTENT_TYPE: '',
        SERVER_PROTOCOL: 'HTTP/1.1',
        SERVER_PORT: String(srv.port),
        REMOTE_ADDR: '127.0.0.1',
        HTTP_X_TEST: 'v',
        input: '<table>',
        error: '<table>',
        '_input.read': 'function',
        '_error.write': 'function',
      });
    }));

  test('repeated request headers from nginx-style vars are joined with ", "', () =>
    withLog(async () => {
      const vars: Array<[string, string]> = [...stdVars({ PATH_INFO: '/env', REQUEST_URI: '/env' }), ['HTTP_X_DUP', 'one'], ['HTTP_X_DUP', 'two']];
      const out = (await uwsgiRequest(uwsgiAddr, vars, { modifier1: 6 })).toString();
      expect(out).toMatch(/"HTTP_X_DUP":"one, two"/);
    }));

  describe('request bodies (wsapi_env.input)', () => {
    test('LUA4: the body iterator reads input:read(3)', () =>
      withLog(async () => {
        const r = await get('/read-in-iterator', { method: 'POST', body: 'abc' });
        expect(r.body.toString()).toBe('abc');
      }));

    test('read(CONTENT_LENGTH), read() and CONTENT_TYPE', () =>
      withLog(async () => {
        const a = await get('/echo?mode=read', { method: 'POST', body: 'hello body', headers: { 'Content-Type': 'text/x-test' } });
        expect(a.body.toString()).toBe('hello body');
        expect(a.headers['x-content-type-seen']).toBe('text/x-test');
        const b = await get('/echo?mode=all', { method: 'POST', body: 'all of it' });
        expect(b.body.toString()).toBe('all of it');
      }));

    test("input:lines() / read('*l') return the body line by line", () =>
      withLog(async () => {
        const r = await get('/echo?mode=lines', { method: 'POST', body: 'one\ntwo\nthree' });
        expect(json(r.body)).toEqual(['one', 'two', 'three']);
      }));

    test('a multipart upload arrives intact', () =>
      withLog(async () => {
        const boundary = 'XyZzY';
        const file = crypto.randomBytes(200_000);
        const form = Buffer.concat([
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
          file,
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]);
        const r = await get('/echo?mode=chunks', { method: 'POST', body: form, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
        expect(r.headers['x-content-type-seen']).toBe(`multipart/form-data; boundary=${boundary}`);
        expect(md5(r.body)).toBe(md5(form));
      }));

    test('a chunked upload reaches the app de-chunked, with CONTENT_LENGTH', () =>
      withLog(async () => {
        const body = crypto.randomBytes(300_000);
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('POST', '/echo?mode=read', { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' }));
          await c.write(chunkEncode(body, 7000));
          const r = await c.readResponse();
          expect(r.status).toBe(200);
          expect(md5(r.body)).toBe(md5(body));
        } finally {
          c.close();
        }
      }));

    test('a 3 MB body is streamed to the app intact (4096-byte reads and one big read)', () =>
      withLog(async () => {
        const body = crypto.randomBytes(3 * 1024 * 1024);
        const a = await get('/echo?mode=chunks', { method: 'POST', body });
        expect(a.body.length).toBe(body.length);
        expect(md5(a.body)).toBe(md5(body));
        const b = await get('/echo?mode=read', { method: 'POST', body });
        expect(md5(b.body)).toBe(md5(body));
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

  describe('responses', () => {
    test('body forms: coroutine.create, a plain function, a string, an array with a "201 Made" status', () =>
      withLog(async () => {
        expect((await get('/thread-body')).body.toString()).toBe('from a coroutine');
        expect((await get('/function-body')).body.toString()).toBe('x1x2x3');
        const s = await get('/string-body');
        expect(s.body.toString()).toBe('a string body');
        expect(s.headers['content-length']).toBe('13');
        const t = await get('/table-body');
        expect(t.status).toBe(201);
        expect(t.body.toString()).toBe('abcd12');
        expect(t.headers['content-length']).toBe('6');
        // A full status string keeps its own reason phrase.
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('GET', '/table-body'));
          expect((await c.readResponse()).statusLine).toBe('HTTP/1.1 201 Made');
        } finally {
          c.close();
        }
      }));

    test('a streamed body goes out chunked, chunk by chunk', () =>
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

    test("the app's Content-Length is kept and frames a streamed body", () =>
      withLog(async () => {
        const r = await get('/stream-length');
        expect(r.headers['content-length']).toBe('6');
        expect(r.headers['transfer-encoding']).toBeUndefined();
        expect(r.body.toString()).toBe('abcdef');
      }));

    test('LUA3: a header whose value is a table is repeated, in order', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('GET', '/repeated'));
          const r = await c.readResponse();
          expect(r.headerAll('set-cookie')).toEqual(['a=1', 'b=2']);
          expect(r.headerAll('x-multi')).toEqual(['one', 'two']);
        } finally {
          c.close();
        }
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

    test('HEAD gets the headers a GET gets and no body', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(Buffer.concat([rawRequest('HEAD', '/string-body'), rawRequest('HEAD', '/stream'), rawRequest('GET', '/hello')]));
          const a = await c.readResponse({ head: true });
          expect(a.status).toBe(200);
          expect(a.header('content-length')).toBe('13');
          const s = await c.readResponse({ head: true });
          expect(s.status).toBe(200);
          const g = await c.readResponse();
          expect(g.body.toString()).toBe('Hello World');
        } finally {
          c.close();
        }
      }));

    test('pipelined requests on one connection are answered in order', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(Buffer.concat([rawRequest('GET', '/hello'), rawRequest('GET', '/string-body'), rawRequest('GET', '/thread-body'), rawRequest('GET', '/hello')]));
          const bodies: string[] = [];
          for (let i = 0; i < 4; i++) bodies.push((await c.readResponse()).body.toString());
          expect(bodies).toEqual(['Hello World', 'a string body', 'from a coroutine', 'Hello World']);
        } finally {
          c.close();
        }
      }));
  });

  describe('errors', () => {
    test('an error answers 500 and logs the Lua error with the app frames of its traceback', () =>
      withLog(async () => {
        const r = await get('/die-deep');
        expect(r.status).toBe(500);
        expect(r.body.toString()).toBe('Internal Server Error');
        const m = await srv.waitForLog(/\[uwsgi-lua error\] GET \/die-deep: \S*suite\.lua:\d+: died in inner_die\nstack traceback:\n(\t.*\n)*\t\S*suite\.lua:\d+: in \w+ 'outer_die'/);
        expect(m[0]).not.toMatch(/bridge\.lua/);
      }));

    test('an error object, a malformed status/header/body answer 500 with a log line; the worker goes on', () =>
      withLog(async () => {
        for (const [p, log] of [
          ['/die-table', /\[uwsgi-lua error\] GET \/die-table: table: 0x/],
          ['/bad-status', /\[uwsgi-lua error\] GET \/bad-status: invalid WSAPI response status 'not a status'/],
          ['/bad-header', /\[uwsgi-lua error\] GET \/bad-header: CR or LF in the WSAPI response status or headers/],
          ['/bad-body', /\[uwsgi-lua error\] GET \/bad-body: invalid WSAPI response body: a boolean/],
        ] as const) {
          const r = await get(p);
          expect(r.status).toBe(500);
          await srv.waitForLog(log);
        }
        expect((await get('/hello')).body.toString()).toBe('Hello World');
      }));

    test('calling a uwsgi function tsuwsgi has not built yet: 500, and the log says which service is pending', () =>
      withLog(async () => {
        const r = await get('/pending-api');
        expect(r.status).toBe(500);
        // Lua 5.4: "attempt to call a nil value (field 'cache_get')"; LuaJIT: "attempt to call field 'cache_get' (a nil value)".
        await srv.waitForLog(/\[uwsgi-lua error\] GET \/pending-api: \S*suite\.lua:\d+: attempt to call .*'cache_get'.* \(uwsgi\.cache_get needs the cache, which tsuwsgi has not implemented yet: see docs\/lua\.md\)/);
      }));

    test('an error after the headers went out truncates the response (logged)', () =>
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
        const m = await srv.waitForLog(/\[uwsgi-lua error\] GET \/die-streaming: (.*)/);
        expect(m[1]).toMatch(/^\S*suite\.lua:\d+: died while streaming$/);
      }));
  });

  test('uwsgi.log, print, wsapi_env.error and io.stderr reach the server log', () =>
    withLog(async () => {
      expect((await get('/log')).body.toString()).toBe('logged');
      for (const re of [/^hello from uwsgi\.log$/m, /^hello from print$/m, /^hello from wsapi_env\.error$/m, /^hello from io\.stderr$/m]) await srv.waitForLog(re);
    }));

  test('the uwsgi Lua API, --lua-load and uwsgi.postfork', () =>
    withLog(async () => {
      const u = json((await get('/uwsgi')).body);
      expect(u).toMatchObject({
        same_table: true,
        worker_id: 1,
        numproc: 1,
        masterpid: expect.any(Number),
        hostname: os.hostname(),
        is_a_reload: false,
        opt_lua: lua('suite.lua'),
        opt_lua_load: lua('preload.lua'),
        mem_ok: true,
        loaded_by_lua_load: 'yes',
        postfork_ran: true,
        // Core services that do not exist yet are absent, not stubbed.
        has_cache_get: false,
        has_register_rpc: false,
      });
      expect(u.version).toMatch(/^2\.0\.\d+-tsuwsgi/);
      expect(u.request_id).toEqual(expect.any(Number));
    }));
});

describe('spec/languages.md §10.6 acceptance checks', () => {
  test('LUA1: pippo.lua with --http-socket-modifier1 6', async () => {
    const srv = await startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '6', '--lua', lua('pippo.lua')]);
    try {
      await withServerLog(srv, async () => {
        const r = await httpRequest(srv.port, { path: '/foo' });
        expect(r.status).toBe(200);
        expect(r.headers['content-type']).toBe('text/html');
        expect(r.body.toString()).toBe(PIPPO_BODY);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('LUA2: a table with a run function and a coroutine body; no modifier flags needed', async () => {
    const srv = await startServer(['--plugins', 'http,lua', '--http', '127.0.0.1:0', '--lua', lua('lua2.lua')]);
    try {
      await withServerLog(srv, async () => {
        const r = await httpRequest(srv.port);
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('ok');
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('LUA5: the CPU-bound 10001-chunk pippo, 8 concurrent requests on --processes 2: all complete, served by both workers', async () => {
    const srv = await startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('pippo_cpu.lua'), '--processes', '2']);
    try {
      await withServerLog(srv, async () => {
        const rs = await Promise.all(Array.from({ length: 8 }, () => httpRequest(srv.port, { path: '/', timeoutMs: 30000 })));
        for (const r of rs) {
          expect(r.status).toBe(200);
          expect(r.body.toString()).toMatch(/^<html><body><p>Hello Wsapi!<\/p>.*10000<br\/><\/body><\/html>$/);
        }
        const pids = new Set([...srv.logs().matchAll(/\[pid: (\d+)\|app: 0\|req: \d+\/\d+\] .* GET \/ =>/g)].map((m) => m[1]));
        expect(pids.size).toBe(2);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);
});

describe('dispatch and front ends', () => {
  test('nginx uwsgi_pass with uwsgi_modifier1 6 (one request per connection: bodies end at close)', async () => {
    const srv = await startServer(['--plugins', 'lua', '--socket', '127.0.0.1:0', '--lua', lua('suite.lua')]);
    const nginx = await startNginx({ upstream: srv.sockets[0]!, locationExtra: 'uwsgi_modifier1 6;' });
    try {
      await withServerLog(
        srv,
        async () => {
          expect((await httpRequest(nginx.port, { path: '/hello' })).body.toString()).toBe('Hello World');
          const body = crypto.randomBytes(3 * 1024 * 1024);
          const e = await httpRequest(nginx.port, { path: '/echo?mode=chunks', method: 'POST', body });
          expect(md5(e.body)).toBe(md5(body));
          const s = await httpRequest(nginx.port, { path: '/stream' });
          expect(s.body.toString()).toBe('ab' + 'c'.repeat(100000));
          const c = await httpRequest(nginx.port, { path: '/repeated' });
          expect(c.headers['set-cookie']).toEqual(['a=1', 'b=2']);
          const d = await httpRequest(nginx.port, { path: '/die' });
          expect(d.status).toBe(500);
          const h = await httpRequest(nginx.port, { path: '/string-body', method: 'HEAD' });
          expect(h.status).toBe(200);
          expect(h.body.length).toBe(0);
        },
        () => `--- nginx error.log ---\n${nginx.errorLog()}`,
      );
    } finally {
      await nginx.stop();
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('a plain uwsgi request (no hello packet) on the bridge-facing protocol: one request, body ends at close', async () => {
    const srv = await startServer(['--plugins', 'lua', '--socket', '127.0.0.1:0', '--lua', lua('suite.lua')]);
    try {
      await withServerLog(srv, async () => {
        const out = (await uwsgiRequest(srv.sockets[0]!, stdVars({ PATH_INFO: '/echo', REQUEST_URI: '/echo?mode=read', QUERY_STRING: 'mode=read', REQUEST_METHOD: 'POST', CONTENT_LENGTH: '5' }), { modifier1: 6, body: 'hello' })).toString();
        expect(out).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhello$/);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('two mounted Lua apps selected by UWSGI_APPID; .ws is a Lua app too', async () => {
    const dir = tmpDir('tsuwsgi-lua-mount-');
    try {
      const ws = path.join(dir, 'app.ws');
      fs.writeFileSync(ws, "return function(env) return 200, {}, 'from app.ws' end\n");
      const srv = await startServer(['--plugins', 'lua', '--socket', '127.0.0.1:0', '--mount', 'app1=' + lua('lua2.lua'), '--mount', 'app2=' + ws]);
      try {
        await withServerLog(srv, async () => {
          const addr = srv.sockets[0]!;
          const a = await uwsgiRequest(addr, stdVars({ UWSGI_APPID: 'app2' }), { modifier1: 6 });
          expect(a.toString()).toMatch(/\r\n\r\nfrom app\.ws$/);
          const b = await uwsgiRequest(addr, stdVars({ UWSGI_APPID: 'app1' }), { modifier1: 6 });
          expect(b.toString()).toMatch(/\r\n\r\nok$/);
        });
      } finally {
        expect(await srv.stop()).toBe(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});

describe('--catch-exceptions', () => {
  test('the error and traceback are the 500 body', async () => {
    const srv = await startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('suite.lua'), '--catch-exceptions']);
    try {
      await withServerLog(srv, async () => {
        const r = await httpRequest(srv.port, { path: '/die-deep' });
        expect(r.status).toBe(500);
        expect(r.body.toString()).toMatch(/^\S*suite\.lua:\d+: died in inner_die\nstack traceback:\n[^]*inner_die/);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);
});

describe('app load failures (exit 22 with the Lua error)', () => {
  test('a syntax error', async () => {
    const r = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('broken_syntax.lua')]);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/unable to load Lua app \S*broken_syntax\.lua: \S*broken_syntax\.lua:\d+: 'end' expected/);
    expect(r.output).toMatch(/Lua app \(--lua \S*broken_syntax\.lua\) could not be loaded/);
  }, 60000);

  test('an error while the file runs, with its traceback', async () => {
    const r = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('broken_runtime.lua')]);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/\S*broken_runtime\.lua:2: cannot read the configuration\nstack traceback:\n[^]*load_config/);
    expect(r.output).toMatch(/unable to load Lua app \S*broken_runtime\.lua: \S*broken_runtime\.lua:2: cannot read the configuration/);
  }, 60000);

  test('a file that does not return an app, a missing file, a pending API used at load time', async () => {
    const notApp = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('not_an_app.lua')]);
    expect(notApp.code).toBe(22);
    expect(notApp.output).toMatch(/the file must return a function or a table with a run function \(it returned a number\)/);
    const missing = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('no-such-app.lua')]);
    expect(missing.code).toBe(22);
    expect(missing.output).toMatch(/no-such-app\.lua.*No such file or directory/);
    const rpc = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('uses_rpc.lua')]);
    expect(rpc.code).toBe(22);
    expect(rpc.output).toMatch(/uwsgi\.register_rpc needs RPC, which tsuwsgi has not implemented yet/);
  }, 60000);

  test('a failing --lua-load file stops the start too', async () => {
    const r = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('lua2.lua'), '--lua-load', lua('broken_runtime.lua')]);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/unable to run --lua-load file \S*broken_runtime\.lua: \S*broken_runtime\.lua:2: cannot read the configuration/);
  }, 60000);

  test('bad options get clear errors', async () => {
    const bin = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('lua2.lua'), '--lua-bin', '/nonexistent/lua']);
    expect(bin.code).not.toBe(0);
    expect(bin.output).toMatch(/cannot start the Lua bridge "\/nonexistent\/lua".*is \/nonexistent\/lua installed\?/);
    const loadOnly = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua-load', lua('preload.lua')]);
    expect(loadOnly.code).not.toBe(0);
    expect(loadOnly.output).toMatch(/--lua-load without a Lua app .*RPC functions or signal handlers, which tsuwsgi does not have yet \(pending\)/);
    const gc = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('lua2.lua'), '--lua-gc-freq', 'often']);
    expect(gc.code).not.toBe(0);
    expect(gc.output).toMatch(/--lua-gc-freq often: give a number of requests/);
    const shell = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('lua2.lua'), '--lua-shell']);
    expect(shell.code).not.toBe(0);
    expect(shell.output).toMatch(/lua-shell/);
    const async = await runTsuwsgi(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('lua2.lua'), '--async', '8']);
    expect(async.code).not.toBe(0);
    expect(async.output).toMatch(/TSUWSGI_E_LOOP_ENGINE: the lua plugin's Lua bridge cannot run the "async" loop engine .*use --processes/);
    const noPlugin = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--lua', lua('lua2.lua')]);
    expect(noPlugin.code).not.toBe(0);
    expect(noPlugin.output).toMatch(/lua/);
  }, 60000);
});

describe('workers', () => {
  test('--processes 2: two bridges with their own worker ids; --threads is refused with a warning; --lua-gc-freq 1', async () => {
    const srv = await startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('suite.lua'), '--processes', '2', '--threads', '4', '--lua-gc-freq', '1']);
    try {
      await withServerLog(srv, async () => {
        expect(srv.logs()).toMatch(/--threads 4 does not apply to Lua apps: each lua worker serves one request at a time/);
        expect(srv.logs()).toMatch(/spawned uWSGI worker 1 \(pid: \d+, cores: 1\)/);
        expect(srv.logs()).toMatch(/spawned uWSGI worker 2 \(pid: \d+, cores: 1\)/);
        // Two slow requests at once: a worker serves one at a time, so each gets its own.
        const rs = await Promise.all([httpRequest(srv.port, { path: '/worker?s=1' }), httpRequest(srv.port, { path: '/worker?s=1' })]);
        const seen = new Map(rs.map((r) => r.body.toString().split(' ').reverse() as [string, string]));
        expect([...seen.keys()].sort()).toEqual(['1', '2']);
        expect(new Set(seen.values()).size).toBe(2);
        expect((await httpRequest(srv.port, { path: '/gc' })).body.toString()).toBe('true');
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('harakiri: 504, then the Lua stack of the stuck request in the log (lua5.4)', async () => {
    const srv = await startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('suite.lua'), '--harakiri', '1']);
    try {
      await withServerLog(srv, async () => {
        const r = await httpRequest(srv.port, { path: '/sleep?s=4' });
        expect(r.status).toBe(504);
        const m = await srv.waitForLog(/\*\*\* lua bridge stack dump \(pid \d+, worker 1\) \*\*\*\n((?:.*\n)*?)\*\*\* end of the stack dump \*\*\*/);
        expect(m[1]).toMatch(/suite\.lua:\d+: in \w+ 'sleeping_in_the_app'/);
        expect(m[1]).not.toMatch(/bridge\.lua/);
        // The worker is replaced and serves again.
        expect((await httpRequest(srv.port, { path: '/hello', timeoutMs: 15000 })).body.toString()).toBe('Hello World');
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);

  test('graceful stop (SIGTERM) lets the request in progress finish', async () => {
    const srv = await startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('suite.lua')]);
    const pending = httpRequest(srv.port, { path: '/sleep?s=1' });
    await sleep(300);
    const status = srv.stop('SIGTERM');
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('slept 1');
    expect(await status).toBe(0);
  }, 60000);

  test('uwsgi.reload() reloads the workers gracefully: a new bridge takes over', async () => {
    const srv = await startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', lua('suite.lua')]);
    try {
      await withServerLog(srv, async () => {
        const before = (await httpRequest(srv.port, { path: '/pid' })).body.toString();
        expect((await httpRequest(srv.port, { path: '/reload' })).body.toString()).toBe('reloading');
        await srv.waitForLog(/workers reloaded/, 20000);
        const after = await waitFor('a new worker', async () => {
          const pid = (await httpRequest(srv.port, { path: '/pid' })).body.toString();
          return pid !== before ? pid : undefined;
        });
        expect(after).toMatch(/^\d+$/);
        await waitFor('the old worker to exit', () => (srv.descendants().some((p) => p.pid === Number(before)) ? undefined : true));
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, 60000);
});
