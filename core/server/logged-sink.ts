/**
 * The request log's view of a response: a ResponseSink wrapper that counts what goes to the
 * client (head, body bytes, a client that left) and reports once when the response is over,
 * plus the log record fields every response shares. The app path (pipeline.send), routing's
 * own answers (pipeline.routedSink) and static files (core/static/) all log through this, so
 * a request log line means the same thing whoever answered.
 */
import { ForwardingSink } from '../bridge/forwarding-sink.ts';
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
  /** The body went out with sendfile(2) (counted in bodyBytes): the line says `via sendfile()`. */
  viaSendfile: boolean;
}

/**
 * Wrap `sink` so `done(status, tally)` runs exactly once: at end(), at fail(), or when the
 * client leaves (status 499 unless a head was sent). `onFail` sees a failure before the client
 * does (the app path logs why a 502 happened).
 */
export function tallyingSink(sink: ResponseSink, done: (status: number, tally: ResponseTally) => void, onFail?: (status: number, reason: string) => void): ResponseSink {
  return new TallyingSink(sink, done, onFail);
}

/** One per request; a ForwardingSink, so the front end's close/raw/framesChunked pass through. */
class TallyingSink extends ForwardingSink {
  private readonly done: (status: number, tally: ResponseTally) => void;
  private readonly onFail: ((status: number, reason: string) => void) | undefined;
  private readonly tally: ResponseTally = { head: null, bodyBytes: 0, clientGone: false, viaSendfile: false };
  private finished = false;

  constructor(sink: ResponseSink, done: (status: number, tally: ResponseTally) => void, onFail?: (status: number, reason: string) => void) {
    super(sink);
    this.done = done;
    this.onFail = onFail;
    // Always closable: routing's bare break ends a logged request too.
    this.close = this.closeTallied;
    // A static body sent with sendfile(2) never passes through body(): count it here.
    if (sink.sendFile) this.sendFile = this.sendFileTallied;
  }

  private sendFileTallied(...[fd, offset, length, timeoutMs, done]: Parameters<NonNullable<ResponseSink['sendFile']>>): ReturnType<NonNullable<ResponseSink['sendFile']>> {
    const tally = this.tally;
    // `done` may run before sendFile returns (a client that keeps up takes the whole body in
    // the first call), and the log line is written from it: count there.
    return this.inner.sendFile!(fd, offset, length, timeoutMs, (err, sent) => {
      tally.bodyBytes += sent;
      tally.viaSendfile = true;
      done(err, sent);
    });
  }

  override head(h: ResponseHead): void {
    this.tally.head = h;
    this.inner.head(h);
  }

  override body(chunk: Buffer): boolean {
    this.tally.bodyBytes += chunk.length;
    return this.inner.body(chunk);
  }

  override bindAbort(abort: () => void): void {
    this.inner.bindAbort(() => {
      this.tally.clientGone = true;
      abort();
      this.finish(499);
    });
  }

  override end(): void {
    this.inner.end();
    this.finish(500);
  }

  override fail(status: number, reason: string): void {
    this.onFail?.(status, reason);
    if (status === 499) this.tally.clientGone = true;
    this.inner.fail(status, reason);
    this.finish(status);
  }

  /** Without a status the client is taken to have left (499), as for an abort. */
  private closeTallied(status?: number): void {
    if (this.inner.close) this.inner.close(status);
    else this.inner.fail(status ?? 500, 'connection closed by routing');
    this.finish(status ?? 499);
  }

  private finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.done(this.tally.head ? this.tally.head.statusCode : status, this.tally);
  }
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
  record.viaSendfile = tally.viaSendfile;
  record.headerCount = tally.head ? tally.head.headerCount : 0;
  record.headerBytes = tally.head ? tally.head.headerBytes : 0;
  record.modifier1 = req.modifier1;
  record.modifier2 = req.modifier2;
  record.writeErrors = tally.clientGone ? 1 : 0;
  return record;
}
