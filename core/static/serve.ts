/**
 * Send one static file to a ResponseSink: the headers of §17 (Content-Type from the MIME
 * table, Content-Length, Last-Modified, Expires, Content-Encoding, Content-Range), 304 for
 * If-Modified-Since, 206/416 with --honour-range, X-Sendfile / X-Accel-Redirect modes, and
 * otherwise the body: over 32 KiB with sendfile(2) when the front end can (sendfile.ts: no
 * copy through user space), else up to 64 KiB in one synchronous read (see lookup.ts for why),
 * larger bodies read in the thread pool and streamed with backpressure (a slow client pauses
 * the read, the file is never held in memory and no transfer holds the event loop).
 *
 * The routing `static:` action can call serveStatic() with a file it resolved itself.
 */
import fs from 'node:fs';
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import { getVar, type UwsgiVars } from '../protocol/uwsgi-packet.ts';
import type { GzipRules } from './gzip.ts';
import { decideRange, expiresAt, httpDate, notModified, type CompiledExpires } from './http-rules.ts';
import type { FoundFile } from './lookup.ts';
import type { MimeTable } from './mime.ts';
import type { FileServeMode } from './plan.ts';
import { canSendFile, type CancelSendfile, type FileSendingSink, type SendfileError } from './sendfile.ts';

export interface StaticServeConfig {
  mime: MimeTable;
  expires: readonly CompiledExpires[];
  gzip: GzipRules;
  serveMode: FileServeMode;
  honourRange: boolean;
  send: SendOptions;
}

const REASONS: Record<number, string> = { 200: 'OK', 206: 'Partial Content', 304: 'Not Modified', 416: 'Requested Range Not Satisfiable' };

/** Bodies up to this size are read synchronously (lookup.ts says why). */
const READ_CHUNK = 64 * 1024;
/** Bodies up to this size are read in one asynchronous read and written at once. */
const WHOLE_READ_MAX = 1024 * 1024;
/** Larger bodies stream in pieces of this size: few syscalls, bounded memory per connection. */
const STREAM_CHUNK = 256 * 1024;
/**
 * Bodies from this size go out with sendfile(2) when the front end can. Measured (CPU per
 * request of the core worker): 64 KiB 131 -> 94 µs, 32 KiB a tie, 16 KiB a tie or worse; and
 * a copied body leaves in one write with the head (one TCP segment for a small file).
 */
const SENDFILE_MIN = 32 * 1024 + 1;

/** A ResponseHead as the bridge parser would have produced it (the request log counts its bytes). */
export function makeHead(statusCode: number, headers: string[], contentLength: number): ResponseHead {
  const reason = REASONS[statusCode] ?? 'OK';
  let headerBytes = `HTTP/1.1 ${statusCode} ${reason}\r\n`.length + 2;
  for (let i = 0; i < headers.length; i += 2) headerBytes += headers[i]!.length + headers[i + 1]!.length + 4;
  return { statusCode, reason, headers, contentLength, chunked: false, headerBytes, headerCount: headers.length / 2 };
}

/**
 * Serve `found` for a request with these vars. GET and HEAD only: the caller decides that
 * (the lookup falls through to the app for other methods; routing may choose otherwise).
 */
export async function serveStatic(cfg: StaticServeConfig, found: FoundFile, vars: UwsgiVars, method: string, sink: ResponseSink): Promise<void> {
  const mime = cfg.mime.lookup(found.file);
  let file = found.file;
  let st = found.stat;
  const headers: string[] = [];
  if (mime !== undefined) headers.push('Content-Type', mime);
  const variant = cfg.gzip.variant(found.file, getVar(vars, 'HTTP_ACCEPT_ENCODING'));
  if (variant) {
    file = variant.file;
    st = variant.stat;
    headers.push('Content-Encoding', variant.encoding);
    // Caches must not hand the compressed bytes to a client that did not ask for them.
    headers.push('Vary', 'Accept-Encoding');
  }
  const mtime = Math.floor(st.mtimeMs / 1000);
  headers.push('Last-Modified', httpDate(mtime));
  const exp = expiresAt(
    cfg.expires,
    { mime, filename: found.file, uri: getVar(vars, 'REQUEST_URI') ?? '', pathInfo: getVar(vars, 'PATH_INFO') ?? '' },
    mtime,
    Math.floor(Date.now() / 1000),
  );
  if (exp !== null) headers.push('Expires', httpDate(exp));

  if (notModified(getVar(vars, 'HTTP_IF_MODIFIED_SINCE'), mtime)) {
    sink.head(makeHead(304, headers, 0));
    sink.end();
    return;
  }

  if (cfg.serveMode !== 'body') {
    // The front server (Apache/lighttpd, nginx) sends the file: only headers leave here.
    headers.push(cfg.serveMode === 'x-sendfile' ? 'X-Sendfile' : 'X-Accel-Redirect', file);
    headers.push('Content-Length', '0');
    sink.head(makeHead(200, headers, 0));
    sink.end();
    return;
  }

  let start = 0;
  let end = st.size - 1;
  let status = 200;
  if (cfg.honourRange) {
    const r = decideRange(getVar(vars, 'HTTP_RANGE'), getVar(vars, 'HTTP_IF_RANGE'), st.size, mtime);
    if (r.kind === 'unsatisfiable') {
      headers.push('Content-Range', `bytes */${st.size}`, 'Content-Length', '0');
      sink.head(makeHead(416, headers, 0));
      sink.end();
      return;
    }
    if (r.kind === 'partial') {
      status = 206;
      start = r.start;
      end = r.end;
      headers.push('Content-Range', `bytes ${start}-${end}/${st.size}`);
    }
  }
  const length = end - start + 1;
  headers.push('Content-Length', String(length));
  if (method === 'HEAD' || length === 0) {
    sink.head(makeHead(status, headers, length));
    sink.end();
    return;
  }
  await streamFile(file, start, end, makeHead(status, headers, length), sink, cfg.send);
}

/** How bodies may leave: with sendfile(2) when the sink can (sendfile.ts), or always copied. */
export interface SendOptions {
  /** False with --disable-sendfile. */
  zeroCopy: boolean;
  /** --socket-timeout: a sendfile transfer to a client that reads nothing for this long is cut. */
  timeoutMs: number;
  /** Where a transfer that failed for another reason than the client leaving is reported. */
  warn?: (line: string) => void;
}

/** uWSGI's defaults: sendfile on, --socket-timeout 4. */
export const DEFAULT_SEND: SendOptions = { zeroCopy: true, timeoutMs: 4000 };

/**
 * Send bytes start..end (inclusive) of `file` after `head`. Open first, so a file that
 * vanished since stat() is still a clean error (a rejection) before any header. Also used by
 * the routing `file:` actions, which build their own head.
 */
export async function streamFile(file: string, start: number, end: number, head: ResponseHead, sink: ResponseSink, send: SendOptions = DEFAULT_SEND): Promise<void> {
  const length = end - start + 1;
  const zeroCopy = send.zeroCopy && length >= SENDFILE_MIN && canSendFile(sink);
  if (length <= READ_CHUNK && !zeroCopy) {
    // Small files (the common static asset): open, one read, close — synchronous system calls
    // of a few microseconds each, where three thread-pool round trips cost far more.
    const buf = readSmall(file, start, length);
    sink.head(head);
    sink.body(buf);
    sink.end();
    return;
  }
  // A synchronous open, as the lookup's stat (lookup.ts says why); it throws before any header.
  const fd = fs.openSync(file, 'r');
  if (zeroCopy) {
    sink.head(head);
    if (sendWithSendfile(sink, fd, start, length, send, file)) return;
    // Not for this response (sendfile.ts says when): copy; the head is given already.
    await copyBody(fd, file, start, length, null, sink);
    return;
  }
  await copyBody(fd, file, start, length, head, sink);
}

/**
 * The body with sendfile(2): the kernel moves the bytes from the page cache to the socket.
 * False, with `fd` still open and nothing sent, when the sink cannot do it for this response.
 */
function sendWithSendfile(sink: ResponseSink & FileSendingSink, fd: number, start: number, length: number, send: SendOptions, file: string): boolean {
  let over = false;
  let cancel: CancelSendfile | null = null;
  const finish = (err: SendfileError | null): void => {
    if (over) return;
    over = true;
    fs.closeSync(fd);
    if (err === null) {
      sink.end();
      return;
    }
    const reason = `static file ${file}: ${err.message}`;
    const clientLeft = err.code === 'EPIPE' || err.code === 'ECONNRESET';
    // A client leaving is ordinary (the request log shows it); a timeout or an error is not.
    if (!clientLeft) send.warn?.(reason);
    // Headers are out: fail() cuts the connection, the honest signal for a short body.
    sink.fail(clientLeft ? 499 : 500, reason);
  };
  // Bound first: a client that leaves while the transfer waits for the socket stops it.
  sink.bindAbort(() => {
    if (over) return;
    over = true;
    cancel?.();
    fs.closeSync(fd);
  });
  cancel = sink.sendFile(fd, start, length, send.timeoutMs, finish);
  if (cancel !== null) return true;
  sink.bindAbort(noop);
  return false;
}

function noop(): void {}

/** One positioned read in libuv's thread pool (the event loop never waits on the disk). */
function readAt(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * The body copied through user space. `head` is given here when not null (after a whole read,
 * so a read error before any byte is still a clean 500).
 */
async function copyBody(fd: number, file: string, start: number, length: number, head: ResponseHead | null, sink: ResponseSink): Promise<void> {
  if (length <= WHOLE_READ_MAX) {
    // Up to 1 MiB: one read in the thread pool and one write; the socket drains it from its
    // buffer. Streaming it in 64 KiB pieces cost a read and a drain wait per piece (3x slower).
    let buf: Buffer;
    try {
      buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const bytesRead = await readAt(fd, buf, got, length - got, start + got);
        if (bytesRead === 0) throw new Error(`file shrank to ${start + got} bytes since stat()`);
        got += bytesRead;
      }
    } finally {
      fs.close(fd, noop);
    }
    if (head) sink.head(head);
    sink.body(buf);
    sink.end();
    return;
  }
  if (head) sink.head(head);
  const end = start + length - 1;
  const stream = fs.createReadStream('', { fd, start, end, highWaterMark: STREAM_CHUNK, autoClose: true });
  let sent = 0;
  let done = false;
  const finish = (ok: boolean, reason: string): void => {
    if (done) return;
    done = true;
    stream.destroy();
    if (ok) sink.end();
    // Headers are out: fail() cuts the connection, the honest signal for a short body.
    else sink.fail(500, reason);
  };
  sink.bindAbort(() => {
    done = true;
    stream.destroy();
  });
  stream.on('data', (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    sent += buf.length;
    if (!sink.body(buf)) {
      stream.pause();
      sink.onDrain(() => {
        if (!done) stream.resume();
      });
    }
  });
  stream.on('end', () => finish(sent === length, `static file ${file} shrank while being sent (${sent} of ${length} bytes)`));
  stream.on('error', (err) => finish(false, `static file ${file} read error: ${err.message}`));
}

/** Bytes start..start+length of a small file; throws if it cannot be read or shrank since stat(). */
function readSmall(file: string, start: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, buf, got, length - got, start + got);
      if (n === 0) throw new Error(`file shrank to ${start + got} bytes since stat()`);
      got += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}
