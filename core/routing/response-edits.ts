/**
 * Response header edits made by routing (addheader, delheader, clearheaders), applied to the
 * app's ResponseHead as it passes through, and to routing's own responses.
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import type { RouteResponse } from './api.ts';

export class RouteResponseEdits implements RouteResponse {
  headersSent = false;
  /** Flattened [name, value, …] added by addheader, in order. */
  readonly added: string[] = [];
  /** Lower-cased names dropped from the app's headers. */
  readonly removed = new Set<string>();
  /** A clearheaders status line ("404 Not Found"), or null. */
  cleared: string | null = null;
  private readonly makeSink: () => ResponseSink;

  constructor(makeSink: () => ResponseSink) {
    this.makeSink = makeSink;
  }

  /** True when an app response must go through apply(). */
  get active(): boolean {
    return this.added.length > 0 || this.removed.size > 0 || this.cleared !== null;
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

  clearHeaders(statusLine: string): void {
    this.cleared = statusLine;
    this.added.length = 0;
    this.removed.clear();
  }

  sink(): ResponseSink {
    return this.makeSink();
  }

  /** The head as the client gets it. */
  apply(head: ResponseHead): ResponseHead {
    if (!this.active) return head;
    let statusCode = head.statusCode;
    let reason = head.reason;
    const headers: string[] = [];
    if (this.cleared !== null) {
      const m = /^(\d{3})\s*(.*)$/.exec(this.cleared.trim());
      if (m) {
        statusCode = Number(m[1]);
        reason = m[2] ?? '';
      }
      // Framing headers survive: the body that follows still needs them.
      for (let i = 0; i < head.headers.length; i += 2) {
        const n = head.headers[i]!.toLowerCase();
        if (n === 'content-length' || n === 'transfer-encoding') headers.push(head.headers[i]!, head.headers[i + 1]!);
      }
    } else {
      for (let i = 0; i < head.headers.length; i += 2) {
        if (!this.removed.has(head.headers[i]!.toLowerCase())) headers.push(head.headers[i]!, head.headers[i + 1]!);
      }
    }
    headers.push(...this.added);
    return { ...head, statusCode, reason, headers, ...headerStats(statusCode, reason, headers) };
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
  return {
    head(h) {
      edits.headersSent = true;
      sink.head(edits.apply(h));
    },
    body: (chunk) => sink.body(chunk),
    onDrain: (cb) => sink.onDrain(cb),
    bindAbort: (abort) => sink.bindAbort(abort),
    end: () => sink.end(),
    fail: (status, reason) => sink.fail(status, reason),
  };
}
