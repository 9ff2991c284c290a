/**
 * The cgi plugin (modifier1 9, spec/languages.md §9, issue 6 part 2): script location,
 * CGI/1.1 meta-variables, Status/Location handling, request bodies (incl. chunked uploads),
 * streaming, timeouts, path traversal, --cgi-allowed-ext, --cgi-helper, --cgi-index, bad
 * options, and nginx `uwsgi_pass` with `uwsgi_modifier1 9`.
 *
 * The fixtures (test/fixtures/cgi: shell scripts and one Perl script run through a helper)
 * are copied to a temporary directory so the test can set their modes and add symlinks.
 * The main suite runs twice, once per forker (the process that starts the scripts): the C one
 * (bridges/cgi/native/cgi-forker.c, which npm ci builds and the bridge prefers) and the Perl
 * one (bridges/cgi/forker.pl), chosen with TSUWSGI_CGI_FORKER. In each, the tests after the
 * one that kills the forker cover the bridge forking scripts itself.
 *
 * The cases every language shares (a 3 MB body the script never reads, …) run against
 * test/fixtures/cgi/suite.pl in test/conformance/shared-request-set.test.ts, not here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chunkEncode, httpRequest, rawRequest, RawHttpConnection } from '../helpers/http-raw.ts';
import { startNginx } from '../helpers/nginx.ts';
import { REPO_ROOT, requireExecutable, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';
import { uwsgiRequest } from '../helpers/uwsgi-client.ts';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'cgi');
const PERL = '/usr/bin/perl';

/** A private copy of the fixtures: executable scripts, hello.pl not executable, a symlink out. */
function cgiDir(): { dir: string; outside: string } {
  const base = fs.realpathSync(tmpDir('tsuwsgi-cgi-'));
  const dir = path.join(base, 'cgi-bin');
  fs.cpSync(FIXTURES, dir, { recursive: true });
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) fs.chmodSync(p, f.endsWith('.pl') ? 0o644 : 0o755);
  }
  // A script outside the CGI directory, reachable only through a symlink inside it.
  const outside = path.join(base, 'outside.cgi');
  fs.writeFileSync(outside, '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "outside ran"\n', { mode: 0o755 });
  fs.symlinkSync(outside, path.join(dir, 'escape.cgi'));
  fs.symlinkSync(path.join(dir, 'hello.cgi'), path.join(dir, 'alias.cgi'));
  return { dir, outside };
}

function envOf(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of body.toString().split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, f: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The forkers, and how each shows in /proc/PPID/cmdline of a script it started. */
const FORKERS: Array<[forker: 'native' | 'perl', cmdline: RegExp]> = [
  ['native', /bridges\/cgi\/native\/build\/cgi-forker /],
  ['perl', /bridges\/cgi\/forker\.pl /],
];

describe.each(FORKERS)('cgi plugin over --http-socket (%s forker)', (forker, forkerCmdline) => {
  let srv: ServerHandle;
  let dir: string;
  let pidDir: string;
  let uwsgiAddr: string;

  beforeAll(async () => {
    requireExecutable(PERL, 'perl');
    ({ dir } = cgiDir());
    pidDir = tmpDir('tsuwsgi-cgi-pids-');
    srv = await startServer(
      [
        '--plugins', 'cgi', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '9', '--socket', '127.0.0.1:0',
        '--cgi', dir, '--cgi', `/cgi-bin=${dir}`, '--cgi', `/single=${path.join(dir, 'env.cgi')}`,
        '--cgi-helper', '.pl=perl', '--cgi-helper', '.nohelper=tsuwsgi-no-such-helper', '--cgi-index', 'missing.cgi', '--cgi-index', 'index.cgi',
        '--cgi-timeout', '2', '--cgi-unset', 'CGI_SECRET', '--threads', '4',
      ],
      { env: { CGI_PIDFILE: path.join(pidDir, 'pid'), CGI_SECRET: 'leak', CGI_VISIBLE: 'inherited', TSUWSGI_CGI_FORKER: forker } },
    );
    uwsgiAddr = srv.sockets[1]!;
  });

  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  });

  const get = (p: string, o: Parameters<typeof httpRequest>[1] = {}) => withServerLog(srv, () => httpRequest(srv.port, { path: p, ...o }));

  it('runs a shell script: 200, its headers, its output (CGI1)', async () => {
    const r = await get('/hello.cgi');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.body.toString()).toBe('hi\n');
  });

  it('a script that prints everything and exits gets a Content-Length (HEAD too), not a chunked body', async () => {
    const c = await RawHttpConnection.connect(srv.port);
    await c.write(rawRequest('GET', '/hello.cgi'));
    const r = await c.readResponse();
    expect(r.chunked).toBe(false);
    expect(r.header('content-length')).toBe('3');
    await c.write(rawRequest('HEAD', '/hello.cgi'));
    const h = await c.readResponse({ head: true });
    expect(h.header('content-length')).toBe('3');
    expect(h.body.length).toBe(0);
    c.close();
  });

  it('sets the CGI/1.1 meta-variables under a mountpoint, with PATH_INFO split off (CGI4)', async () => {
    const r = await get('/cgi-bin/env.cgi/extra/more?a=b&c=d', { headers: { 'X-Custom': 'v1', 'User-Agent': 'cgi-test' } });
    expect(r.status).toBe(200);
    const env = envOf(r.body);
    expect(env).toMatchObject({
      GATEWAY_INTERFACE: 'CGI/1.1',
      SCRIPT_NAME: '/cgi-bin/env.cgi',
      SCRIPT_FILENAME: path.join(dir, 'env.cgi'),
      PATH_INFO: '/extra/more',
      QUERY_STRING: 'a=b&c=d',
      REQUEST_METHOD: 'GET',
      REDIRECT_STATUS: '200',
      SERVER_PROTOCOL: 'HTTP/1.1',
      REMOTE_ADDR: '127.0.0.1',
      HTTP_X_CUSTOM: 'v1',
      HTTP_USER_AGENT: 'cgi-test',
      CWD: dir,
      ARGC: '0',
      CGI_VISIBLE: 'inherited',
    });
    expect(env['SERVER_SOFTWARE']).toMatch(/^uWSGI\/2\.0/);
    expect(env['SERVER_PORT']).toBe(String(srv.port));
    expect(env['SERVER_NAME']).toBeTruthy();
    expect(env['PATH_TRANSLATED']).toMatch(/\/extra\/more$/);
    // --cgi-unset, and nothing of the bridge contract leaks into scripts.
    expect(env['CGI_SECRET']).toBeUndefined();
    expect(Object.keys(env).filter((k) => k.startsWith('TSUWSGI_') || k === 'UWSGI_APPID')).toEqual([]);
  });

  it('without PATH_INFO, PATH_INFO and PATH_TRANSLATED are unset; the default directory has SCRIPT_NAME /name', async () => {
    const env = envOf((await get('/env.cgi')).body);
    expect(env['SCRIPT_NAME']).toBe('/env.cgi');
    expect(env['PATH_INFO']).toBeUndefined();
    expect(env['PATH_TRANSLATED']).toBeUndefined();
    expect(env['DOCUMENT_ROOT']).toBe(dir);
  });

  it('walks sub-directories to the script', async () => {
    const r = await get('/sub/deep.cgi/x/y');
    expect(r.body.toString()).toBe('deep SCRIPT_NAME=/sub/deep.cgi PATH_INFO=/x/y\n');
  });

  it('a single-script mountpoint always runs that script: SCRIPT_NAME = mountpoint, PATH_INFO = the rest', async () => {
    const env = envOf((await get('/single/any/thing?q=1')).body);
    expect(env['SCRIPT_NAME']).toBe('/single');
    expect(env['PATH_INFO']).toBe('/any/thing');
    expect(env['SCRIPT_FILENAME']).toBe(path.join(dir, 'env.cgi'));
    expect(env['QUERY_STRING']).toBe('q=1');
  });

  it('passes repeated request headers (joined by the front end) and the query string', async () => {
    const c = await RawHttpConnection.connect(srv.port);
    await c.write('GET /env.cgi?x=1 HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nX-Multi: b\r\nConnection: close\r\n\r\n');
    const r = await c.readResponse();
    c.close();
    const env = envOf(r.body);
    expect(env['QUERY_STRING']).toBe('x=1');
    expect(env['HTTP_X_MULTI']).toMatch(/^a(, ?)b$/);
  });

  it('Status: anywhere in the headers sets the status and is not forwarded (CGI2)', async () => {
    const r = await get('/status.cgi');
    expect(r.status).toBe(404);
    expect(r.headers['status']).toBeUndefined();
    expect(r.body.toString()).toBe('no such thing\n');
  });

  it('Location: without Status gives 302 Found (CGI3); Status wins over Location; CRLF headers work', async () => {
    const r = await get('/location.cgi');
    expect(r.status).toBe(302);
    expect(r.headers['location']).toBe('http://example.com/elsewhere');
    const c = await get('/created.cgi');
    expect(c.status).toBe(201);
    expect(c.headers['location']).toBe('/new');
    expect(c.body.toString()).toBe('created\r\n');
  });

  it('204 and HEAD get no body bytes, on a persistent connection that stays usable', async () => {
    const c = await RawHttpConnection.connect(srv.port);
    await c.write(rawRequest('GET', '/nocontent.cgi'));
    const a = await c.readResponse();
    expect(a.status).toBe(204);
    expect(a.body.length).toBe(0);
    await c.write(rawRequest('HEAD', '/hello.cgi'));
    const b = await c.readResponse({ head: true });
    expect(b.status).toBe(200);
    expect(b.header('content-type')).toBe('text/plain');
    await c.write(rawRequest('GET', '/hello.cgi'));
    const d = await c.readResponse();
    expect(d.body.toString()).toBe('hi\n');
    expect(c.pending.length).toBe(0);
    c.close();
  });

  it("keeps the script's Content-Length; a script sending fewer bytes than promised closes the connection", async () => {
    const c = await RawHttpConnection.connect(srv.port);
    await c.write(rawRequest('GET', '/length.cgi'));
    const r = await c.readResponse();
    expect(r.header('content-length')).toBe('5');
    expect(r.chunked).toBe(false);
    expect(r.body.toString()).toBe('hello');
    await c.write(rawRequest('GET', '/short.cgi'));
    expect(await c.waitClosed(10000)).toBe(true);
    expect(c.pending.toString()).toContain('hello');
    c.close();
  });

  it('POST bodies go to stdin: small, large (3 MB) and chunked uploads (CGI7)', async () => {
    const small = await get('/echo.cgi', { method: 'POST', body: 'abc', headers: { 'Content-Type': 'text/plain' } });
    expect(small.body.toString()).toBe('abc');
    expect(small.headers['x-content-length']).toBe('3');
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
    const r = await get('/echo.cgi', { method: 'POST', body: big });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(big.length);
    expect(r.body.equals(big)).toBe(true);
    const c = await RawHttpConnection.connect(srv.port);
    const payload = Buffer.from('chunked upload '.repeat(5000));
    await c.write(Buffer.concat([rawRequest('POST', '/echo.cgi', { 'Transfer-Encoding': 'chunked' }), chunkEncode(payload, 4096)]));
    const cr = await c.readResponse({ timeoutMs: 20000 });
    expect(cr.status).toBe(200);
    expect(cr.body.equals(payload)).toBe(true);
    c.close();
  });

  it('streams output as the script writes it (chunked on a keep-alive connection)', async () => {
    const c = await RawHttpConnection.connect(srv.port);
    const t0 = Date.now();
    await c.write(rawRequest('GET', '/stream.cgi'));
    await c.readUntil('one\n');
    const first = Date.now() - t0;
    const r = await c.readResponse();
    const total = Date.now() - t0;
    expect(r.chunked).toBe(true);
    expect(r.body.toString()).toBe('one\ntwo\nthree\n');
    expect(first).toBeLessThan(total - 500);
    c.close();
  });

  it('large output (2 MB) arrives whole', async () => {
    const r = await get('/big.cgi');
    expect(r.body.length).toBe(2 * 1024 * 1024);
    expect(r.body.toString().replace(/x/g, '')).toBe('');
  });

  it('indexed query strings become argv, URL-decoded, never through a shell (CGI9)', async () => {
    const r = await get('/args.cgi?one+two');
    expect(r.body.toString()).toBe('one two\n');
    const marker = path.join(pidDir, 'injected');
    const q = encodeURIComponent(`;touch ${marker}`) + '+' + encodeURIComponent(`$(touch ${marker})`);
    const env = envOf((await get(`/env.cgi?${q}`)).body);
    expect(env['ARGC']).toBe('2');
    expect(env['ARG1']).toBe(`;touch ${marker}`);
    expect(env['ARG2']).toBe(`$(touch ${marker})`);
    const inPath = await get(`/hello.cgi;touch%20${encodeURIComponent(marker)}`);
    expect(inPath.status).toBe(404);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('runs a perl script through --cgi-helper .pl=perl (no exec bit): repeated response headers, query, body (CGI6)', async () => {
    const r = await get('/hello.pl?k=v', { method: 'POST', body: 'data', headers: { 'X-Multi': 'm' } });
    expect(r.status).toBe(200);
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers['x-method']).toBe('POST');
    expect(r.body.toString()).toMatch(/^perl 5\.\d+ qs=k=v body=data accept=m\n$/);
  });

  it('a directory redirects to its slash (301), then runs the first readable --cgi-index (CGI8)', async () => {
    const a = await get('/dir?x=1');
    expect(a.status).toBe(301);
    expect(a.headers['location']).toBe('/dir/?x=1');
    const b = await get('/dir/');
    expect(b.status).toBe(200);
    expect(b.body.toString()).toBe('index of dir, SCRIPT_NAME=/dir/index.cgi\n');
    const sub = await get('/sub/');
    expect(sub.status).toBe(404);
  });

  it('refuses path traversal and symlinks out of the CGI directory; missing scripts are 404', async () => {
    expect((await get('/nope.cgi')).status).toBe(404);
    const c = await RawHttpConnection.connect(srv.port);
    await c.write('GET /cgi-bin/../../outside.cgi HTTP/1.1\r\nHost: h\r\n\r\n');
    const t = await c.readResponse();
    expect([403, 404]).toContain(t.status);
    expect(t.body.toString()).not.toContain('outside ran');
    await c.write('GET /dir/../../outside.cgi HTTP/1.1\r\nHost: h\r\n\r\n');
    const t2 = await c.readResponse();
    expect(t2.status).toBe(403);
    c.close();
    const s = await get('/escape.cgi');
    expect(s.status).toBe(403);
    expect(s.body.toString()).not.toContain('outside ran');
    await srv.waitForLog(/CGI security error: .*outside\.cgi is not under/);
    // A symlink that stays inside is fine.
    expect((await get('/alias.cgi')).body.toString()).toBe('hi\n');
  });

  it('a response that is not CGI headers is a 500 with the reason in the log', async () => {
    const r = await get('/garbage.cgi');
    expect(r.status).toBe(500);
    await srv.waitForLog(/invalid CGI response !!! .*garbage\.cgi/);
  });

  it('a script that cannot be started is a 500, and the log says why', async () => {
    fs.writeFileSync(path.join(dir, 'x.nohelper'), 'never run\n');
    const r = await get('/x.nohelper');
    expect(r.status).toBe(500);
    await srv.waitForLog(/unable to run .*x\.nohelper: helper "tsuwsgi-no-such-helper" not found in PATH \(check --cgi-helper\)/);
  });

  it('a script that fails after answering keeps its answer; its exit status is logged', async () => {
    fs.writeFileSync(path.join(dir, 'fails.cgi'), '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\npartial"\nexit 3\n', { mode: 0o755 });
    const r = await get('/fails.cgi');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('partial');
    await srv.waitForLog(/fails\.cgi exited with status 3/);
  });

  // The scripts are started by a small forker process, not the bridge: a fork costs in
  // proportion to the memory of the process that calls it, and the C forker's posix_spawn()
  // copies nothing (docs/cgi.md, "How it runs"). The tests after this one run without a
  // forker, as on architectures the bridge has no system call table for.
  it(`scripts are started by the ${forker} forker; when it is gone, the bridge starts them itself`, async () => {
    const viaForker = ['x64', 'arm64', 'riscv64'].includes(process.arch);
    const first = (await get('/parent.cgi')).body.toString();
    expect(first).toMatch(viaForker ? forkerCmdline : /bridges\/cgi\/bridge\.pl/);
    if (!viaForker) return;
    process.kill(Number(/PPID=(\d+)/.exec(first)![1]), 'SIGKILL');
    await srv.waitForLog(/the CGI forker is gone \(it exited\): scripts are forked by the bridge from now on/);
    const after = await get('/parent.cgi');
    expect(after.status).toBe(200);
    expect(after.body.toString()).toMatch(/bridges\/cgi\/bridge\.pl/);
  });

  it("the script's stderr lands in the server log", async () => {
    expect((await get('/stderr.cgi')).body.toString()).toBe('ok\n');
    await srv.waitForLog(/message from the script on stderr/);
  });

  it('kills a silent script after --cgi-timeout and answers 504 (CGI10)', async () => {
    const pidfile = path.join(pidDir, 'pid');
    fs.rmSync(pidfile, { force: true });
    const t0 = Date.now();
    const r = await get('/slow.cgi');
    const took = Date.now() - t0;
    expect(r.status).toBe(504);
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(6000);
    const pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
    await waitFor(`script ${pid} to be killed`, () => !alive(pid));
    await srv.waitForLog(/CGI timeout !!! .*slow\.cgi/);
  });

  it('a script that stalls after its headers is killed and the response visibly cut', async () => {
    const pidfile = path.join(pidDir, 'pid');
    fs.rmSync(pidfile, { force: true });
    const c = await RawHttpConnection.connect(srv.port);
    await c.write(rawRequest('GET', '/stall.cgi'));
    await c.readUntil('started\n');
    expect(await c.waitClosed(8000)).toBe(true);
    expect(c.pending.toString()).not.toContain('0\r\n\r\n');
    c.close();
    const pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
    await waitFor(`script ${pid} to be killed`, () => !alive(pid));
  });

  it('answers plain uwsgi requests (modifier1 9) on --socket', async () => {
    const out = await uwsgiRequest(uwsgiAddr, { REQUEST_METHOD: 'GET', PATH_INFO: '/hello.cgi', QUERY_STRING: '', SERVER_PROTOCOL: 'HTTP/1.0', SERVER_NAME: 'x', SERVER_PORT: '80', REQUEST_URI: '/hello.cgi', REMOTE_ADDR: '127.0.0.1' }, { modifier1: 9 });
    const text = out.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
    expect(text.endsWith('\r\n\r\nhi\n')).toBe(true);
  });
});

describe('cgi plugin: --cgi-allowed-ext and scripts without a helper', () => {
  it('refuses other extensions (case-insensitive match) and non-executable scripts with 403 (CGI5, CGI6)', async () => {
    const { dir } = cgiDir();
    const srv = await startServer(['--plugins', 'cgi', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '9', '--cgi', dir, '--cgi-allowed-ext', '.cgi', '--cgi-allowed-ext', '.pl']);
    await withServerLog(srv, async () => {
      expect((await httpRequest(srv.port, { path: '/x.sh' })).status).toBe(403);
      expect((await httpRequest(srv.port, { path: '/hello.cgi' })).body.toString()).toBe('hi\n');
      expect((await httpRequest(srv.port, { path: '/upper.CGI' })).body.toString()).toBe('upper ran\n');
      // hello.pl is not executable and no helper is configured.
      const pl = await httpRequest(srv.port, { path: '/hello.pl' });
      expect(pl.status).toBe(403);
      await srv.waitForLog(/hello\.pl is not executable and no --cgi-helper matches it/);
    });
    expect(await srv.stop()).toBe(0);
  });
});

describe('cgi plugin: the less common options', () => {
  it('--cgi-from-docroot runs scripts from the request DOCUMENT_ROOT', async () => {
    const { dir } = cgiDir();
    const srv = await startServer(['--plugins', 'cgi', '--socket', '127.0.0.1:0', '--cgi-from-docroot']);
    await withServerLog(srv, async () => {
      const vars = { REQUEST_METHOD: 'GET', PATH_INFO: '/env.cgi/x', QUERY_STRING: '', SERVER_PROTOCOL: 'HTTP/1.0', SERVER_NAME: 'x', SERVER_PORT: '80', REMOTE_ADDR: '127.0.0.1' };
      const ok = (await uwsgiRequest(srv.sockets[0]!, { ...vars, DOCUMENT_ROOT: dir }, { modifier1: 9 })).toString();
      expect(ok).toMatch(/^HTTP\/1\.0 200 OK/);
      expect(ok).toContain(`SCRIPT_FILENAME=${path.join(dir, 'env.cgi')}\n`);
      expect(ok).toContain('PATH_INFO=/x\n');
      const none = (await uwsgiRequest(srv.sockets[0]!, vars, { modifier1: 9 })).toString();
      expect(none).toMatch(/^HTTP\/1\.0 404 /);
    });
    expect(await srv.stop()).toBe(0);
  });

  it('--cgi-optimize, --cgi-safe, --cgi-path-info, --cgi-buffer-size and --cgi-do-not-kill-on-error', async () => {
    const { dir } = cgiDir();
    const base = path.dirname(dir);
    // The mount is a symlink: --cgi-optimize resolves it once, so repointing it later changes nothing.
    const other = path.join(base, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'hello.cgi'), '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nother\\n"\n', { mode: 0o755 });
    const link = path.join(base, 'link');
    fs.symlinkSync(dir, link);
    fs.writeFileSync(path.join(dir, 'bighdr.cgi'), `#!/bin/sh\nprintf 'Content-Type: text/plain\\nX-Big: ${'y'.repeat(300)}\\n\\nbody\\n'\n`, { mode: 0o755 });
    const pidfile = path.join(base, 'pid');
    const srv = await startServer(
      ['--plugins', 'cgi', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '9', '--cgi', `/m=${link}`, '--cgi-optimized', '--cgi-safe', base, '--cgi-path-info', '--cgi-buffer-size', '200', '--cgi-timeout', '1', '--cgi-do-not-kill-on-error'],
      { env: { CGI_PIDFILE: pidfile } },
    );
    let stray = 0;
    try {
      await withServerLog(srv, async () => {
        fs.unlinkSync(link);
        fs.symlinkSync(other, link);
        expect((await httpRequest(srv.port, { path: '/m/hello.cgi' })).body.toString()).toBe('hi\n');
        // --cgi-safe: the symlink out of the directory is allowed because its target is under base.
        expect((await httpRequest(srv.port, { path: '/m/escape.cgi' })).body.toString()).toBe('outside ran\n');
        // --cgi-path-info: no PATH_INFO split; the script gets PATH_INFO as received.
        expect((await httpRequest(srv.port, { path: '/m/env.cgi/extra' })).status).toBe(404);
        const env = envOf((await httpRequest(srv.port, { path: '/m/env.cgi' })).body);
        expect(env['PATH_INFO']).toBe('/m/env.cgi');
        expect(env['SCRIPT_NAME']).toBe('/m/env.cgi');
        // --cgi-buffer-size: a header block larger than the buffer is an invalid response.
        expect((await httpRequest(srv.port, { path: '/m/bighdr.cgi' })).status).toBe(500);
        await srv.waitForLog(/--cgi-buffer-size 200/);
        // --cgi-do-not-kill-on-error: the client gets its 504, the script lives on.
        const r = await httpRequest(srv.port, { path: '/m/slow.cgi' });
        expect(r.status).toBe(504);
        stray = Number(fs.readFileSync(pidfile, 'utf8').trim());
        await sleep(300);
        expect(alive(stray)).toBe(true);
        await srv.waitForLog(/left running: --cgi-do-not-kill-on-error/);
      });
    } finally {
      if (stray && alive(stray)) process.kill(-stray, 'SIGKILL');
      expect(await srv.stop()).toBe(0);
    }
  });
});

// uWSGI 2.0.21 (Debian's) kills its worker with a segfault in cgi_plugin.so on these actions,
// so they are specified from its source (uwsgi_routing_func_cgi), not compared with it.
describe('cgi: and cgihelper: route actions (CGI11), next to a Python app, without --cgi', () => {
  let srv: ServerHandle;
  let dir: string;

  beforeAll(async () => {
    ({ dir } = cgiDir());
    srv = await startServer([
      '--plugins', 'cgi', '--http-socket', '127.0.0.1:0', '--socket', '127.0.0.1:0', '--wsgi-file', path.join(REPO_ROOT, 'test', 'fixtures', 'python', 'hello.py'),
      '--route-run', `addvar:DOCUMENT_ROOT=${path.dirname(dir)}`,
      '--route', `^/cgi-bin/(.+)$ cgi:${dir}/$1`,
      '--route', `^/helped/(.+)$ cgihelper:perl ${dir}/$1.pl`,
    ]);
  });

  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  });

  const get = (p: string, o: Parameters<typeof httpRequest>[1] = {}) => withServerLog(srv, () => httpRequest(srv.port, { path: p, ...o }));

  it('runs the expanded command as a CGI script: no PATH_INFO, SCRIPT_NAME below DOCUMENT_ROOT, its own directory, argv from the query', async () => {
    const r = await get('/cgi-bin/env.cgi?one+two%20three');
    expect(r.status).toBe(200);
    const env = envOf(r.body);
    expect(env).toMatchObject({ GATEWAY_INTERFACE: 'CGI/1.1', SCRIPT_FILENAME: path.join(dir, 'env.cgi'), SCRIPT_NAME: '/cgi-bin/env.cgi', CWD: dir, ARGC: '2', ARG1: 'one', ARG2: 'two three' });
    expect(env['PATH_INFO']).toBeUndefined();
    expect(Object.keys(env).filter((k) => k.startsWith('TSUWSGI_'))).toEqual([]);
  });

  it('passes the request body to the script; other requests still reach the app', async () => {
    const r = await get('/cgi-bin/echo.cgi', { method: 'POST', body: 'posted bytes' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('posted bytes');
    expect((await get('/')).body.toString()).toBe('Hello World');
  });

  it('answers 404 for a command that is not a file and 403 for one that is not executable', async () => {
    expect((await get('/cgi-bin/missing.cgi')).status).toBe(404);
    expect((await get('/cgi-bin/dir')).status).toBe(404);
    const r = await get('/cgi-bin/hello.pl');
    expect(r.status).toBe(403);
    expect(r.body.toString()).toBe('Forbidden');
  });

  it('cgihelper: runs the command through the helper, which needs no exec bit', async () => {
    const r = await get('/helped/hello?arg');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toMatch(/^perl [0-9.]+ qs=arg body= /);
  });

  it('ignores a TSUWSGI_CGI_ROUTE var sent by a client: no command of its choosing runs', async () => {
    const reply = await withServerLog(srv, () =>
      uwsgiRequest(srv.sockets[1]!, { REQUEST_METHOD: 'GET', PATH_INFO: '/x', REQUEST_URI: '/x', SERVER_PROTOCOL: 'HTTP/1.1', TSUWSGI_CGI_ROUTE: `guess\0\0${path.join(dir, 'env.cgi')}` }, { modifier1: 9 }),
    );
    expect(reply.toString('latin1')).toMatch(/^HTTP\/1\.1 404 /);
    await srv.waitForLog(/ignoring a TSUWSGI_CGI_ROUTE request var that the cgi: route action did not set/);
  });

  it('refuses a cgihelper: rule without a command at start-up', async () => {
    const r = await runTsuwsgi(['--plugins', 'cgi', '--http-socket', '127.0.0.1:0', '--route', '^/x cgihelper:perl']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/invalid cgihelper syntax, must be "cgihelper:helper command"/);
  });
});

describe('cgi plugin: bad options get clear errors', () => {
  it.each([
    [['--cgi', '/does/not/exist'], /--cgi \/does\/not\/exist: .*does not exist/],
    [['--cgi', 'cgi-bin=/tmp'], /mountpoint "cgi-bin" must start with "\/"/],
    [['--cgi', '/tmp', '--cgi-helper', 'perl'], /invalid CGI helper syntax, must be EXT=COMMAND/],
    [['--cgi', '/tmp', '--cgi-helper', '.so=sym://run'], /sym:\/\/ helpers .* not support/],
    [['--cgi', '/tmp', '--cgi-timeout', 'soon'], /--cgi-timeout soon: give the timeout in seconds as a positive whole number/],
  ])('%j', async (args, message) => {
    const r = await runTsuwsgi(['--plugins', 'cgi', '--http-socket', '127.0.0.1:0', ...args], { timeoutMs: 30000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(message);
  });
});

describe('cgi plugin behind nginx (uwsgi_pass, uwsgi_modifier1 9)', () => {
  it('serves scripts, query strings, bodies and Status through nginx', async () => {
    const { dir } = cgiDir();
    const srv = await startServer(['--plugins', 'cgi', '--socket', '127.0.0.1:0', '--cgi', `/cgi-bin=${dir}`, '--cgi-helper', '.pl=perl']);
    const nginx = await startNginx({ upstream: srv.sockets[0]!, locationExtra: 'uwsgi_modifier1 9;' });
    try {
      await withServerLog(
        srv,
        async () => {
          const env = envOf((await httpRequest(nginx.port, { path: '/cgi-bin/env.cgi/p/i?a=b' })).body);
          expect(env).toMatchObject({ SCRIPT_NAME: '/cgi-bin/env.cgi', PATH_INFO: '/p/i', QUERY_STRING: 'a=b', GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET' });
          const big = Buffer.alloc(1024 * 1024, 0x62);
          const echo = await httpRequest(nginx.port, { path: '/cgi-bin/echo.cgi', method: 'POST', body: big });
          expect(echo.body.equals(big)).toBe(true);
          const pl = await httpRequest(nginx.port, { path: '/cgi-bin/hello.pl?z=1' });
          expect(pl.body.toString()).toMatch(/^perl .* qs=z=1 /);
          expect((await httpRequest(nginx.port, { path: '/cgi-bin/status.cgi' })).status).toBe(404);
          expect((await httpRequest(nginx.port, { path: '/cgi-bin/location.cgi' })).status).toBe(302);
          expect((await httpRequest(nginx.port, { path: '/cgi-bin/stream.cgi' })).body.toString()).toBe('one\ntwo\nthree\n');
        },
        () => `--- nginx error.log ---\n${nginx.errorLog()}`,
      );
    } finally {
      await nginx.stop();
      expect(await srv.stop()).toBe(0);
    }
  });
});
