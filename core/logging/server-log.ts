/**
 * Server messages ("spawned uWSGI worker 1 …", "*** HARAKIRI …") go through pino: plain
 * uWSGI-style lines by default (a stream-write hook turns pino's record back into the bare
 * message, with the --log-date prefix), pino's own JSON records with --log-json. Request
 * lines (the hot path) skip pino in text mode and go straight to the sink.
 *
 * Where lines go is the sink's business: the log router in the master process
 * (core/logging/router.ts), or — in a core worker child — the descriptors the master reads.
 * Nothing here blocks: the sinks queue and write once per event-loop turn.
 */
import os from 'node:os';
import type { Readable } from 'node:stream';
import pino from 'pino';
import type { LogTarget } from './api.ts';
import type { RecordWriter } from './line-writer.ts';
import { ctime } from './request-log.ts';
import { strftime } from './strftime.ts';

export interface ServerLog {
  /** One server message (a newline is added). */
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** One request log line, already formatted (a newline is added). */
  request(line: string): void;
  /**
   * One request line that `w` writes as bytes (with its newline) where the destination takes
   * them as they are (RequestLogger.emit); false: format it and call request().
   */
  requestWith<T>(w: RecordWriter<T>, x: T): boolean;
  /** Write everything still queued (before exit). */
  flushSync(): void;
  /**
   * The descriptor children (app workers, core workers) inherit as stdout/stderr, or null in
   * log-master mode: then their output is read through pipes and handed to `attach`.
   */
  readonly inheritFd: number | null;
  /** Log-master mode: every line read from `stream` (a child's stdout/stderr) becomes a log line. */
  attach(stream: Readable, origin: { source: string; pid?: number; raw: boolean }): void;
  /** Log-master mode: request lines written by a core worker child. */
  attachRequests(stream: Readable): void;
  /** Open what must be opened after privileges are dropped (--logto2). */
  openLate?(): void;
  /** Reopen files (SIGHUP with --log-reopen). */
  reopen(): void;
  /** Flush and release every target (end of the master). */
  close(): Promise<void>;
}

/** Where a server log's lines go. Lines carry no trailing newline. */
export interface LogSink {
  server(line: string): void;
  request(line: string): void;
  /** See ServerLog.requestWith; absent: never. */
  requestWith?<T>(w: RecordWriter<T>, x: T): boolean;
  flushSync(): void;
  reopen?(): void;
  close(): Promise<void>;
}

export interface ServerLogOptions {
  sink: LogSink;
  /** --log-date: prefix server messages with ctime() or a strftime format (text mode). */
  datePrefix?: ((now: Date) => string) | undefined;
  /** --log-json: pino's JSON records instead of plain lines. */
  json?: boolean;
  inheritFd: number | null;
  /** Longest line kept whole when reading children's output (--log-master-bufsize). */
  maxLine?: number;
}

/** --log-date: ctime() + " - " without a value (uWSGI), else strftime(VALUE) + " - ". */
export function logDatePrefix(value: string | undefined): ((now: Date) => string) | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value === 'true') return (now) => `${ctime(now.getTime())} - `;
  return (now) => `${strftime(value, now)} - `;
}

/** A pino destination that hands each record (newline stripped) to `out`. */
function pinoStream(out: (line: string) => void): { write(s: string): void } {
  return {
    write(s: string) {
      out(s.endsWith('\n') ? s.slice(0, -1) : s);
    },
  };
}

/** pino options of --log-json records (shared by the master, core workers and the request formatter). */
export function jsonPinoOptions(): pino.LoggerOptions {
  return { base: { pid: process.pid, hostname: os.hostname() }, timestamp: pino.stdTimeFunctions.epochTime };
}

export function createServerLog(o: ServerLogOptions): ServerLog {
  const sink = o.sink;
  const datePrefix = o.datePrefix;
  const logger = o.json
    ? pino(jsonPinoOptions(), pinoStream((l) => sink.server(l)))
    : pino(
        {
          base: null,
          timestamp: false,
          hooks: {
            streamWrite(record: string): string {
              const msg = (JSON.parse(record) as { msg?: string }).msg ?? '';
              return (datePrefix ? datePrefix(new Date()) : '') + msg;
            },
          },
        },
        pinoStream((l) => sink.server(l)),
      );
  // Raw lines of app workers become JSON records too with --log-json.
  const rawJson = o.json ? pino(jsonPinoOptions(), pinoStream((l) => sink.server(l))) : null;
  const maxLine = o.maxLine ?? 8192;
  return {
    info: (m) => logger.info(m),
    warn: (m) => logger.warn(m),
    error: (m) => logger.error(m),
    request: (line) => sink.request(line),
    requestWith: (w, x) => (sink.requestWith ? sink.requestWith(w, x) : false),
    flushSync: () => sink.flushSync(),
    inheritFd: o.inheritFd,
    attach(stream, origin) {
      const emit = rawJson && origin.raw ? (line: string) => rawJson.info({ source: origin.source, pid: origin.pid }, line) : (line: string) => sink.server(line);
      splitLines(stream, maxLine, emit);
    },
    attachRequests(stream) {
      splitLines(stream, maxLine, (line) => sink.request(line));
    },
    reopen: () => sink.reopen?.(),
    close: () => sink.close(),
  };
}

/** Call `onLine` for every line read from `stream`; a line longer than `maxLine` is cut into pieces. */
export function splitLines(stream: Readable, maxLine: number, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    let text = rest + chunk;
    let nl: number;
    while ((nl = text.indexOf('\n')) >= 0) {
      onLine(text.slice(0, nl));
      text = text.slice(nl + 1);
    }
    while (text.length > maxLine) {
      onLine(text.slice(0, maxLine));
      text = text.slice(maxLine);
    }
    rest = text;
  });
  stream.on('end', () => {
    if (rest) onLine(rest);
    rest = '';
  });
  stream.on('error', () => {});
}

/**
 * A sink writing to targets directly (a core worker child: its server messages to fd 2,
 * request lines to the request pipe in log-master mode), reporting its own losses.
 */
export function targetSink(server: LogTarget, request: LogTarget): LogSink {
  const targets = server === request ? [server] : [server, request];
  const reported = new Map<LogTarget, number>();
  const timer = setInterval(() => {
    for (const t of targets) {
      const before = reported.get(t) ?? 0;
      if (t.lost > before) {
        reported.set(t, t.lost);
        server.write(`*** ${t.lost - before} log lines lost (target ${t.description}, pid ${process.pid}) ***\n`, false);
      }
    }
  }, 1000);
  timer.unref();
  return {
    server: (line) => server.write(line + '\n'),
    request: (line) => request.write(line + '\n'),
    requestWith: (w, x) => (request.writeWith ? request.writeWith(w, x) : false),
    flushSync: () => {
      for (const t of targets) t.flushSync?.();
    },
    close: async () => {
      clearInterval(timer);
      await Promise.all(targets.map((t) => t.close()));
    },
  };
}
