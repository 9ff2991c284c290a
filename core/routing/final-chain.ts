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
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { RequestRouteContext } from './context.ts';
import { runChain } from './engine.ts';
import { DISCARD_SINK } from './response-chains.ts';
import type { RoutingTable } from './table.ts';

export function finalChainSink(sink: ResponseSink, table: RoutingTable, ctx: () => RequestRouteContext | null, logError: (line: string) => void): ResponseSink {
  let ran = false;
  let status = 0;
  /** Body bytes that went to the client, for `${uwsgi[rsize]}`. */
  let size = 0;
  const run = (): void => {
    if (ran) return;
    ran = true;
    const c = ctx();
    // No context: the request never got as far as routing (an unavailable modifier).
    if (!c) return;
    if (status !== 0) c.status = status;
    c.responseSize = size;
    c.chain = 'final';
    c.response.answerSink = () => DISCARD_SINK;
    c.response.onClear = () => 'break';
    const r = runChain(table, c);
    if (typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).catch((err: Error) => logError(`[uwsgi-route] final chain failed: ${err.message}`));
  };
  const out: ResponseSink = {
    head(h) {
      status = h.statusCode;
      sink.head(h);
    },
    body(chunk) {
      size += chunk.length;
      return sink.body(chunk);
    },
    onDrain: (cb) => sink.onDrain(cb),
    end() {
      // Before the end goes down: the response is complete, and bytes a final `send:` writes
      // still reach the client after the body (uWSGI runs the final chain before closing).
      run();
      sink.end();
    },
    fail(s, reason) {
      if (status === 0) status = s;
      sink.fail(s, reason);
      run();
    },
    bindAbort(abort) {
      sink.bindAbort(() => {
        run();
        abort();
      });
    },
  };
  if (sink.close) {
    const close = sink.close.bind(sink);
    out.close = (s?: number) => {
      if (status === 0 && s !== undefined) status = s;
      close(s);
      run();
    };
  }
  if (sink.raw) out.raw = sink.raw.bind(sink);
  if (sink.framesChunked) out.framesChunked = true;
  return out;
}
