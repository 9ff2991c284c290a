/**
 * The non-blocking core of every log target: records are queued and handed to the
 * destination once per event-loop turn (so a burst of request lines leaves in one write), or
 * every `coalesceMs` for destinations that ask for it (files: see FdTarget), at most one
 * delivery in flight. While the destination is slow or stuck the queue grows to
 * `limit` bytes; past that, records are dropped and counted in `lost` (the router reports
 * the loss in the log). The request path only ever pays for an array push.
 */
import type { LogTarget } from '../api.ts';

export type LogRecord = string | Buffer;

export abstract class QueuedTarget implements LogTarget {
  readonly description: string;
  lost = 0;
  protected readonly limit: number;
  private items: LogRecord[] = [];
  private bytes = 0;
  private inFlight = false;
  private scheduled = false;
  protected closed = false;
  private idleWaiters: Array<() => void> = [];
  /**
   * Wait this long after the first queued record before delivering (0: the next event-loop
   * turn). Under load a turn holds one or two requests, so a write per turn is a system call
   * per request or two; a few milliseconds gather dozens of lines into one write.
   */
  protected coalesceMs = 0;

  constructor(description: string, limit: number) {
    this.description = description;
    this.limit = limit;
  }

  write(record: LogRecord, countLoss = true): void {
    if (this.closed) return;
    const n = record.length;
    // One record larger than the limit still goes out when nothing else is waiting.
    if (this.bytes > 0 && this.bytes + n > this.limit) {
      if (countLoss) this.lost++;
      return;
    }
    this.items.push(record);
    this.bytes += n;
    if (!this.scheduled && !this.inFlight) {
      this.scheduled = true;
      // Not unref()d: a process about to exit on its own still writes its last lines.
      if (this.coalesceMs > 0) setTimeout(this.pump, this.coalesceMs);
      else setImmediate(this.pump);
    }
  }

  /** Whether records are waiting or a delivery has not completed. */
  get pending(): boolean {
    return this.inFlight || this.items.length > 0;
  }

  private readonly pump = (): void => {
    this.scheduled = false;
    if (this.inFlight) return;
    if (this.items.length === 0) {
      this.notifyIdle();
      return;
    }
    const batch = this.items;
    this.items = [];
    this.bytes = 0;
    this.inFlight = true;
    this.deliver(batch, () => {
      this.inFlight = false;
      if (this.items.length) this.pump();
      else this.notifyIdle();
    });
  };

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves when everything queued was delivered (or after `timeoutMs`). */
  protected drain(timeoutMs: number): Promise<void> {
    if (!this.pending) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      t.unref();
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Take what is queued but not yet in flight (for synchronous flushing at exit). */
  protected takeQueued(): LogRecord[] | null {
    if (this.inFlight || this.items.length === 0) return null;
    const batch = this.items;
    this.items = [];
    this.bytes = 0;
    return batch;
  }

  /**
   * Hand a batch to the destination; call `done` when it may take the next one. Records the
   * destination refuses are the subclass's to count in `lost`.
   */
  protected abstract deliver(batch: LogRecord[], done: () => void): void;

  abstract close(): Promise<void>;
}

/** Concatenate a batch into one string (all text) or one Buffer. */
export function joinBatch(batch: LogRecord[]): string | Buffer {
  if (batch.length === 1) return batch[0]!;
  let text = true;
  for (const r of batch) {
    if (typeof r !== 'string') {
      text = false;
      break;
    }
  }
  if (text) return (batch as string[]).join('');
  return Buffer.concat(batch.map((r) => (typeof r === 'string' ? Buffer.from(r) : r)));
}
