/**
 * Routing's own responses (break, return, redirect, basicauth…): a complete status + headers
 * + body written to the request's routing sink, which applies the header edits and logs
 * the request like an app response.
 */
import type { RouteContext } from './api.ts';
import { headerStats } from './response-edits.ts';
import { uwsgiStatusPhrase } from './status-phrases.ts';

/** "404", "404 Not Found", "403 Go away" → [code, reason]; a bare 3-digit code gets the standard phrase. */
export function parseStatusLine(text: string): [number, string] | null {
  const m = /^\s*(\d{3})(?:\s+(.*))?$/.exec(text);
  if (!m) return null;
  const code = Number(m[1]);
  const reason = m[2]?.trim() || (uwsgiStatusPhrase(code) ?? '');
  return [code, reason];
}

export function respond(ctx: RouteContext, statusCode: number, reason: string, headers: string[], body: Buffer | string | null): void {
  const sink = ctx.response.sink();
  const bytes = body === null ? null : Buffer.isBuffer(body) ? body : Buffer.from(body);
  sink.head({ statusCode, reason, headers, contentLength: bytes ? bytes.length : -1, chunked: false, ...headerStats(statusCode, reason, headers) });
  if (bytes && bytes.length > 0) sink.body(bytes);
  sink.end();
}
