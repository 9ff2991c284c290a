/**
 * The client end of a routed request, where routing's raw output (`send:`, `send-crnl:`,
 * `disableheaders:`) meets the responses: one per request, below the request log's tally and
 * above the front end's sink, so every response of the request (the app's, routing's own, a
 * static file) and every raw write pass here in the order they reach the client.
 *
 * It applies uWSGI's rule that nothing with headers follows raw output (`headers_sent`): a head
 * arriving after it is dropped. It also remembers what the log line needs and the tally cannot
 * see: the bytes `send:` wrote outside any response, the head `send:` flushed for a
 * `clearheaders:` of the request chain, and whether a response's head was dropped.
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import { RoutingError } from '../errors.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';

/** What the request log reports for a head that went out as raw bytes. */
export interface RawHeadRecord {
  statusCode: number;
  headerBytes: number;
  headerCount: number;
}

export class ClientWire implements ResponseSink {
  /** Raw output began: no head goes to the client from now on. */
  rawStarted = false;
  /** A head arrived after raw output and was not sent (the log shows 0 header bytes). */
  headDropped = false;
  /** Bytes `send:` wrote outside any response sink, so outside the tally's count. */
  sentBytes = 0;
  /** A head `send:` wrote raw (a `clearheaders:` status of the request chain), for the log. */
  sentHead: RawHeadRecord | null = null;
  framesChunked?: boolean;
  /**
   * A static body with sendfile(2) passes straight through (the front end refuses it after
   * raw output, so a dropped head can never be followed by file bytes).
   */
  declare sendFile?: ResponseSink['sendFile'];
  private readonly client: ResponseSink;

  constructor(client: ResponseSink) {
    this.client = client;
    if (client.framesChunked) this.framesChunked = true;
    if (client.sendFile) this.sendFile = this.forwardSendFile;
  }

  private forwardSendFile(...args: Parameters<NonNullable<ResponseSink['sendFile']>>): ReturnType<NonNullable<ResponseSink['sendFile']>> {
    return this.client.sendFile!(...args);
  }

  head(h: ResponseHead): void {
    if (this.rawStarted) {
      this.headDropped = true;
      return;
    }
    this.client.head(h);
  }

  body(chunk: Buffer): boolean {
    return this.client.body(chunk);
  }

  onDrain(cb: () => void): void {
    this.client.onDrain(cb);
  }

  end(): void {
    this.client.end();
  }

  fail(status: number, reason: string): void {
    this.client.fail(status, reason);
  }

  bindAbort(abort: () => void): void {
    this.client.bindAbort(abort);
  }

  close(status?: number): void {
    if (this.client.close) this.client.close(status);
    else this.client.fail(500, 'the routing chain stopped the request');
  }

  raw(chunk: Buffer): boolean {
    if (!this.client.raw) {
      throw new RoutingError('this connection cannot take raw output (send:, send-crnl:, disableheaders:): only the --http-socket/--http and --socket front ends can');
    }
    this.rawStarted = true;
    return this.client.raw(chunk);
  }

  /** `send:` bytes: raw output the tally does not see, counted for the log line. */
  send(bytes: Buffer): boolean {
    const ok = this.raw(bytes);
    this.sentBytes += bytes.length;
    return ok;
  }
}
