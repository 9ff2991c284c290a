/**
 * The rack plugin and the Ruby bridge (spec/languages.md §7): every response and body form,
 * the env, to_path, the UWSGI module, --threads, the ruby options, app load failures, the
 * bridge's control commands (stack dump on harakiri, graceful stop), dispatch without
 * modifier flags, nginx uwsgi_pass with uwsgi_modifier1 7, a Sinatra app, and the built-in
 * rackup builder used when the rack gem is not available.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, RawHttpConnection, rawRequest } from '../helpers/http-raw.ts';
import { startNginx, type NginxHandle } from '../helpers/nginx.ts';
import { assertRuby, rbFixture, RB_FIXTURES, SYSTEM_RUBY } from '../helpers/ruby.ts';
import { freePort, REPO_ROOT, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle, waitForFile } from '../helpers/server.ts';
import { encodeHeader, encodeVars, exchange, stdVars, uwsgiPacket } from '../helpers/uwsgi-client.ts';
import { json } from '../helpers/assertions.ts';

const FORMS = rbFixture('forms.ru');
const RACK_HTTP = ['--plugins', 'rack', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '7'];

beforeAll(() => assertRuby(['rack', 'sinatra/base']));

describe('response and body forms (forms.ru, keep-alive)', () => {
  let srv: ServerHandle;
  let dir: string;
  let c: RawHttpConnection;

  beforeAll(async () => {
    dir = tmpDir();
    srv = await startServer([...RACK_HTTP, '--rack', FORMS]);
  }, 60000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);
  beforeEach(async () => {
    c = await RawHttpConnection.connect(srv.port);
  });
  afterEach(() => c.close());

  const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);
  /** One request on the kept-alive connection. */
  async function req(target: string, method = 'GET') {
    await c.write(rawRequest(method, target));
    return c.readResponse({ head: method === 'HEAD' });
  }
  /** The connection still carries requests after the previous response. */
  async function stillUsable(): Promise<void> {
    const r = await req('/int');
    expect(r.status).toBe(201);
    expect(r.body.toString()).toBe('created');
  }

  test.each([
    ['/int', 201, 'HTTP/1.1 201 Created', 'created'],
    ['/string-status', 202, 'HTTP/1.1 202 Accepted', 'accepted'],
    ['/reason', 299, 'HTTP/1.1 299 Custom Reason', 'custom'],
  ])('status %s', (target, status, line, body) =>
    withLog(async () => {
      const r = await req(target);
      expect(r.status).toBe(status);
      expect(r.statusLine).toBe(line);
      expect(r.body.toString()).toBe(body);
    }));

  test('headers given as an Array of pairs; repeated names kept; non-String values converted; rack.* headers not sent', () =>
    withLog(async () => {
      const r = await req('/array-headers');
      expect(r.headerAll('x-one')).toEqual(['1', '2']);
      expect(r.body.toString()).toBe('pairs');
      const n = await req('/non-string-header');
      expect(n.header('x-count')).toBe('42');
      const h = await req('/rack-header');
      expect(h.header('rack.internal')).toBeUndefined();
      expect(h.body.toString()).toBe('hidden');
    }));

  test('an Array body of several parts gets a Content-Length; an empty body is a 0-length body', () =>
    withLog(async () => {
      const r = await req('/multi-parts');
      expect(r.header('content-length')).toBe('6');
      expect(r.body.toString()).toBe('abbccc');
      const e = await req('/empty');
      expect(e.status).toBe(200);
      expect(e.body.length).toBe(0);
      await stillUsable();
    }));

  test('UTF-8 header values and body parts are sent as their bytes', () =>
    withLog(async () => {
      const r = await req('/utf8');
      expect(Buffer.from(r.header('x-name')!, 'latin1').toString('utf8')).toBe('caf\u00e9');
      expect(r.body.toString('utf8')).toBe('h\u00e9llo w\u00f6rld');
    }));

  test('RB4: a body with to_path is sent from the file (each is never called) and close is called', () =>
    withLog(async () => {
      const f = path.join(dir, 'payload.bin');
      const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
      fs.writeFileSync(f, data);
      const marker = path.join(dir, 'to_path-closed');
      const r = await req(`/to_path?path=${encodeURIComponent(f)}&marker=${encodeURIComponent(marker)}`);
      expect(r.status).toBe(200);
      expect(r.header('content-length')).toBe(String(data.length));
      expect(r.body.equals(data)).toBe(true);
      expect(await waitForFile(marker)).toBe('closed');
      expect(srv.logs()).not.toMatch(/each called on a to_path body/);
      await stillUsable();
    }));

  test('RB4 with /etc/hosts, as the spec writes it', () =>
    withLog(async () => {
      const r = await req(`/to_path?path=${encodeURIComponent('/etc/hosts')}`);
      expect(r.body.equals(fs.readFileSync('/etc/hosts'))).toBe(true);
    }));

  test('to_path with the app\'s own Content-Length sends exactly that many bytes', () =>
    withLog(async () => {
      const f = path.join(dir, 'ten.txt');
      fs.writeFileSync(f, '0123456789');
      const r = await req(`/to_path-length?path=${encodeURIComponent(f)}`);
      expect(r.header('content-length')).toBe('5');
      expect(r.body.toString()).toBe('01234');
      await stillUsable();
    }));

  test('to_path naming a missing file: 500, the error in the log, close still called', () =>
    withLog(async () => {
      const marker = path.join(dir, 'missing-closed');
      const r = await req(`/to_path-missing?marker=${encodeURIComponent(marker)}`);
      expect(r.status).toBe(500);
      await srv.waitForLog(/No such file or directory[^\n]*\/nonexistent\/tsuwsgi-file/, 5000);
      expect(await waitForFile(marker)).toBe('closed');
      await stillUsable();
    }));

  test('an iterable body is closed after it is sent', () =>
    withLog(async () => {
      const marker = path.join(dir, 'closing-closed');
      const r = await req(`/closing?marker=${encodeURIComponent(marker)}`);
      expect(r.body.toString()).toBe('xy');
      expect(r.chunked).toBe(true);
      expect(await waitForFile(marker)).toBe('closed');
    }));

  test('a String body (Rack 1.x on Ruby 1.8) is accepted as one part', () =>
    withLog(async () => {
      const r = await req('/string-body');
      expect(r.body.toString()).toBe('a plain string');
    }));

  test.each([
    ['/two-elements', /invalid Rack response: expected \[status, headers, body\], got an Array of 2 elements/],
    ['/not-array', /invalid Rack response: expected \[status, headers, body\], got a String/],
    ['/bad-header', /invalid value for header Content-Type/],
    ['/bad-status', /invalid status "abc"/],
    ['/error', /forms\.ru:\d+:in `call': forms-boom \(ArgumentError\)/],
  ])('RB7: %s answers 500 and the reason is logged; the connection stays usable', (target, logged) =>
    withLog(async () => {
      const r = await req(target);
      expect(r.status).toBe(500);
      expect(r.body.toString()).toBe('Internal Server Error');
      expect(r.header('x-injected')).toBeUndefined();
      await srv.waitForLog(logged, 5000);
      await stillUsable();
    }));

  test('HEAD: the server sends no body bytes even when the app returns one', () =>
    withLog(async () => {
      const g = await req('/head-body');
      const h = await req('/head-body', 'HEAD');
      expect(h.status).toBe(200);
      expect(h.header('content-length')).toBe(g.header('content-length'));
      expect(h.body.length).toBe(0);
      await stillUsable();
      expect(c.pending.length).toBe(0);
    }));

  test('an exception inside each after the headers went out: the response is cut (connection closed), error logged, close called', () =>
    withLog(async () => {
      const marker = path.join(dir, 'raise-closed');
      await c.write(rawRequest('GET', `/raise-in-each?marker=${encodeURIComponent(marker)}`));
      await expect(c.readResponse({ timeoutMs: 10000 })).rejects.toThrow(/closed/);
      await srv.waitForLog(/boom-in-each \(RuntimeError\)/, 5000);
      expect(await waitForFile(marker)).toBe('closed');
    }));

  test('a body shorter than its Content-Length closes the connection (logged); a longer one is cut to it', () =>
    withLog(async () => {
      const r = await req('/long');
      expect(r.body.toString()).toBe('123');
      await stillUsable();
      await c.write(rawRequest('GET', '/short'));
      await expect(c.readResponse({ timeoutMs: 10000 })).rejects.toThrow(/closed/);
      await srv.waitForLog(/response shorter than its Content-Length \(5 bytes missing\)/, 5000);
    }));

  test('an app that chunk-encodes its own body (Transfer-Encoding set) is passed through', () =>
    withLog(async () => {
      const r = await req('/app-chunked');
      expect(r.body.toString()).toBe('hello');
      await stillUsable();
    }));

  test('a request body the app never reads is consumed: the next request on the connection is served', () =>
    withLog(async () => {
      await c.write(rawRequest('POST', '/unread-body', { 'Content-Length': String(300_000) }, Buffer.alloc(300_000, 'z')));
      const r = await c.readResponse();
      expect(r.body.toString()).toBe('ignored the body');
      await stillUsable();
    }));
});

describe('the UWSGI Ruby module', () => {
  it('exposes worker_id, masterpid, NUMPROC, VERSION, HOSTNAME, OPT (strings, arrays, true), log, request_id, post_fork_hook', async () => {
    const srv = await startServer([...RACK_HTTP, '--rack', FORMS, '--processes', '2', '--set-ph', 'team=blue', '--env', 'A=1', '--env', 'B=2', '--master']);
    await withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/uwsgi' });
      expect(r.status).toBe(200);
      const u = json(r.body);
      expect([1, 2]).toContain(u.worker_id);
      expect(u.masterpid).toBe(srv.pid);
      expect(u.numproc).toBe(2);
      expect(u.version).toMatch(/^2\.0\.\d+/);
      expect(u.hostname).toBe(os.hostname());
      expect(u.opt).toMatchObject({ processes: '2', env: ['A=1', 'B=2'], team: 'blue' });
      expect(u.opt).toHaveProperty('master');
      expect(u.mule_id).toBe(0);
      expect(u.has_cache_get).toBe(false);
      expect(u.spool_ok).toBe(-2);
      expect(u.post_fork).toBe(u.pid);
      expect(u.core).toBe(0);
      expect(Array.isArray(u.mem) && (u.mem as number[])[0]! > 0).toBe(true);
      const again = json((await httpRequest(srv.port, { path: '/uwsgi' })).body);
      if (again.pid === u.pid) expect(again.request_id).toBe((u.request_id as number) + 1);
      await srv.waitForLog(/UWSGI\.log from the app: hello log/);
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);
});

describe('--threads', () => {
  it('--threads 4: four slow requests run at once in one Ruby process (rack.multithread)', async () => {
    // --bridge-pipeline 0: the core must not queue a request behind another on one thread's
    // connection, so four requests need four threads.
    const srv = await startServer([...RACK_HTTP, '--rack', FORMS, '--threads', '4', '--bridge-pipeline', '0']);
    await withServerLog(srv, async () => {
      const t0 = Date.now();
      const rs = await Promise.all(Array.from({ length: 4 }, () => httpRequest(srv.port, { path: '/slow?t=1.5', timeoutMs: 20000 })));
      const elapsed = Date.now() - t0;
      const bodies = rs.map((r) => json(r.body));
      expect(new Set(bodies.map((b) => b.pid)).size).toBe(1);
      expect(new Set(bodies.map((b) => b.thread)).size).toBe(4);
      // One at a time would take 6 s.
      expect(elapsed).toBeLessThan(4500);
      expect(srv.logs()).toMatch(/spawned uWSGI worker 1 \(pid: \d+, cores: 4\)/);
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);
});

describe('ruby options', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    if (srv && !srv.hasExited) expect(await srv.stop()).toBe(0);
    srv = undefined;
  }, 30000);

  test('--rb-lib adds to $LOAD_PATH and --rbrequire requires before the app', async () => {
    srv = await startServer([...RACK_HTTP, '--rack', FORMS, '--rb-lib', path.join(RB_FIXTURES, 'lib'), '--rbrequire', 'tsuwsgi_test_lib']);
    const s = srv;
    await withServerLog(s, async () => {
      const r = await httpRequest(s.port, { path: '/lib' });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('from rb-lib, required before the app (1)');
    });
  });

  test('--ruby-gc-freq 1 runs a full GC after every request (uWSGI\'s default); without it GC is left to Ruby', async () => {
    srv = await startServer([...RACK_HTTP, '--rack', FORMS, '--ruby-gc-freq', '1']);
    const s = srv;
    await withServerLog(s, async () => {
      const counts: number[] = [];
      for (let i = 0; i < 4; i++) counts.push(Number((await httpRequest(s.port, { path: '/gc' })).body.toString()));
      for (let i = 1; i < counts.length; i++) expect(counts[i]! - counts[i - 1]!).toBeGreaterThanOrEqual(1);
      expect(s.logs()).toMatch(/GC frequency: 1\)/);
    });
    await srv.stop();
    srv = await startServer([...RACK_HTTP, '--rack', FORMS]);
    const t = srv;
    await withServerLog(t, async () => {
      const counts: number[] = [];
      for (let i = 0; i < 4; i++) counts.push(Number((await httpRequest(t.port, { path: '/gc' })).body.toString()));
      expect(counts[3]).toBe(counts[0]);
    });
  }, 60000);

  test('--catch-exceptions: the Ruby error and backtrace are the 500 body', async () => {
    srv = await startServer([...RACK_HTTP, '--rack', FORMS, '--catch-exceptions']);
    const s = srv;
    await withServerLog(s, async () => {
      const r = await httpRequest(s.port, { path: '/error' });
      expect(r.status).toBe(500);
      expect(r.body.toString()).toMatch(/forms\.ru:\d+:in `call': forms-boom \(ArgumentError\)/);
    });
  });

  test('--ruby-gc-freq with a negative number is refused with a clear message', async () => {
    const r = await runTsuwsgi([...RACK_HTTP, '--rack', FORMS, '--ruby-gc-freq', '-3']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/--ruby-gc-freq -3: give a number of requests/);
  }, 60000);

  test('--rbthreads N with a different --threads tells the user to use --threads', async () => {
    const r = await runTsuwsgi([...RACK_HTTP, '--rack', FORMS, '--rbthreads', '8']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/use --threads 8/);
  }, 60000);

  test('--rack without the rack plugin loaded names the plugin to load', async () => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--rack', FORMS]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/rack/);
    expect(r.output).toMatch(/plugin/);
  }, 60000);

  test('--ruby-bin names the interpreter; without the rack gem (ruby --disable-gems) the built-in rackup builder loads use/map/run', async () => {
    const dir = tmpDir();
    const wrapper = path.join(dir, 'ruby-no-gems');
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec ${SYSTEM_RUBY} --disable-gems "$@"\n`, { mode: 0o755 });
    srv = await startServer([...RACK_HTTP, '--rack', rbFixture('mini.ru'), '--ruby-bin', wrapper]);
    const s = srv;
    await withServerLog(s, async () => {
      expect(s.logs()).toMatch(/loaded from \S+mini\.ru with the built-in rackup builder \(rack gem not available\)/);
      const sub = await httpRequest(s.port, { path: '/sub/x/y' });
      expect(sub.headers['x-tag']).toBe('mini');
      expect(sub.body.toString()).toBe('sub /sub /x/y rack=no');
      const root = await httpRequest(s.port, { path: '/other' });
      expect(root.body.toString()).toBe('root "" /other');
      expect(root.headers['x-tag']).toBe('mini');
    });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a --ruby-bin that does not exist fails start-up with the interpreter named', async () => {
    const r = await runTsuwsgi([...RACK_HTTP, '--rack', FORMS, '--ruby-bin', '/nonexistent/ruby']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/\/nonexistent\/ruby/);
  }, 60000);
});

describe('app load failures', () => {
  test('a rackup file that raises: exit 22 with the Ruby error (class, message, file:line) in the output', async () => {
    const r = await runTsuwsgi([...RACK_HTTP, '--rack', rbFixture('broken.ru')]);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/broken\.ru:3:in `block in <main>': uninitialized constant NoSuchConstantInTsuwsgiTests \(NameError\)/);
    expect(r.output).toMatch(/Ruby app \(--rack \S*broken\.ru\) could not be loaded: unable to load rackup file \S*broken\.ru: NameError: uninitialized constant NoSuchConstantInTsuwsgiTests/);
  }, 60000);

  test('a missing rackup file: exit 22 naming the file', async () => {
    const r = await runTsuwsgi([...RACK_HTTP, '--rack', '/nonexistent/config.ru']);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/rackup file \/nonexistent\/config\.ru not found/);
  }, 60000);

  test('--rbrequire of a missing library: exit 22 with the LoadError', async () => {
    const r = await runTsuwsgi([...RACK_HTTP, '--rack', FORMS, '--rbrequire', 'no_such_lib_for_tsuwsgi']);
    expect(r.code).toBe(22);
    expect(r.output).toMatch(/unable to require no_such_lib_for_tsuwsgi: LoadError: cannot load such file -- no_such_lib_for_tsuwsgi/);
  }, 60000);
});

describe('control channel: stack dump on harakiri, graceful stop, reload', () => {
  test('harakiri: the stuck request gets 504 and the Ruby stack dump shows where the app was', async () => {
    const srv = await startServer([...RACK_HTTP, '--rack', FORMS, '--harakiri', '1']);
    await withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/slow?t=8', timeoutMs: 15000 });
      expect(r.status).toBe(504);
      await srv.waitForLog(/ruby bridge stack dump[\s\S]*forms\.ru:\d+:in `sleep'[\s\S]*end of the stack dump/, 5000);
      const ok = await httpRequest(srv.port, { path: '/int', timeoutMs: 15000 });
      expect(ok.status).toBe(201);
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);

  test('SIGTERM stops gracefully: the request in flight completes, then exit 0', async () => {
    const srv = await startServer([...RACK_HTTP, '--rack', FORMS]);
    await withServerLog(srv, async () => {
      const pending = httpRequest(srv.port, { path: '/slow?t=1.5', timeoutMs: 15000 });
      await sleep(400);
      srv.signal('SIGTERM');
      const r = await pending;
      expect(r.status).toBe(200);
      expect(json(r.body).pid).toBeGreaterThan(0);
    });
    expect(await srv.stop('SIGTERM')).toBe(0);
  }, 60000);

  test('SIGHUP reloads: new Ruby workers (new pids) serve, no request fails', async () => {
    const srv = await startServer([...RACK_HTTP, '--rack', FORMS, '--processes', '2']);
    await withServerLog(srv, async () => {
      const before = json((await httpRequest(srv.port, { path: '/slow?t=0' })).body).pid;
      srv.signal('SIGHUP');
      await srv.waitForLogCount(/spawned uWSGI worker \d+ \(pid: \d+, cores: 1\)/, 4, 30000);
      await sleep(500);
      const seen = new Set<unknown>();
      for (let i = 0; i < 6; i++) {
        const r = await httpRequest(srv.port, { path: '/slow?t=0' });
        expect(r.status).toBe(200);
        seen.add(json(r.body).pid);
      }
      expect(seen.has(before)).toBe(false);
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);
});

describe('dispatch and front ends', () => {
  test('--plugins http,rack --http :PORT --rack config.ru works with no modifier flags', async () => {
    const port = await freePort();
    const srv = await startServer(['--plugins', 'http,rack', '--http', `127.0.0.1:${port}`, '--rack', rbFixture('hello.ru')]);
    await withServerLog(srv, async () => {
      const r = await httpRequest(port, { path: '/' });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html');
      expect(r.body.toString()).toBe('Hello');
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);

  test('RB1 as the spec writes it: --http-socket-modifier1 7 --rack app.ru', async () => {
    const srv = await startServer(['--plugins', 'rack', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '7', '--rack', rbFixture('hello.ru')]);
    await withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/' });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html');
      expect(r.body.toString()).toBe('Hello');
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);

  test('two Rack apps mounted (--mount /a=… --mount /b=… --manage-script-name) each get their requests', async () => {
    const srv = await startServer([
      ...RACK_HTTP, '--mount', `/a=${rbFixture('hello.ru')}`, '--mount', `/b=${rbFixture('suite.ru')}`, '--manage-script-name',
    ]);
    await withServerLog(srv, async () => {
      expect((await httpRequest(srv.port, { path: '/a/' })).body.toString()).toBe('Hello');
      const e = json((await httpRequest(srv.port, { path: '/b/env/x' })).body);
      expect(e).toMatchObject({ SCRIPT_NAME: '/b', PATH_INFO: '/env/x', UWSGI_APPID: '/b' });
      expect((await httpRequest(srv.port, { path: '/b/hello' })).body.toString()).toBe('Hello World');
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);

  test('a WSGI and a Rack app side by side: modifier1 0 reaches Python, modifier1 7 reaches Ruby (uwsgi socket)', async () => {
    const port = await freePort();
    const srv = await startServer([
      '--plugins', 'rack', '--socket', `127.0.0.1:${port}`,
      '--wsgi-file', path.join(REPO_ROOT, 'test', 'fixtures', 'python', 'hello.py'), '--rack', rbFixture('hello.ru'),
    ]);
    await withServerLog(srv, async () => {
      const addr = `127.0.0.1:${port}`;
      // SCRIPT_NAME: the Python fixture runs under wsgiref.validate, which needs the key.
      const py = await exchange(addr, uwsgiPacket(stdVars({ SCRIPT_NAME: '' }), { modifier1: 0 }));
      expect(py.data.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nHello World$/);
      const rb = await exchange(addr, uwsgiPacket(stdVars(), { modifier1: 7 }));
      expect(rb.data.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Content-Type: text\/html\r\n[\s\S]*\r\n\r\nHello$/);
    });
    expect(await srv.stop()).toBe(0);
  }, 60000);

  describe('nginx uwsgi_pass with uwsgi_modifier1 7 (--socket, 2 processes, 2 threads)', () => {
    let srv: ServerHandle;
    let ngx: NginxHandle;
    beforeAll(async () => {
      const port = await freePort();
      srv = await startServer(['--plugins', 'rack', '--socket', `127.0.0.1:${port}`, '--rack', rbFixture('suite.ru'), '--processes', '2', '--threads', '2'], { readyTimeoutMs: 60000 });
      ngx = await startNginx({ upstream: `127.0.0.1:${port}`, locationExtra: 'uwsgi_modifier1 7;' });
    }, 90000);
    afterAll(async () => {
      await ngx?.stop();
      if (srv) expect(await srv.stop()).toBe(0);
    }, 60000);
    const withLogs = <T,>(f: () => Promise<T>): Promise<T> =>
      withServerLog(srv, f, () => `--- nginx error.log (tail) ---\n${ngx.errorLog().split('\n').slice(-15).join('\n')}`);

    test('the Lint-wrapped app answers through nginx with uwsgi_params', () =>
      withLogs(async () => {
        const r = await httpRequest(ngx.port, { path: '/hello' });
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('Hello World');
        const e = json((await httpRequest(ngx.port, { path: '/env/x/y?a=1', headers: { 'X-Test': 'via-nginx' } })).body);
        expect(e).toMatchObject({
          REQUEST_METHOD: 'GET',
          QUERY_STRING: 'a=1',
          PATH_INFO: '/env/x/y',
          SERVER_PORT: String(ngx.port),
          HTTP_X_TEST: 'via-nginx',
          'rack.multithread': true,
          'rack.multiprocess': true,
        });
      }));

    test('a 2 MiB POST through nginx arrives intact; streamed and chunked responses come back whole', () =>
      withLogs(async () => {
        const body = crypto.randomBytes(2 * 1024 * 1024);
        const r = await httpRequest(ngx.port, { method: 'POST', path: '/echo?mode=chunks', body, timeoutMs: 60000 });
        expect(r.status).toBe(200);
        expect(json(r.body)).toMatchObject({ length: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') });
        const s = await httpRequest(ngx.port, { path: '/stream?n=4' });
        expect(s.body.toString()).toBe('chunk-0\nchunk-1\nchunk-2\nchunk-3\n');
        const c = await httpRequest(ngx.port, { path: '/cookies' });
        expect(c.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
        expect(srv.logs()).not.toMatch(/LintError/);
      }));
  });
});

describe('a real framework: Sinatra (Debian ruby-sinatra)', () => {
  let srv: ServerHandle;
  beforeAll(async () => {
    srv = await startServer([...RACK_HTTP, '--rack', rbFixture('sinatra.ru'), '--post-buffering', '4096', '--lazy-apps']);
  }, 60000);
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  test('RB2: GET /hi answers "Hello World"; route params, form POST and redirects work', () =>
    withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/hi' });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('Hello World');
      expect(r.headers['content-type']).toMatch(/^text\/html/);
      expect((await httpRequest(srv.port, { path: '/hello/ruby' })).body.toString()).toBe('Hello ruby!');
      const p = await httpRequest(srv.port, {
        method: 'POST',
        path: '/form',
        body: `a=${'1'.repeat(5000)}&b=two`,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      });
      expect(p.body.toString()).toBe(`got ${'1'.repeat(5000)} and two`);
      const go = await httpRequest(srv.port, { path: '/go' });
      expect(go.status).toBe(302);
      expect(go.headers.location).toMatch(/\/hi$/);
      const missing = await httpRequest(srv.port, { path: '/nope' });
      expect(missing.status).toBe(404);
    }));
});

/**
 * The bridge alone, as docs/bridge-protocol.md describes it, without the core: fd 3 a unix
 * socket, fd 4 the control channel. A small Ruby launcher creates the socket and execs the
 * bridge with it on fd 3; fd 4 is a Node pipe we read and write.
 */
describe('the Ruby bridge on its own (bridge contract)', () => {
  const BRIDGE = path.join(REPO_ROOT, 'bridges', 'ruby', 'bridge.rb');
  let dir: string;
  let proc: ChildProcess | undefined;
  let stderr = '';
  let control = '';
  let sock = '';

  async function startBridge(): Promise<Record<string, unknown>> {
    dir = tmpDir();
    sock = path.join(dir, 'pool.sock');
    stderr = '';
    control = '';
    const config = {
      workerId: 3,
      processes: 1,
      threads: 1,
      listenBacklog: 16,
      masterPid: process.pid,
      version: '2.0.28-tsuwsgi-test',
      hostname: 'bridge-test',
      apps: [{ id: 0, mountpoint: '', load: { kind: 'rackup', target: FORMS } }],
      options: {},
      plugin: { catchExceptions: false },
    };
    const launcher = "require 'socket'; srv = UNIXServer.new(ARGV[0]); exec(ARGV[1], ARGV[2], 3 => srv, 4 => IO.for_fd(4, autoclose: false))";
    proc = spawn(SYSTEM_RUBY, ['-e', launcher, sock, SYSTEM_RUBY, BRIDGE], {
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'pipe'],
      env: { ...process.env, TSUWSGI_BRIDGE_API: '1', TSUWSGI_LISTEN_FD: '3', TSUWSGI_CONTROL_FD: '4', TSUWSGI_BRIDGE_CONFIG: JSON.stringify(config) },
    });
    proc.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    (proc.stdio[4] as net.Socket).on('data', (d: Buffer) => (control += d.toString()));
    const deadline = Date.now() + 20000;
    while (!control.includes('\n')) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`the bridge did not say ready; output:\n${stderr}`);
      await sleep(20);
    }
    return JSON.parse(control.split('\n')[0]!) as Record<string, unknown>;
  }

  function exited(): Promise<number | null> {
    const p = proc!;
    if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
    return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
  }

  afterEach(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited();
    }
    proc = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('says ready on fd 4 with its pid, runtime, bridge API and apps', async () => {
    const ready = await startBridge();
    expect(ready).toMatchObject({ event: 'ready', pid: proc!.pid, runtime: 'CRuby', bridgeApi: 1, threads: 1, apps: [{ id: 0, mountpoint: '' }] });
    expect(ready.runtimeVersion).toMatch(/^\d+\.\d+\.\d+$/);
  }, 30000);

  test('plain uwsgi (no hello, as nginx talks): one request per connection, the body delimited by the close', async () => {
    await startBridge();
    const streamed = await exchange(sock, uwsgiPacket(stdVars({ PATH_INFO: '/closing', REQUEST_URI: '/closing' }), { modifier1: 7 }));
    expect(streamed.end).toBe('close');
    expect(streamed.data.toString('latin1')).toBe('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nxy');
    const sized = await exchange(sock, uwsgiPacket(stdVars({ PATH_INFO: '/int', REQUEST_URI: '/int' }), { modifier1: 7 }));
    expect(sized.data.toString('latin1')).toBe('HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\ncreated');
  }, 30000);

  test('the hello packet makes the connection persistent; pipelined requests are answered in order', async () => {
    await startBridge();
    const hello = Buffer.concat([encodeHeader(99, 0, 0)]);
    const a = uwsgiPacket(stdVars({ PATH_INFO: '/int', REQUEST_URI: '/int' }), { modifier1: 7 });
    const b = uwsgiPacket(stdVars({ PATH_INFO: '/closing', REQUEST_URI: '/closing' }), { modifier1: 7 });
    const post = uwsgiPacket(stdVars({ REQUEST_METHOD: 'POST', PATH_INFO: '/unread-body', CONTENT_LENGTH: '5' }), { modifier1: 7, body: 'abcde' });
    const c = net.connect(sock);
    let got = Buffer.alloc(0);
    c.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    c.write(Buffer.concat([hello, a, post, b]));
    const deadline = Date.now() + 10000;
    while (!got.toString('latin1').includes('0\r\n\r\n') && Date.now() < deadline) await sleep(20);
    c.destroy();
    // The answer to the hello: modifier1 99, modifier2 1, vars pid/worker_id/core/bridge_api.
    expect(got[0]).toBe(99);
    expect(got[3]).toBe(1);
    const size = got[1]! | (got[2]! << 8);
    const vars = got.subarray(4, 4 + size);
    const expected = encodeVars([['pid', String(proc!.pid)], ['worker_id', '3'], ['core', '0'], ['bridge_api', '1']]);
    expect(vars.equals(expected)).toBe(true);
    expect(got.subarray(4 + size).toString('latin1')).toBe(
      'HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\ncreated' +
        'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\nignored the body' +
        'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n1\r\ny\r\n0\r\n\r\n',
    );
  }, 30000);

  test('{"cmd":"stack"} prints every thread\'s backtrace; {"cmd":"stop","graceful":true} exits 0', async () => {
    await startBridge();
    const ctl = proc!.stdio[4] as net.Socket;
    // 'ready' can come before the core thread reaches its select() (under load it is still
    // starting): ask again until a dump shows it waiting there.
    const waiting = /\*\*\* ruby bridge stack dump \(pid \d+, worker 3\) \*\*\*[\s\S]*thread tsuwsgi-core-0[\s\S]*bridge\.rb:\d+:in `select'[\s\S]*end of the stack dump/;
    const deadline = Date.now() + 10000;
    let dump = '';
    while (!waiting.test(dump) && Date.now() < deadline) {
      const from = stderr.length;
      ctl.write('{"cmd":"stack"}\n');
      while (!/end of the stack dump/.test(stderr.slice(from)) && Date.now() < deadline) await sleep(20);
      dump = stderr.slice(from);
      if (!waiting.test(dump)) await sleep(100);
    }
    expect(dump).toMatch(waiting);
    ctl.write('{"cmd":"stop","graceful":true}\n');
    expect(await exited()).toBe(0);
  }, 30000);

  test('EOF on the control channel (the core died) ends the bridge', async () => {
    await startBridge();
    (proc!.stdio[4] as net.Socket).end();
    expect(await exited()).toBe(0);
  }, 30000);

  test('a bridge started by hand without fd 3 and 4 says what it is for and exits 1', async () => {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(SYSTEM_RUBY, [BRIDGE], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      p.on('close', (code) => resolve({ code, out }));
    });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/fd 3 \(the pool socket\) is not open; this script is started by tsuwsgi/);
  }, 30000);
});
