/**
 * The php plugin (modifier1 14, spec/languages.md §8, issue 6 parts 1 and 5): a small real
 * PHP app (a form, a session, uploads incl. chunked ones) run by php-cgi FastCGI processes;
 * header()/setcookie()/http_response_code()/exit(), php://input, output buffering, large
 * bodies, HEAD, repeated headers, streaming, fatal errors; the docroot walk, index files, the
 * 301 to a trailing slash, the 403 rules and path traversal; --php-app, --php-fallback,
 * --php-set/--php-ini-append/--php-var; bad options; php-cgi crashes and recycling; nginx
 * `uwsgi_pass` with `uwsgi_modifier1 14`.
 *
 * The fixtures (test/fixtures/php) are copied to a temporary directory so the test can add a
 * script outside the document root and symlinks to it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chunkEncode, httpRequest, rawRequest, RawHttpConnection } from '../helpers/http-raw.ts';
import { startNginx } from '../helpers/nginx.ts';
import { REPO_ROOT, requireExecutable, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';
import { stdVars, uwsgiRequest } from '../helpers/uwsgi-client.ts';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'php');
const PHP_CGI = '/usr/bin/php-cgi';

interface Site {
  base: string;
  www: string;
  sessions: string;
}

/** A private copy of the fixtures, with a script outside the docroot reachable through a symlink. */
function site(): Site {
  const base = fs.realpathSync(tmpDir('tsuwsgi-php-'));
  fs.cpSync(FIXTURES, base, { recursive: true });
  const www = path.join(base, 'www');
  fs.writeFileSync(path.join(base, 'outside.php'), '<?php echo "outside ran";\n');
  fs.symlinkSync(path.join(base, 'outside.php'), path.join(www, 'escape.php'));
  fs.symlinkSync(path.join(www, 'index.php'), path.join(www, 'alias.php'));
  // A UTF-8 file name: the request path's bytes must find it, and PHP must see the same name.
  fs.mkdirSync(path.join(www, 'répertoire'));
  fs.writeFileSync(path.join(www, 'répertoire', 'café.php'), '<?php echo $_SERVER["SCRIPT_NAME"], "|", $_SERVER["PATH_INFO"], "|", basename($_SERVER["SCRIPT_FILENAME"]);\n');
  const sessions = path.join(base, 'sessions');
  fs.mkdirSync(sessions);
  return { base, www, sessions };
}

const json = (b: Buffer): Record<string, unknown> => JSON.parse(b.toString()) as Record<string, unknown>;
const md5 = (b: Buffer): string => crypto.createHash('md5').update(b).digest('hex');

function multipart(boundary: string, parts: Array<{ name: string; filename?: string; type?: string; data: Buffer | string }>): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    let h = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) h += `; filename="${p.filename}"\r\nContent-Type: ${p.type ?? 'application/octet-stream'}`;
    out.push(Buffer.from(h + '\r\n\r\n'), Buffer.from(p.data), Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

function binary(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * seed + (i >> 8)) % 256;
  return b;
}

beforeAll(() => {
  requireExecutable(PHP_CGI, 'php-cgi (the php plugin runs PHP with it)');
});

describe('php plugin over --http-socket: a real app', () => {
  let srv: ServerHandle;
  let s: Site;
  let uwsgiAddr: string;

  beforeAll(async () => {
    s = site();
    srv = await startServer(
      [
        '--plugins', 'php', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '14', '--socket', '127.0.0.1:0',
        '--php-docroot', s.www, '--php-index', 'missing.php', '--php-index', 'index.php',
        '--php-set', 'date.timezone=Europe/Rome', '--php-set', `session.save_path=${s.sessions}`,
        '--php-ini-append', path.join(s.base, 'extra.ini'), '--php-ini-append', path.join(s.base, 'extra2.ini'),
        '--php-var', 'APP_MODE=test', '--threads', '2',
      ],
      { env: { PHP_TEST_ENV: 'inherited' } },
    );
    uwsgiAddr = srv.sockets[1]!;
  });

  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  });

  const get = (p: string, o: Parameters<typeof httpRequest>[1] = {}) => withServerLog(srv, () => httpRequest(srv.port, { path: p, ...o }));

  it('runs the directory index with the query string (PHP1)', async () => {
    const r = await get('/?name=x');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=UTF-8');
    expect(r.body.toString()).toBe('Hello x');
  });

  it('splits SCRIPT_NAME and PATH_INFO and sets the request environment (PHP4)', async () => {
    // A header value over 127 bytes takes FastCGI's 4-byte length form.
    const long = 'L'.repeat(1500);
    const r = await get('/info.php/a/b?z=1&arr[]=2', { headers: { 'User-Agent': 'php-test', 'X-Long': long } });
    expect(r.status).toBe(200);
    const env = json(r.body);
    expect(env).toMatchObject({
      SCRIPT_NAME: '/info.php',
      PATH_INFO: '/a/b',
      PHP_SELF: '/info.php',
      SCRIPT_FILENAME: path.join(s.www, 'info.php'),
      DOCUMENT_ROOT: s.www,
      PATH_TRANSLATED: path.join(s.www, 'a/b'),
      QUERY_STRING: 'z=1&arr[]=2',
      REQUEST_URI: '/info.php/a/b?z=1&arr[]=2',
      REQUEST_METHOD: 'GET',
      SERVER_SOFTWARE: 'uWSGI',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_PORT: String(srv.port),
      REMOTE_ADDR: '127.0.0.1',
      HTTP_USER_AGENT: 'php-test',
      HTTP_X_LONG: long,
      APP_MODE: 'test',
      PHP_TEST_ENV: 'inherited',
      get: { z: '1', arr: ['2'] },
      cwd: s.www,
      sapi: 'cgi-fcgi',
      tsuwsgi_leak: [],
    });
    const [version, workerId, masterPid] = env['uwsgi'] as [string, number, number];
    expect(version).toMatch(/^2\.0\.\d+/);
    expect(workerId).toBe(1);
    expect(masterPid).toBeGreaterThan(0);
  });

  it('--php-set and --php-ini-append reach PHP (PHP7)', async () => {
    expect((await get('/tz.php')).body.toString()).toBe('Europe/Rome|77M|1234');
  });

  it('a form: GET renders it, POST (urlencoded and multipart) fills $_POST and $_REQUEST', async () => {
    const page = await get('/form.php?q=hi');
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<form method="post" action="/form.php?q=hi">');
    const post = await get('/form.php?q=1', { method: 'POST', body: 'name=J%C3%BCrgen+%3Cb%3E&tags%5B%5D=a&tags%5B%5D=b', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(post.status).toBe(200);
    expect(post.body.toString()).toBe('name=Jürgen &lt;b&gt;\ntags=a,b\nq=1\nrequest=Jürgen <b>\n');
    const body = multipart('XyZ', [{ name: 'name', data: 'multi' }, { name: 'tags[]', data: 'x' }]);
    const mp = await get('/form.php', { method: 'POST', body, headers: { 'Content-Type': 'multipart/form-data; boundary=XyZ' } });
    expect(mp.body.toString()).toBe('name=multi\ntags=x\nq=\nrequest=multi\n');
  });

  it('a session survives across requests through its cookie', async () => {
    const first = await get('/session.php?user=ann');
    const cookie = (first.headers['set-cookie'] ?? [])[0] ?? '';
    expect(cookie).toMatch(/^PHPSESSID=\w+; path=\//);
    const id = /^PHPSESSID=(\w+)/.exec(cookie)![1]!;
    expect(first.body.toString()).toBe(`count=1 user=ann id=${id}`);
    const second = await get('/session.php', { headers: { Cookie: `PHPSESSID=${id}` } });
    expect(second.body.toString()).toBe(`count=2 user=ann id=${id}`);
    const third = await get('/session.php', { headers: { Cookie: `PHPSESSID=${id}` } });
    expect(third.body.toString()).toBe(`count=3 user=ann id=${id}`);
    expect(fs.existsSync(path.join(s.sessions, `sess_${id}`))).toBe(true);
    // Another client gets its own session.
    expect((await get('/session.php')).body.toString()).toMatch(/^count=1 user=- /);
  });

  it('uploads: $_FILES with two files (one of 1 MiB binary) and a field', async () => {
    const big = binary(1024 * 1024, 7);
    const body = multipart('b0undary', [
      { name: 'doc', filename: 'a.txt', type: 'text/plain', data: 'hello upload\n' },
      { name: 'blob', filename: 'blob.bin', data: big },
      { name: 'note', data: 'with files' },
    ]);
    const r = await get('/upload.php', { method: 'POST', body, headers: { 'Content-Type': 'multipart/form-data; boundary=b0undary' } });
    expect(r.status).toBe(200);
    const out = json(r.body) as { files: Record<string, Record<string, unknown>>; post: Record<string, string> };
    expect(out.files['doc']).toEqual({ name: 'a.txt', type: 'text/plain', size: 13, error: 0, md5: md5(Buffer.from('hello upload\n')), is_uploaded: true });
    expect(out.files['blob']).toMatchObject({ name: 'blob.bin', size: big.length, error: 0, md5: md5(big) });
    expect(out.post).toEqual({ note: 'with files' });
  });

  it('a chunked upload (Transfer-Encoding: chunked) reaches $_FILES whole', async () => {
    const data = binary(300 * 1024, 13);
    const body = multipart('chunkB', [{ name: 'up', filename: 'c.bin', data }]);
    const c = await RawHttpConnection.connect(srv.port);
    await c.write(Buffer.concat([rawRequest('POST', '/upload.php', { 'Transfer-Encoding': 'chunked', 'Content-Type': 'multipart/form-data; boundary=chunkB' }), chunkEncode(body, 7000)]));
    const r = await c.readResponse({ timeoutMs: 20000 });
    c.close();
    expect(r.status).toBe(200);
    const out = json(r.body) as { files: Record<string, Record<string, unknown>> };
    expect(out.files['up']).toMatchObject({ name: 'c.bin', size: data.length, error: 0, md5: md5(data) });
  });

  it('header(), setcookie(), http_response_code(): status, repeated headers, cookies both ways', async () => {
    const r = await get('/headers.php?code=201', { headers: { Cookie: 'a=1; b=two' } });
    expect(r.status).toBe(201);
    expect(r.headers['x-custom']).toBe('one');
    expect(r.headers['x-multi']).toBe('a, b');
    expect(r.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'x-multi')).toHaveLength(2);
    expect(r.headers['set-cookie']).toEqual(['first=v1; path=/; HttpOnly', 'second=v%202']);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.body.toString()).toBe('cookies={"a":"1","b":"two"}');
  });

  it('header("Location") gives 302; exit() ends the script with what it printed', async () => {
    const redirect = await get('/headers.php?redirect=1');
    expect(redirect.status).toBe(302);
    expect(redirect.headers['location']).toBe('/elsewhere');
    const ex = await get('/headers.php?exit=1');
    expect(ex.status).toBe(200);
    expect(ex.body.toString()).toBe('before exit');
  });

  it('php://input: a 3 MB binary body, a PUT, and an empty POST', async () => {
    const big = binary(3 * 1024 * 1024, 11);
    const r = await get('/input.php?echo=1', { method: 'POST', body: big, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-length']).toBe(String(big.length));
    expect(r.headers['x-md5']).toBe(md5(big));
    expect(r.body.equals(big)).toBe(true);
    const put = await get('/input.php', { method: 'PUT', body: '{"k":1}', headers: { 'Content-Type': 'application/json' } });
    expect(put.body.toString()).toBe('7');
    expect((await get('/input.php', { method: 'POST', body: '' })).body.toString()).toBe('0');
  });

  it('output buffering: discarded, captured and callback-filtered buffers; headers after buffered output', async () => {
    const r = await get('/ob.php');
    expect(r.headers['x-after-output']).toBe('yes');
    expect(r.body.toString()).toBe('captured=INNER\nhello WORLD\n');
  });

  it('a large response (2 MiB) arrives whole', async () => {
    const r = await get('/big.php');
    expect(r.body.length).toBe(2 * 1024 * 1024);
    expect(r.body.toString().replace(/x/g, '')).toBe('');
  });

  it('HEAD and 204 get no body; Content-Length from PHP is kept; the keep-alive connection stays usable', async () => {
    const c = await RawHttpConnection.connect(srv.port);
    await c.write(rawRequest('HEAD', '/info.php'));
    const h = await c.readResponse({ head: true });
    expect(h.status).toBe(200);
    expect(h.header('content-type')).toBe('application/json');
    await c.write(rawRequest('GET', '/nocontent.php'));
    const n = await c.readResponse();
    expect(n.status).toBe(204);
    expect(n.body.length).toBe(0);
    await c.write(rawRequest('GET', '/length.php'));
    const l = await c.readResponse();
    expect(l.header('content-length')).toBe('5');
    expect(l.body.toString()).toBe('hello');
    // A body the script never reads, then a pipelined pair.
    await c.write(rawRequest('POST', '/?name=after-body', { 'Content-Type': 'application/octet-stream' }, Buffer.alloc(200000, 0x61)));
    expect((await c.readResponse()).body.toString()).toBe('Hello after-body');
    await c.write(Buffer.concat([rawRequest('GET', '/?name=p1'), rawRequest('GET', '/?name=p2')]));
    expect((await c.readResponse()).body.toString()).toBe('Hello p1');
    expect((await c.readResponse()).body.toString()).toBe('Hello p2');
    expect(c.pending.length).toBe(0);
    c.close();
  });

  it('repeated request headers reach $_SERVER joined', async () => {
    const c = await RawHttpConnection.connect(srv.port);
    await c.write('GET /info.php HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nX-Multi: b\r\nConnection: close\r\n\r\n');
    const r = await c.readResponse();
    c.close();
    expect(json(r.body)['HTTP_X_MULTI']).toMatch(/^a(, ?)b$/);
  });

  it('streams flush()ed output as PHP produces it (chunked on keep-alive)', async () => {
    const c = await RawHttpConnection.connect(srv.port);
    const t0 = Date.now();
    await c.write(rawRequest('GET', '/stream.php'));
    await c.readUntil('one\n');
    const first = Date.now() - t0;
    const r = await c.readResponse();
    const total = Date.now() - t0;
    c.close();
    expect(r.chunked).toBe(true);
    expect(r.body.toString()).toBe('one\ntwo\nthree\n');
    expect(first).toBeLessThan(total - 500);
  });

  it('--threads 2: two slow requests run at the same time', async () => {
    const t0 = Date.now();
    const [a, b] = await Promise.all([get('/slow.php?ms=800'), get('/slow.php?ms=800')]);
    const took = Date.now() - t0;
    expect(a.body.toString()).toMatch(/^slept \d+$/);
    expect(b.body.toString()).toMatch(/^slept \d+$/);
    expect(a.body.toString()).not.toBe(b.body.toString());
    expect(took).toBeLessThan(1500);
  });

  it('a fatal error before output is a 500 with the error in the server log', async () => {
    const r = await get('/fatal.php');
    expect(r.status).toBe(500);
    expect(r.body.toString()).not.toContain('Call to undefined function');
    await srv.waitForLog(/PHP Fatal error: +Uncaught Error: Call to undefined function echo_undefined_function_for_tsuwsgi_test\(\)/);
    // An uncaught exception after output: the output so far, the exception in the log.
    const after = await get('/fatal-after.php');
    expect(after.body.toString()).toContain('partial output\n');
    await srv.waitForLog(/tsuwsgi test exception after output/);
    expect((await get('/?name=still')).body.toString()).toBe('Hello still');
  });

  it("error_log() lands in the server log", async () => {
    expect((await get('/warn.php')).body.toString()).toBe('ok');
    await srv.waitForLog(/tsuwsgi php error_log message/);
  });

  it('php-cgi dying mid-request gives a 502 (as nginx in front of php-fpm), is logged, and a new one serves the next request', async () => {
    const r = await get('/crash.php');
    expect(r.status).toBe(502);
    await srv.waitForLog(/php-cgi \d+ (exited \(signal SIGKILL\)|closed the FastCGI connection)/);
    for (let i = 0; i < 4; i++) expect((await get(`/?name=n${i}`)).body.toString()).toBe(`Hello n${i}`);
  });

  it('a directory redirects to its slash (301, query kept), then runs the first readable --php-index (PHP2)', async () => {
    const a = await get('/dir?x=1');
    expect(a.status).toBe(301);
    expect(a.headers['location']).toBe('/dir/?x=1');
    const b = await get('/dir/');
    expect(b.status).toBe(200);
    expect(b.body.toString()).toBe('index of dir SCRIPT_NAME=/dir/index.php');
    expect((await get('/sub/')).status).toBe(404);
    expect((await get('/sub/page.php/x/y')).body.toString()).toBe('sub page SCRIPT_NAME=/sub/page.php PATH_INFO=/x/y');
  });

  it('missing scripts are 404 (PHP5); ".." is refused; symlinks inside are fine', async () => {
    expect((await get('/missing.php')).status).toBe(404);
    expect((await get('/nodir/missing.php')).status).toBe(404);
    const c = await RawHttpConnection.connect(srv.port);
    await c.write('GET /sub/../../outside.php HTTP/1.1\r\nHost: h\r\n\r\n');
    const t = await c.readResponse();
    expect(t.status).toBe(403);
    expect(t.body.toString()).not.toContain('outside ran');
    await c.write('GET /sub/%2e%2e/%2e%2e/outside.php HTTP/1.1\r\nHost: h\r\n\r\n');
    const t2 = await c.readResponse();
    expect([403, 404]).toContain(t2.status);
    expect(t2.body.toString()).not.toContain('outside ran');
    c.close();
    await srv.waitForLog(/PHP security error: "\.\." in the path/);
    expect((await get('/alias.php?name=al')).body.toString()).toBe('Hello al');
  });

  it('UTF-8 directory and script names resolve, and PHP sees them as UTF-8', async () => {
    const r = await get('/r%C3%A9pertoire/caf%C3%A9.php/d%C3%A9j%C3%A0');
    expect(r.status).toBe(200);
    expect(r.body.toString('utf8')).toBe('/répertoire/café.php|/déjà|café.php');
  });

  it('answers plain uwsgi requests (modifier1 14) on --socket', async () => {
    const out = await uwsgiRequest(uwsgiAddr, stdVars({ REQUEST_URI: '/?name=uwsgi', PATH_INFO: '/', QUERY_STRING: 'name=uwsgi', SERVER_PROTOCOL: 'HTTP/1.0' }), { modifier1: 14 });
    const t = out.toString('latin1');
    expect(t).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
    expect(t.endsWith('\r\n\r\nHello uwsgi')).toBe(true);
  });
});

describe('php plugin: the 403 rules, --php-fallback, --php-app', () => {
  it('--php-allowed-ext, --php-allowed-docroot (symlink out) and --php-fallback (PHP3, PHP5)', async () => {
    const s = site();
    const srv = await startServer([
      '--plugins', 'php', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '14', '--php-docroot', s.www,
      '--php-allowed-ext', '.php', '--php-allowed-docroot', s.www, '--php-fallback', path.join(s.base, 'fallback.php'),
    ]);
    await withServerLog(srv, async () => {
      const secret = await httpRequest(srv.port, { path: '/secret.txt' });
      expect(secret.status).toBe(403);
      expect(secret.body.toString()).not.toContain('must never be served');
      await srv.waitForLog(/PHP security error: .*secret\.txt does not end in an allowed extension/);
      const escape = await httpRequest(srv.port, { path: '/escape.php' });
      expect(escape.status).toBe(403);
      expect(escape.body.toString()).not.toContain('outside ran');
      await srv.waitForLog(/PHP security error: .*outside\.php is not under an allowed docroot/);
      const missing = await httpRequest(srv.port, { path: '/missing.php?x=1' });
      expect(missing.status).toBe(404);
      expect(missing.body.toString()).toBe('fallback for /missing.php?x=1');
      expect((await httpRequest(srv.port, { path: '/info.php' })).status).toBe(200);
    });
    expect(await srv.stop()).toBe(0);
  });

  it('a reload (SIGHUP) applies re-read php options to the script checks the core worker makes', async () => {
    const s = site();
    const ini = path.join(s.base, 'reload.ini');
    const write = (extra: string): void => fs.writeFileSync(ini, `[uwsgi]\nplugins = php\nhttp-socket = 127.0.0.1:0\nhttp-socket-modifier1 = 14\nphp-docroot = ${s.www}\n${extra}`);
    write('php-allowed-ext = .php\n');
    const srv = await startServer(['--ini', ini]);
    try {
      await withServerLog(srv, async () => {
        expect((await httpRequest(srv.port, { path: '/secret.txt' })).status).toBe(403);
        write('');
        srv.signal('SIGHUP');
        await srv.waitForLog(/workers reloaded/);
        const r = await httpRequest(srv.port, { path: '/secret.txt' });
        expect(r.status).toBe(200);
        expect(r.body.toString()).toContain('not php');
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  });

  it('without --php-allowed-ext any file runs through PHP (uWSGI: "happily execute whatever script"); --php-ini, --php-dump-config', async () => {
    const s = site();
    const srv = await startServer(['--plugins', 'php', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '14', '--php-docroot', s.www, '--php-ini', path.join(s.base, 'custom.ini'), '--php-dump-config']);
    await withServerLog(srv, async () => {
      expect((await httpRequest(srv.port, { path: '/secret.txt' })).body.toString()).toContain('not php');
      // --php-ini replaces php.ini; the extensions of conf.d still load (sessions, posix).
      expect((await httpRequest(srv.port, { path: '/tz.php' })).body.toString()).toMatch(/^Asia\/Tokyo\|/);
      expect((await httpRequest(srv.port, { path: '/session.php' })).status).toBe(200);
      await srv.waitForLog(/php-cgi command line: .*php-cgi -b \S+ .*-c \S+custom\.ini/);
      // No --php-index: a directory is a 404.
      expect((await httpRequest(srv.port, { path: '/' })).status).toBe(404);
    });
    expect(await srv.stop()).toBe(0);
  });

  it('--php-app runs a front controller (PHP6) with --php-app-qs, --php-app-bypass, --php-allowed-script, a user auto_prepend_file and --php-server-software', async () => {
    const s = site();
    const front = path.join(s.www, 'app', 'front.php');
    const srv = await startServer([
      '--plugins', 'php', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '14', '--php-docroot', s.www,
      '--php-app', front, '--php-app-qs', 'route=', '--php-app-bypass', '^/(info|index)\\.php',
      '--php-allowed-script', front, '--php-allowed-script', path.join(s.www, 'info.php'),
      '--php-set', `auto_prepend_file=${path.join(s.base, 'prepend.php')}`, '--php-server-software', 'tsuwsgi-test',
    ]);
    await withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/any/path?x=1' });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('front REQUEST_URI=/any/path?x=1 QUERY_STRING=route=/any/path&x=1 PATH_INFO= SCRIPT_NAME=/app/front.php');
      expect(r.headers['x-user-prepend']).toBe('ran');
      const root = await httpRequest(srv.port, { path: '/' });
      expect(root.body.toString()).toBe('front REQUEST_URI=/ QUERY_STRING= PATH_INFO= SCRIPT_NAME=/app/front.php');
      const info = json((await httpRequest(srv.port, { path: '/info.php/p' })).body);
      expect(info).toMatchObject({ SCRIPT_NAME: '/info.php', PATH_INFO: '/p', SERVER_SOFTWARE: 'tsuwsgi-test' });
      // Bypassed to the docroot, but not an allowed script.
      expect((await httpRequest(srv.port, { path: '/index.php' })).status).toBe(403);
      await srv.waitForLog(/index\.php is not an allowed script/);
    });
    expect(await srv.stop()).toBe(0);
  });

  it("without --php-docroot, the request's DOCUMENT_ROOT is the root (uwsgi socket)", async () => {
    const s = site();
    const srv = await startServer(['--plugins', 'php', '--socket', '127.0.0.1:0']);
    await withServerLog(srv, async () => {
      const ok = (await uwsgiRequest(srv.sockets[0]!, stdVars({ REQUEST_URI: '/info.php/x', PATH_INFO: '/info.php/x', DOCUMENT_ROOT: s.www, SERVER_PROTOCOL: 'HTTP/1.0' }), { modifier1: 14 })).toString();
      expect(ok).toMatch(/^HTTP\/1\.0 200 OK/);
      const env = JSON.parse(ok.slice(ok.indexOf('\r\n\r\n') + 4)) as Record<string, string>;
      expect(env['SCRIPT_FILENAME']).toBe(path.join(s.www, 'info.php'));
      expect(env['DOCUMENT_ROOT']).toBe(s.www);
      expect(env['PATH_INFO']).toBe('/x');
      const bad = (await uwsgiRequest(srv.sockets[0]!, stdVars({ PATH_INFO: '/info.php', DOCUMENT_ROOT: '/does/not/exist', SERVER_PROTOCOL: 'HTTP/1.0' }), { modifier1: 14 })).toString();
      expect(bad).toMatch(/^HTTP\/1\.0 404 /);
      await srv.waitForLog(/DOCUMENT_ROOT \/does\/not\/exist does not exist/);
    });
    expect(await srv.stop()).toBe(0);
  });

  it('--php-fcgi-max-requests recycles php-cgi processes without losing a request', async () => {
    const s = site();
    const srv = await startServer(['--plugins', 'php', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '14', '--php-docroot', s.www, '--php-fcgi-max-requests', '2']);
    await withServerLog(srv, async () => {
      const pids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const r = await httpRequest(srv.port, { path: '/pid.php' });
        expect(r.status).toBe(200);
        pids.push(r.body.toString());
      }
      expect(new Set(pids).size).toBeGreaterThanOrEqual(3);
    });
    expect(await srv.stop()).toBe(0);
  });

  it('harakiri kills only the stuck php-cgi: a request on another php-cgi of the same bridge finishes', async () => {
    const s = site();
    // One bridge with two php-cgi processes; harakiri is checked every second.
    const srv = await startServer(['--plugins', 'php', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '14', '--php-docroot', s.www, '--threads', '2', '--harakiri', '4']);
    await withServerLog(srv, async () => {
      const stuck = httpRequest(srv.port, { path: '/slow.php?ms=30000' });
      await new Promise((r) => setTimeout(r, 2500));
      // In flight from 2.5 s to 5.5 s, while the stuck one is killed (between 4 and 5 s).
      const innocent = httpRequest(srv.port, { path: '/slow.php?ms=3000' });
      expect((await stuck).status).toBe(504);
      const r = await innocent;
      expect(r.status).toBe(200);
      expect(r.body.toString()).toMatch(/^slept \d+$/);
      await srv.waitForLog(/HARAKIRI: killing the PHP process \d+ that worker 1 handed this request to/);
      // The bridge lived on and restarted the php-cgi: both slots serve again.
      const [a, b] = await Promise.all([httpRequest(srv.port, { path: '/slow.php?ms=300' }), httpRequest(srv.port, { path: '/slow.php?ms=300' })]);
      expect([a.status, b.status]).toEqual([200, 200]);
    });
    expect(srv.logs()).not.toMatch(/worker 1 \(pid: \d+\) died|DAMN/);
    expect(await srv.stop()).toBe(0);
  });
});

describe('php plugin: bad options get clear errors', () => {
  it.each([
    [['--php-docroot', '/does/not/exist'], /--php-docroot \/does\/not\/exist: .*does not exist: give an existing directory/],
    [['--php-set', 'date.timezone'], /--php-set date\.timezone: give KEY=VALUE/],
    [['--php-var', 'SCRIPT_FILENAME=/etc/passwd'], /SCRIPT_FILENAME cannot be set with --php-var/],
    [['--php-ini', '/nope/php.ini'], /--php-ini \/nope\/php\.ini: .*does not exist/],
    [['--php-app', '/nope/front.php'], /--php-app \/nope\/front\.php: .*does not exist/],
    [['--php-index', 'a/b.php'], /--php-index a\/b\.php: give a file name/],
    [['--php-app-bypass', '('], /--php-app-bypass \(: not a valid regular expression/],
    [['--php-fcgi-max-requests', 'many'], /--php-fcgi-max-requests many: give a whole number/],
    [['--php-cgi-bin', '/nope/php-cgi'], /\/nope\/php-cgi is missing or not executable: install it \(apt-get install php-cgi\)/],
    [['--php-cgi-bin', '/usr/bin/php8.2'], /is not PHP's CGI\/FastCGI binary/],
  ])('%j', async (args, message) => {
    const r = await runTsuwsgi(['--plugins', 'php', '--http-socket', '127.0.0.1:0', ...args], { timeoutMs: 30000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(message);
  });
});

describe('php plugin behind nginx (uwsgi_pass, uwsgi_modifier1 14)', () => {
  it('serves the app: PATH_INFO split, form POST, session, upload, streaming, 301', async () => {
    const s = site();
    const srv = await startServer(['--plugins', 'php', '--socket', '127.0.0.1:0', '--php-docroot', s.www, '--php-index', 'index.php', '--php-set', `session.save_path=${s.sessions}`]);
    const nginx = await startNginx({ upstream: srv.sockets[0]!, locationExtra: 'uwsgi_modifier1 14;' });
    try {
      await withServerLog(
        srv,
        async () => {
          const env = json((await httpRequest(nginx.port, { path: '/info.php/p/i?a=b' })).body);
          expect(env).toMatchObject({ SCRIPT_NAME: '/info.php', PATH_INFO: '/p/i', QUERY_STRING: 'a=b', DOCUMENT_ROOT: s.www, REQUEST_URI: '/info.php/p/i?a=b' });
          // nginx's uwsgi_params sends no SERVER_SOFTWARE: PHP sees the plugin's.
          expect(env['SERVER_SOFTWARE']).toBe('uWSGI');
          expect((await httpRequest(nginx.port, { path: '/?name=ngx' })).body.toString()).toBe('Hello ngx');
          const post = await httpRequest(nginx.port, { path: '/form.php', method: 'POST', body: 'name=n&tags[]=t', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
          expect(post.body.toString()).toBe('name=n\ntags=t\nq=\nrequest=n\n');
          const first = await httpRequest(nginx.port, { path: '/session.php' });
          const id = /^PHPSESSID=(\w+)/.exec((first.headers['set-cookie'] ?? [])[0] ?? '')![1]!;
          expect((await httpRequest(nginx.port, { path: '/session.php', headers: { Cookie: `PHPSESSID=${id}` } })).body.toString()).toBe(`count=2 user=- id=${id}`);
          const big = binary(1024 * 1024, 3);
          const up = await httpRequest(nginx.port, { path: '/upload.php', method: 'POST', body: multipart('ngxB', [{ name: 'f', filename: 'f.bin', data: big }]), headers: { 'Content-Type': 'multipart/form-data; boundary=ngxB' } });
          expect((json(up.body) as { files: Record<string, Record<string, unknown>> }).files['f']).toMatchObject({ size: big.length, md5: md5(big) });
          expect((await httpRequest(nginx.port, { path: '/stream.php' })).body.toString()).toBe('one\ntwo\nthree\n');
          const dir = await httpRequest(nginx.port, { path: '/dir' });
          expect(dir.status).toBe(301);
          expect(dir.headers['location']).toMatch(/\/dir\/$/);
          expect((await httpRequest(nginx.port, { path: '/fatal.php' })).status).toBe(500);
        },
        () => `--- nginx error.log ---\n${nginx.errorLog()}`,
      );
    } finally {
      await nginx.stop();
      expect(await srv.stop()).toBe(0);
    }
  });
});

// The bridge must never leave php-cgi processes behind, even when it is killed.
describe('php plugin: php-cgi processes die with their bridge', () => {
  it('SIGKILLing the bridge takes its php-cgi processes with it; the core respawns both', async () => {
    const s = site();
    const srv = await startServer(['--plugins', 'php', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '14', '--php-docroot', s.www, '--threads', '2']);
    await withServerLog(srv, async () => {
      const phpPid = Number((await httpRequest(srv.port, { path: '/pid.php' })).body.toString());
      expect(phpPid).toBeGreaterThan(0);
      const bridge = srv.descendants().find((p) => p.cmd.includes('bridges/php/bridge.mjs'));
      expect(bridge).toBeDefined();
      const phpCgis = srv.descendants().filter((p) => p.ppid === bridge!.pid);
      expect(phpCgis.map((p) => p.pid)).toContain(phpPid);
      // The bridge's private socket directory: a SIGKILLed bridge cannot remove it; the next bridge does.
      const runDirs = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(`tsuwsgi-php-${bridge!.pid}-`));
      expect(runDirs()).toHaveLength(1);
      process.kill(bridge!.pid, 'SIGKILL');
      const deadline = Date.now() + 5000;
      while (phpCgis.some((p) => fs.existsSync(`/proc/${p.pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8')))) {
        if (Date.now() > deadline) throw new Error(`php-cgi processes ${phpCgis.map((p) => p.pid).join(', ')} outlived their bridge`);
        await sleep(50);
      }
      await srv.waitForLog(/died/);
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        const r = await httpRequest(srv.port, { path: '/index.php?name=back' }).catch(() => null);
        ok = r?.body.toString() === 'Hello back';
        if (!ok) await sleep(100);
      }
      expect(ok).toBe(true);
      expect(runDirs()).toEqual([]);
    });
    expect(await srv.stop()).toBe(0);
  });
});
