/**
 * The shared request set: the same HTTP exchanges, with the same expected outcomes, run against
 * every language bridge (hono's one-suite-many-runtimes discipline). A language joins by
 * describing where its test app answers each case (a `LanguageUnderTest`); the cases
 * themselves are written once, here.
 *
 * What the set pins down is the server's side of the contract, which must not differ by
 * language: query strings reach the app raw, request bodies arrive intact whether sent with
 * Content-Length or chunked, a body the app never reads is drained so the connection stays
 * usable, HEAD sends no body bytes, repeated headers keep their order, a streamed body without
 * Content-Length is chunk-encoded on a kept-alive connection, an app error is a 500 after which
 * the server keeps serving, and pipelined requests are answered in order.
 */
import crypto from 'node:crypto';
import { chunkEncode, RawHttpConnection, rawRequest, type RawResponse } from '../helpers/http-raw.ts';
import { withServerLog, type ServerHandle } from '../helpers/server.ts';

export interface LanguageUnderTest {
  /** Shown in the describe block ("WSGI (python)"). */
  readonly name: string;
  /** Start a server with this language's test app on `--http-socket 127.0.0.1:0`. */
  start(): Promise<ServerHandle>;
  /** Fail loudly when the runtime is missing (never skip). */
  assertRuntime?(): void;
  /** Remove what `start` made besides the server (compiled classes), after the server stopped. */
  cleanup?(): void;
  /** A path answering 200 with exactly `body`. */
  readonly hello: { path: string; body: string };
  /** A path answering the request environment; `read` returns its vars by name. */
  readonly env: { path: string; read(body: Buffer): Record<string, unknown> };
  /** Echo the request body; `check` asserts the answer describes exactly `sent`. */
  readonly echo: { path: string; check(answer: Buffer, sent: Buffer): void };
  /** A path whose app answers 200 with exactly `body` without reading the request body. */
  readonly ignoresBody: { path: string; body: string };
  /** A 200 response with repeated headers, in this order, and exactly `body`. */
  readonly repeated: { path: string; headers: Record<string, string[]>; body: string };
  /** A body produced in pieces, without Content-Length. */
  readonly stream: { path: string; body: string };
  /** A path whose app raises before answering. */
  readonly error: string;
  /**
   * Why the runtime itself drops the body of a HEAD response before the server sees it (PHP's
   * SAPI layer does, under every SAPI), when it does. A Content-Length the server computes from
   * the body of a GET cannot be known then, and RFC 9110 §9.3.2 lets a HEAD response omit it; the
   * HEAD case accepts no Content-Length for such a language, but never a different one.
   */
  readonly headBodyDroppedByRuntime?: string;
}

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/** An echo answer that is the body itself. */
export function rawEchoCheck(answer: Buffer, sent: Buffer): void {
  expect({ length: answer.length, sha256: sha256(answer) }).toEqual({ length: sent.length, sha256: sha256(sent) });
}

/** One request on a fresh connection, closed afterwards. */
async function exchange(port: number, request: Buffer, opts: { head?: boolean } = {}): Promise<RawResponse> {
  const c = await RawHttpConnection.connect(port);
  try {
    await c.write(request);
    return await c.readResponse(opts);
  } finally {
    c.close();
  }
}

export function describeSharedRequestSet(lang: LanguageUnderTest): void {
  describe(`shared request set: ${lang.name}`, () => {
    let srv: ServerHandle;
    const withLog = <T,>(f: () => Promise<T>): Promise<T> => withServerLog(srv, f);

    beforeAll(async () => {
      lang.assertRuntime?.();
      srv = await lang.start();
    }, 90000);

    afterAll(async () => {
      try {
        if (srv) expect(await srv.stop()).toBe(0);
      } finally {
        lang.cleanup?.();
      }
    }, 60000);

    test('GET answers 200 with the app body', () =>
      withLog(async () => {
        const r = await exchange(srv.port, rawRequest('GET', lang.hello.path));
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe(lang.hello.body);
      }));

    test('the query string reaches the app raw (not decoded), PATH_INFO without it', () =>
      withLog(async () => {
        const r = await exchange(srv.port, rawRequest('GET', `${lang.env.path}?a=1&b=%20x&c=%2F`));
        expect(r.status).toBe(200);
        const env = lang.env.read(r.body);
        expect(env.QUERY_STRING).toBe('a=1&b=%20x&c=%2F');
        expect(env.REQUEST_METHOD).toBe('GET');
        expect(String(env.PATH_INFO).includes('?')).toBe(false);
      }));

    test('a small POST body arrives intact', () =>
      withLog(async () => {
        const sent = Buffer.from('name=tsuwsgi&x=1');
        const r = await exchange(srv.port, rawRequest('POST', lang.echo.path, { 'Content-Type': 'application/x-www-form-urlencoded' }, sent));
        expect(r.status).toBe(200);
        lang.echo.check(r.body, sent);
      }));

    test('a chunked upload (Transfer-Encoding: chunked) arrives de-chunked and intact', () =>
      withLog(async () => {
        const sent = crypto.randomBytes(100_000);
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('POST', lang.echo.path, { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' }));
          await c.write(chunkEncode(sent, 7000));
          const r = await c.readResponse();
          expect(r.status).toBe(200);
          lang.echo.check(r.body, sent);
        } finally {
          c.close();
        }
      }));

    test('a 3 MB body arrives intact and the connection stays usable', () =>
      withLog(async () => {
        const sent = crypto.randomBytes(3 * 1024 * 1024);
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('POST', lang.echo.path, { 'Content-Type': 'application/octet-stream' }, sent));
          const r = await c.readResponse();
          expect(r.status).toBe(200);
          lang.echo.check(r.body, sent);
          await c.write(rawRequest('GET', lang.hello.path));
          expect((await c.readResponse()).body.toString()).toBe(lang.hello.body);
        } finally {
          c.close();
        }
      }), 60000);

    test('a 3 MB body the app never reads is drained: the next request on the connection works', () =>
      withLog(async () => {
        const big = crypto.randomBytes(3 * 1024 * 1024);
        const small = Buffer.from('small');
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('POST', lang.ignoresBody.path, { 'Content-Type': 'application/octet-stream' }, big));
          // The whole answer, not just its status: an app (a CGI script) that exits without
          // reading its input must not cost it its output.
          const ignored = await c.readResponse();
          expect(ignored.status).toBe(200);
          expect(ignored.body.toString()).toBe(lang.ignoresBody.body);
          await c.write(rawRequest('POST', lang.echo.path, { 'Content-Type': 'text/plain' }, small));
          const r = await c.readResponse();
          expect(r.status).toBe(200);
          lang.echo.check(r.body, small);
        } finally {
          c.close();
        }
      }), 60000);

    test('HEAD: the status and Content-Length of GET, no body bytes on the wire', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('GET', lang.hello.path));
          const g = await c.readResponse();
          await c.write(rawRequest('HEAD', lang.hello.path));
          const h = await c.readResponse({ head: true });
          expect(h.status).toBe(g.status);
          const getLength = g.header('content-length');
          if (getLength !== undefined) {
            if (lang.headBodyDroppedByRuntime === undefined) expect(h.header('content-length')).toBe(getLength);
            else expect([undefined, getLength]).toContain(h.header('content-length'));
          }
          expect(h.body.length).toBe(0);
          // A body byte after the HEAD response would be read as the start of this one.
          await c.write(rawRequest('GET', lang.hello.path));
          const next = await c.readResponse();
          expect(next.statusLine).toMatch(/^HTTP\/1\.1 200/);
          expect(next.body.toString()).toBe(lang.hello.body);
        } finally {
          c.close();
        }
      }));

    test('repeated response headers are all sent, in order', () =>
      withLog(async () => {
        const r = await exchange(srv.port, rawRequest('GET', lang.repeated.path));
        expect(r.status).toBe(200);
        for (const [name, values] of Object.entries(lang.repeated.headers)) expect(r.headerAll(name)).toEqual(values);
        expect(r.body.toString()).toBe(lang.repeated.body);
      }));

    test('a streamed body without Content-Length is chunk-encoded on a kept-alive connection', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(rawRequest('GET', lang.stream.path));
          const r = await c.readResponse();
          expect(r.status).toBe(200);
          expect(r.chunked).toBe(true);
          expect(r.body.toString()).toBe(lang.stream.body);
          await c.write(rawRequest('GET', lang.hello.path));
          expect((await c.readResponse()).body.toString()).toBe(lang.hello.body);
        } finally {
          c.close();
        }
      }));

    test('an app error answers 500 and the server keeps serving', () =>
      withLog(async () => {
        const r = await exchange(srv.port, rawRequest('GET', lang.error));
        expect(r.status).toBe(500);
        const after = await exchange(srv.port, rawRequest('GET', lang.hello.path));
        expect(after.body.toString()).toBe(lang.hello.body);
      }));

    test('pipelined requests in one write are answered in order', () =>
      withLog(async () => {
        const c = await RawHttpConnection.connect(srv.port);
        try {
          await c.write(Buffer.concat([rawRequest('GET', `${lang.env.path}?n=1`), rawRequest('GET', lang.hello.path), rawRequest('GET', `${lang.env.path}?n=3`)]));
          const first = await c.readResponse();
          const second = await c.readResponse();
          const third = await c.readResponse();
          expect(lang.env.read(first.body).QUERY_STRING).toBe('n=1');
          expect(second.body.toString()).toBe(lang.hello.body);
          expect(lang.env.read(third.body).QUERY_STRING).toBe('n=3');
        } finally {
          c.close();
        }
      }));
  });
}
