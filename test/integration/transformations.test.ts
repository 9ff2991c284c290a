/**
 * Response transformations end to end (spec/subsystems.md §7): real tsuwsgi processes with
 * routing rules that append transformations, in front of transform_app.py. Covers the five
 * acceptance checks of §7 plus flush, fixcl/forcecl, gzip of an empty body, the uwsgi front
 * end (where `chunked:` frames the body itself), routing answers, static files, and argument
 * errors at start-up.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { httpRequest, parseResponse, rawHttp, RawHttpConnection, rawRequest, type HttpRequestOptions, type HttpResult } from '../helpers/http-raw.ts';
import { exchange, stdVars, uwsgiPacket } from '../helpers/uwsgi-client.ts';
import { fixture, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const APP = ['--wsgi-file', fixture('transform_app.py')];

/** The same bytes transform_app.py's /big produces: sha256 in counter mode. */
function pseudoRandom(n: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < n; i++) {
    const d = createHash('sha256').update(`tsuwsgi-${i}`).digest();
    parts.push(d);
    size += d.length;
  }
  return Buffer.concat(parts).subarray(0, n);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function get(srv: ServerHandle, p: string, o: HttpRequestOptions = {}): Promise<HttpResult> {
  return httpRequest(srv.port, { path: p, ...o });
}

/** Every arrival on a raw connection for one request, with times relative to when it was sent. */
async function timedRequest(port: number, target: string, headers: Record<string, string>): Promise<{ firstMs: number; lastMs: number; raw: Buffer }> {
  const c = await RawHttpConnection.connect(port);
  try {
    const t0 = Date.now();
    await c.write(rawRequest('GET', target, { ...headers, Connection: 'close' }));
    const res = await c.readResponse({ timeoutMs: 20000 });
    expect(c.arrivals.length).toBeGreaterThan(0);
    return { firstMs: c.arrivals[0]!.at - t0, lastMs: c.arrivals[c.arrivals.length - 1]!.at - t0, raw: res.raw };
  } finally {
    c.close();
  }
}

/** De-chunk a `Transfer-Encoding: chunked` body, checking the framing as it goes. */
function dechunk(wire: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let pos = 0; ; ) {
    const eol = wire.indexOf('\r\n', pos);
    if (eol < 0) throw new Error(`no chunk size line at ${pos}: ${JSON.stringify(wire.toString('latin1', pos, pos + 40))}`);
    const size = parseInt(wire.toString('latin1', pos, eol), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size at ${pos}`);
    if (size === 0) {
      expect(wire.subarray(eol).toString('latin1')).toBe('\r\n\r\n');
      return Buffer.concat(parts);
    }
    parts.push(wire.subarray(eol + 2, eol + 2 + size));
    expect(wire.toString('latin1', eol + 2 + size, eol + 4 + size)).toBe('\r\n');
    pos = eol + 4 + size;
  }
}

describe('gzip + chunked (§7 acceptance 1 and 2, the uwsgi front end)', () => {
  let srv: ServerHandle;
  let uwsgiAddr: string;

  beforeAll(async () => {
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', '--socket', '127.0.0.1:0', ...APP,
      '--route-if', 'contains:${HTTP_ACCEPT_ENCODING};gzip gzip:',
      // X-Fixcl: 1 buffers the same gzip response with fixcl: instead of streaming it chunked.
      '--route-if', 'equal:${HTTP_X_FIXCL};1 fixcl:',
      '--route-if-not', 'equal:${HTTP_X_FIXCL};1 chunked:',
    ]);
    uwsgiAddr = srv.sockets[1]!;
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('§7/1 gzip + chunked: headers, a body that gunzips to hello, and 0\\r\\n\\r\\n on the wire', async () => {
    await withServerLog(srv, async () => {
      const { data } = await rawHttp(srv.port, rawRequest('GET', '/hello', { 'Accept-Encoding': 'gzip', Connection: 'close' }));
      const parsed = parseResponse(data, { eof: true })!.response;
      expect(parsed.status).toBe(200);
      expect(parsed.header('Content-Encoding')).toBe('gzip');
      expect(parsed.header('Transfer-Encoding')).toBe('chunked');
      expect(parsed.header('Content-Length')).toBeUndefined();
      expect(data.subarray(-5).toString('latin1')).toBe('0\r\n\r\n');
      expect(zlib.gunzipSync(parsed.body).toString()).toBe('hello');
    });
  });

  it('§7/1 without Accept-Encoding the body is plain (only chunked applies)', async () => {
    const r = await get(srv, '/hello');
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.body.toString()).toBe('hello');
  });

  it('§7/2 gzip + chunked stream: the first chunk arrives long before the end; fixcl buffers it and adds Content-Length', async () => {
    await withServerLog(srv, async () => {
      // /slow: chunk 0 at once, then one per second (2 s of sleeping in all).
      const streamed = await timedRequest(srv.port, '/slow?n=3&every=1', { 'Accept-Encoding': 'gzip' });
      const s = parseResponse(streamed.raw, { eof: true })!.response;
      expect(zlib.gunzipSync(s.body).toString()).toBe('chunk-0\nchunk-1\nchunk-2\n');
      expect(s.header('Transfer-Encoding')).toBe('chunked');
      // The app sleeps 2 s after producing chunk 0: a streaming chain delivers it well before
      // the end. Margins are wide: only a 0.5 s stall of the first chunk could break this.
      expect(streamed.lastMs - streamed.firstMs).toBeGreaterThanOrEqual(1500);
      expect(streamed.firstMs).toBeLessThan(1500);

      const buffered = await timedRequest(srv.port, '/slow?n=3&every=1', { 'Accept-Encoding': 'gzip', 'X-Fixcl': '1' });
      const b = parseResponse(buffered.raw, { eof: true })!.response;
      expect(zlib.gunzipSync(b.body).toString()).toBe('chunk-0\nchunk-1\nchunk-2\n');
      expect(b.header('Transfer-Encoding')).toBeUndefined();
      expect(b.header('Content-Length')).toBe(String(b.body.length));
      // Nothing leaves before the app is done (≥ 2 s of sleep), then everything at once.
      expect(buffered.firstMs).toBeGreaterThanOrEqual(1900);
      expect(buffered.lastMs - buffered.firstMs).toBeLessThan(1000);
      expect(buffered.firstMs - streamed.firstMs).toBeGreaterThanOrEqual(1000);
    });
  });

  it('gzip leaves an empty body alone (no Content-Encoding, no chunk framing)', async () => {
    const { data } = await rawHttp(srv.port, rawRequest('GET', '/empty', { 'Accept-Encoding': 'gzip', Connection: 'close' }));
    const r = parseResponse(data, { eof: true })!.response;
    expect(r.status).toBe(200);
    expect(r.header('Content-Encoding')).toBeUndefined();
    expect(r.header('Transfer-Encoding')).toBeUndefined();
    expect(r.header('Content-Length')).toBe('0');
    expect(r.body.length).toBe(0);
  });

  it('through the uwsgi protocol front end, chunked frames the body itself and gzip still applies', async () => {
    await withServerLog(srv, async () => {
      const r = await exchange(uwsgiAddr, uwsgiPacket(stdVars({ REQUEST_URI: '/hello', PATH_INFO: '/hello', SCRIPT_NAME: '', HTTP_ACCEPT_ENCODING: 'gzip' })));
      expect(r.end).toBe('close');
      const text = r.data.toString('latin1');
      const headEnd = text.indexOf('\r\n\r\n');
      expect(headEnd).toBeGreaterThan(0);
      const head = text.slice(0, headEnd);
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(head).toMatch(/\r\nContent-Encoding: gzip(\r\n|$)/i);
      expect(head).toMatch(/\r\nTransfer-Encoding: chunked(\r\n|$)/i);
      expect(head).not.toMatch(/Content-Length/i);
      // The framing is on the wire exactly once: de-chunking once yields a valid gzip stream.
      const body = dechunk(r.data.subarray(headEnd + 4));
      expect(zlib.gunzipSync(body).toString()).toBe('hello');
    });
  });
});

describe('toupper, tofile, template, flush, forcecl, routing answers and static files (§7 acceptance 3 and 4)', () => {
  let srv: ServerHandle;
  const dir = fs.realpathSync(tmpDir('tsuwsgi-transform-'));
  const out = path.join(dir, 't.out');
  const flushOut = path.join(dir, 'flush.out');
  const staticDir = path.join(dir, 'static');
  fs.mkdirSync(staticDir);
  fs.writeFileSync(path.join(staticDir, 'page.txt'), 'static content\n');

  beforeAll(async () => {
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', ...APP,
      '--static-map', `/static=${staticDir}`,
      '--route', '^/(hello|notfound)$ toupper:',
      '--route', `^/(hello|notfound)$ tofile:filename=${out}`,
      // The `name` key alias, `$1` in the filename, a mode, and the `to-file` alias.
      '--route', `^/named/(\\w+)$ to-file:name=${dir}/named-$1.out,mode=0600`,
      '--route', '^/template(.*)$ template:',
      '--route', `^/unwritable$ tofile:filename=${dir}/no-such-dir/x.out`,
      // toupper → flush → tofile: streams uppercase to the client and stores the whole body.
      '--route-if', 'equal:${HTTP_X_T};flush toupper:',
      '--route-if', 'equal:${HTTP_X_T};flush flush:',
      '--route-if', `equal:\${HTTP_X_T};flush tofile:filename=${flushOut}`,
      '--route-if', 'equal:${HTTP_X_T};forcecl toupper:',
      '--route-if', 'equal:${HTTP_X_T};forcecl forcecl:',
      '--route-if', 'equal:${HTTP_X_T};gzipcl gzip:',
      '--route-if', 'equal:${HTTP_X_T};gzipcl fixcl:',
      '--route', '^/static/ toupper:',
      '--route', '^/teapot toupper:',
      '--route', '^/teapot return:418',
      '--route', '^/gzteapot gzip:',
      '--route', '^/gzteapot chunked:',
      '--route', '^/gzteapot return:418',
      '--route', '^/forbidden toupper:',
      '--route', '^/forbidden break:403 Forbidden',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('§7/3 toupper + tofile: the client and the file both get HELLO; a 404 leaves the file untouched', async () => {
    await withServerLog(srv, async () => {
      const r = await get(srv, '/hello');
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('HELLO');
      // toupper keeps the length: the app's Content-Length is still right and kept.
      expect(r.headers['content-length']).toBe('5');
      expect(fs.readFileSync(out, 'utf8')).toBe('HELLO');
      expect((fs.statSync(out).mode & 0o777).toString(8)).toBe((0o644 & ~process.umask()).toString(8));
      const before = fs.statSync(out).mtimeMs;
      await sleep(20);
      const nf = await get(srv, '/notfound');
      expect(nf.status).toBe(404);
      expect(nf.body.toString()).toBe('NOT HERE');
      expect(fs.readFileSync(out, 'utf8')).toBe('HELLO');
      expect(fs.statSync(out).mtimeMs).toBe(before);
    });
  });

  it('tofile truncates a longer old file, expands $1 in the filename and applies mode=', async () => {
    const target = path.join(dir, 'named-abc.out');
    fs.writeFileSync(target, 'a much longer stale content');
    fs.chmodSync(target, 0o600);
    const r = await get(srv, '/named/abc');
    expect(r.body.toString()).toBe('hello');
    expect(fs.readFileSync(target, 'utf8')).toBe('hello');
    const fresh = path.join(dir, 'named-new.out');
    await get(srv, '/named/new');
    expect(fs.readFileSync(fresh, 'utf8')).toBe('hello');
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o600 & ~process.umask());
  });

  it('a tofile that cannot write logs why and still answers the client', async () => {
    const r = await get(srv, '/unwritable');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hello');
    await srv.waitForLog(/tofile: open\(".*\/no-such-dir\/x\.out"\): ENOENT/);
  });

  it('§7/4 template expands ${REMOTE_ADDR}, ${HTTP_*} and the rule capture $1 in the body', async () => {
    const r = await get(srv, '/template-x', { headers: { 'User-Agent': 'tester/1' } });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('ip=127.0.0.1 cap=-x ua=tester/1');
    // The length changed: the app's Content-Length is gone and the body is framed otherwise.
    expect(r.headers['content-length']).toBeUndefined();
  });

  it('flush streams each chunk to the client while tofile still stores the whole body', async () => {
    await withServerLog(srv, async () => {
      const t = await timedRequest(srv.port, '/slow?n=3&every=1', { 'X-T': 'flush' });
      const r = parseResponse(t.raw, { eof: true })!.response;
      expect(r.body.toString()).toBe('CHUNK-0\nCHUNK-1\nCHUNK-2\n');
      // Without the flush, tofile (buffering) would hold everything until the end.
      expect(t.lastMs - t.firstMs).toBeGreaterThanOrEqual(1500);
      // The file is written at the end of the response, just after the last byte.
      for (let i = 0; i < 100 && !fs.existsSync(flushOut); i++) await sleep(20);
      expect(fs.readFileSync(flushOut, 'utf8')).toBe('CHUNK-0\nCHUNK-1\nCHUNK-2\n');
    });
  });

  it('forcecl adds the Content-Length of a body the app streamed without one', async () => {
    const r = await get(srv, '/stream?n=3', { headers: { 'X-T': 'forcecl' } });
    expect(r.body.toString()).toBe('CHUNK-0\nCHUNK-1\nCHUNK-2\n');
    expect(r.headers['content-length']).toBe('24');
    expect(r.headers['transfer-encoding']).toBeUndefined();
  });

  it('forcecl keeps the app\'s Content-Length on a HEAD request (no body passes through the chain)', async () => {
    const r = await get(srv, '/plain', { method: 'HEAD', headers: { 'X-T': 'forcecl' } });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('5');
    expect(r.body.length).toBe(0);
  });

  it('fixcl after gzip sets the compressed length', async () => {
    // /plain: any path the app does not know answers "hello" (and no toupper rule matches it).
    const r = await get(srv, '/plain', { headers: { 'X-T': 'gzipcl' } });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(r.headers['content-length']).toBe(String(r.body.length));
    expect(r.body.length).not.toBe(5);
    expect(zlib.gunzipSync(r.body).toString()).toBe('hello');
  });

  it('transformations apply to routing answers: return: (toupper, gzip + chunked) and break:', async () => {
    await withServerLog(srv, async () => {
      const up = await get(srv, '/teapot');
      expect(up.status).toBe(418);
      expect(up.body.toString()).toBe("I'M A TEAPOT");
      expect(up.headers['content-length']).toBe('12');
      const gz = await get(srv, '/gzteapot');
      expect(gz.status).toBe(418);
      expect(gz.headers['content-encoding']).toBe('gzip');
      expect(gz.headers['transfer-encoding']).toBe('chunked');
      expect(zlib.gunzipSync(gz.body).toString()).toBe("I'm a teapot");
      // break: has no body; the chain still passes its head through.
      const br = await get(srv, '/forbidden');
      expect(br.status).toBe(403);
      expect(br.body.length).toBe(0);
    });
  });

  it('transformations apply to static files (--static-map)', async () => {
    const r = await get(srv, '/static/page.txt');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('STATIC CONTENT\n');
    expect(r.headers['content-length']).toBe('15');
  });
});

describe('offload (§7 acceptance 5)', () => {
  const big = pseudoRandom(1024 * 1024);

  it('with --offload-threads 2, offload:10 delivers a 1 MB body intact; a misplaced offload: is refused', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', ...APP, '--offload-threads', '2', '--route-run', 'offload:10', '--route', '^/misplaced gzip:']);
    try {
      await withServerLog(srv, async () => {
        const r = await get(srv, '/big');
        expect(r.status).toBe(200);
        expect(r.body.length).toBe(big.length);
        expect(sha256(r.body)).toBe(sha256(big));
        expect(r.headers['content-length']).toBe(String(big.length));
        // Several at once, each with its own temporary file.
        const many = await Promise.all([1, 2, 3].map(() => get(srv, '/big?n=300000')));
        for (const m of many) expect(sha256(m.body)).toBe(sha256(big.subarray(0, 300000)));
        const small = await get(srv, '/hello');
        expect(small.body.toString()).toBe('hello');
        // The spill files are unlinked as soon as they are opened: none is ever left behind.
        expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tsuwsgi-offload-'))).toEqual([]);

        const bad = await get(srv, '/misplaced');
        expect(bad.status).toBe(500);
        await srv.waitForLog(/TSUWSGI_E_TRANSFORM\] "offload:" must be the last transformation of the chain, but "gzip:" follows it/);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  });

  it('offload frees the app worker from a client that does not read (and without it the worker stays stuck)', async () => {
    const srv = await startServer([
      '--http-socket', '127.0.0.1:0', ...APP, '--processes', '1', '--threads', '1', '--offload-threads', '1',
      '--route-if', 'equal:${HTTP_X_OFFLOAD};1 offload:',
    ]);
    const stuck: RawHttpConnection[] = [];
    // A client that asks for 16 MiB and never reads: far more than the socket buffers hold.
    const stall = async (headers: Record<string, string>): Promise<void> => {
      const c = await RawHttpConnection.connect(srv.port);
      c.socket.pause();
      stuck.push(c);
      await c.write(rawRequest('GET', `/big?n=${16 * 1024 * 1024}`, headers));
    };
    try {
      await withServerLog(srv, async () => {
        await stall({ 'X-Offload': '1' });
        // The only app worker produced the body into the core's offload buffer and is free.
        const t0 = Date.now();
        const r = await get(srv, '/hello', { timeoutMs: 15000 });
        expect(r.body.toString()).toBe('hello');
        expect(Date.now() - t0).toBeLessThan(5000);

        // The control: without offload the worker is held by backpressure from the same client.
        await stall({});
        await sleep(500);
        await expect(get(srv, '/hello', { timeoutMs: 2000 })).rejects.toThrow(/timed out/);
      });
    } finally {
      for (const c of stuck) c.close();
      expect(await srv.stop()).toBe(0);
    }
  });

  it('without offload threads, offload: breaks the request (no response, the connection closes) and logs an error', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', ...APP, '--route-run', 'offload:10']);
    try {
      await withServerLog(srv, async () => {
        const { data, closed } = await rawHttp(srv.port, rawRequest('GET', '/big'));
        expect(closed).toBe(true);
        expect(data.length).toBe(0);
        await srv.waitForLog(/unable to use the offload transformation without offload threads/);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  });
});

describe('transformation arguments are checked at start-up', () => {
  const cases: Array<[string, RegExp]> = [
    ['tofile:', /invalid "tofile:" transformation in --route-run "tofile:": a filename is required/],
    ['tofile:filename=/tmp/x,colour=red', /invalid "tofile:" transformation in --route-run "tofile:filename=\/tmp\/x,colour=red": unknown key "colour"/],
    ['tofile:filename=/tmp/x,mode=999', /mode "999" is not an octal file mode/],
    ['tofile:/tmp/x', /invalid "tofile:" transformation .*"\/tmp\/x" is not key=value/],
    ['offload:lots', /invalid "offload:" transformation in --route-run "offload:lots": .*size in bytes/],
  ];
  it.each(cases)('--route-run %s fails with a clear message', async (rule, message) => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', ...APP, '--route-run', rule]);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/TSUWSGI_E_ROUTING/);
    expect(r.output).toMatch(message);
  });
});
