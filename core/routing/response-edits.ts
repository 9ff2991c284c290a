/**
 * Response header edits made by routing (addheader, delheader) and by the server-wide header
 * options (--add-header, --del-header), applied to the head of every response — the app's, routing's own, a static file's — when
 * it goes out, as uWSGI adds its "additional headers" when it writes the headers.
 */
import { ForwardingSink } from '../bridge/forwarding-sink.ts';
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import type { RouteOutcome, RouteResponse } from './api.ts';
import { RoutingError } from '../errors.ts';
import type { ClientWire } from './client-wire.ts';
import { parseStatusLine } from './respond.ts';

const EMPTY = Buffer.alloc(0);

/** The server-wide header options, compiled once (core/routing/header-options.ts). */
export interface HeaderOptions {
  /** --add-header, as [name, value, …], added to every response before routing's addheaders. */
  readonly add: readonly string[];
  /** --del-header / --rem-header, lower-cased. */
  readonly del: ReadonlySet<string>;
  /** --collect-header: lower-cased header name → request vars that get its value. */
  readonly collect: ReadonlyMap<string, readonly string[]>;
  /** --pull-header: like collect, and the header is not sent. */
  readonly pull: ReadonlyMap<string, readonly string[]>;
}

export const NO_HEADER_OPTIONS: HeaderOptions = { add: [], del: new Set(), collect: new Map(), pull: new Map() };

export class RouteResponseEdits implements RouteResponse {
  headersSent = false;
  /** Someone asked for the answer sink: routing is answering (or has answered) the request. */
  answered = false;
  /** Flattened [name, value, …] added by addheader, in order. */
  readonly added: string[] = [];
  /** Lower-cased names dropped from the response (delheader). */
  readonly removed = new Set<string>();
  /**
   * A `clearheaders:` status line given while no response was in flight (request chain): the
   * head sent when the request ends without one (uWSGI writes prepared headers at close).
   */
  prepared: string | null = null;
  /**
   * Set by the response chains (core/routing/response-chains.ts) while a response head is
   * being prepared: clearheaders then rewrites that head and re-runs the error chain.
   */
  onClear: ((statusLine: string) => RouteOutcome | Promise<RouteOutcome>) | null = null;
  /** Set while the error/response chain runs: routing's answers replace the response in flight. */
  answerSink: (() => ResponseSink) | null = null;
  readonly headerOptions: HeaderOptions;
  /** The client end of the request (raw output: send:, disableheaders:); null = no raw path. */
  wire: ClientWire | null = null;
  /** The request's SERVER_PROTOCOL, for a head `send:` writes raw. */
  protocol = 'HTTP/1.0';
  /** A response head is being prepared (error/response chains): raw output waits for it. */
  private holding = false;
  private heldRaw: Buffer[] | null = null;
  private readonly makeSink: () => ResponseSink;

  constructor(makeSink: () => ResponseSink, headerOptions: HeaderOptions = NO_HEADER_OPTIONS) {
    this.makeSink = makeSink;
    this.headerOptions = headerOptions;
  }

  /** True when a response must go through apply(). */
  get active(): boolean {
    const o = this.headerOptions;
    return this.added.length > 0 || this.removed.size > 0 || o.add.length > 0 || o.del.size > 0;
  }

  addHeader(name: string, value: string): void {
    this.added.push(name, value);
  }

  delHeader(name: string): void {
    const lower = name.toLowerCase();
    this.removed.add(lower);
    // Also forget headers addheader prepared earlier; a later addheader adds it again.
    for (let i = this.added.length - 2; i >= 0; i -= 2) if (this.added[i]!.toLowerCase() === lower) this.added.splice(i, 2);
  }

  clearHeaders(statusLine: string): RouteOutcome | Promise<RouteOutcome> {
    if (this.onClear) return this.onClear(statusLine);
    this.prepared = statusLine;
    return 'next';
  }

  send(bytes: Buffer): void {
    const wire = this.requireWire('send');
    if (this.holding) {
      (this.heldRaw ??= []).push(bytes);
      return;
    }
    // uWSGI's body write sends prepared headers first: a `clearheaders:` of the request chain
    // goes out (with the header edits) before the bytes, and is then no longer pending.
    if (!wire.rawStarted && this.prepared !== null) {
      const status = parseStatusLine(this.prepared);
      this.prepared = null;
      if (status) {
        const head = this.apply({ statusCode: status[0], reason: status[1], headers: [], contentLength: -1, chunked: false, headerBytes: 0, headerCount: 0 });
        let text = `${this.protocol} ${head.statusCode} ${head.reason}\r\n`;
        for (let i = 0; i < head.headers.length; i += 2) text += `${head.headers[i]}: ${head.headers[i + 1]}\r\n`;
        const bytes = Buffer.from(`${text}\r\n`, 'latin1');
        wire.raw(bytes);
        wire.sentHead = { statusCode: head.statusCode, headerBytes: bytes.length, headerCount: head.headers.length / 2 };
      }
    }
    wire.send(bytes);
  }

  disableHeaders(): void {
    const wire = this.requireWire('disableheaders');
    // Bytes from an earlier `send:` already wait for the head in flight: it goes out first.
    if (this.heldRaw !== null && this.heldRaw.length > 0) return;
    wire.raw(EMPTY);
  }

  /**
   * The error/response chains are preparing a head: `send:` output waits until it went out
   * (releaseRaw), as uWSGI writes the headers before any body bytes. Returns false when an
   * outer preparation already holds (only the outermost releases).
   */
  holdRaw(): boolean {
    if (this.holding || this.wire === null) return false;
    this.holding = true;
    return true;
  }

  releaseRaw(): void {
    this.holding = false;
    const held = this.heldRaw;
    if (held === null) return;
    this.heldRaw = null;
    for (const b of held) this.send(b);
  }

  private requireWire(action: string): ClientWire {
    if (this.wire === null) throw new RoutingError(`"${action}:" has no client connection to write to here: raw output only reaches clients of --http-socket, --http and --socket`);
    return this.wire;
  }

  /** Is this header dropped (--del-header, delheader)? */
  isRemoved(lowerName: string): boolean {
    return this.removed.has(lowerName) || this.headerOptions.del.has(lowerName);
  }

  sink(): ResponseSink {
    this.answered = true;
    const sink = this.answerSink ? this.answerSink() : this.makeSink();
    // Actions read headersSent right after writing their head (static, file: "did I answer?"),
    // even when the response chains still hold that head: it counts as sent from here.
    return new HeadMarkingSink(sink, this);
  }

  /**
   * The head as the client gets it: the response's own headers minus the removed ones, then
   * --add-header's, then routing's addheaders. As in uWSGI (checked against 2.0.21), the added
   * headers are not filtered by --del-header nor pulled/collected: uWSGI adds them as raw
   * lines, with no name to compare. `delheader` does drop the addheaders made before it.
   */
  apply(head: ResponseHead): ResponseHead {
    if (!this.active) return head;
    const headers: string[] = [];
    for (let i = 0; i < head.headers.length; i += 2) {
      if (!this.isRemoved(head.headers[i]!.toLowerCase())) headers.push(head.headers[i]!, head.headers[i + 1]!);
    }
    headers.push(...this.headerOptions.add, ...this.added);
    return { ...head, headers, ...headerStats(head.statusCode, head.reason, headers) };
  }
}

/** headerBytes / headerCount as the request log reports them (status line + header lines). */
export function headerStats(statusCode: number, reason: string, headers: readonly string[]): { headerBytes: number; headerCount: number } {
  let bytes = `HTTP/1.1 ${statusCode} ${reason}\r\n`.length + 2;
  for (let i = 0; i < headers.length; i += 2) bytes += Buffer.byteLength(headers[i]!) + 2 + Buffer.byteLength(headers[i + 1]!) + 2;
  return { headerBytes: bytes, headerCount: headers.length / 2 };
}

/** Wrap a sink so the head it receives goes through the routing edits first. */
export function editingSink(sink: ResponseSink, edits: RouteResponseEdits): ResponseSink {
  return new EditingSink(sink, edits);
}

class EditingSink extends ForwardingSink {
  private readonly edits: RouteResponseEdits;

  constructor(inner: ResponseSink, edits: RouteResponseEdits) {
    super(inner);
    this.edits = edits;
    // Header edits only: a static body may still go out with sendfile(2).
    this.passSendFile();
  }

  override head(h: ResponseHead): void {
    this.edits.headersSent = true;
    this.inner.head(this.edits.apply(h));
  }
}

/** Routing's own answer: the head counts as sent once written (RouteResponseEdits.sink()). */
class HeadMarkingSink extends ForwardingSink {
  private readonly edits: RouteResponseEdits;

  constructor(inner: ResponseSink, edits: RouteResponseEdits) {
    super(inner);
    this.edits = edits;
  }

  override head(h: ResponseHead): void {
    this.edits.headersSent = true;
    this.inner.head(h);
  }
}
