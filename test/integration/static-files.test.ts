/**
 * Static file serving (spec/subsystems.md §17): acceptance checks 1–11, path traversal and a
 * large file, against real tsuwsgi processes with the hello.py app as the fallback
 * (its body "Hello World" shows the app, not the file, answered).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { httpRequest } from '../helpers/http-raw.ts';
import { stdVars, uwsgiRequest } from '../helpers/uwsgi-client.ts';
import { fixture, startServer, tmpDir, type ServerHandle } from '../helpers/server.ts';

const HELLO = fixture('hello.py');
const APP_BODY = 'Hello World';

const root = tmpDir('tsuwsgi-static-');
const srv = path.join(root, 'srv');
const img = path.join(srv, 'img');
const pub = path.join(root, 'pub');
const logo = Buffer.from('\x89PNG\r\n\x1a\n fake png bytes for the test', 'latin1');
const big = crypto.randomBytes(5 * 1024 * 1024);
/** Between the synchronous small-file read (64 KiB) and streaming (over 1 MiB): one whole read. */
const medium = crypto.randomBytes(300 * 1024 + 5);
const jsText = 'console.log("plain");\n'.repeat(20);
const FIXED_MTIME = 1_700_000_000; // 2023-11-14T22:13:20Z

beforeAll(() => {
  fs.mkdirSync(img, { recursive: true });
  fs.mkdirSync(pub, { recursive: true });
  fs.writeFileSync(path.join(img, 'logo.png'), logo);
  fs.writeFileSync(path.join(img, 'big.bin'), big);
  fs.writeFileSync(path.join(img, 'medium.bin'), medium);
  fs.symlinkSync('/etc/passwd', path.join(img, 'evil'));
  fs.writeFileSync(path.join(pub, 'index.html'), '<h1>index</h1>');
  fs.writeFileSync(path.join(pub, 'x.php'), '<?php echo 1;');
  fs.writeFileSync(path.join(pub, 'style.css'), 'body{}');
  fs.writeFileSync(path.join(pub, 'old.css'), 'p{}');
  fs.utimesSync(path.join(pub, 'old.css'), FIXED_MTIME, FIXED_MTIME);
  fs.writeFileSync(path.join(pub, 'a.js'), jsText);
  fs.writeFileSync(path.join(pub, 'a.js.gz'), zlib.gzipSync(jsText));
  fs.writeFileSync(path.join(pub, 'a.js.br'), zlib.brotliCompressSync(jsText));
  // /etc/mime.types says text/javascript: a merged --mimefile overrides it.
  fs.writeFileSync(path.join(root, 'extra.types'), 'application/javascript\tjs\n');
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

describe('static-map server (§17 checks 1, 2, 4, 10, 11, traversal, 5 MB)', () => {
  let s: ServerHandle;
  beforeAll(async () => {
    s = await startServer(['--http-socket', '127.0.0.1:0', '--static-map', `/img=${img}`, '--honour-range', '--wsgi-file', HELLO]);
  }, 60000);
  afterAll(async () => {
    expect(await s.stop()).toBe(0);
  }, 30000);

  test('1: a mapped file is served with Content-Type, Content-Length, Last-Modified; a missing one goes to the app', async () => {
    const r = await httpRequest(s.port, { path: '/img/logo.png' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['content-length']).toBe(String(logo.length));
    expect(r.headers['last-modified']).toBe(fs.statSync(path.join(img, 'logo.png')).mtime.toUTCString());
    expect(r.body.equals(logo)).toBe(true);
    const miss = await httpRequest(s.port, { path: '/img/missing.png' });
    expect(miss.body.toString()).toBe(APP_BODY);
    // The static response is logged as a request, like an app response.
    await s.waitForLog(/GET \/img\/logo\.png => generated \d+ bytes in \d+ msecs \(HTTP\/1\.1 200\)/);
  });

  test('HEAD gets the headers and the file size, no body', async () => {
    const r = await httpRequest(s.port, { path: '/img/logo.png', method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(logo.length));
    expect(r.body.length).toBe(0);
  });

  test('2: If-Modified-Since equal to Last-Modified gives 304 without a body', async () => {
    const first = await httpRequest(s.port, { path: '/img/logo.png' });
    const r = await httpRequest(s.port, { path: '/img/logo.png', headers: { 'If-Modified-Since': first.headers['last-modified']! } });
    expect(r.status).toBe(304);
    expect(r.body.length).toBe(0);
    const older = await httpRequest(s.port, { path: '/img/logo.png', headers: { 'If-Modified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' } });
    expect(older.status).toBe(200);
  });

  test('4: a symlink leaving the mountpoint falls through with "security error"', async () => {
    const r = await httpRequest(s.port, { path: '/img/evil' });
    expect(r.body.toString()).toBe(APP_BODY);
    await s.waitForLog(/security error: \/etc\/passwd is not under/);
  });

  test('traversal: /img/../../etc/passwd and %2e%2e are refused (the app answers)', async () => {
    const depth = '../'.repeat(img.split('/').length);
    for (const p of [`/img/${depth}etc/passwd`, `/img/${depth.replace(/\.\./g, '%2e%2e')}etc/passwd`, `/img/${depth.replace(/\//g, '%2f')}etc/passwd`]) {
      const r = await httpRequest(s.port, { path: p });
      expect(r.body.toString()).toBe(APP_BODY);
      expect(r.body.toString()).not.toContain('root:');
    }
    // Each one reached the realpath check and was refused there (plus the symlink of check 4).
    await s.waitForLogCount(/security error: \/etc\/passwd is not under/, 4);
  });

  test('10: --honour-range gives 206 with Content-Range, and 416 when unsatisfiable', async () => {
    const r = await httpRequest(s.port, { path: '/img/logo.png', headers: { Range: 'bytes=0-9' } });
    expect(r.status).toBe(206);
    expect(r.body.equals(logo.subarray(0, 10))).toBe(true);
    expect(r.headers['content-range']).toBe(`bytes 0-9/${logo.length}`);
    const suffix = await httpRequest(s.port, { path: '/img/logo.png', headers: { Range: 'bytes=-4' } });
    expect(suffix.body.equals(logo.subarray(logo.length - 4))).toBe(true);
    const bad = await httpRequest(s.port, { path: '/img/logo.png', headers: { Range: 'bytes=999999999-' } });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${logo.length}`);
    // If-Range older than the file: the whole file.
    const stale = await httpRequest(s.port, { path: '/img/logo.png', headers: { Range: 'bytes=0-9', 'If-Range': 'Mon, 01 Jan 2001 00:00:00 GMT' } });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(logo.length);
  });

  test('11: POST to a static path is answered by the app', async () => {
    const r = await httpRequest(s.port, { path: '/img/logo.png', method: 'POST', body: '' });
    expect(r.body.toString()).toBe(APP_BODY);
  });

  test('a 300 KiB file arrives intact (sha256), also to three clients at once', async () => {
    const rs = await Promise.all([0, 1, 2].map(() => httpRequest(s.port, { path: '/img/medium.bin' })));
    for (const r of rs) {
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe(String(medium.length));
      expect(sha(r.body)).toBe(sha(medium));
    }
  });

  test('a 5 MB file arrives intact (sha256), also to three clients at once', async () => {
    const rs = await Promise.all([0, 1, 2].map(() => httpRequest(s.port, { path: '/img/big.bin' })));
    for (const r of rs) {
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(big.length);
      expect(sha(r.body)).toBe(sha(big));
    }
  });
});

describe('check-static / static-map2 server (§17 checks 3, 4 with static-safe, 5, 6, 7, 8)', () => {
  let s: ServerHandle;
  beforeAll(async () => {
    s = await startServer([
      '--http-socket', '127.0.0.1:0',
      '--check-static', pub, '--static-index', 'index.html',
      '--static-map2', `/img=${srv}`, '--static-safe', '/etc',
      '--static-skip-ext', '.php',
      '--static-expires-type', 'text/css=3600',
      '--static-expire-type-mtime', 'text/x-mtime-test=3600', // the docs' spelling is an alias
      '--static-expires-mtime', 'old\\.css$ 3600',
      '--static-gzip-all', '--mimefile', path.join(root, 'extra.types'),
      '--wsgi-file', HELLO,
    ]);
  }, 60000);
  afterAll(async () => {
    expect(await s.stop()).toBe(0);
  }, 30000);

  test('3: static-map2 appends the whole PATH_INFO', async () => {
    const r = await httpRequest(s.port, { path: '/img/logo.png' });
    expect(r.status).toBe(200);
    expect(r.body.equals(logo)).toBe(true);
  });

  test('4: --static-safe /etc lets the symlink be served', async () => {
    const r = await httpRequest(s.port, { path: '/img/evil' });
    expect(r.body.toString()).toBe(fs.readFileSync('/etc/passwd', 'utf8'));
  });

  test('5: GET / serves the index file of the check-static dir', async () => {
    const r = await httpRequest(s.port, { path: '/' });
    expect(r.body.toString()).toBe('<h1>index</h1>');
    expect(r.headers['content-type']).toBe('text/html');
  });

  test('6: --static-skip-ext .php sends /x.php to the app', async () => {
    const r = await httpRequest(s.port, { path: '/x.php' });
    expect(r.body.toString()).toBe(APP_BODY);
  });

  test('7: Expires is now+1h by type, mtime+1h with the -mtime variant', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await httpRequest(s.port, { path: '/style.css' });
    const exp = Date.parse(r.headers['expires']!) / 1000;
    expect(exp).toBeGreaterThanOrEqual(before + 3600 - 1);
    expect(exp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 3600 + 1);
    const old = await httpRequest(s.port, { path: '/old.css' });
    // old.css matches the type rule first (uWSGI's order: type rules before regexp rules).
    expect(old.headers['expires']).toBeDefined();
    expect(old.headers['last-modified']).toBe(new Date(FIXED_MTIME * 1000).toUTCString());
  });

  test('8: gzip variant with the original MIME type when accepted, plain file otherwise', async () => {
    const gz = await httpRequest(s.port, { path: '/a.js', headers: { 'Accept-Encoding': 'gzip, deflate' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers['content-type']).toBe('application/javascript');
    expect(gz.body.equals(fs.readFileSync(path.join(pub, 'a.js.gz')))).toBe(true);
    // .br wins over .gz when both are accepted; q=0 refuses an encoding.
    const br = await httpRequest(s.port, { path: '/a.js', headers: { 'Accept-Encoding': 'gzip, br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(zlib.brotliDecompressSync(br.body).toString()).toBe(jsText);
    const noBr = await httpRequest(s.port, { path: '/a.js', headers: { 'Accept-Encoding': 'br;q=0, gzip' } });
    expect(noBr.headers['content-encoding']).toBe('gzip');
    const plain = await httpRequest(s.port, { path: '/a.js' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(jsText);
  });
});

describe('expires by file mtime (§17 check 7, -mtime variant)', () => {
  let s: ServerHandle;
  beforeAll(async () => {
    s = await startServer(['--http-socket', '127.0.0.1:0', '--check-static', pub, '--static-expires-type-mtime', 'text/css=3600', '--wsgi-file', HELLO]);
  }, 60000);
  afterAll(async () => {
    expect(await s.stop()).toBe(0);
  }, 30000);

  test('Expires = mtime + 3600', async () => {
    const r = await httpRequest(s.port, { path: '/old.css' });
    expect(r.headers['expires']).toBe(new Date((FIXED_MTIME + 3600) * 1000).toUTCString());
  });
});

describe('file-serve-mode (§17 check 9)', () => {
  let s: ServerHandle;
  beforeAll(async () => {
    s = await startServer(['--http-socket', '127.0.0.1:0', '--static-map', `/img=${img}`, '--file-serve-mode', 'x-accel-redirect', '--wsgi-file', HELLO]);
  }, 60000);
  afterAll(async () => {
    expect(await s.stop()).toBe(0);
  }, 30000);

  test('9: X-Accel-Redirect names the file and the body is empty', async () => {
    const r = await httpRequest(s.port, { path: '/img/logo.png' });
    expect(r.status).toBe(200);
    expect(r.headers['x-accel-redirect']).toBe(path.join(img, 'logo.png'));
    expect(r.body.length).toBe(0);
  });
});

describe('bad static options fail start-up', () => {
  test('an unknown file-serve-mode is refused with TSUWSGI_E_INVALID_OPTION', async () => {
    const s = await startServer(['--http-socket', '127.0.0.1:0', '--static-map', `/img=${img}`, '--file-serve-mode', 'carrier-pigeon', '--wsgi-file', HELLO], { waitReady: false });
    const exit = await s.exited;
    expect(exit.code).not.toBe(0);
    expect(s.logs()).toMatch(/file-serve-mode.*carrier-pigeon/);
  }, 30000);
});

describe('uwsgi protocol socket with --check-static-docroot', () => {
  let s: ServerHandle;
  beforeAll(async () => {
    s = await startServer(['--socket', '127.0.0.1:0', '--check-static-docroot', '--wsgi-file', HELLO]);
  }, 60000);
  afterAll(async () => {
    expect(await s.stop()).toBe(0);
  }, 30000);

  test('DOCUMENT_ROOT from the front end is a lookup root; without it the app answers', async () => {
    const addr = s.sockets[0]!;
    const out = await uwsgiRequest(addr, stdVars({ REQUEST_URI: '/index.html', PATH_INFO: '/index.html', DOCUMENT_ROOT: pub }));
    const text = out.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).toMatch(/\r\nContent-Length: 14\r\n/);
    expect(text.endsWith('\r\n\r\n<h1>index</h1>')).toBe(true);
    const none = await uwsgiRequest(addr, stdVars({ REQUEST_URI: '/index.html', PATH_INFO: '/index.html', SCRIPT_NAME: '' }));
    expect(none.toString('latin1')).toContain(APP_BODY);
  });
});
