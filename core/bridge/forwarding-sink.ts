/**
 * A ResponseSink that passes everything to another one: the base of every wrapper in the
 * response path (request log tally, routing's header edits, the final chain, failure notices).
 * A wrapper overrides only what it changes, and the optional capabilities the front end has —
 * `close` (routing's bare break), `raw` (send:, disableheaders:) and `framesChunked` — pass
 * through without each wrapper having to remember them (editingSink once dropped `raw`).
 *
 * A class, not an object of closures: wrappers are made per request, and run from source
 * (tsx) every arrow function created per request costs a defineProperty call. For the same
 * reason the optional capabilities are the prototype's forwarding methods stored on the
 * instance (they run with the wrapper as `this`), not functions bound per request; and they are
 * `declare`d, so a wrapper without them carries no field at all.
 */
import type { ResponseSink } from './pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';

export class ForwardingSink implements ResponseSink {
  protected readonly inner: ResponseSink;
  declare close?: (status?: number) => void;
  declare raw?: (chunk: Buffer) => boolean;
  readonly framesChunked: boolean;
  /**
   * Zero-copy static bodies (core/static/sendfile.ts). Not passed on by default: the bytes
   * never go through body(), so a wrapper that looks at the body (transformations, byte
   * counts) must not offer it as it is. Wrappers that only touch the head call passSendFile().
   */
  declare sendFile?: ResponseSink['sendFile'];

  constructor(inner: ResponseSink) {
    this.inner = inner;
    if (inner.close) this.close = this.forwardClose;
    if (inner.raw) this.raw = this.forwardRaw;
    this.framesChunked = inner.framesChunked === true;
  }

  /** Offer the inner sink's sendFile (for a wrapper that never looks at body bytes). */
  protected passSendFile(): void {
    if (this.inner.sendFile) this.sendFile = this.forwardSendFile;
  }

  private forwardClose(status?: number): void {
    this.inner.close!(status);
  }

  private forwardRaw(chunk: Buffer): boolean {
    return this.inner.raw!(chunk);
  }

  private forwardSendFile(...args: Parameters<NonNullable<ResponseSink['sendFile']>>): ReturnType<NonNullable<ResponseSink['sendFile']>> {
    return this.inner.sendFile!(...args);
  }

  head(h: ResponseHead): void {
    this.inner.head(h);
  }

  body(chunk: Buffer): boolean {
    return this.inner.body(chunk);
  }

  onDrain(cb: () => void): void {
    this.inner.onDrain(cb);
  }

  end(): void {
    this.inner.end();
  }

  fail(status: number, reason: string): void {
    this.inner.fail(status, reason);
  }

  bindAbort(abort: () => void): void {
    this.inner.bindAbort(abort);
  }
}
