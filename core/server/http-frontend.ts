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
import type { RequestPipeline } from './pipeline.ts';

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
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request');
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => onRequest(o, req, res));
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
  const vars: UwsgiVars = [
    ['REQUEST_METHOD', req.method ?? 'GET'],
    ['REQUEST_URI', url],
    ['PATH_INFO', decodePath(path)],
    ['QUERY_STRING', q === -1 ? '' : url.slice(q + 1)],
    ['SERVER_PROTOCOL', `HTTP/${req.httpVersion}`],
    ['SCRIPT_NAME', ''],
    ['SERVER_NAME', HOSTNAME],
    ['SERVER_PORT', String(socket.localPort ?? '')],
    ['REMOTE_ADDR', remoteAddr],
    ['REMOTE_PORT', String(socket.remotePort ?? '')],
  ];
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
  let abort: (() => void) | null = null;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    res.uncork();
  };
  // The client may vanish while the request still waits for a bridge connection: remember
  // it, so the exchange is cut the moment it is bound instead of streaming into a dead socket.
  let clientGone = false;
  res.on('close', () => {
    if (res.writableFinished) return;
    clientGone = true;
    if (abort) abort();
  });
  return {
    head(h: ResponseHead) {
      try {
        res.writeHead(h.statusCode, h.reason, h.headers);
      } catch (err) {
        // Invalid header bytes from the app: answer 502 rather than send a broken response.
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`Bad Gateway: the app sent an invalid header (${(err as Error).message})`);
      }
    },
    body(chunk: Buffer) {
      // A destroyed response never emits 'drain': report "no backpressure" and drop the bytes.
      if (clientGone || res.writableEnded || res.destroyed) return true;
      // Pieces of a body read in one event-loop turn (a 64 KiB body arrives in two reads)
      // leave in one write.
      if (!corked) {
        corked = true;
        res.cork();
        setImmediate(uncork);
      }
      return res.write(chunk);
    },
    onDrain(cb) {
      res.once('drain', cb);
    },
    end() {
      if (!res.writableEnded) res.end();
      abort = null;
    },
    fail(status) {
      abort = null;
      if (res.writableEnded || res.destroyed) return;
      if (!res.headersSent) {
        res.writeHead(status, reasonPhrase(status), { 'Content-Type': 'text/plain' });
        res.end(reasonPhrase(status));
      } else {
        // Headers are out: the only honest signal left is cutting the connection.
        res.destroy();
      }
    },
    bindAbort(fn) {
      abort = fn;
      if (clientGone) fn();
    },
    close() {
      // Routing ended the request without an answer: the client sees the connection close.
      abort = null;
      res.destroy();
    },
    framesChunked: true,
  };
}
