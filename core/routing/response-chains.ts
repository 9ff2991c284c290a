/**
 * The error and response chains (spec/subsystems.md §6.1) and the managed error pages, as a
 * ResponseSink that sits on top of every response of a request — the app's, routing's own
 * answer, a static file — before transformations and header edits:
 *
 *   writer (app / routing / static) → [error chain → collect/pull → response chain] → transformations → header edits → log → client
 *
 * uWSGI runs the error chain when a status line is prepared (uwsgi_response_prepare_headers:
 * any status, guarded against recursion), collects/pulls response headers as they are added,
 * and runs the response chain once, when the headers are about to be written (before the
 * transformations, so the response chain can still add some: `gzip:`). A BREAK from either
 * chain discards the response in flight (uWSGI's ignore_body); an action that answers
 * (`return:`, `redirect:`…) replaces it, and that answer goes through the rest of the stages.
 *
 * The head is held while a chain runs (a condition may be asynchronous); body chunks and the
 * end are queued meanwhile, with backpressure, and flushed in order once the head goes out.
 */
import { readFile } from 'node:fs/promises';
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import type { RouteChainName, RouteOutcome } from './api.ts';
import type { RequestRouteContext } from './context.ts';
import { runChain, type ChainResult } from './engine.ts';
import { parseStatusLine } from './respond.ts';
import { headerStats } from './response-edits.ts';
import type { RoutingTable } from './table.ts';
import { uwsgiStatusPhrase } from './status-phrases.ts';

/** What the response side of routing needs per request, compiled once per core worker. */
export interface ResponseChainTables {
  readonly error: RoutingTable | null;
  readonly response: RoutingTable | null;
  /** --error-page-403/404/500: status → HTML files, the first readable one is served. */
  readonly errorPages: ReadonlyMap<number, readonly string[]>;
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** `fn(v)` now when v is a value, later when it is a promise. */
function then<T, U>(v: T | Promise<T>, fn: (x: T) => U | Promise<U>): U | Promise<U> {
  return isThenable(v) ? v.then(fn) : fn(v);
}

/** The head being prepared: mutable, since clearheaders rewrites it. */
type Head = { statusCode: number; reason: string; headers: string[]; contentLength: number; chunked: boolean };

type Op = { chunk: Buffer } | { end: true } | { fail: [number, string] };

/** Framing headers survive clearheaders: the body that follows still needs them. */
function framingOnly(headers: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]!.toLowerCase();
    if (n === 'content-length' || n === 'transfer-encoding') out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

/** One producer of a response: the original one, or an answer routing made inside a chain. */
class Writer implements ResponseSink {
  state: 'idle' | 'preparing' | 'open' | 'ignored' | 'ended' = 'idle';
  abort: (() => void) | null = null;
  /**
   * An answer made inside the error chain: the error chain does not run on it (uWSGI's
   * is_error_routing guard), even when it arrives after the chain finished (a proxy's 502).
   */
  readonly inErrorChain: boolean;
  private readonly owner: ChainedResponse;
  private ops: Op[] = [];
  private drainWaiters: Array<() => void> = [];
  private downPaused = false;

  constructor(owner: ChainedResponse, inErrorChain: boolean) {
    this.owner = owner;
    this.inErrorChain = inErrorChain;
  }

  head(h: ResponseHead): void {
    if (this.state !== 'idle') return;
    this.state = 'preparing';
    this.owner.prepare(this, { statusCode: h.statusCode, reason: h.reason, headers: [...h.headers], contentLength: h.contentLength, chunked: h.chunked });
  }

  body(chunk: Buffer): boolean {
    switch (this.state) {
      case 'open': {
        const ok = this.owner.down().body(chunk);
        this.downPaused = !ok;
        return ok;
      }
      case 'idle':
      case 'preparing':
        this.ops.push({ chunk });
        // Hold the producer until the head is decided and the queue flushed.
        return false;
      default:
        return true;
    }
  }

  onDrain(cb: () => void): void {
    if (this.state === 'open' && this.downPaused) this.owner.down().onDrain(cb);
    else if (this.state === 'open' || this.state === 'ignored' || this.state === 'ended') queueMicrotask(cb);
    else this.drainWaiters.push(cb);
  }

  end(): void {
    switch (this.state) {
      case 'open':
        this.state = 'ended';
        this.owner.finish();
        this.owner.down().end();
        break;
      case 'preparing':
        this.ops.push({ end: true });
        break;
      case 'idle':
      case 'ignored':
        // Nothing of this writer goes out (no head, or a chain discarded it).
        this.state = 'ended';
        this.owner.writerGone();
        break;
      default:
        break;
    }
  }

  fail(status: number, reason: string): void {
    switch (this.state) {
      case 'idle':
        this.owner.failBeforeHead(this, status, reason);
        break;
      case 'open':
        this.state = 'ended';
        this.owner.finish();
        this.owner.down().fail(status, reason);
        break;
      case 'preparing':
        this.ops.push({ fail: [status, reason] });
        break;
      case 'ignored':
        this.state = 'ended';
        this.owner.writerGone();
        break;
      default:
        break;
    }
  }

  bindAbort(abort: () => void): void {
    this.abort = abort;
    if (this.state === 'open') this.owner.down().bindAbort(abort);
  }

  /** The head goes to the client (through transformations and header edits), then the queue. */
  open(head: Head): void {
    if (this.state !== 'preparing') return;
    if (!this.owner.claim()) {
      // Someone else (an answer from a chain) already owns the response.
      this.drop();
      return;
    }
    this.state = 'open';
    const down = this.owner.down();
    if (this.abort) down.bindAbort(this.abort);
    down.head({ ...head, ...headerStats(head.statusCode, head.reason, head.headers) });
    const ops = this.ops;
    this.ops = [];
    for (const op of ops) {
      if ('chunk' in op) this.body(op.chunk);
      else if ('end' in op) this.end();
      else this.fail(op.fail[0], op.fail[1]);
    }
    this.releaseWaiters();
  }

  /** uWSGI's ignore_body: the rest of this writer's response is read and thrown away. */
  drop(): void {
    if (this.state === 'ended') return;
    this.state = 'ignored';
    const finished = this.ops.some((op) => !('chunk' in op));
    this.ops = [];
    if (finished) {
      this.state = 'ended';
      this.owner.writerGone();
    }
    this.releaseWaiters();
  }

  private releaseWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const cb of waiters) this.onDrain(cb);
  }
}

/** A sink that throws everything away (answers attempted after the response is over). */
export const DISCARD_SINK: ResponseSink = { head() {}, body: () => true, onDrain: (cb) => queueMicrotask(cb), end() {}, fail() {}, bindAbort() {} };

/** The response side of one request: its writers, the chains' guards and the downstream. */
export class ChainedResponse {
  private readonly ctx: RequestRouteContext;
  private readonly tables: ResponseChainTables;
  private readonly makeDownstream: () => ResponseSink;
  private downstream: ResponseSink | null = null;
  private readonly writers = new Set<Writer>();
  /** uWSGI's is_error_routing / is_response_routing / response_routes_applied. */
  private errorRunning = false;
  private responseRunning = false;
  private responseApplied = false;
  /** A writer's head went downstream: the response is taken. */
  private claimed = false;
  /** The downstream got its end (or fail, or close). */
  private done = false;
  /** The head the running chain may rewrite (clearheaders); null outside chain runs. */
  private current: Head | null = null;
  private readonly logError: (line: string) => void;

  /**
   * `makeDownstream` builds transformations → header edits → logged client sink; it is called
   * once, when the head goes out, so transformations the response chain adds are included.
   */
  constructor(ctx: RequestRouteContext, tables: ResponseChainTables, makeDownstream: () => ResponseSink, logError: (line: string) => void) {
    this.ctx = ctx;
    this.tables = tables;
    this.makeDownstream = makeDownstream;
    this.logError = logError;
  }

  /** The sink the app (or routing, or the static server) writes the response to. */
  entry(inErrorChain = false): ResponseSink {
    const w = new Writer(this, inErrorChain);
    this.writers.add(w);
    return w;
  }

  down(): ResponseSink {
    return (this.downstream ??= this.makeDownstream());
  }

  claim(): boolean {
    if (this.claimed || this.done) return false;
    this.claimed = true;
    return true;
  }

  finish(): void {
    this.done = true;
  }

  /**
   * A writer ended without sending anything. When no writer is left to answer, the request
   * ends with no response at all: the connection is closed (uWSGI's BREAK without a response).
   */
  writerGone(): void {
    if (this.claimed || this.done) return;
    for (const w of this.writers) if (w.state === 'idle' || w.state === 'preparing' || w.state === 'open') return;
    this.done = true;
    const d = this.down();
    // The log shows the status prepared when the chain broke, as uWSGI's does (ctx.status:
    // the head's, or the one a clearheaders: set).
    if (d.close) d.close(this.ctx.status || 500);
    else d.fail(500, 'the routing chain stopped the response');
  }

  /** Error chain, collect/pull, response chain; then the head goes out or is discarded. */
  prepare(w: Writer, head: Head): void {
    this.ctx.status = head.statusCode;
    // `send:` in these chains waits for this head: uWSGI writes the headers before any body.
    const edits = this.ctx.response;
    const holding = edits.holdRaw();
    const open = (): void => {
      w.open(head);
      if (holding) edits.releaseRaw();
    };
    const drop = (): void => {
      w.drop();
      if (holding) edits.releaseRaw();
    };
    const afterError = (r: ChainResult): void | Promise<void> => {
      if (r === 'break') return drop();
      this.collect(head);
      if (!this.tables.response || this.responseApplied || this.responseRunning) return open();
      this.responseRunning = true;
      return then(this.run('response', this.tables.response, head), (r2) => {
        this.responseRunning = false;
        this.responseApplied = true;
        if (r2 === 'break') drop();
        else open();
      });
    };
    const r = this.tables.error && !this.errorRunning && !w.inErrorChain ? this.runError(head) : 'continue';
    const out = then(r, afterError);
    if (isThenable(out)) {
      out.catch((err: Error) => {
        this.logError(`[uwsgi-route] response chains failed: ${err.message}`);
        drop();
      });
    }
  }

  private runError(head: Head): ChainResult | Promise<ChainResult> {
    this.errorRunning = true;
    return then(this.run('error', this.tables.error!, head), (r) => {
      this.errorRunning = false;
      return r;
    });
  }

  /** Run one chain over `head`, with clearheaders and routing's answers bound to this response. */
  private run(chain: RouteChainName, table: RoutingTable, head: Head): ChainResult | Promise<ChainResult> {
    const ctx = this.ctx;
    const edits = ctx.response;
    const saved = { chain: ctx.chain, current: this.current, onClear: edits.onClear, answerSink: edits.answerSink };
    ctx.chain = chain;
    this.current = head;
    edits.onClear = (line) => this.clear(line);
    edits.answerSink = () => this.entry(chain === 'error');
    const restore = (r: ChainResult): ChainResult => {
      ctx.chain = saved.chain;
      this.current = saved.current;
      edits.onClear = saved.onClear;
      edits.answerSink = saved.answerSink;
      return r;
    };
    const r = runChain(table, ctx);
    return isThenable(r) ? r.then(restore, (err: unknown) => restore(this.failedRun(err))) : restore(r);
  }

  private failedRun(err: unknown): ChainResult {
    this.logError(`[uwsgi-route] ERROR: ${(err as Error).message}`);
    return 'break';
  }

  /** `clearheaders:` inside a chain: a new status for the head in flight, then the error chain again. */
  private clear(line: string): RouteOutcome | Promise<RouteOutcome> {
    const status = parseStatusLine(line);
    const head = this.current;
    // uWSGI: preparing a status shorter than 3 characters fails, and the action breaks.
    if (!status || !head) return 'break';
    head.statusCode = status[0];
    head.reason = status[1];
    head.headers = framingOnly(head.headers);
    this.ctx.status = status[0];
    if (!this.tables.error || this.errorRunning) return 'next';
    return then(this.runError(head), (r): RouteOutcome => (r === 'break' ? 'break' : 'next'));
  }

  /** --collect-header / --pull-header on the response's own headers, as uWSGI does when they are added. */
  private collect(head: Head): void {
    const edits = this.ctx.response;
    const { collect, pull } = edits.headerOptions;
    if (collect.size === 0 && pull.size === 0) return;
    const kept: string[] = [];
    for (let i = 0; i < head.headers.length; i += 2) {
      const name = head.headers[i]!;
      const value = head.headers[i + 1]!;
      const lower = name.toLowerCase();
      // A removed header is never added, so never collected (uWSGI checks the removal lists first).
      if (edits.isRemoved(lower)) continue;
      const pulled = pull.get(lower);
      if (pulled) {
        for (const v of pulled) this.ctx.appendVar(v, value);
        continue;
      }
      for (const v of collect.get(lower) ?? []) this.ctx.appendVar(v, value);
      kept.push(name, value);
    }
    head.headers = kept;
  }

  /**
   * A failure before any head (no app, bridge gone, harakiri, a proxy that could not connect):
   * uWSGI's managed responses (uwsgi_404/403/500) prepare a status like any other, so the
   * chains and header edits apply; with an --error-page-NNN file, that page is the body.
   */
  failBeforeHead(w: Writer, status: number, reason: string): void {
    // 499 is a client that left: nobody to answer.
    if (status === 499 || this.claimed || this.done) {
      w.state = 'ended';
      if (!this.claimed && !this.done) {
        this.done = true;
        this.down().fail(status, reason);
      }
      return;
    }
    w.state = 'preparing';
    const phrase = uwsgiStatusPhrase(status) ?? 'Unknown';
    const plain = (): void => {
      w.state = 'idle';
      const body = Buffer.from(phrase);
      w.head({ statusCode: status, reason: phrase, headers: ['Content-Type', 'text/plain', 'Content-Length', String(body.length)], contentLength: body.length, chunked: false, headerBytes: 0, headerCount: 0 });
      w.body(body);
      w.end();
    };
    // uWSGI's 405 uses the 403 pages (core/utils.c uwsgi_405 passes error_page_403).
    const pages = this.tables.errorPages.get(status === 405 ? 403 : status);
    if (!pages || pages.length === 0) return plain();
    void readFirst(pages).then((html) => {
      if (!html) return plain();
      w.state = 'idle';
      w.head({ statusCode: status, reason: phrase, headers: ['Connection', 'close', 'Content-Type', 'text/html', 'Content-Length', String(html.length)], contentLength: html.length, chunked: false, headerBytes: 0, headerCount: 0 });
      w.body(html);
      w.end();
    });
  }
}

/** The first of `files` that can be read (uWSGI stats and opens each in turn), or null. */
async function readFirst(files: readonly string[]): Promise<Buffer | null> {
  for (const f of files) {
    try {
      return await readFile(f);
    } catch {
      // Missing or unreadable: try the next one, then the plain-text answer.
    }
  }
  return null;
}
