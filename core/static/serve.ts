/**
 * Send one static file to a ResponseSink: the headers of §17 (Content-Type from the MIME
 * table, Content-Length, Last-Modified, Expires, Content-Encoding, Content-Range), 304 for
 * If-Modified-Since, 206/416 with --honour-range, X-Sendfile / X-Accel-Redirect modes, and
 * otherwise the body: up to 64 KiB read in one synchronous read (see lookup.ts for why), larger
 * bodies streamed from disk with backpressure (a slow client pauses the read, the file is
 * never held in memory and no transfer holds the event loop).
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

export interface StaticServeConfig {
  mime: MimeTable;
  expires: readonly CompiledExpires[];
  gzip: GzipRules;
  serveMode: FileServeMode;
  honourRange: boolean;
}

const REASONS: Record<number, string> = { 200: 'OK', 206: 'Partial Content', 304: 'Not Modified', 416: 'Requested Range Not Satisfiable' };

/** Bodies up to this size are read synchronously (lookup.ts says why). */
const READ_CHUNK = 64 * 1024;
/** Bodies up to this size are read in one asynchronous read and written at once. */
const WHOLE_READ_MAX = 1024 * 1024;
/** Larger bodies stream in pieces of this size: few syscalls, bounded memory per connection. */
const STREAM_CHUNK = 256 * 1024;

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
  await streamFile(file, start, end, makeHead(status, headers, length), sink);
}

/**
 * Send bytes start..end (inclusive) of `file` after `head`. Open first, so a file that
 * vanished since stat() is still a clean error (a rejection) before any header. Also used by
 * the routing `file:` actions, which build their own head.
 */
export async function streamFile(file: string, start: number, end: number, head: ResponseHead, sink: ResponseSink): Promise<void> {
  const length = end - start + 1;
  if (length <= READ_CHUNK) {
    // Small files (the common static asset): open, one read, close — synchronous system calls
    // of a few microseconds each, where three thread-pool round trips cost far more.
    const buf = readSmall(file, start, length);
    sink.head(head);
    sink.body(buf);
    sink.end();
    return;
  }
  const handle = await fs.promises.open(file, 'r');
  if (length <= WHOLE_READ_MAX) {
    // Up to 1 MiB: one read in the thread pool and one write; the socket drains it from its
    // buffer. Streaming it in 64 KiB pieces cost a read and a drain wait per piece (3x slower).
    let buf: Buffer;
    try {
      buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(buf, got, length - got, start + got);
        if (bytesRead === 0) throw new Error(`file shrank to ${start + got} bytes since stat()`);
        got += bytesRead;
      }
    } finally {
      handle.close().catch(() => undefined);
    }
    sink.head(head);
    sink.body(buf);
    sink.end();
    return;
  }
  sink.head(head);
  const stream = fs.createReadStream('', { fd: handle, start, end, highWaterMark: STREAM_CHUNK, autoClose: true });
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
