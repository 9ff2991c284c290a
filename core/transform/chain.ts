/**
 * The transformation chain of one request (spec/subsystems.md §7, uWSGI's core/transformations.c):
 * a ResponseSink that sits between the response (app or routing) and the front end's sink.
 *
 *   app → [streaming steps, per chunk] → [first buffering step: accumulate] → … → front end
 *
 * Chunks run through the steps up to the first buffering one; from there the body is
 * accumulated and the rest of the chain runs once, at the end, followed by every step's
 * `final` (gzip trailer, chunked terminator) in chain order, each feeding the next step.
 *
 * The head is held until the first byte of transformed body is ready (or the end, for a
 * buffering chain), because steps rewrite headers on their first chunk (gzip adds
 * Content-Encoding, chunked Transfer-Encoding, fixcl Content-Length).
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import { TsuwsgiError } from '../errors.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import { headerStats } from '../routing/response-edits.ts';
import type { Transformation, TransformView } from './api.ts';

export interface ChainOptions {
  /** The front end frames chunked bodies itself (ResponseSink.framesChunked): see TransformView.frontEndChunks. */
  frontEndChunks: boolean;
  /** Server log, for transformation failures. */
  log(line: string): void;
}

/** A transformation failed at request time (a zlib error, a throwing plugin). */
export class TransformError extends TsuwsgiError {
  constructor(message: string, cause?: unknown) {
    super('TSUWSGI_E_TRANSFORM', message, { cause });
  }
}

const EMPTY = Buffer.alloc(0);
/** The end of the response in the op queue. */
const END = Symbol('end');

/** Header helpers for transformations: flattened [name, value, …] lists, case-insensitive names. */
export function getHeader(headers: readonly string[], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === lower) return headers[i + 1];
  return undefined;
}

export function removeHeader(headers: string[], name: string): void {
  const lower = name.toLowerCase();
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i]!.toLowerCase() === lower) headers.splice(i, 2);
}

/** Replace every header of that name by one `name: value`. */
export function setHeader(headers: string[], name: string, value: string): void {
  removeHeader(headers, name);
  headers.push(name, value);
}

class TransformChain implements ResponseSink {
  private readonly sink: ResponseSink;
  private readonly steps: readonly Transformation[];
  private readonly o: ChainOptions;
  /** Index of the first buffering step (steps.length when the chain fully streams). */
  private readonly split: number;
  private readonly view: TransformView & { statusCode: number; reason: string; headers: string[]; sent: boolean };
  /** The app's Content-Length value, to tell it from one a step (fixcl) set. */
  private appContentLength: string | undefined;
  private gotHead = false;
  /** Input of the first buffering step, accumulated until the end. */
  private buffered: Buffer[] = [];
  /** Something went out through TransformView.write (`flush`): the chain's own output is not sent. */
  private flushed = false;
  /** How many steps feed what the client gets (flush: the steps before it; else all). */
  private clientSteps: number;
  private readonly ops: Array<Buffer | typeof END> = [];
  private running = false;
  /** The front end asked us to wait (body() returned false). */
  private paused = false;
  private drainWaiters: Array<() => void> = [];
  /** TransformView.drained() callers waiting for the front end to drain. */
  private viewDrainWaiters: Array<() => void> = [];
  /** A step that must be last (offload) is followed by another: the response is refused at its head. */
  private readonly misplaced: TransformError | null;
  private done = false;
  private abort: (() => void) | null = null;
  close?: (status?: number) => void;

  constructor(sink: ResponseSink, steps: readonly Transformation[], o: ChainOptions) {
    this.sink = sink;
    this.steps = steps;
    this.o = o;
    const b = steps.findIndex((s) => !s.streaming);
    this.split = b < 0 ? steps.length : b;
    this.clientSteps = steps.length;
    const chain = this;
    this.view = {
      statusCode: 0,
      reason: '',
      headers: [],
      sent: false,
      frontEndChunks: o.frontEndChunks,
      write(chunk: Buffer) {
        chain.flushOut(chunk);
      },
      send(chunk: Buffer) {
        chain.emit(chunk);
      },
      drained() {
        return chain.paused && !chain.done ? new Promise<void>((resolve) => chain.viewDrainWaiters.push(resolve)) : Promise.resolve();
      },
    };
    const last = steps.findIndex((s, i) => s.mustBeLast === true && i < steps.length - 1);
    this.misplaced =
      last < 0
        ? null
        : new TransformError(
            `"${steps[last]!.name}:" must be the last transformation of the chain, but "${steps[last + 1]!.name}:" follows it: move the rule that adds "${steps[last]!.name}:" after the other transformation rules (docs/transformations.md)`,
          );
    if (sink.close) {
      const close = sink.close.bind(sink);
      this.close = (status?: number) => {
        this.stop();
        close(status);
      };
    }
  }

  head(h: ResponseHead): void {
    if (this.done) return;
    this.gotHead = true;
    this.view.statusCode = h.statusCode;
    this.view.reason = h.reason;
    this.view.headers = [...h.headers];
    this.appContentLength = getHeader(h.headers, 'Content-Length');
    // uWSGI lets a misplaced offload corrupt the response ("hellish things will happen");
    // refusing it with a log line that says what to move is kinder.
    if (this.misplaced) this.broken(this.misplaced);
  }

  body(chunk: Buffer): boolean {
    if (this.done) return true;
    this.ops.push(chunk);
    this.pump();
    return !this.paused && !this.running && this.ops.length === 0;
  }

  onDrain(cb: () => void): void {
    this.drainWaiters.push(cb);
    // The chain may have drained between body() returning false and this call.
    queueMicrotask(() => this.maybeDrain());
  }

  end(): void {
    if (this.done) return;
    this.ops.push(END);
    this.pump();
  }

  fail(status: number, reason: string): void {
    if (this.done) return;
    this.stop();
    this.sink.fail(status, reason);
  }

  bindAbort(abort: () => void): void {
    this.abort = abort;
    this.sink.bindAbort(() => {
      this.stop();
      abort();
    });
  }

  /** Run queued ops in order; synchronous steps never leave this loop (no per-chunk promise). */
  private pump(): void {
    if (this.running || this.done) return;
    this.running = true;
    while (this.ops.length > 0 && !this.done) {
      const op = this.ops.shift()!;
      let r: void | Promise<void>;
      try {
        r = op === END ? this.finish() : this.runFrom(0, op);
      } catch (err) {
        this.broken(err);
        return;
      }
      if (r instanceof Promise) {
        r.then(
          () => {
            this.running = false;
            this.pump();
          },
          (err: unknown) => this.broken(err),
        );
        return;
      }
    }
    this.running = false;
    this.maybeDrain();
  }

  /** Streaming part of the pass: steps i.. up to the first buffering one, then out or into the buffer. */
  private runFrom(i: number, buf: Buffer): void | Promise<void> {
    for (; i < this.split; i++) {
      // Streaming steps only see non-empty chunks (uWSGI skips empty writes).
      if (buf.length === 0) return;
      const r = this.steps[i]!.transform(buf, this.view);
      if (r instanceof Promise) {
        const next = i + 1;
        return r.then((b) => this.runFrom(next, b));
      }
      buf = r;
    }
    if (this.split < this.steps.length) {
      if (buf.length > 0) this.buffered.push(buf);
      return;
    }
    this.emit(buf);
  }

  /** The end pass: the buffered steps once, then every step's final output through the rest of the chain. */
  private async finish(): Promise<void> {
    let carry: Buffer = EMPTY;
    for (let i = 0; i < this.steps.length; i++) {
      const step = this.steps[i]!;
      if (i === this.split) {
        // The first buffering step gets the whole body (even empty: fixcl must answer 0).
        this.buffered.push(carry);
        carry = await step.transform(Buffer.concat(this.buffered), this.view);
        this.buffered = [];
      } else if (carry.length > 0 || (i > this.split && !step.streaming)) {
        carry = await step.transform(carry, this.view);
      }
      const tail = step.final ? await step.final(this.view) : undefined;
      if (tail && tail.length > 0) carry = carry.length > 0 ? Buffer.concat([carry, tail]) : tail;
    }
    if (this.done) return;
    if (!this.flushed) {
      this.sendHead(carry.length);
      this.emit(carry);
    } else this.sendHead(null);
    this.done = true;
    this.abort = null;
    this.sink.end();
  }

  private emit(buf: Buffer): void {
    if (buf.length === 0 || this.flushed || this.done) return;
    this.sendHead(null);
    if (!this.sink.body(buf)) this.pauseSink();
  }

  /** TransformView.write: `flush` sends what it has now. */
  private flushOut(chunk: Buffer): void {
    if (chunk.length === 0 || this.done) return;
    if (!this.flushed) {
      this.flushed = true;
      // What the client gets comes from the steps before the flush (the caller is running one).
      const idx = this.steps.findIndex((s) => s.name === 'flush');
      if (idx >= 0) this.clientSteps = idx;
    }
    this.sendHead(null);
    if (!this.sink.body(chunk)) this.pauseSink();
  }

  /**
   * Send the held head. Framing: a Content-Length set by a step is kept; the app's own is kept
   * only if it is still right (every step before the client preserves length, or the final
   * length is known and equal); otherwise it goes, and the front end frames the body itself
   * (Node: chunked for HTTP/1.1, close for 1.0; the uwsgi socket: close-delimited).
   */
  private sendHead(finalLength: number | null): void {
    const v = this.view;
    if (v.sent || !this.gotHead) return;
    v.sent = true;
    const headers = v.headers;
    const cl = getHeader(headers, 'Content-Length');
    const te = getHeader(headers, 'Transfer-Encoding');
    if (cl !== undefined) {
      const fromApp = cl === this.appContentLength;
      const preserved = this.steps.slice(0, this.clientSteps).every((s) => s.preservesLength === true);
      const exact = finalLength !== null && !this.flushed && String(finalLength) === cl;
      if ((te !== undefined && /chunked/i.test(te)) || (fromApp && !preserved && !exact)) removeHeader(headers, 'Content-Length');
    }
    const length = getHeader(headers, 'Content-Length');
    const chunked = /chunked/i.test(getHeader(headers, 'Transfer-Encoding') ?? '');
    this.sink.head({ statusCode: v.statusCode, reason: v.reason, headers, contentLength: length === undefined ? -1 : Number(length), chunked, ...headerStats(v.statusCode, v.reason, headers) });
  }

  private pauseSink(): void {
    if (this.paused) return;
    this.paused = true;
    this.sink.onDrain(() => {
      this.paused = false;
      this.wakeViewWaiters();
      this.maybeDrain();
    });
  }

  private wakeViewWaiters(): void {
    const waiters = this.viewDrainWaiters;
    this.viewDrainWaiters = [];
    for (const cb of waiters) cb();
  }

  private maybeDrain(): void {
    if (this.paused || this.running || this.ops.length > 0 || this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const cb of waiters) cb();
  }

  /** A step threw: log it, stop the app exchange, and fail the response (500, or a cut connection after the head). */
  private broken(err: unknown): void {
    if (this.done) return;
    const e = err instanceof TransformError ? err : new TransformError(`response transformation failed: ${(err as Error)?.message ?? String(err)}`, err);
    this.o.log(`[${e.code}] ${e.message}`);
    const abort = this.abort;
    this.stop();
    abort?.();
    this.sink.fail(500, e.message);
  }

  private stop(): void {
    if (this.done) return;
    this.done = true;
    this.running = false;
    this.ops.length = 0;
    this.buffered = [];
    this.abort = null;
    // A step waiting in drained() must not hang: it sees its dispose() and gives up.
    this.wakeViewWaiters();
    for (const s of this.steps) {
      try {
        s.dispose?.();
      } catch {
        // Cleanup must not hide the failure being reported.
      }
    }
  }
}

/** Wrap `sink` so the response goes through `steps` (returns `sink` itself when there are none). */
export function transformingSink(sink: ResponseSink, steps: readonly Transformation[], o: ChainOptions): ResponseSink {
  if (steps.length === 0) return sink;
  return new TransformChain(sink, steps, o);
}
