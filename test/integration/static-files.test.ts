/**
 * Static file serving (spec/subsystems.md §17): acceptance checks 1–11, path traversal and a
 * large file, against real tsuwsgi processes with the hello.py app as the fallback
 * (its body "Hello World" shows the app, not the file, answered).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { httpRequest, RawHttpConnection } from '../helpers/http-raw.ts';
import { sendFileOnSocket, sendfileStatus, type SendfileError } from '../../core/static/sendfile.ts';
import { stdVars, uwsgiRequest } from '../helpers/uwsgi-client.ts';
import { fixture, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

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

  test('a 5 MB file arrives intact over the uwsgi protocol, also to three clients at once', async () => {
    fs.writeFileSync(path.join(pub, 'big.bin'), big);
    const vars = stdVars({ REQUEST_URI: '/big.bin', PATH_INFO: '/big.bin', DOCUMENT_ROOT: pub });
    const outs = await Promise.all([0, 1, 2].map(() => uwsgiRequest(s.sockets[0]!, vars)));
    for (const out of outs) {
      const head = out.indexOf('\r\n\r\n');
      expect(out.toString('latin1', 0, head + 2)).toMatch(new RegExp(`^HTTP/1\\.1 200 OK\r\n[^]*Content-Length: ${big.length}\r\n`));
      expect(sha(out.subarray(head + 4))).toBe(sha(big));
    }
  });
});

describe('zero-copy bodies: sendfile(2) through the native addon (core/static/sendfile.ts)', () => {
  const zdir = path.join(root, 'zero-copy');
  /** Bigger than the socket buffers of both ends together, so a client that stops reading stalls the transfer. */
  const HUGE = 48 * 1024 * 1024;
  /** An odd size, so offsets and lengths are not page multiples. */
  const twoMeg = crypto.randomBytes(2 * 1024 * 1024 + 333);
  let s: ServerHandle;
  beforeAll(async () => {
    fs.mkdirSync(zdir, { recursive: true });
    fs.writeFileSync(path.join(zdir, 'two.bin'), twoMeg);
    fs.writeFileSync(path.join(zdir, 'small.txt'), 'small');
    // Sparse: 48 MiB of zeros that cost no disk.
    fs.closeSync(fs.openSync(path.join(zdir, 'huge.bin'), 'w'));
    fs.truncateSync(path.join(zdir, 'huge.bin'), HUGE);
    s = await startServer(['--http-socket', '127.0.0.1:0', '--static-map', `/z=${zdir}`, '--honour-range', '--socket-timeout', '2', '--wsgi-file', HELLO]);
  }, 60000);
  afterAll(async () => {
    expect(await s.stop()).toBe(0);
  }, 30000);

  /** Descriptors the server process holds (without --master it is the core worker too). */
  const fdCount = (): number => fs.readdirSync(`/proc/${s.pid}/fd`).length;

  /** A request on a raw connection that reads `readBytes` of the answer, then stops reading. */
  async function stalledClient(readBytes: number): Promise<RawHttpConnection> {
    const c = await RawHttpConnection.connect(s.port);
    await c.write('GET /z/huge.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    const deadline = Date.now() + 10000;
    while (c.pending.length < readBytes && !c.closed && Date.now() < deadline) await sleep(5);
    c.socket.pause();
    return c;
  }

  test('the addon is built and loads (CI installs a compiler: sendfile must be on there)', () => {
    // When this fails, the reason says what is missing (no compiler at `npm ci`, headers...).
    expect(sendfileStatus()).toEqual({ on: true });
    expect(s.logs()).not.toMatch(/sendfile\(2\) is off/);
  });

  test("the log line marks a body sent with sendfile(2) as uWSGI's does; --log-sendfile logs those lines even with --disable-logging", async () => {
    const quiet = await startServer(['--http-socket', '127.0.0.1:0', '--static-map', `/z=${zdir}`, '--disable-logging', '--log-sendfile', '1', '--wsgi-file', HELLO]);
    try {
      await withServerLog(quiet, async () => {
        expect((await httpRequest(quiet.port, { path: '/z/small.txt' })).status).toBe(200);
        expect((await httpRequest(quiet.port, { path: '/z/two.bin' })).body.length).toBe(twoMeg.length);
        expect((await httpRequest(quiet.port, { path: '/' })).status).toBe(200);
        // uWSGI 2.0.21: "[pid: N|app: -1|req: -1/1] ... => generated 100000 bytes in 0 msecs via sendfile() (HTTP/1.1 200) 3 headers in 129 bytes (0 switches on core 0)"
        await quiet.waitForLog(/\|app: -1\|req: -1\/\d+\] .* GET \/z\/two\.bin => generated 2097485 bytes in \d+ msecs via sendfile\(\) \(HTTP\/1\.1 200\) \d+ headers in \d+ bytes \(0 switches on core 0\)/);
      });
      // The small file was copied (one write with its head) and the app's request is not static:
      // --disable-logging keeps both out.
      expect(quiet.logs()).not.toMatch(/GET \/z\/small\.txt|GET \/ =>/);
    } finally {
      expect(await quiet.stop()).toBe(0);
    }
  });

  test("routing's header edits keep sendfile(2): the added header is there and the log says via sendfile()", async () => {
    const routed = await startServer(['--http-socket', '127.0.0.1:0', '--static-map', `/z=${zdir}`, '--route', '^/z/ addheader:X-Routed: yes', '--wsgi-file', HELLO]);
    try {
      await withServerLog(routed, async () => {
        const r = await httpRequest(routed.port, { path: '/z/two.bin' });
        expect(r.headers['x-routed']).toBe('yes');
        expect(r.body.equals(twoMeg)).toBe(true);
        await routed.waitForLog(/GET \/z\/two\.bin => generated 2097485 bytes in \d+ msecs via sendfile\(\)/);
      });
    } finally {
      expect(await routed.stop()).toBe(0);
    }
  });

  test('a 2 MiB file arrives byte for byte, to 16 clients at once', async () => {
    const rs = await Promise.all(Array.from({ length: 16 }, () => httpRequest(s.port, { path: '/z/two.bin' })));
    for (const r of rs) {
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe(String(twoMeg.length));
      expect(r.body.equals(twoMeg)).toBe(true);
    }
    await s.waitForLog(/GET \/z\/two\.bin => generated 2097485 bytes/);
  });

  test('Range requests send exactly the asked bytes (offset and length)', async () => {
    for (const [a, b] of [
      [0, 99_999],
      [1, 1_500_000],
      [70_001, twoMeg.length - 1],
    ] as const) {
      const r = await httpRequest(s.port, { path: '/z/two.bin', headers: { Range: `bytes=${a}-${b}` } });
      expect(r.status).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${a}-${b}/${twoMeg.length}`);
      expect(r.body.equals(twoMeg.subarray(a, b + 1))).toBe(true);
    }
  });

  test('keep-alive goes on after a sendfile body, also with pipelined requests', async () => {
    const c = await RawHttpConnection.connect(s.port);
    try {
      for (let i = 0; i < 3; i++) {
        await c.write('GET /z/two.bin HTTP/1.1\r\nHost: x\r\n\r\n');
        const r = await c.readResponse();
        expect(r.status).toBe(200);
        expect(r.body.equals(twoMeg)).toBe(true);
      }
      await c.write('GET /z/two.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /z/small.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /z/two.bin HTTP/1.1\r\nHost: x\r\n\r\n');
      const [r1, r2, r3] = [await c.readResponse(), await c.readResponse(), await c.readResponse()];
      expect(r1.body.equals(twoMeg)).toBe(true);
      expect(r2.body.toString()).toBe('small');
      expect(r3.body.equals(twoMeg)).toBe(true);
      expect(c.closed).toBe(false);
    } finally {
      c.close();
    }
  });

  test('clients that leave mid-transfer cost nothing: no crash, no descriptor left open', async () => {
    const before = fdCount();
    // Stalled then gone (the transfer waits for a writable socket and is cancelled), and
    // gone while data flows (sendfile itself sees the reset).
    const stalled = await Promise.all(Array.from({ length: 6 }, () => stalledClient(100_000)));
    for (const c of stalled) c.close();
    const flowing = await Promise.all(Array.from({ length: 6 }, () => RawHttpConnection.connect(s.port)));
    for (const c of flowing) {
      await c.write('GET /z/huge.bin HTTP/1.1\r\nHost: x\r\n\r\n');
      await c.readUntil('\r\n\r\n');
      c.socket.resetAndDestroy();
    }
    const deadline = Date.now() + 10000;
    while (fdCount() > before && Date.now() < deadline) await sleep(50);
    expect(fdCount()).toBeLessThanOrEqual(before);
    const r = await httpRequest(s.port, { path: '/z/two.bin' });
    expect(r.body.equals(twoMeg)).toBe(true);
    expect(s.hasExited).toBe(false);
  }, 30000);

  test('a client that reads nothing for --socket-timeout is cut off (the transfer does not pin the connection)', async () => {
    const c = await stalledClient(1);
    const before = fdCount();
    await sleep(3500);
    c.socket.resume();
    // The server closed it: what was in the buffers arrives, then the end, short of the file.
    // (A copied body has no write timeout: the connection would stay open.)
    if (!(await c.waitClosed(15000))) {
      throw new Error('the stalled transfer was not cut: the HTTP front end did not hand the body to sendfile (its ResponseSink needs sendFile(), core/static/sendfile.ts FileSendingSink)');
    }
    const head = c.pending.indexOf('\r\n\r\n');
    expect(head).toBeGreaterThan(0);
    expect(c.pending.length - head - 4).toBeLessThan(HUGE);
    expect(fdCount()).toBeLessThan(before);
    await s.waitForLog(/static file \S+huge\.bin: the client read nothing for --socket-timeout seconds/);
  }, 30000);
});

describe('the sendfile addon driven directly (core/static/sendfile.ts sendFileOnSocket)', () => {
  const dir = path.join(root, 'addon');
  const data = crypto.randomBytes(300_000);
  let server: net.Server;
  let ours: net.Socket;
  let peer: net.Socket;
  let fd: number;
  beforeAll(() => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'data.bin'), data);
    fs.closeSync(fs.openSync(path.join(dir, 'huge.bin'), 'w'));
    fs.truncateSync(path.join(dir, 'huge.bin'), 64 * 1024 * 1024);
  });
  beforeEach(async () => {
    server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    ours = await accepted;
    ours.on('error', () => undefined);
    peer.on('error', () => undefined);
  });
  afterEach(() => {
    ours.destroy();
    peer.destroy();
    server.close();
    if (fd >= 0) fs.closeSync(fd);
    fd = -1;
  });

  /** Everything the peer receives until it closes. */
  const received = (): Promise<Buffer> =>
    new Promise((resolve) => {
      const parts: Buffer[] = [];
      peer.on('data', (d: Buffer) => parts.push(d));
      peer.on('close', () => resolve(Buffer.concat(parts)));
    });

  const send = (file: string, offset: number, length: number, timeoutMs: number): Promise<{ err: SendfileError | null; sent: number }> =>
    new Promise((resolve) => {
      fd = fs.openSync(path.join(dir, file), 'r');
      const cancel = sendFileOnSocket(ours, fd, offset, length, timeoutMs, (err, sent) => resolve({ err, sent }));
      if (cancel === null) throw new Error('sendfile is off in this process (see the "addon is built" test)');
    });

  test('offset and length select exactly those bytes', async () => {
    const got = received();
    const r = await send('data.bin', 12_345, 200_001, 2000);
    expect(r).toEqual({ err: null, sent: 200_001 });
    ours.end();
    expect((await got).equals(data.subarray(12_345, 212_346))).toBe(true);
  });

  test('a file shorter than announced ends with EOF and the bytes that were there', async () => {
    const r = await send('data.bin', 0, data.length + 10, 2000);
    expect(r.err?.code).toBe('EOF');
    expect(r.sent).toBe(data.length);
    expect(r.err?.message).toMatch(/the file shrank/);
  });

  test('a peer that reads nothing gets ETIMEDOUT after the timeout, not before', async () => {
    peer.pause();
    const t0 = Date.now();
    const r = await send('huge.bin', 0, 64 * 1024 * 1024, 400);
    expect(r.err?.code).toBe('ETIMEDOUT');
    expect(r.sent).toBeGreaterThan(0);
    expect(r.sent).toBeLessThan(64 * 1024 * 1024);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
  });

  test('a peer that resets ends the transfer with its errno name', async () => {
    peer.pause();
    const done = send('huge.bin', 0, 64 * 1024 * 1024, 5000);
    setTimeout(() => peer.resetAndDestroy(), 100);
    const r = await done;
    expect(['ECONNRESET', 'EPIPE']).toContain(r.err?.code);
  });

  test('cancel stops a waiting transfer: no callback, its descriptor closed', async () => {
    peer.pause();
    const fds = (): number => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    fd = fs.openSync(path.join(dir, 'huge.bin'), 'r');
    let called = false;
    const cancel = sendFileOnSocket(ours, fd, 0, 64 * 1024 * 1024, 5000, () => {
      called = true;
    });
    expect(cancel).not.toBeNull();
    // Waiting for the peer: the transfer holds a duplicate of the socket.
    expect(fds()).toBe(before + 2);
    cancel!();
    cancel!();
    await sleep(50);
    expect(fds()).toBe(before + 1);
    expect(called).toBe(false);
  });

  test('bad arguments are refused with TSUWSGI_E_SENDFILE_ARGS', () => {
    fd = fs.openSync(path.join(dir, 'data.bin'), 'r');
    expect(() => sendFileOnSocket(ours, fd, -1, 10, 1000, () => undefined)).toThrow(expect.objectContaining({ code: 'TSUWSGI_E_SENDFILE_ARGS' }));
  });
});
