/**
 * The request log's view of a response: a ResponseSink wrapper that counts what goes to the
 * client (head, body bytes, a client that left) and reports once when the response is over,
 * plus the log record fields every response shares. The app path (pipeline.send), routing's
 * own answers (pipeline.routedSink) and static files (core/static/) all log through this, so
 * a request log line means the same thing whoever answered.
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import { PipelineRequestRecord } from '../logging/request-record.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import type { CoreRequest } from './pipeline.ts';

/** What the client got, as far as the log cares. */
export interface ResponseTally {
  head: ResponseHead | null;
  bodyBytes: number;
  /** The client went away mid-response: a write error for --log-ioerror and %(werr). */
  clientGone: boolean;
}

/**
 * Wrap `sink` so `done(status, tally)` runs exactly once: at end(), at fail(), or when the
 * client leaves (status 499 unless a head was sent). `onFail` sees a failure before the client
 * does (the app path logs why a 502 happened).
 */
export function tallyingSink(sink: ResponseSink, done: (status: number, tally: ResponseTally) => void, onFail?: (status: number, reason: string) => void): ResponseSink {
  const tally: ResponseTally = { head: null, bodyBytes: 0, clientGone: false };
  let finished = false;
  const finish = (status: number): void => {
    if (finished) return;
    finished = true;
    done(tally.head ? tally.head.statusCode : status, tally);
  };
  const out: ResponseSink = {
    head(h) {
      tally.head = h;
      sink.head(h);
    },
    body(chunk) {
      tally.bodyBytes += chunk.length;
      return sink.body(chunk);
    },
    onDrain: (cb) => sink.onDrain(cb),
    bindAbort: (abort) =>
      sink.bindAbort(() => {
        tally.clientGone = true;
        abort();
        finish(499);
      }),
    end() {
      sink.end();
      finish(500);
    },
    fail(status, reason) {
      onFail?.(status, reason);
      if (status === 499) tally.clientGone = true;
      sink.fail(status, reason);
      finish(status);
    },
  };
  if (sink.close) {
    const close = sink.close.bind(sink);
    // Without a status the client is taken to have left (499), as for an abort.
    out.close = (status?: number) => {
      close(status);
      finish(status ?? 499);
    };
  }
  if (sink.framesChunked) out.framesChunked = true;
  return out;
}

/**
 * The size of the request's vars block as a uwsgi packet would carry it (vars are latin-1
 * byte strings): the "{N vars in B bytes}" of a response no bridge packet was made for
 * (routing's own answers, static files).
 */
export function varsBlockSize(req: CoreRequest): number {
  let size = 0;
  for (const [k, v] of req.vars) size += 4 + k.length + v.length;
  return size;
}

/**
 * The record fields every response shares; the caller adds who served it (pid, worker,
 * app counters) and the timing it measured.
 */
export function requestRecord(req: CoreRequest, status: number, tally: ResponseTally): PipelineRequestRecord {
  const record = new PipelineRequestRecord(req.vars);
  record.remoteAddr = req.remoteAddr;
  record.varCount = req.vars.length;
  record.startedAt = req.startedAt;
  record.method = req.method;
  record.uri = req.uri;
  record.protocol = req.protocol;
  record.status = status;
  record.bodyBytes = tally.bodyBytes;
  record.headerCount = tally.head ? tally.head.headerCount : 0;
  record.headerBytes = tally.head ? tally.head.headerBytes : 0;
  record.modifier1 = req.modifier1;
  record.modifier2 = req.modifier2;
  record.writeErrors = tally.clientGone ? 1 : 0;
  return record;
}
