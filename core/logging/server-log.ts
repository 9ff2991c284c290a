/**
 * Server messages ("spawned uWSGI worker 1 …", "*** HARAKIRI …") go through pino, which
 * gives us its asynchronous, buffered writer (sonic-boom) and, later, JSON output and
 * transports. uWSGI users read and grep plain lines, so the default rendering is the bare
 * message: a pino stream-write hook turns pino's `{"msg":"…"}` record back into the line.
 * Request log lines (the hot path) skip pino's serialisation and are written straight to
 * the same destination, so both kinds stay in order in one file descriptor.
 */
import pino from 'pino';

export interface ServerLog {
  /** One server message (a newline is added). */
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** One request log line, already formatted (a newline is added). */
  request(line: string): void;
  /** Write everything still buffered (before exit). */
  flushSync(): void;
  /** The file descriptor log lines go to (handed to bridges as their stdout/stderr). */
  readonly fd: number;
}

export interface ServerLogOptions {
  /** File to append to (`--logto`); stderr when absent. */
  file?: string;
  /** `--log-date`: prefix server messages with ctime() or a strftime-like format. */
  datePrefix?: (now: Date) => string;
}

export function createServerLog(options: ServerLogOptions = {}): ServerLog {
  const dest = pino.destination({
    dest: options.file ?? 2,
    append: true,
    mkdir: false,
    // Synchronous writes keep server messages ordered with what bridges write to the
    // same fd; they are rare. Request lines use the same stream (see request()).
    sync: true,
  });
  const datePrefix = options.datePrefix;
  const logger = pino(
    {
      base: null,
      timestamp: false,
      hooks: {
        streamWrite(record: string): string {
          const msg = (JSON.parse(record) as { msg?: string }).msg ?? '';
          return (datePrefix ? datePrefix(new Date()) : '') + msg + '\n';
        },
      },
    },
    dest,
  );
  return {
    info: (m) => logger.info(m),
    warn: (m) => logger.warn(m),
    error: (m) => logger.error(m),
    request: (line) => {
      dest.write(line + '\n');
    },
    flushSync: () => {
      try {
        dest.flushSync();
      } catch {
        /* nothing buffered or fd closed */
      }
    },
    get fd() {
      // sonic-boom exposes its descriptor at run time but not in its type declarations.
      return (dest as unknown as { fd: number }).fd;
    },
  };
}
