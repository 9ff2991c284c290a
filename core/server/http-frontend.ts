/**
 * HTTP front end for `--http-socket` and `--http`: HTTP/1.1 with keep-alive, pipelining,
 * chunked request and response bodies, HEAD and `Expect: 100-continue`, on Node's own
 * HTTP parser (llhttp). Each request becomes uwsgi vars exactly as uWSGI's http parser
 * builds them (spec/core.md §2.2) and goes through the pipeline.
 */
import http from 'node:http';
import os from 'node:os';
import type net from 'node:net';
import type { BodySource, ResponseSink } from '../bridge/pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import { reasonPhrase } from '../protocol/status.ts';
import type { UwsgiVars } from '../protocol/uwsgi-packet.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { spoolBody } from './body-spool.ts';
import { HttpRawOutput } from './http-raw-output.ts';
import type { RequestPipeline } from './pipeline.ts';
import type { ClientTunnel } from '../routing/api.ts';
import { sendFileOnResponse, type CancelSendfile, type SendfileDone } from '../static/sendfile.ts';

export interface HttpFrontendOptions {
  fd: number;
  backlog: number;
  /** --buffer-size: the largest header block accepted (Node's maxHeaderSize). */
  bufferSize: number;
  modifier1: number;
  modifier2: number;
  /** --limit-post, 0 = no limit. */
  limitPost: number;
  keepAliveSeconds: number;
  pipeline: RequestPipeline;
  log: ServerLog;
}

/** Header name → CGI var name, memoised: the set of header names seen is small. */
const varNameCache = new Map<string, string>();
function cgiName(header: string): string {
  let v = varNameCache.get(header);
  if (v === undefined) {
    v = header === 'content-type' ? 'CONTENT_TYPE' : header === 'content-length' ? 'CONTENT_LENGTH' : 'HTTP_' + header.toUpperCase().replace(/-/g, '_');
    if (varNameCache.size < 1000) varNameCache.set(header, v);
  }
  return v;
}

/** Percent-decode a path into a latin-1 "byte string", as uWSGI decodes PATH_INFO. */
export function decodePath(p: string): string {
  if (p.indexOf('%') === -1) return p;
  return p.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

const HOSTNAME = os.hostname();

export function startHttpFrontend(o: HttpFrontendOptions): http.Server {
  const server = http.createServer({
    maxHeaderSize: o.bufferSize,
    keepAlive: true,
    // Requests are answered as bridge threads free up; Node's own timers must not cut them.
    requestTimeout: 0,
    headersTimeout: 60_000,
  });
  server.keepAliveTimeout = o.keepAliveSeconds * 1000;

  server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));

  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      o.log.warn(
        `request headers from ${socket.remoteAddress ?? '?'} exceed --buffer-size (${o.bufferSize} bytes): answered 431; raise --buffer-size to accept them`,
      );
      socket.end('HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nContent-Length: 31\r\nConnection: close\r\n\r\nRequest Header Fields Too Large');
      return;
    }
    if (err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    // Node's parser is strict where uWSGI's is lenient (a raw non-ASCII byte in the URL, a bad
    // header name…): say why, so a 400 the app never saw can be traced to its client.
    const why = (err as NodeJS.ErrnoException & { reason?: string }).reason ?? err.message;
    const hint = err.code === 'HPE_INVALID_URL' ? ' (bytes outside ASCII must be percent-encoded)' : '';
    o.log.warn(`invalid HTTP request from ${socket.remoteAddress ?? '?'}: ${why} [${err.code ?? 'error'}]${hint}: answered 400`);
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request');
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => onRequest(o, req, res));
  // Node hands a CONNECT request to 'connect' (with the raw socket), never to 'request'.
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => onConnect(o, req, socket, head));
  server.listen({ fd: o.fd, backlog: o.backlog });
  return server;
}

function onRequest(o: HttpFrontendOptions, req: http.IncomingMessage, res: http.ServerResponse): void {
  const startedAt = Date.now();
  const socket = req.socket;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const remoteAddr = stripV4Mapped(socket.remoteAddress ?? '');
  const vars = baseVars(req, socket, url, path, q === -1 ? '' : url.slice(q + 1), remoteAddr);
  const headers = req.headers;
  let chunked = false;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (name === 'transfer-encoding') {
      // The core de-chunks the body and sends CONTENT_LENGTH; apps must not see the framing.
      chunked = true;
      continue;
    }
    vars.push([cgiName(name), Array.isArray(value) ? value.join(', ') : value]);
  }
  // Node decodes header bytes as latin-1, so values round-trip byte for byte into the packet.

  let contentLength = 0;
  const clHeader = headers['content-length'];
  if (clHeader !== undefined) contentLength = Number(clHeader);
  if (o.limitPost > 0 && contentLength > o.limitPost) {
    o.log.warn(`Invalid (too big) CONTENT_LENGTH (${contentLength} > --limit-post ${o.limitPost}). skip.`);
    res.shouldKeepAlive = false;
    res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end('Request Entity Too Large');
    return;
  }

  const sink = httpSink(res);
  const request = {
    modifier1: o.modifier1,
    modifier2: o.modifier2,
    vars,
    method: req.method ?? 'GET',
    uri: url,
    protocol: `HTTP/${req.httpVersion}`,
    remoteAddr,
    contentLength,
    body: null as BodySource | null,
    startedAt,
  };

  if (chunked) {
    // A chunked body has no length up front and uwsgi packets need CONTENT_LENGTH: read it
    // first (in memory, or spooled to a temporary file when large), then dispatch.
    spoolBody(req, o.limitPost).then(
      (body) => {
        if (res.headersSent || res.destroyed) return;
        vars.push(['CONTENT_LENGTH', String(body.size)]);
        request.contentLength = body.size;
        request.body = body.source;
        if (!o.pipeline.handle(request, sink)) socket.destroy();
      },
      (err: Error & { tooLarge?: boolean }) => {
        if (!err.tooLarge) {
          socket.destroy();
          return;
        }
        o.log.warn(`chunked request body exceeds --limit-post ${o.limitPost}: answered 413`);
        res.shouldKeepAlive = false;
        if (!res.headersSent) {
          res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' });
          res.end('Request Entity Too Large');
        }
      },
    );
    return;
  }

  if (contentLength > 0) request.body = streamSource(req);
  if (!o.pipeline.handle(request, sink)) socket.destroy();
}

/** The CGI vars every request gets before its headers, ordinary or CONNECT (Node always sets the method). */
function baseVars(req: http.IncomingMessage, socket: net.Socket, url: string, path: string, query: string, remoteAddr: string): UwsgiVars {
  return [
    ['REQUEST_METHOD', req.method ?? 'GET'],
    ['REQUEST_URI', url],
    ['PATH_INFO', decodePath(path)],
    ['QUERY_STRING', query],
    ['SERVER_PROTOCOL', `HTTP/${req.httpVersion}`],
    ['SCRIPT_NAME', ''],
    ['SERVER_NAME', HOSTNAME],
    ['SERVER_PORT', String(socket.localPort ?? '')],
    ['REMOTE_ADDR', remoteAddr],
    ['REMOTE_PORT', String(socket.remotePort ?? '')],
  ];
}

function stripV4Mapped(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** Stream a request body to the bridge with backpressure both ways. */
function streamSource(req: http.IncomingMessage): BodySource {
  return {
    pipe(write, waitDrain, done) {
      req.on('data', (d: Buffer) => {
        if (!write(d)) {
          req.pause();
          waitDrain(() => req.resume());
        }
      });
      req.on('end', done);
    },
  };
}

/** Write a bridge response through Node's ServerResponse (framing, keep-alive, HEAD). */
function httpSink(res: http.ServerResponse): ResponseSink {
  return new HttpResponseSink(res);
}

/**
 * One per request, so a class rather than an object of closures: run from source, tsx names
 * every arrow function created per request with a defineProperty call.
 */
class HttpResponseSink implements ResponseSink {
  readonly framesChunked = true;
  private readonly res: http.ServerResponse;
  private abort: (() => void) | null = null;
  private corked = false;
  /**
   * The client may vanish while the request still waits for a bridge connection: remember
   * it, so the exchange is cut the moment it is bound instead of streaming into a dead socket.
   */
  private clientGone = false;
  /**
   * Routing's raw output (send:, disableheaders:) takes the connection over from `res`; until
   * then, the head given to `res` and whether a body followed it (Node sends them together).
   */
  private rawOut: HttpRawOutput | null = null;
  private given: ResponseHead | null = null;
  private wrote = false;

  constructor(res: http.ServerResponse) {
    this.res = res;
    res.on('close', () => {
      if (res.writableFinished) return;
      this.clientGone = true;
      if (this.abort) this.abort();
    });
  }

  /** setImmediate callback: the pieces written in this event-loop turn leave together. */
  private static uncork(sink: HttpResponseSink): void {
    sink.corked = false;
    sink.res.uncork();
  }

  head(h: ResponseHead): void {
    if (this.rawOut) return;
    this.given = h;
    const res = this.res;
    try {
      res.writeHead(h.statusCode, h.reason, h.headers);
    } catch (err) {
      // Invalid header bytes from the app: answer 502 rather than send a broken response.
      res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`Bad Gateway: the app sent an invalid header (${(err as Error).message})`);
    }
  }

  body(chunk: Buffer): boolean {
    const res = this.res;
    // A destroyed response never emits 'drain': report "no backpressure" and drop the bytes.
    if (this.clientGone || res.writableEnded || res.destroyed) return true;
    if (this.rawOut) return this.rawOut.write(chunk);
    this.wrote = true;
    // Pieces of a body read in one event-loop turn (a 64 KiB body arrives in two reads)
    // leave in one write.
    if (!this.corked) {
      this.corked = true;
      res.cork();
      setImmediate(HttpResponseSink.uncork, this);
    }
    return res.write(chunk);
  }

  onDrain(cb: () => void): void {
    if (this.rawOut) this.rawOut.onDrain(cb);
    else this.res.once('drain', cb);
  }

  end(): void {
    this.abort = null;
    if (this.rawOut) this.rawOut.end();
    else if (!this.res.writableEnded) this.res.end();
  }

  fail(status: number): void {
    this.abort = null;
    const res = this.res;
    if (this.rawOut) return this.rawOut.destroy();
    if (res.writableEnded || res.destroyed) return;
    if (!res.headersSent) {
      res.writeHead(status, reasonPhrase(status), { 'Content-Type': 'text/plain' });
      res.end(reasonPhrase(status));
    } else {
      // Headers are out: the only honest signal left is cutting the connection.
      res.destroy();
    }
  }

  bindAbort(fn: () => void): void {
    this.abort = fn;
    if (this.clientGone) fn();
  }

  close(): void {
    // Routing ended the request without an answer: the client sees the connection close
    // (after the raw bytes already written, if any).
    this.abort = null;
    if (this.rawOut) this.rawOut.end();
    else this.res.destroy();
  }

  /**
   * Zero-copy static bodies (core/static/sendfile.ts): after head(), the file goes out with
   * sendfile(2) on this connection's socket. Null when this response cannot (the caller copies).
   */
  sendFile(fd: number, offset: number, length: number, timeoutMs: number, done: SendfileDone): CancelSendfile | null {
    if (this.rawOut || this.clientGone || this.wrote) return null;
    const cancel = sendFileOnResponse(this.res, fd, offset, length, timeoutMs, done);
    // The head is on the wire now, as after a body write.
    if (cancel) this.wrote = true;
    return cancel;
  }

  raw(chunk: Buffer): boolean {
    const res = this.res;
    if (this.clientGone || res.writableEnded || res.destroyed) return true;
    this.rawOut ??= new HttpRawOutput(res, this.given !== null && !this.wrote ? this.given : null);
    return this.rawOut.write(chunk);
  }
}

/**
 * A CONNECT request (`CONNECT host:port HTTP/1.1`). uWSGI's http parser treats it as any
 * request: REQUEST_URI and PATH_INFO are the authority, and without a routing rule the app
 * answers it (checked against uWSGI 2.0.21), then the connection closes. A rule with
 * router_http's `httpconnect:` turns it into a tunnel: the request carries a ClientTunnel the
 * action takes the socket from (docs/routing.md, router_http).
 */
function onConnect(o: HttpFrontendOptions, req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
  const url = req.url ?? '';
  const remoteAddr = stripV4Mapped(socket.remoteAddress ?? '');
  const vars = baseVars(req, socket, url, url, '', remoteAddr);
  for (const name in req.headers) {
    const value = req.headers[name];
    // A CONNECT has no body for the app: bytes after the head belong to the tunnel.
    if (value === undefined || name === 'transfer-encoding' || name === 'content-length') continue;
    vars.push([cgiName(name), Array.isArray(value) ? value.join(', ') : value]);
  }
  socket.setNoDelay(true);
  // Node gives no ServerResponse for a CONNECT: make one, so an HTTP answer (the app's, a
  // routing error) is framed like any other. The connection is not kept alive, as uWSGI.
  const res = new http.ServerResponse(req);
  res.assignSocket(socket);
  res.shouldKeepAlive = false;
  res.on('finish', () => socket.end());
  const { sink, tunnel } = connectSink(httpSink(res), res, socket, head);
  const request = {
    modifier1: o.modifier1,
    modifier2: o.modifier2,
    vars,
    method: req.method ?? 'CONNECT',
    uri: url,
    protocol: `HTTP/${req.httpVersion}`,
    remoteAddr,
    contentLength: 0,
    body: null as BodySource | null,
    startedAt: Date.now(),
    // Read by the routing context (core/routing/router.ts RoutedRequest), not by the pipeline.
    tunnel,
  };
  if (!o.pipeline.handle(request, sink)) socket.destroy();
}

/**
 * The sink of a CONNECT request: HTTP (through `http`) until the tunnel is taken, raw bytes on
 * the socket after. Raw, the head is written as uWSGI writes "200 Connection established"
 * (status line, headers, blank line), the body unframed, and end() half-closes the socket: the
 * relay in router_http decides when the other direction is over.
 */
function connectSink(framed: ResponseSink, res: http.ServerResponse, socket: net.Socket, head: Buffer): { sink: ResponseSink; tunnel: ClientTunnel } {
  let raw = false;
  let ended = false;
  let abort: (() => void) | null = null;
  const tunnel: ClientTunnel = {
    take() {
      if (raw) throw new Error('the CONNECT connection was already taken');
      raw = true;
      // The socket leaves the ServerResponse: it no longer writes to it nor reacts to its close.
      res.detachSocket(socket);
      socket.on('close', () => {
        if (!ended && abort) abort();
      });
      return { socket, head };
    },
  };
  const sink: ResponseSink = {
    head(h: ResponseHead) {
      if (!raw) return framed.head(h);
      if (socket.destroyed) return;
      let text = `HTTP/1.1 ${h.statusCode} ${h.reason}\r\n`;
      for (let i = 0; i < h.headers.length; i += 2) text += `${h.headers[i]}: ${h.headers[i + 1]}\r\n`;
      socket.write(Buffer.from(`${text}\r\n`, 'latin1'));
    },
    body(chunk: Buffer) {
      if (!raw) return framed.body(chunk);
      if (socket.destroyed || socket.writableEnded) return true;
      return socket.write(chunk);
    },
    onDrain(cb) {
      if (!raw) return framed.onDrain(cb);
      socket.once('drain', cb);
    },
    end() {
      if (!raw) return framed.end();
      ended = true;
      abort = null;
      if (!socket.destroyed) socket.end();
    },
    fail(status, reason) {
      if (!raw) return framed.fail(status, reason);
      // The 200 is out: cutting the connection is the only signal left.
      ended = true;
      abort = null;
      socket.destroy();
    },
    bindAbort(fn) {
      if (!raw) return framed.bindAbort(fn);
      abort = fn;
    },
    close(status?: number) {
      if (!raw) {
        if (framed.close) framed.close(status);
        else socket.destroy();
        return;
      }
      ended = true;
      abort = null;
      socket.destroy();
    },
    framesChunked: true,
  };
  // Routing's raw output (`send:`) on a CONNECT that is not tunnelled goes through the framed
  // sink's raw path; once tunnelled, the socket is raw already.
  const framedRaw = framed.raw?.bind(framed);
  if (framedRaw) {
    sink.raw = (chunk: Buffer): boolean => {
      if (!raw) return framedRaw(chunk);
      if (socket.destroyed || socket.writableEnded) return true;
      return socket.write(chunk);
    };
  }
  return { sink, tunnel };
}
