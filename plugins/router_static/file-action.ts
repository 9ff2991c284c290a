/**
 * `file:`, `sendfile:`, `fastfile:` and their `-next` forms (uWSGI's router_static
 * uwsgi_routing_func_file/sendfile/fastfile): write one file as the response, with a status
 * and Content-Type chosen in the rule and none of the static engine (no Last-Modified, no 304,
 * no Range, no security check: the rule names the file).
 *
 *   file:filename=PATH[,status=200 OK][,content_type=text/html][,mime=1][,no_cl=1][,no_headers=1]
 *
 * filename and status are expanded per request. The three names differ in uWSGI only in how
 * bytes reach the socket (read/write, sendfile(), offload threads); here all three stream the
 * file with backpressure and never block the event loop, so they behave the same — except that,
 * as in uWSGI, only `file` honours no_cl (sendfile and fastfile always send Content-Length).
 * A file that cannot be opened: `-next` goes on to the next rule, the others close the request.
 */
import fs from 'node:fs';
import { RoutingError } from '../../core/errors.ts';
import type { RuleOrigin, RouteContext } from '../../core/routing/api.ts';
import { parseStatusLine } from '../../core/routing/respond.ts';
import { headerStats } from '../../core/routing/response-edits.ts';
import { HttpResponseParser } from '../../core/protocol/http-response-parser.ts';
import { streamFile } from '../../core/static/serve.ts';
import { parseKeyvals } from '../router_hash/index.ts';
import { fsPath, mimeTable } from './serve-config.ts';

export interface FileActionConfig {
  filename: string;
  status: string;
  contentType: string;
  mime: boolean;
  noContentLength: boolean;
  noHeaders: boolean;
}

const KEYS = ['filename', 'status', 'content_type', 'mime', 'no_cl', 'nocl', 'no_content_length', 'no_headers'] as const;

/**
 * Parse the keyval argument at start-up. As in uWSGI a flag key is set by its presence
 * (`mime=0` turns it on too); `no_cl` only applies to `file`.
 */
export function parseFileArgs(name: string, arg: string, origin: RuleOrigin, honoursNoCl: boolean): FileActionConfig {
  const kv = parseKeyvals(arg, name, origin, KEYS);
  const filename = kv.get('filename');
  if (!filename) throw new RoutingError(`"${name}:" needs filename=PATH (e.g. ${name}:filename=/srv/maintenance.html,status=503 Service Unavailable) in --${origin.option} "${origin.value}"`);
  const status = kv.get('status') || '200 OK';
  if (!status.includes('$') && parseStatusLine(status) === null) throw new RoutingError(`"${name}:" status must be "CODE [REASON]" (e.g. 404 Not Found), not "${status}", in --${origin.option} "${origin.value}"`);
  return {
    filename,
    status,
    contentType: kv.get('content_type') || 'text/html',
    mime: kv.has('mime'),
    noContentLength: honoursNoCl && (kv.has('no_cl') || kv.has('nocl') || kv.has('no_content_length')),
    noHeaders: kv.has('no_headers'),
  };
}

/**
 * Answer the request with the file. True when it was answered (or its answer began), false
 * when the file could not be opened (the caller decides between NEXT and closing).
 */
export async function serveFileAction(ctx: RouteContext, cfg: FileActionConfig, name: string): Promise<boolean> {
  const file = fsPath(ctx.expand(cfg.filename));
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
    if (!st.isFile()) return false;
    // open() is what uWSGI tests: an unreadable file counts as missing.
    await fs.promises.access(file, fs.constants.R_OK);
  } catch {
    return false;
  }
  const method = ctx.getVar('REQUEST_METHOD') ?? 'GET';
  if (cfg.noHeaders) return relayRawFile(ctx, file, method, name);
  const sink = ctx.response.sink();
  const status = parseStatusLine(ctx.expand(cfg.status));
  if (!status) {
    ctx.log(`${name}: invalid status "${ctx.expand(cfg.status)}" for ${file}: the request is closed`);
    return false;
  }
  const headers: string[] = [];
  if (!cfg.noContentLength) headers.push('Content-Length', String(st.size));
  headers.push('Content-Type', (cfg.mime ? mimeTable(ctx.options, (l) => ctx.log(l)).lookup(file) : undefined) ?? cfg.contentType);
  const [code, reason] = status;
  const head = { statusCode: code, reason, headers, contentLength: cfg.noContentLength ? -1 : st.size, chunked: false, ...headerStats(code, reason, headers) };
  if (method === 'HEAD' || st.size === 0) {
    sink.head(head);
    sink.end();
    return true;
  }
  try {
    await streamFile(file, 0, st.size - 1, head, sink);
  } catch (err) {
    ctx.log(`${name}: unable to send ${file}: ${(err as Error).message}`);
    return ctx.response.headersSent;
  }
  return true;
}

/**
 * no_headers: the file holds the whole response, status line and headers included (uWSGI
 * writes its bytes to the socket as they are). It is parsed like a backend's answer, so the
 * front end can frame it for its client and the request log can count it.
 */
function relayRawFile(ctx: RouteContext, file: string, method: string, name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sink = ctx.response.sink();
    const stream = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
    let done = false;
    const finish = (error: string | null): void => {
      if (done) return;
      done = true;
      stream.destroy();
      if (error !== null) {
        ctx.log(`${name}: ${file} is not an HTTP response (no_headers): ${error.replace(/\bbridge\b/g, 'file')}`);
        if (ctx.response.headersSent) sink.fail(500, error);
      }
      resolve(ctx.response.headersSent);
    };
    const parser = new HttpResponseParser({
      onHead: (head) => sink.head(head),
      onBody: (chunk) => {
        if (!sink.body(chunk)) {
          stream.pause();
          sink.onDrain(() => {
            if (!done) stream.resume();
          });
        }
      },
      onEnd: () => {
        sink.end();
        finish(null);
      },
    });
    parser.start(method === 'HEAD');
    sink.bindAbort(() => finish(null));
    stream.on('data', (chunk: Buffer | string) => {
      if (done) return;
      try {
        parser.execute(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      } catch (err) {
        // Trailing bytes after a complete response are ignored, as a socket peer's would be.
        finish(parser.done ? null : (err as Error).message);
      }
    });
    stream.on('end', () => {
      if (done) return;
      try {
        parser.finish();
      } catch (err) {
        finish((err as Error).message);
      }
    });
    stream.on('error', (err) => finish(err.message));
  });
}
