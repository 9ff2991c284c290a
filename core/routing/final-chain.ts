/**
 * The final chain (spec/subsystems.md §6.1): run once per request after the response is
 * complete — ended, failed, closed without an answer, or cut by the client. It cannot change
 * the response (answers go nowhere, `clearheaders:` breaks, as uWSGI's writer refuses headers
 * once sent); it is for `log:`, `logvar:`, `donotlog:`, counters.
 *
 * It wraps the client sink *below* the request log's tally, so a synchronous chain has run
 * when the log line is written: uWSGI also applies final routes before logging the request,
 * so `logvar:` and `donotlog:` in the final chain affect the line.
 */
import { ForwardingSink } from '../bridge/forwarding-sink.ts';
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import type { RequestRouteContext } from './context.ts';
import { runChain } from './engine.ts';
import { DISCARD_SINK } from './response-chains.ts';
import type { RoutingTable } from './table.ts';

export function finalChainSink(sink: ResponseSink, table: RoutingTable, ctx: () => RequestRouteContext | null, logError: (line: string) => void): ResponseSink {
  return new FinalChainSink(sink, table, ctx, logError);
}

class FinalChainSink extends ForwardingSink {
  private readonly table: RoutingTable;
  private readonly ctx: () => RequestRouteContext | null;
  private readonly logError: (line: string) => void;
  private ran = false;
  private status = 0;
  /** Body bytes that went to the client, for `${uwsgi[rsize]}`. */
  private size = 0;

  constructor(inner: ResponseSink, table: RoutingTable, ctx: () => RequestRouteContext | null, logError: (line: string) => void) {
    super(inner);
    this.table = table;
    this.ctx = ctx;
    this.logError = logError;
    if (inner.close) this.close = this.closeThenRun;
  }

  override head(h: ResponseHead): void {
    this.status = h.statusCode;
    this.inner.head(h);
  }

  override body(chunk: Buffer): boolean {
    this.size += chunk.length;
    return this.inner.body(chunk);
  }

  override end(): void {
    // Before the end goes down: the response is complete, and bytes a final `send:` writes
    // still reach the client after the body (uWSGI runs the final chain before closing).
    this.run();
    this.inner.end();
  }

  override fail(status: number, reason: string): void {
    if (this.status === 0) this.status = status;
    this.inner.fail(status, reason);
    this.run();
  }

  override bindAbort(abort: () => void): void {
    this.inner.bindAbort(() => {
      this.run();
      abort();
    });
  }

  private closeThenRun(status?: number): void {
    if (this.status === 0 && status !== undefined) this.status = status;
    this.inner.close!(status);
    this.run();
  }

  private run(): void {
    if (this.ran) return;
    this.ran = true;
    const c = this.ctx();
    // No context: the request never got as far as routing (an unavailable modifier).
    if (!c) return;
    if (this.status !== 0) c.status = this.status;
    c.responseSize = this.size;
    c.chain = 'final';
    c.response.answerSink = () => DISCARD_SINK;
    c.response.onClear = () => 'break';
    const r = runChain(this.table, c);
    if (typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).catch((err: Error) => this.logError(`[uwsgi-route] final chain failed: ${err.message}`));
  }
}
