/**
 * The logger and log-encoder plugin API (uWSGI's `uwsgi_register_logger` and
 * `uwsgi_register_log_encoder`). A plugin lists the loggers and encoders it provides in its
 * descriptor (`loggers`, `logEncoders`, see core/plugins/api.ts); `--logger NAME:ARGS`,
 * `--req-logger`, `--log-encoder NAME ARGS` find them by name. docs/plugins.md shows one.
 *
 * A logger opens a *target*: something that takes encoded records and never blocks the
 * caller. A slow or dead target holds at most `bufferBytes` (--log-buffer) and then drops
 * records, counting them in `lost`; the log router reports the loss in the log.
 */
import type { ResolvedOptions } from '../options/resolved.ts';
import type { RecordWriter } from './line-writer.ts';

/** One opened log destination. */
export interface LogTarget {
  /** What the target is, for loss reports and errors ("file:/var/log/app.log"). */
  readonly description: string;
  /** Records dropped so far because the target was slow, full or unreachable. */
  readonly lost: number;
  /**
   * Queue one record (already encoded: usually a line ending in "\n"). Never blocks.
   * `countLoss: false` drops without counting (used for the loss reports themselves).
   */
  write(record: string | Buffer, countLoss?: boolean): void;
  /**
   * Queue a record `w` writes as bytes without making its text (the default request line to
   * a file: core/logging/line-writer.ts); false when the target cannot (the caller then
   * writes the text). Byte-stream targets (files, pipes, fds) have it.
   */
  writeWith?<T>(w: RecordWriter<T>, x: T): boolean;
  /** Reopen the destination (--log-reopen, --touch-logreopen, SIGHUP with --log-reopen). */
  reopen?(): void;
  /** Rotate now (--touch-logrotate); only targets that can (files). */
  rotate?(): void;
  /** Write what is queued before the process exits, synchronously where the target can. */
  flushSync?(): void;
  /** Flush what can be flushed and release the destination (processes, sockets, fds). */
  close(): Promise<void>;
}

/** What a logger gets to open its target. */
export interface LoggerContext {
  /** Bytes a target may queue while its destination is slow; then records are dropped (--log-buffer). */
  readonly bufferBytes: number;
  /** File mode for files a logger creates (--logfile-chmod, default 0640 as uWSGI). */
  readonly fileMode: number;
  /** Truncate files when opening them (--log-truncate). */
  readonly truncate: boolean;
  /** Report a problem of this target as a server message (never routed back into the target). */
  warn(message: string): void;
  /** The final options (a logger's own tuning options, e.g. --rsyslog-packet-size). */
  readonly options: ResolvedOptions;
}

/** A logger a plugin registers by name (uWSGI: file, fd, stdio, socket, syslog, rsyslog, pipe…). */
export interface LoggerDefinition {
  /** The name used in `--logger [ID ]NAME[:ARGS]`. */
  readonly name: string;
  /** One line for `--logger-list` and the docs. */
  readonly description: string;
  /** Whether ARGS are mandatory ("file" needs a path; "syslog" does not). */
  readonly needsArgs: boolean;
  /**
   * Open the target for ARGS (the text after "NAME:", null when absent). Throw an error whose
   * message says what to fix for bad arguments or an unreachable destination; async work
   * (name resolution) may return a promise. Called once, in the process that writes the log.
   */
  open(args: string | null, ctx: LoggerContext): LogTarget | Promise<LogTarget>;
}

/** An encoder turns one record into another (bytes in, bytes out); chained in option order. */
export type LogEncoder = (record: Buffer) => Buffer;

/** A log encoder a plugin (or the core) registers by name (`--log-encoder NAME[:LOGGER][ ARGS]`). */
export interface LogEncoderDefinition {
  readonly name: string;
  readonly description: string;
  /** Build an encoder from ARGS (the text after the first space, "" when absent); throw on bad ARGS. */
  create(args: string): LogEncoder;
}
