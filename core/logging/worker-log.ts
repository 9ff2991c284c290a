/**
 * The core worker's side of logging: which requests are logged and how their line is made
 * (settings that travel in the core worker plan), and a core worker child's own log, which
 * writes to the descriptors the master gave it.
 */
import pino from 'pino';
import { InvalidOptionError } from '../errors.ts';
import type { ResolvedOptions } from '../options/resolved.ts';
import {
  compileLogFormat,
  compileRequestFilter,
  formatDefaultLine,
  requestFields,
  type RequestLogFilter,
  type RequestRecord,
} from './request-log.ts';
import { createServerLog, jsonPinoOptions, logDatePrefix, targetSink, type ServerLog } from './server-log.ts';
import { FdTarget } from './targets/fd.ts';
import { DefaultLineWriter } from './line-writer.ts';

/** How request lines are made and which requests get one (serialisable: sent to core worker children). */
export interface RequestLogSettings {
  filter: RequestLogFilter;
  /** --log-format template, null for uWSGI's default line. */
  format: string | null;
  /** --log-micros. */
  micros: boolean;
  /** --log-json: a pino JSON record per request (its msg is the line). */
  json: boolean;
  /** --log-x-forwarded-for: the default line shows X-Forwarded-For instead of REMOTE_ADDR. */
  xForwardedFor: boolean;
  /** --logformat-strftime with --log-date FORMAT: the format of %(ftime). */
  ftimeFormat: string | null;
}

/** A core worker child's log settings. */
export interface ChildLogSettings {
  /** Descriptor for request lines (log-master mode), null: they go to stderr with the rest. */
  reqFd: number | null;
  json: boolean;
  /** --log-date value ("" = ctime), null when absent. */
  logDate: string | null;
}

function nonNegative(options: ResolvedOptions, name: string): number {
  const n = options.int(name, 0);
  if (n < 0) throw new InvalidOptionError(`--${name} must not be negative`);
  return n;
}

export function requestLogSettings(options: ResolvedOptions): RequestLogSettings {
  const logDate = options.string('log-date');
  return {
    filter: {
      disabled: options.flag('disable-logging'),
      status4xx: options.flag('log-4xx'),
      status5xx: options.flag('log-5xx'),
      slowMs: nonNegative(options, 'log-slow'),
      bigBytes: nonNegative(options, 'log-big'),
      zero: options.flag('log-zero'),
      sendfile: options.flag('log-sendfile'),
      ioError: options.flag('log-ioerror'),
    },
    format: options.string('log-format') ?? null,
    micros: options.flag('log-micros'),
    json: options.flag('log-json'),
    xForwardedFor: options.flag('log-x-forwarded-for'),
    ftimeFormat: options.flag('logformat-strftime') && logDate && logDate !== 'true' ? logDate : null,
  };
}

export interface RequestLogger {
  /** Whether this request gets a line (the --disable-logging re-enablers). */
  wants(r: RequestRecord): boolean;
  /** The line (text or a JSON record), without newline. */
  format(r: RequestRecord): string;
  /**
   * Log the request if it wants a line: `if (wants(r)) log.request(format(r))`, except that
   * uWSGI's default line going straight to a file is written there as bytes, without making
   * its string (line-writer.ts: less CPU, and no garbage for the GC). The request path's call.
   */
  emit(r: RequestRecord, log: ServerLog): void;
}

/** A compiled request logger (a class: nothing is created per request). */
class CompiledRequestLogger implements RequestLogger {
  constructor(
    readonly wants: (r: RequestRecord) => boolean,
    readonly format: (r: RequestRecord) => string,
    /** The default line's byte writer; null for --log-format and --log-json. */
    private readonly writer: DefaultLineWriter | null,
  ) {}

  emit(r: RequestRecord, log: ServerLog): void {
    if (!this.wants(r)) return;
    if (this.writer && log.requestWith(this.writer, r)) return;
    log.request(this.format(r));
  }
}

/** Null when no request can ever be logged: the pipeline then builds no record at all. */
export function compileRequestLogger(s: RequestLogSettings): RequestLogger | null {
  const wants = compileRequestFilter(s.filter);
  if (!wants) return null;
  const line = s.format ? compileLogFormat(s.format, { ftimeFormat: s.ftimeFormat }) : (r: RequestRecord) => formatDefaultLine(r, s.micros, s.xForwardedFor);
  const writer = s.format || s.json ? null : new DefaultLineWriter(s.micros, s.xForwardedFor);
  return new CompiledRequestLogger(wants, s.json ? jsonRequestFormatter(line) : line, writer);
}

/** Request records as pino JSON: {"level":30,"time":…,"pid":…,"hostname":…,"req":{…},"msg":"<the line>"}. */
export function jsonRequestFormatter(line: (r: RequestRecord) => string): (r: RequestRecord) => string {
  let out = '';
  const logger = pino(jsonPinoOptions(), {
    write(s: string) {
      out = s;
    },
  });
  return (r) => {
    logger.info({ req: requestFields(r) }, line(r));
    const s = out;
    out = '';
    return s.endsWith('\n') ? s.slice(0, -1) : s;
  };
}

/** A core worker child's log: server messages to fd 2, request lines to the request pipe (or fd 2). */
export function createChildLog(s: ChildLogSettings): ServerLog {
  const limit = 1048576;
  const warn = (m: string): void => {
    server.write(m + '\n', false);
  };
  const server: FdTarget = new FdTarget(2, `core worker ${process.pid} stderr`, limit, warn);
  const request = s.reqFd === null ? server : new FdTarget(s.reqFd, `core worker ${process.pid} request pipe`, limit, warn);
  return createServerLog({
    sink: targetSink(server, request),
    datePrefix: logDatePrefix(s.logDate ?? undefined),
    json: s.json,
    inheritFd: 2,
  });
}
