/**
 * The non-blocking core of every log target: records are queued and handed to the
 * destination once per event-loop turn (so a burst of request lines leaves in one write), or
 * every `coalesceMs` for destinations that ask for it (files: see FdTarget), at most one
 * delivery in flight. While the destination is slow or stuck the queue grows to
 * `limit` bytes; past that, records are dropped and counted in `lost` (the router reports
 * the loss in the log). The request path only ever pays for an append to the queue.
 *
 * A byte stream (file, pipe: FdTarget) also takes records written straight into its queue as
 * bytes (`writeWith`, the default request line: see line-writer.ts), so its queue is a
 * Buffer those land in, with the text records that came since kept as strings until the
 * next bytes or the delivery (a batch of text only is joined as before: the cheapest way
 * from strings to one write).
 */
import type { LogTarget } from '../api.ts';
import type { RecordWriter } from '../line-writer.ts';

export type LogRecord = string | Buffer;

/** Where records wait for the next delivery. */
interface RecordQueue {
  /** Records waiting. */
  readonly count: number;
  /** Bytes waiting (what the limit applies to; a string counts its length). */
  readonly bytes: number;
  add(record: LogRecord): void;
  /** Everything waiting, as one batch; the queue is empty after. */
  take(): LogRecord[];
  /** The last batch taken was delivered: its memory may be reused. */
  recycle(): void;
}

/** Records as they came (a batch is the list). */
class ListQueue implements RecordQueue {
  private items: LogRecord[] = [];
  bytes = 0;

  get count(): number {
    return this.items.length;
  }

  add(record: LogRecord): void {
    this.items.push(record);
    this.bytes += record.length;
  }

  take(): LogRecord[] {
    const batch = this.items;
    this.items = [];
    this.bytes = 0;
    return batch;
  }

  recycle(): void {}
}

/** First size of a byte queue's buffer: a few milliseconds of request lines under load. */
const BYTE_QUEUE_START = 64 * 1024;

/**
 * A byte stream's queue: one Buffer (records written into it, Buffers copied) followed by
 * the strings that came after the last bytes. Two buffers take turns, one filling while the
 * other is delivered (an asynchronous write holds it until it completes), so steady logging
 * allocates nothing.
 */
class ByteQueue implements RecordQueue {
  private buf: Buffer = Buffer.allocUnsafeSlow(BYTE_QUEUE_START);
  private spare: Buffer | null = null;
  private lent: Buffer | null = null;
  private used = 0;
  private texts: string[] = [];
  private textLength = 0;
  count = 0;

  get bytes(): number {
    return this.used + this.textLength;
  }

  add(record: LogRecord): void {
    if (typeof record === 'string') {
      this.texts.push(record);
      this.textLength += record.length;
    } else {
      this.settle();
      this.reserve(record.length);
      this.used += record.copy(this.buf, this.used);
    }
    this.count++;
  }

  /** Write one record with `w`, which takes at most `max` bytes. */
  addWith<T>(w: RecordWriter<T>, x: T, max: number): void {
    this.settle();
    this.reserve(max);
    this.used = w.write(x, this.buf, this.used);
    this.count++;
  }

  /** Move the waiting strings into the buffer, behind the bytes (order is kept). */
  private settle(): void {
    if (this.texts.length === 0) return;
    const text = this.texts.length === 1 ? this.texts[0]! : this.texts.join('');
    this.texts = [];
    this.textLength = 0;
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    this.reserve(text.length * 3);
    this.used += this.buf.write(text, this.used);
  }

  private reserve(n: number): void {
    if (this.used + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.used + n));
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
  }

  take(): LogRecord[] {
    this.count = 0;
    if (this.used === 0) {
      // Text only (server messages, --log-format lines): the list, joined by the target.
      const batch = this.texts;
      this.texts = [];
      this.textLength = 0;
      return batch;
    }
    this.settle();
    const batch = this.buf.subarray(0, this.used);
    this.lent = this.buf;
    this.buf = this.spare ?? Buffer.allocUnsafeSlow(BYTE_QUEUE_START);
    this.spare = null;
    this.used = 0;
    return [batch];
  }

  recycle(): void {
    // A buffer a burst (or one huge record) made big goes back to the GC.
    if (this.lent && !this.spare && this.lent.length <= BYTE_QUEUE_START * 4) this.spare = this.lent;
    this.lent = null;
  }
}

export abstract class QueuedTarget implements LogTarget {
  readonly description: string;
  lost = 0;
  protected readonly limit: number;
  private readonly queue: RecordQueue;
  private readonly byteQueue: ByteQueue | null;
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

  private readonly pump = this.deliverQueued.bind(this);
  private readonly delivered = this.onDelivered.bind(this);

  /** `byteStream`: the destination takes bytes in any cut (file, pipe); see ByteQueue. */
  constructor(description: string, limit: number, byteStream = false) {
    this.description = description;
    this.limit = limit;
    this.byteQueue = byteStream ? new ByteQueue() : null;
    this.queue = this.byteQueue ?? new ListQueue();
  }

  write(record: LogRecord, countLoss = true): void {
    if (this.closed) return;
    // One record larger than the limit still goes out when nothing else is waiting.
    if (this.queue.bytes > 0 && this.queue.bytes + record.length > this.limit) {
      if (countLoss) this.lost++;
      return;
    }
    this.queue.add(record);
    this.schedule();
  }

  /**
   * Queue a record `w` writes as bytes (a request line without making its string). False when
   * this target cannot take it that way (not a byte stream, or `w` declines the record): the
   * caller then writes the record's text.
   */
  writeWith<T>(w: RecordWriter<T>, x: T): boolean {
    const q = this.byteQueue;
    if (!q) return false;
    const max = w.maxBytes(x);
    if (max < 0) return false;
    if (this.closed) return true;
    if (q.bytes > 0 && q.bytes + max > this.limit) {
      this.lost++;
      return true;
    }
    q.addWith(w, x, max);
    this.schedule();
    return true;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    // Not unref()d: a process about to exit on its own still writes its last lines.
    if (this.coalesceMs > 0) setTimeout(this.pump, this.coalesceMs);
    else setImmediate(this.pump);
  }

  /** Whether records are waiting or a delivery has not completed. */
  get pending(): boolean {
    return this.inFlight || this.queue.count > 0;
  }

  private deliverQueued(): void {
    this.scheduled = false;
    if (this.inFlight) return;
    const records = this.queue.count;
    if (records === 0) {
      this.notifyIdle();
      return;
    }
    const batch = this.queue.take();
    this.inFlight = true;
    this.deliver(batch, this.delivered, records);
  }

  private onDelivered(): void {
    this.inFlight = false;
    this.queue.recycle();
    if (this.queue.count > 0) this.deliverQueued();
    else this.notifyIdle();
  }

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

  /**
   * Take what is queued but not yet in flight, for synchronous flushing at exit: the batch
   * and how many records it holds. Call `recycleTaken()` once it is written.
   */
  protected takeQueued(): { batch: LogRecord[]; records: number } | null {
    if (this.inFlight || this.queue.count === 0) return null;
    const records = this.queue.count;
    return { batch: this.queue.take(), records };
  }

  /** The batch of takeQueued() was written: a byte queue may reuse its buffer. */
  protected recycleTaken(): void {
    this.queue.recycle();
  }

  /**
   * Hand a batch of `records` records to the destination (a byte stream's batch may be one
   * Buffer holding them all); call `done` when it may take the next one. Records the
   * destination refuses are the subclass's to count in `lost`.
   */
  protected abstract deliver(batch: LogRecord[], done: () => void, records: number): void;

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
