/**
 * The uwsgi binary protocol on --socket (spec/core.md §1.1–1.3 acceptance checks), spoken by
 * this file's own encoder (test/helpers/uwsgi-client.ts), never the core's codec.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseResponse } from '../helpers/http-raw.ts';
import { fixture, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';
import { encodeHeader, encodeVars, exchange, stdVars, uwsgiRequest } from '../helpers/uwsgi-client.ts';

const SUITE = fixture('suite.py');

function parse(buf: Buffer) {
  const p = parseResponse(buf, { eof: true });
  if (!p) throw new Error(`no complete HTTP response in ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`);
  return p.response;
}

function describeServer(name: string, socketSpec: () => string) {
  describe(name, () => {
    let srv: ServerHandle;
    let addr: string;

    beforeAll(async () => {
      srv = await startServer(['--socket', socketSpec(), '--wsgi-file', SUITE]);
      addr = srv.sockets[0]!;
    }, 60000);

    afterAll(async () => {
      if (srv) expect(await srv.stop()).toBe(0);
    }, 60000);

    const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);

    const hello = () => stdVars({ REQUEST_URI: '/hello', PATH_INFO: '/hello' });

    test('§1.1 #1: GET with the standard vars → HTTP/1.1 200 OK … Hello World, then the server closes', () =>
      withLog(async () => {
        const out = await uwsgiRequest(addr, hello());
        const text = out.toString('latin1');
        expect(text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
        expect(text).toMatch(/\r\nContent-Type: text\/html\r\n/i);
        expect(text.endsWith('Hello World')).toBe(true);
      }));

    test('§1.1 #2: SERVER_PROTOCOL HTTP/1.0 → HTTP/1.0 200 OK; omitted → HTTP/1.0 200 OK', () =>
      withLog(async () => {
        const v10 = await uwsgiRequest(addr, stdVars({ REQUEST_URI: '/hello', PATH_INFO: '/hello', SERVER_PROTOCOL: 'HTTP/1.0' }));
        expect(v10.toString('latin1')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
        const none = await uwsgiRequest(addr, stdVars({ REQUEST_URI: '/hello', PATH_INFO: '/hello', SERVER_PROTOCOL: undefined }));
        expect(none.toString('latin1')).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
        expect(none.toString('latin1').endsWith('Hello World')).toBe(true);
      }));

    test('§1.1 #3: an HTTP request on the uwsgi socket gets no answer; log "invalid request block size: 21573"', () =>
      withLog(async () => {
        const r = await exchange(addr, Buffer.from('GET / HTTP/1.0\r\n\r\n'), { timeoutMs: 10000 });
        expect(r.end).not.toBe('timeout');
        expect(r.data.length).toBe(0);
        await srv.waitForLog(/invalid request block size: 21573 \(max \d+\)\.\.\.skip/, 5000);
      }));

    test('§1.3 #1: modifier1 5 with no PSGI plugin → closed without answer; log "-- unavailable modifier requested: 5 --"', () =>
      withLog(async () => {
        const out = await uwsgiRequest(addr, hello(), { modifier1: 5 });
        expect(out.length).toBe(0);
        await srv.waitForLog(/-- unavailable modifier requested: 5 --/, 5000);
      }));

    test('§1.2 #5: POST with CONTENT_LENGTH=5 → the app reads exactly "hello"', () =>
      withLog(async () => {
        const out = await uwsgiRequest(
          addr,
          stdVars({ REQUEST_METHOD: 'POST', REQUEST_URI: '/echo?mode=readall', PATH_INFO: '/echo', QUERY_STRING: 'mode=readall', CONTENT_LENGTH: '5' }),
          { body: 'hello' },
        );
        const r = parse(out);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body.toString())).toMatchObject({ length: 5, body: 'hello' });
      }));

    test('a 1 MiB body after the vars block is read exactly (sha256)', () =>
      withLog(async () => {
        const body = crypto.randomBytes(1024 * 1024);
        const out = await uwsgiRequest(
          addr,
          stdVars({ REQUEST_METHOD: 'POST', REQUEST_URI: '/echo?mode=chunks', PATH_INFO: '/echo', QUERY_STRING: 'mode=chunks', CONTENT_LENGTH: String(body.length) }),
          { body, timeoutMs: 30000 },
        );
        const r = parse(out);
        expect(JSON.parse(r.body.toString())).toMatchObject({ length: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') });
      }));

    test('vars reach the app unchanged (query string, custom HTTP_ var, zero-length value last)', () =>
      withLog(async () => {
        const out = await uwsgiRequest(
          addr,
          stdVars({ REQUEST_URI: '/env/p?q=1', PATH_INFO: '/env/p', QUERY_STRING: 'q=1', HTTP_X_TEST: 'from-uwsgi', EMPTYVAL: '' }),
        );
        const r = parse(out);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body.toString())).toMatchObject({
          PATH_INFO: '/env/p',
          QUERY_STRING: 'q=1',
          REQUEST_URI: '/env/p?q=1',
          HTTP_X_TEST: 'from-uwsgi',
          SERVER_NAME: 'localhost',
          SERVER_PORT: '80',
        });
      }));

    test('§1.2 #2: a zero-length key drops the request (no response); the server keeps serving', () =>
      withLog(async () => {
        const vars = Buffer.concat([encodeVars(hello()), encodeVars([['', 'value-of-null-key']])]);
        const r = await exchange(addr, Buffer.concat([encodeHeader(0, vars.length, 0), vars]), { timeoutMs: 10000 });
        expect(r.end).not.toBe('timeout');
        expect(r.data.length).toBe(0);
        await srv.waitForLog(/uwsgi key cannot be null/, 5000);
        const ok = await uwsgiRequest(addr, hello());
        expect(ok.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK/);
      }));

    test('§1.2 #3: truncated vars (datasize 40, 30 bytes sent, write side closed) → dropped; the server keeps serving', () =>
      withLog(async () => {
        const vars = encodeVars(hello()).subarray(0, 30);
        const r = await exchange(addr, Buffer.concat([encodeHeader(0, 40, 0), vars]), { endWrite: true, timeoutMs: 10000 });
        expect(r.end).not.toBe('timeout');
        expect(r.data.length).toBe(0);
        const ok = await uwsgiRequest(addr, hello());
        expect(ok.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK/);
      }));

    test('a vars block whose last pair runs past datasize is dropped with uWSGI\'s log line', () =>
      withLog(async () => {
        // datasize says 20 bytes; the block is a key of 10 bytes announcing a value of 500 bytes.
        const block = Buffer.concat([Buffer.from([10, 0]), Buffer.from('PATH_INFOX'), Buffer.from([0xf4, 0x01]), Buffer.from('abcdef')]);
        const r = await exchange(addr, Buffer.concat([encodeHeader(0, block.length, 0), block]), { timeoutMs: 10000 });
        expect(r.data.length).toBe(0);
        await srv.waitForLog(/invalid uwsgi request \(current strsize: \d+\)\. skip\./, 5000);
      }));

    test('concurrent uwsgi requests all succeed', () =>
      withLog(async () => {
        const results = await Promise.all(Array.from({ length: 10 }, () => uwsgiRequest(addr, hello())));
        for (const out of results) expect(out.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*Hello World$/);
      }));
  });
}

describeServer('uwsgi protocol on a TCP --socket', () => '127.0.0.1:0');

const unixDir = tmpDir('tsuwsgi-unix-');
describeServer('uwsgi protocol on a UNIX --socket', () => path.join(unixDir, 'tsuwsgi.sock'));
afterAll(() => fs.rmSync(unixDir, { recursive: true, force: true }));
