/**
 * The HTTP decisions of a static response that need no I/O: conditional GET, byte ranges,
 * Expires. Kept pure so the routing `static:` action and the lookup share them.
 */
import type { ExpiresRule } from './plan.ts';

/** HTTP-date → seconds since the epoch; NaN when unparsable. */
export function parseHttpDate(text: string): number {
  return Math.floor(Date.parse(text) / 1000);
}

/** `If-Modified-Since` at or after the file's mtime (seconds, as HTTP dates have no finer grain). */
export function notModified(ifModifiedSince: string | undefined, mtimeSec: number): boolean {
  if (!ifModifiedSince) return false;
  const t = parseHttpDate(ifModifiedSince);
  return !Number.isNaN(t) && t >= mtimeSec;
}

export type RangeDecision = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * A single `bytes=` range against a file of `size` bytes. Multi-range and malformed headers
 * get the full file (RFC 9110 lets a server ignore Range); If-Range with a date older than
 * the mtime (or an ETag, which static responses never send) also gets the full file.
 */
export function decideRange(range: string | undefined, ifRange: string | undefined, size: number, mtimeSec: number): RangeDecision {
  if (!range) return { kind: 'full' };
  if (ifRange !== undefined) {
    const t = parseHttpDate(ifRange);
    if (Number.isNaN(t) || t < mtimeSec) return { kind: 'full' };
  }
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(range);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  let start: number;
  let end: number;
  if (m[1] === '') {
    // Suffix range: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return { kind: 'unsatisfiable' };
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' };
  }
  if (start >= size || size === 0) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/** A compiled Expires rule (regexps built once per core worker). */
export interface CompiledExpires {
  rule: ExpiresRule;
  re: RegExp | null;
}

export function compileExpires(rules: readonly ExpiresRule[]): CompiledExpires[] {
  return rules.map((rule) => ({ rule, re: rule.subject === 'type' ? null : new RegExp(rule.match) }));
}

export interface ExpiresSubjects {
  mime: string | undefined;
  filename: string;
  uri: string;
  pathInfo: string;
}

/** The Expires value (seconds since epoch) of the first matching rule, or null. */
export function expiresAt(rules: readonly CompiledExpires[], s: ExpiresSubjects, mtimeSec: number, nowSec: number): number | null {
  for (const { rule, re } of rules) {
    let hit: boolean;
    if (rule.subject === 'type') hit = s.mime !== undefined && s.mime === rule.match;
    else hit = re!.test(rule.subject === 'filename' ? s.filename : rule.subject === 'uri' ? s.uri : s.pathInfo);
    if (hit) return (rule.mtime ? mtimeSec : nowSec) + rule.seconds;
  }
  return null;
}

/** Seconds since epoch → IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). */
export function httpDate(sec: number): string {
  return new Date(sec * 1000).toUTCString();
}
