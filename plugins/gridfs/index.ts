/**
 * gridfs (spec/subsystems.md §6.6): serve a file stored in MongoDB GridFS, as a route action.
 *
 *   gridfs:db=NAME[,server=HOST:PORT][,itemname=NAME][,prefix=P][,skip_slash=1][,bucket=fs]
 *          [,no_mime=1][,orig_filename=1][,etag=1][,md5=1][,timeout=SECONDS]
 *          [,username=U,password=P][,replica=SET]            (keys: ./mountpoint.ts)
 *
 * What uWSGI 2.0's plugins/gridfs/gridfs.cc does, and so does this plugin
 * (test/integration/gridfs.test.ts, against a fake MongoDB: test/helpers/mongo-server.ts):
 *
 * - the file looked up is the newest (by uploadDate) of BUCKET.files whose `filename` is the
 *   expanded `itemname` (`$1`, `${VAR}`…);
 * - found: `200 OK` with Content-Type from the file name's extension (unless no_mime),
 *   `Content-Disposition: inline; filename="NAME"` (orig_filename), Content-Length,
 *   Last-Modified (uploadDate), `ETag: "MD5"` (etag, when the file has an md5),
 *   Content-MD5 (md5), then the chunks in order; HEAD gets the same head and no body;
 * - not found: `404 Not Found`; authentication refused: `403 Forbidden`, as uWSGI;
 * - routing stops either way.
 *
 * Differences from uWSGI, on purpose:
 * - without `itemname` the name is prefix + PATH_INFO (its leading slash dropped with
 *   skip_slash), as --gridfs-mount computes it; uWSGI's action looks up an empty name (always
 *   a 404) and ignores prefix/skip_slash;
 * - a server that is down, silent past the timeout, or failing answers `502 Bad Gateway`
 *   (`504 Gateway Timeout` for a timeout) and logs one line; uWSGI logs and sends nothing at
 *   all (the client sees the connection close without a response). A failure after the head
 *   cuts the connection (the Content-Length cannot be honoured);
 * - Content-MD5 is the base64 of the 16-byte digest (RFC 1864); uWSGI base64-encodes the 32
 *   hex characters, which no client can check. A file without md5 gets no Content-MD5 (uWSGI
 *   sends an empty one);
 * - flags (`md5`, `etag`…) read `0/false/off/no` as off; uWSGI turns them on when present;
 * - unknown keys are refused at start-up (uWSGI ignores them);
 * - the timeout (`timeout=` seconds, else --socket-timeout, 4 when 0) bounds connecting and
 *   every operation; one MongoClient per server is kept (./clients.ts), uWSGI connects per
 *   request; the body is streamed with back-pressure, one chunk at a time.
 * Not built: the --gridfs-mount request handler (modifier1 25): refused with a pointer to the
 * equivalent route. No Range support (uWSGI has none either).
 */
import type { GridFSBucket, GridFSFile, MongoClient } from 'mongodb';
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext, type RouteOutcome } from '../../core/plugins/api.ts';
import { ConfigError, RoutingError } from '../../core/errors.ts';
import { respond } from '../../core/routing/respond.ts';
import { headerStats } from '../../core/routing/response-edits.ts';
import { MimeTable } from '../../core/static/mime.ts';
import { clientFor, dropClient, loadDriver, type MongoDriver } from './clients.ts';
import { parseMountpoint, type GridfsMountpoint } from './mountpoint.ts';

/** The rule text as bytes (a latin-1 string, as request vars are), so expansion keeps every byte. */
function asBytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** The GridFS file name for this request: UTF-8, as MongoDB stores strings. */
function itemName(m: GridfsMountpoint, template: string | null, ctx: RouteContext): string {
  let bytes: string;
  if (template !== null) bytes = ctx.expand(template);
  else {
    const pathInfo = ctx.getVar('PATH_INFO') ?? '';
    bytes = m.prefix + (m.skipSlash && pathInfo.startsWith('/') ? pathInfo.slice(1) : pathInfo);
  }
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

let mimeTable: MimeTable | null = null;

function plain(ctx: RouteContext, status: number, text: string): void {
  respond(ctx, status, text, ['Content-Type', 'text/plain', 'Content-Length', String(text.length)], text);
}

/** A header-safe file name for Content-Disposition (uWSGI copies it raw). */
function quoted(name: string): string {
  return name.replace(/[\x00-\x1f\x7f]/g, '').replace(/["\\]/g, '\\$&');
}

function headersFor(m: GridfsMountpoint, file: GridFSFile, ctx: RouteContext): string[] {
  const headers: string[] = [];
  if (m.mime) {
    mimeTable ??= MimeTable.load(ctx.options.all('mimefile'), (line) => ctx.log(line));
    const type = mimeTable.lookup(file.filename ?? '');
    if (type !== undefined) headers.push('Content-Type', type);
  }
  if (m.origFilename) headers.push('Content-Disposition', `inline; filename="${quoted(file.filename ?? '')}"`);
  headers.push('Content-Length', String(file.length));
  headers.push('Last-Modified', new Date(Math.floor(file.uploadDate.getTime() / 1000) * 1000).toUTCString());
  // md5 is no longer in the driver's type (GridFS writers stopped computing it), files may still have it.
  const stored = (file as GridFSFile & { md5?: unknown }).md5;
  const md5 = typeof stored === 'string' ? stored : '';
  if (m.etag && md5 !== '') headers.push('ETag', `"${md5}"`);
  if (m.md5 && /^[0-9a-fA-F]{32}$/.test(md5)) headers.push('Content-MD5', Buffer.from(md5, 'hex').toString('base64'));
  return headers;
}

/** Errors that say the server is unreachable or timed out (the client is dropped), not a refusal. */
function isConnectionFailure(err: unknown): boolean {
  const name = (err as Error)?.name ?? '';
  return name === 'MongoServerSelectionError' || name.startsWith('MongoNetwork') || name === 'MongoTopologyClosedError' || name === 'MongoNotConnectedError';
}

function isTimeout(err: unknown): boolean {
  const e = err as Error & { reason?: { servers?: Map<string, { error?: Error | null }> } };
  if (e?.name === 'MongoNetworkTimeoutError' || e?.name === 'MongoOperationTimeoutError') return true;
  if (e?.name !== 'MongoServerSelectionError') return false;
  // Selection gave up: a timeout unless a server failed for another reason (ECONNREFUSED…).
  // A silent server often has no error yet (the handshake was still waiting when time ran out).
  for (const s of e.reason?.servers?.values() ?? []) if (s.error && s.error.name !== 'MongoNetworkTimeoutError') return false;
  return true;
}

/** One line in the log and an answer: 403 for refused credentials, 504 for a timeout, else 502. */
function failed(mongo: MongoDriver, ctx: RouteContext, m: GridfsMountpoint, client: MongoClient, name: string, err: unknown): void {
  const message = (err as Error)?.message ?? String(err);
  if (err instanceof mongo.MongoServerError && err.code === 18) {
    ctx.log(`[uwsgi-gridfs]: ${m.server}/${m.db}: ${message}`);
    plain(ctx, 403, 'Forbidden');
    return;
  }
  if (isConnectionFailure(err)) dropClient(client);
  const timeout = isTimeout(err);
  ctx.log(`[uwsgi-gridfs]: ${m.server}/${m.db} "${name}": ${message}${timeout ? ' (raise timeout= or --socket-timeout for a slow server)' : ''}`);
  if (timeout) plain(ctx, 504, 'Gateway Timeout');
  else plain(ctx, 502, 'Bad Gateway');
}

/** Stream the file's chunks to the client, pausing while it is slow. Resolves when done. */
function streamBody(ctx: RouteContext, m: GridfsMountpoint, client: MongoClient, bucket: GridFSBucket, file: GridFSFile, headers: string[]): Promise<void> {
  const sink = ctx.response.sink();
  sink.head({ statusCode: 200, reason: 'OK', headers, contentLength: file.length, chunked: false, ...headerStats(200, 'OK', headers) });
  if (ctx.getVar('REQUEST_METHOD') === 'HEAD' || file.length === 0) {
    sink.end();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const stream = bucket.openDownloadStream(file._id);
    let finished = false;
    const finish = (err: Error | null): void => {
      if (finished) return;
      finished = true;
      if (err) {
        if (isConnectionFailure(err)) dropClient(client);
        ctx.log(`[uwsgi-gridfs]: ${m.server}/${m.db} "${file.filename}": ${err.message} (the response was cut)`);
        sink.fail(502, err.message);
      } else sink.end();
      resolve();
    };
    stream.on('data', (chunk: Buffer) => {
      if (!finished && !sink.body(chunk)) {
        stream.pause();
        sink.onDrain(() => {
          if (!finished) stream.resume();
        });
      }
    });
    stream.on('end', () => finish(null));
    stream.on('error', (err: Error) => finish(err));
    sink.bindAbort(() => {
      // The client left: stop reading and kill the server-side cursor (destroy() alone leaves it open).
      if (finished) return;
      finished = true;
      stream.abort().catch(() => undefined);
      resolve();
    });
  });
}

function prepare(arg: string, origin: { option: string; value: string }) {
  let m: GridfsMountpoint;
  try {
    m = parseMountpoint(arg);
  } catch (err) {
    throw new RoutingError(`invalid "gridfs:" rule in --${origin.option} "${origin.value}": ${(err as Error).message}`, err);
  }
  const template = m.itemname === null ? null : asBytes(m.itemname);
  return async (ctx: RouteContext): Promise<RouteOutcome> => {
    const name = itemName(m, template, ctx);
    if (ctx.options.flag('gridfs-debug')) ctx.log(`[uwsgi-gridfs-debug] itemname = ${name}`);
    const seconds = m.timeout > 0 ? m.timeout : ctx.options.int('socket-timeout', 4);
    const mongo = await loadDriver();
    const client = clientFor(mongo, m, (seconds > 0 ? seconds : 4) * 1000);
    const bucket = new mongo.GridFSBucket(client.db(m.db), { bucketName: m.bucket });
    let file: GridFSFile | null;
    try {
      // The newest revision, as the legacy driver's GridFS::findFileByName().
      file = await bucket.find({ filename: name }, { sort: { uploadDate: -1 }, limit: 1 }).next();
    } catch (err) {
      failed(mongo, ctx, m, client, name, err);
      return 'break';
    }
    if (file === null) {
      plain(ctx, 404, 'Not Found');
      return 'break';
    }
    await streamBody(ctx, m, client, bucket, file, headersFor(m, file, ctx));
    return 'break';
  };
}

const gridfs: RouteActionDefinition = { name: 'gridfs', prepare };

export default definePlugin({
  name: 'gridfs',
  apiVersion: PLUGIN_API_VERSION,
  description: 'serve files stored in MongoDB GridFS (the gridfs route action)',
  options: [
    { name: 'gridfs-debug', argument: 'none', kind: 'flag', help: 'report the gridfs itemname of each request (debug)' },
    {
      name: 'gridfs-mount',
      argument: 'required',
      kind: 'string',
      multiple: true,
      metavar: 'KEYVAL',
      help: "mount a gridfs db on the specified mountpoint: not supported by tsuwsgi, use --route '^/ gridfs:db=NAME,skip_slash=1'",
    },
  ],
  routeActions: [gridfs],
  init(ctx) {
    const mounts = ctx.options.all('gridfs-mount');
    if (mounts.length > 0) {
      throw new ConfigError(
        `--gridfs-mount "${mounts[0]}": the gridfs request handler (modifier1 25) is not built in tsuwsgi; serve the same files with the route action: --route '^/ gridfs:${mounts[0]}' (without itemname= it looks up prefix + PATH_INFO, as the mount does)`,
      );
    }
  },
});
