/**
 * uwsgi protocol front end for `--socket` (what nginx `uwsgi_pass` speaks): one request per
 * connection, vars block checked against --buffer-size and --max-vars with uWSGI's own log
 * lines, the body streamed after it, the raw HTTP response written back, then close.
 */
import net from 'node:net';
import type { BodySource, ResponseSink } from '../bridge/pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import { reasonPhrase } from '../protocol/status.ts';
import { decodeHeader, decodeVars, describeVarsError, getVar, isVarsError, UWSGI_HEADER_SIZE } from '../protocol/uwsgi-packet.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { sendFileOnSocket, type FileSendingSink } from '../static/sendfile.ts';
import type { RequestPipeline } from './pipeline.ts';

export interface UwsgiFrontendOptions {
  fd: number;
  backlog: number;
  bufferSize: number;
  maxVars: number;
  /** Seconds to receive the whole header block. */
  socketTimeout: number;
  limitPost: number;
  pipeline: RequestPipeline;
  log: ServerLog;
}


export function startUwsgiFrontend(o: UwsgiFrontendOptions): net.Server {
  const server = net.createServer({ noDelay: true }, (socket) => onConnection(o, socket));
  server.listen({ fd: o.fd, backlog: o.backlog });
  return server;
}

function onConnection(o: UwsgiFrontendOptions, socket: net.Socket): void {
  const startedAt = Date.now();
  let buf: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => {
    o.log.warn(`uwsgi client ${socket.remoteAddress ?? 'unix'} did not send a complete request within ${o.socketTimeout} seconds (--socket-timeout): closed`);
    socket.destroy();
  }, o.socketTimeout * 1000);
  socket.on('error', () => socket.destroy());
  socket.on('close', () => clearTimeout(timer));

  const onHeaderData = (d: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    if (buf.length < UWSGI_HEADER_SIZE) return;
    const h = decodeHeader(buf);
    if (looksLikeHttp(buf)) {
      // Whatever --buffer-size is, an HTTP request line is never a uwsgi packet: say so at
      // once (uWSGI's line first, so existing log checks keep matching) instead of waiting
      // for 21573 bytes that will never come.
      o.log.warn(`invalid request block size: ${h.datasize} (max ${o.bufferSize})...skip`);
      o.log.warn(`an HTTP client (${socket.remoteAddress ?? 'unix'}) is talking to the uwsgi socket: use --http-socket (or --protocol http) for HTTP clients`);
      clearTimeout(timer);
      socket.destroy();
      return;
    }
    if (h.datasize > o.bufferSize) {
      o.log.warn(`invalid request block size: ${h.datasize} (max ${o.bufferSize})...skip (raise --buffer-size to accept it)`);
      clearTimeout(timer);
      socket.destroy();
      return;
    }
    if (buf.length < UWSGI_HEADER_SIZE + h.datasize) return;
    socket.off('data', onHeaderData);
    clearTimeout(timer);
    const vars = decodeVars(buf.subarray(UWSGI_HEADER_SIZE, UWSGI_HEADER_SIZE + h.datasize), o.maxVars * 2);
    if (isVarsError(vars)) {
      o.log.warn(describeVarsError(vars));
      socket.destroy();
      return;
    }
    const rest = buf.subarray(UWSGI_HEADER_SIZE + h.datasize);
    const clText = getVar(vars, 'CONTENT_LENGTH') ?? '';
    const contentLength = clText === '' ? 0 : Number(clText);
    if (!Number.isSafeInteger(contentLength) || contentLength < 0) {
      o.log.warn(`invalid CONTENT_LENGTH "${clText}". skip.`);
      socket.destroy();
      return;
    }
    if (o.limitPost > 0 && contentLength > o.limitPost) {
      o.log.warn('Invalid (too big) CONTENT_LENGTH. skip.');
      socket.destroy();
      return;
    }
    // Hold the rest of the body in the socket until the pipeline pipes it (it may first wait
    // for a free bridge connection): a flowing socket without a 'data' listener drops bytes.
    // Without more body to come the socket keeps flowing, so a client that leaves is noticed.
    if (contentLength > rest.length) socket.pause();
    const method = getVar(vars, 'REQUEST_METHOD') ?? '';
    const handled = o.pipeline.handle(
      {
        modifier1: h.modifier1,
        modifier2: h.modifier2,
        vars,
        method,
        uri: getVar(vars, 'REQUEST_URI') ?? getVar(vars, 'PATH_INFO') ?? '',
        // uWSGI copies the status line protocol from SERVER_PROTOCOL, HTTP/1.0 when absent.
        protocol: getVar(vars, 'SERVER_PROTOCOL') || 'HTTP/1.0',
        remoteAddr: getVar(vars, 'REMOTE_ADDR') ?? '',
        contentLength,
        body: contentLength > 0 ? socketBody(socket, rest, contentLength) : null,
        startedAt,
      },
      rawSink(socket, getVar(vars, 'SERVER_PROTOCOL') || 'HTTP/1.0'),
    );
    if (!handled) socket.destroy();
  };
  socket.on('data', onHeaderData);
}

/** "GET ", "POST", "HEAD"…: the first bytes of an HTTP request line (never a uwsgi header in practice). */
const HTTP_METHOD_PREFIXES = ['GET ', 'POST', 'HEAD', 'PUT ', 'DELE', 'OPTI', 'PATC', 'CONN', 'TRAC'];
function looksLikeHttp(buf: Buffer): boolean {
  const head = buf.toString('latin1', 0, 4);
  return HTTP_METHOD_PREFIXES.includes(head);
}

/** The body: bytes already read after the vars, then the rest of the stream up to CONTENT_LENGTH. */
function socketBody(socket: net.Socket, first: Buffer, length: number): BodySource {
  return {
    pipe(write, waitDrain, done) {
      let left = length;
      /** The bridge asked us to wait (write returned false) and has not drained yet. */
      let paused = false;
      const push = (d: Buffer): void => {
        if (left <= 0) return;
        const part = d.length > left ? d.subarray(0, left) : d;
        left -= part.length;
        if (!write(part)) {
          paused = true;
          socket.pause();
          waitDrain(() => {
            paused = false;
            socket.resume();
          });
        }
        if (left === 0) {
          socket.off('data', push);
          done();
        }
      };
      if (first.length) push(first);
      if (left > 0) {
        socket.on('data', push);
        // The front end paused the socket until now (see onConnection); a write() that asked
        // for backpressure above keeps it paused until its drain.
        if (!paused) socket.resume();
      }
    },
  };
}

/**
 * Write the response as raw HTTP (the uwsgi protocol's modifier1 72 reply), then close. The
 * connection already ends with the response, so routing's raw output (send:, disableheaders:)
 * only means: its bytes go out as they are, and no head is written after them.
 */
function rawSink(socket: net.Socket, protocol: string): ResponseSink & FileSendingSink {
  let abort: (() => void) | null = null;
  let headSent = false;
  let bodyStarted = false;
  let clientGone = false;
  let rawOutput = false;
  socket.on('close', () => {
    clientGone = true;
    abort?.();
  });
  return {
    head(h: ResponseHead) {
      if (rawOutput) return;
      headSent = true;
      let text = `${protocol} ${h.statusCode} ${h.reason}\r\n`;
      for (let i = 0; i < h.headers.length; i += 2) text += `${h.headers[i]}: ${h.headers[i + 1]}\r\n`;
      socket.write(text + '\r\n', 'latin1');
    },
    body(chunk) {
      bodyStarted = true;
      if (clientGone || socket.destroyed) return true;
      return socket.write(chunk);
    },
    // Zero-copy static bodies (core/static/sendfile.ts), after the head written above.
    sendFile(fd, offset, length, timeoutMs, done) {
      if (rawOutput || clientGone || !headSent || bodyStarted) return null;
      const cancel = sendFileOnSocket(socket, fd, offset, length, timeoutMs, done);
      if (cancel) bodyStarted = true;
      return cancel;
    },
    onDrain(cb) {
      socket.once('drain', cb);
    },
    end() {
      abort = null;
      socket.end();
    },
    fail(status) {
      abort = null;
      if (socket.destroyed) return;
      if (headSent || rawOutput) {
        socket.destroy();
        return;
      }
      const body = reasonPhrase(status);
      socket.end(`${protocol} ${status} ${reasonPhrase(status)}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    },
    bindAbort(fn) {
      abort = fn;
      if (clientGone) fn();
    },
    close() {
      // Routing ended the request without an answer: the client sees the connection close
      // (after the raw bytes already written, if any).
      abort = null;
      if (rawOutput) socket.end();
      else socket.destroy();
    },
    raw(chunk) {
      rawOutput = true;
      if (clientGone || socket.destroyed || socket.writableEnded) return true;
      return chunk.length === 0 ? true : socket.write(chunk);
    },
  };
}
