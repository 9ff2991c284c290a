/**
 * gridfs (`gridfs:db=…,itemname=…`): files served from MongoDB GridFS, as uWSGI 2.0's
 * plugins/gridfs/gridfs.cc serves them (status, headers, chunks in order), against a fake
 * MongoDB that speaks the wire protocol to the official driver (test/helpers/mongo-server.ts):
 * Debian 12 has no MongoDB, and Debian's uwsgi-plugin-mongo uses the legacy C++ driver over
 * OP_QUERY, so there is no side-by-side comparison with uWSGI here.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { httpRequest } from '../helpers/http-raw.ts';
import { FakeMongoServer, startSilentServer } from '../helpers/mongo-server.ts';
import { fixture, freePort, runTsuwsgi, startServer, type ServerHandle } from '../helpers/server.ts';

const UPLOADED = new Date('2026-01-02T03:04:05.678Z');

function bytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

describe('gridfs: serving GridFS files as a route action', () => {
  let mongo: FakeMongoServer;
  let silent: { port: number; stop(): Promise<void> };
  let ts: ServerHandle;
  const hello = Buffer.from('hello gridfs\n');
  const big = bytes(300_000);
  let downPort = 0;

  beforeAll(async () => {
    // Small batches: the 300-chunk file needs several getMore round trips.
    mongo = await FakeMongoServer.start({ batchLimit: 16 });
    silent = await startSilentServer();
    downPort = await freePort();
    mongo.seedFile({ filename: 'hello.txt', data: hello, uploadDate: UPLOADED });
    mongo.seedFile({ filename: 'big.bin', data: big, chunkSize: 1000 });
    mongo.seedFile({ filename: 'pics/cat.png', data: Buffer.from('not really a png'), uploadDate: UPLOADED, md5: false });
    mongo.seedFile({ filename: 'rev.txt', data: Buffer.from('old'), uploadDate: new Date('2020-01-01T00:00:00Z') });
    mongo.seedFile({ filename: 'rev.txt', data: Buffer.from('new'), uploadDate: new Date('2021-01-01T00:00:00Z') });
    mongo.seedFile({ filename: 'rev.txt', data: Buffer.from('mid'), uploadDate: new Date('2020-06-01T00:00:00Z') });
    mongo.seedFile({ filename: 'site__index.html', data: Buffer.from('<p>home</p>'), uploadDate: UPLOADED });
    mongo.seedFile({ filename: 'other.txt', data: Buffer.from('in the media bucket'), bucket: 'media', db: 'assets' });
    mongo.seedFile({ filename: 'empty.txt', data: Buffer.alloc(0) });
    mongo.seedFile({ filename: 'café.txt', data: Buffer.from('é') });
    const srv = `server=${mongo.address},db=test`;
    ts = await startServer([
      '--plugin', 'gridfs',
      '--http-socket', '127.0.0.1:0',
      '--wsgi-file', fixture('hello.py'),
      '--socket-timeout', '2',
      '--route', `^/full/(.*)$ gridfs:${srv},itemname=$1,etag=1,md5=1,orig_filename=1`,
      '--route', `^/nomime/(.*)$ gridfs:${srv},itemname=$1,no_mime=1`,
      '--route', `^/img/(.+)$ gridfs:${srv},itemname=pics/$1,etag=1,md5=1`,
      '--route', `^/media/(.+)$ gridfs:server=${mongo.address},db=assets,bucket=media,item=$1`,
      '--route', `^/[^/]+\\.html$ gridfs:${srv},prefix=site__,skip_slash=1`,
      '--route', `^/auth/(.*)$ gridfs:${srv},itemname=$1,username=bob,password=secret`,
      '--route', `^/down/(.*)$ gridfs:server=127.0.0.1:${downPort},db=test,itemname=$1,timeout=2`,
      '--route', `^/silent/(.*)$ gridfs:server=127.0.0.1:${silent.port},db=test,itemname=$1,timeout=1`,
      '--route', `^/(.*\\.(txt|bin))$ gridfs:${srv},itemname=$1`,
    ]);
  });

  afterAll(async () => {
    if (ts) expect(await ts.stop()).toBe(0);
    await silent?.stop();
    await mongo?.stop();
    // Every command the driver sent was one the fake server knows: no surprise was hidden.
    expect(mongo?.unknownCommands ?? []).toEqual([]);
  });

  it('serves a file whole: 200 with Content-Type, Content-Length, Last-Modified, ETag, Content-MD5, Content-Disposition', async () => {
    const r = await httpRequest(ts.port, { path: '/full/hello.txt' });
    expect(r.status).toBe(200);
    expect(r.body.equals(hello)).toBe(true);
    const md5 = crypto.createHash('md5').update(hello);
    const digest = md5.digest();
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['content-length']).toBe(String(hello.length));
    expect(r.headers['last-modified']).toBe('Fri, 02 Jan 2026 03:04:05 GMT');
    expect(r.headers.etag).toBe(`"${digest.toString('hex')}"`);
    // RFC 1864: base64 of the 16-byte digest (uWSGI encodes the hex text instead).
    expect(r.headers['content-md5']).toBe(digest.toString('base64'));
    expect(r.headers['content-disposition']).toBe('inline; filename="hello.txt"');
  });

  it('sends a file of many chunks byte for byte, in order (several getMore batches)', async () => {
    const before = mongo.commands.filter((c) => c === 'getMore').length;
    const r = await httpRequest(ts.port, { path: '/big.bin' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(big.length));
    expect(r.body.length).toBe(big.length);
    expect(r.body.equals(big)).toBe(true);
    expect(mongo.commands.filter((c) => c === 'getMore').length - before).toBeGreaterThanOrEqual(18);
  });

  it('answers 404 Not Found for a file that is not in GridFS', async () => {
    const r = await httpRequest(ts.port, { path: '/missing.txt' });
    expect(r.status).toBe(404);
    expect(r.body.toString()).toBe('Not Found');
  });

  it('HEAD: the same head (Content-Length of the file) and no body', async () => {
    const r = await httpRequest(ts.port, { method: 'HEAD', path: '/full/hello.txt' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(hello.length));
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.body.length).toBe(0);
  });

  it('itemname= is expanded per request ($1 of the route)', async () => {
    const r = await httpRequest(ts.port, { path: '/img/cat.png' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('not really a png');
    expect(r.headers['content-type']).toBe('image/png');
    // A file without an md5 field gets neither ETag nor Content-MD5.
    expect(r.headers.etag).toBeUndefined();
    expect(r.headers['content-md5']).toBeUndefined();
  });

  it('item= (alias) and bucket= read BUCKET.files / BUCKET.chunks of another db', async () => {
    const r = await httpRequest(ts.port, { path: '/media/other.txt' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('in the media bucket');
  });

  it('without itemname=, the name is prefix + PATH_INFO without its slash (skip_slash)', async () => {
    // PATH_INFO "/index.html" → "site__" + "index.html".
    const r = await httpRequest(ts.port, { path: '/index.html' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('<p>home</p>');
    expect(r.headers['content-type']).toBe('text/html');
  });

  it('a name beyond ASCII: the percent-decoded PATH_INFO bytes are read as UTF-8, as MongoDB stores names', async () => {
    const r = await httpRequest(ts.port, { path: '/caf%C3%A9.txt' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('é');
  });

  it('serves the newest revision of a name (by uploadDate)', async () => {
    const r = await httpRequest(ts.port, { path: '/rev.txt' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('new');
  });

  it('no_mime=1: no Content-Type', async () => {
    const r = await httpRequest(ts.port, { path: '/nomime/hello.txt' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBeUndefined();
  });

  it('an empty file: 200 with Content-Length 0', async () => {
    const r = await httpRequest(ts.port, { path: '/empty.txt' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('0');
    expect(r.body.length).toBe(0);
  });

  it('refused credentials: 403 Forbidden and one log line', async () => {
    const r = await httpRequest(ts.port, { path: '/auth/hello.txt' });
    expect(r.status).toBe(403);
    await ts.waitForLog(/\[uwsgi-gridfs\]: .*Authentication failed/);
  });

  it('a server that is down (connection refused): 502 Bad Gateway within the timeout, one log line, the server goes on', async () => {
    const t0 = Date.now();
    const r = await httpRequest(ts.port, { path: '/down/hello.txt' });
    expect(r.status).toBe(502);
    expect(Date.now() - t0).toBeLessThan(5000);
    await ts.waitForLog(new RegExp(`\\[uwsgi-gridfs\\]: 127\\.0\\.0\\.1:${downPort}/test "hello.txt": .*ECONNREFUSED`));
    const again = await httpRequest(ts.port, { path: '/full/hello.txt' });
    expect(again.status).toBe(200);
  });

  it('a server that accepts and never answers: 504 Gateway Timeout after timeout= seconds', async () => {
    const t0 = Date.now();
    const r = await httpRequest(ts.port, { path: '/silent/hello.txt' });
    const took = Date.now() - t0;
    expect(r.status).toBe(504);
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(5000);
    await ts.waitForLog(/\[uwsgi-gridfs\]: 127\.0\.0\.1:\d+\/test "hello.txt": .*raise timeout=/);
  });

  it('keeps one client per server: later requests (other dbs and buckets too) open no new connection', async () => {
    expect((await httpRequest(ts.port, { path: '/full/hello.txt' })).status).toBe(200);
    const before = mongo.connectionsAccepted;
    for (const p of ['/full/hello.txt', '/big.bin', '/media/other.txt', '/missing.txt', '/img/cat.png']) {
      expect((await httpRequest(ts.port, { path: p })).status).toBeLessThan(500);
    }
    expect(mongo.connectionsAccepted).toBe(before);
  });
});

/** A GET whose response the test reads only when it wants: the client side of back-pressure. */
async function slowGet(port: number, path: string): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = net.createConnection({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  // Wait for the first bytes, then stop reading: the kernel buffers fill, then the server's.
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.pause();
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** `p`, or a failure naming the step when it takes longer than `ms` (a hang shows where it is). */
async function within<T>(step: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${ms} ms for ${step}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('gridfs: streaming with back-pressure', () => {
  let mongo: FakeMongoServer;
  let ts: ServerHandle;
  // 24 MB in 4 KB chunks, 16 per batch: 384 batches for the whole file. Larger than what the
  // kernel's socket buffers can hold on loopback (autotuned to several MB each side), so a
  // paused client really stops the reads before the end of the file.
  const huge = bytes(24 * 1024 * 1024);
  const BATCHES = huge.length / 4096 / 16;

  beforeAll(async () => {
    mongo = await FakeMongoServer.start({ batchLimit: 16 });
    mongo.seedFile({ filename: 'huge.bin', data: huge, chunkSize: 4096 });
    ts = await startServer(['--plugin', 'gridfs', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--route', `^/(.*)$ gridfs:server=${mongo.address},db=test,itemname=$1,timeout=3`]);
  });

  afterAll(async () => {
    if (ts) expect(await ts.stop()).toBe(0);
    await mongo?.stop();
    expect(mongo?.unknownCommands ?? []).toEqual([]);
  });

  const getMores = (): number => mongo.commands.filter((c) => c === 'getMore').length;

  it('a client that stops reading stops the chunk reads; when it reads again the file arrives whole', async () => {
    const before = getMores();
    const c = await slowGet(ts.port, '/huge.bin');
    // The reads go on until the socket buffers are full, then stop: wait until the count holds
    // still for half a second (how long the buffers take to fill depends on the machine's load).
    let paused = getMores() - before;
    const deadline = Date.now() + 15000;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const now = getMores() - before;
      if (now === paused) break;
      paused = now;
      if (Date.now() > deadline) throw new Error(`the chunk reads did not stop while the client was not reading (${paused} getMores so far)`);
    }
    expect(paused).toBeLessThan(BATCHES - 1);
    c.socket.resume();
    await c.closed;
    const raw = c.received();
    const body = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
    expect(raw.subarray(0, 15).toString()).toBe('HTTP/1.1 200 OK');
    expect(body.length).toBe(huge.length);
    expect(body.equals(huge)).toBe(true);
  }, 60000);

  it('a client that leaves mid-file: the cursor is killed (killCursors), the server goes on', async () => {
    const kills = mongo.commands.filter((c) => c === 'killCursors').length;
    const c = await slowGet(ts.port, '/huge.bin');
    await new Promise((r) => setTimeout(r, 300));
    c.socket.destroy();
    await until(() => mongo.commands.filter((x) => x === 'killCursors').length > kills);
    expect((await httpRequest(ts.port, { path: '/missing' })).status).toBe(404);
  }, 60000);

  it('the server failing mid-file cuts the connection (the Content-Length is not met) and logs one line', async () => {
    const c = await within('the first bytes of the response', slowGet(ts.port, '/huge.bin'), 15000);
    await within('the fake MongoDB to stop', mongo.stop(), 10000);
    c.socket.resume();
    await within(`tsuwsgi to cut the connection (${c.received().length} bytes received)`, c.closed, 20000);
    const raw = c.received();
    expect(raw.subarray(0, 15).toString()).toBe('HTTP/1.1 200 OK');
    expect(raw.length).toBeLessThan(huge.length);
    await ts.waitForLog(/\[uwsgi-gridfs\]: 127\.0\.0\.1:\d+\/test "huge\.bin": .*\(the response was cut\)/);
  }, 60000);
});

describe('gridfs: rules refused at start-up', () => {
  it.each([
    ['no db', 'gridfs:server=127.0.0.1:27017,itemname=$1', /you need to specify a "db" name/],
    ['an unknown key', 'gridfs:db=test,etags=1', /unknown key "etags"/],
    ['a bad timeout', 'gridfs:db=test,timeout=soon', /timeout "soon" is not a number/],
    ['a bad server', 'gridfs:db=test,server=mongodb://x', /is not HOST or HOST:PORT/],
    ['a username without password', 'gridfs:db=test,username=bob', /username and password go together/],
  ])('%s', async (_what, action, message) => {
    const r = await runTsuwsgi(['--plugin', 'gridfs', '--http-socket', '127.0.0.1:0', '--route', `^/ ${action}`], { timeoutMs: 30000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/invalid "gridfs:" rule in --route/);
    expect(r.output).toMatch(message);
  });

  it('--gridfs-mount is refused with the equivalent route', async () => {
    const r = await runTsuwsgi(['--plugin', 'gridfs', '--http-socket', '127.0.0.1:0', '--gridfs-mount', 'db=test,skip_slash=1'], { timeoutMs: 30000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/--route '\^\/ gridfs:db=test,skip_slash=1'/);
  });
});
