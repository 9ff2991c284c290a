/**
 * A target writing to a file descriptor: stderr, an inherited fd (`fd:N`), a file. Regular
 * files are written synchronously every few milliseconds (a page-cache copy, and the order
 * with other writers of the same file is kept); anything else (pipe, tty, socket) is written
 * asynchronously, so a reader that stops reading only fills the queue. A byte stream: its
 * queue also takes request lines written as bytes (QueuedTarget.writeWith).
 */
import fs from 'node:fs';
import tty from 'node:tty';
import { joinBatch, QueuedTarget, type LogRecord } from './queued.ts';

/** How long lines gather before one write (every fd target). */
const FILE_COALESCE_MS = 5;

/** An asynchronous write older than this is taken for a reader that stopped reading. */
const STUCK_AFTER_MS = 1000;

export class FdTarget extends QueuedTarget {
  protected fd: number;
  /** Written synchronously (see neverBlocks), else through the thread pool. */
  protected regular: boolean;
  private readonly ownsFd: boolean;
  /** Set when an asynchronous write did not complete: flushSync must not block on it. */
  private stuck = false;
  private inflightSince = 0;
  private errorReported = false;
  protected readonly warn: (message: string) => void;

  constructor(fd: number, description: string, limit: number, warn: (m: string) => void, ownsFd = false) {
    super(description, limit, true);
    this.fd = fd;
    this.ownsFd = ownsFd;
    this.warn = warn;
    this.regular = neverBlocks(fd);
    // Lines come a few milliseconds late in exchange for one write per dozens of requests (a
    // write per event-loop turn cost ~7% of hello-world throughput with a file, and ~40% with
    // /dev/null or a pipe, whose writes went through the thread pool every turn); exit paths
    // flush synchronously, so nothing queued is lost.
    this.coalesceMs = FILE_COALESCE_MS;
  }

  /** The descriptor (inherited by bridges when nothing else needs the log). */
  get descriptor(): number {
    return this.fd;
  }

  protected deliver(batch: LogRecord[], done: () => void, records: number): void {
    const data = joinBatch(batch);
    if (this.regular) {
      this.writeSync(data, records);
      done();
      return;
    }
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    this.stuck = true;
    this.inflightSince = Date.now();
    this.writeAsync(buf, 0, records, () => {
      this.stuck = false;
      done();
    });
  }

  private writeAsync(buf: Buffer, offset: number, records: number, done: () => void): void {
    fs.write(this.fd, buf, offset, buf.length - offset, null, (err, n) => {
      if (err) {
        if (err.code === 'EAGAIN' && !this.closed) {
          setTimeout(() => this.writeAsync(buf, offset, records, done), 10).unref();
          return;
        }
        this.failed(err, records);
        done();
        return;
      }
      if (offset + n < buf.length) this.writeAsync(buf, offset + n, records, done);
      else {
        this.written(buf.length);
        done();
      }
    });
  }

  protected writeSync(data: string | Buffer, records: number): void {
    try {
      if (typeof data === 'string') {
        const n = fs.writeSync(this.fd, data);
        this.written(n);
      } else {
        let off = 0;
        while (off < data.length) off += fs.writeSync(this.fd, data, off);
        this.written(data.length);
      }
    } catch (err) {
      this.failed(err as NodeJS.ErrnoException, records);
    }
  }

  private failed(err: NodeJS.ErrnoException, records: number): void {
    this.lost += records;
    if (!this.errorReported) {
      this.errorReported = true;
      this.warn(`cannot write to log target ${this.description}: ${err.message}`);
    }
  }

  /** Bytes reached the destination (files count them for --log-maxsize). */
  protected written(_bytes: number): void {}

  flushSync(): void {
    // An asynchronous write in flight for long means a reader that stopped reading: a
    // synchronous write would hang the exit. One just started is only in transit (it usually
    // completes in the thread pool before the process exits), and skipping the queued lines
    // then would lose the last words before an exit (the app-load error).
    if (this.stuck && Date.now() - this.inflightSince > STUCK_AFTER_MS) return;
    const taken = this.takeQueued();
    if (!taken) return;
    const data = joinBatch(taken.batch);
    if (this.regular) this.writeSync(data, taken.records);
    else {
      // A pipe or terminal: one attempt; a reader that stopped reading must not hang the exit.
      try {
        if (typeof data === 'string') fs.writeSync(this.fd, data);
        else fs.writeSync(this.fd, data);
      } catch {
        this.lost += taken.records;
      }
    }
    this.recycleTaken();
  }

  async close(): Promise<void> {
    await this.drain(2000);
    this.flushSync();
    this.closed = true;
    if (this.ownsFd) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already closed */
      }
    }
  }
}

/**
 * Writes to this descriptor never wait for a reader, so they are made synchronously: a regular
 * file, or a character device that is not a terminal (/dev/null, /dev/kmsg). Pipes, sockets and
 * terminals can stall (a reader that stopped reading, a paused terminal): those are written
 * through the thread pool, so the event loop never blocks on them.
 */
export function neverBlocks(fd: number): boolean {
  try {
    const st = fs.fstatSync(fd);
    return st.isFile() || (st.isCharacterDevice() && !tty.isatty(fd));
  } catch {
    return false;
  }
}
