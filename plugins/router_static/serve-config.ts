/**
 * The static rules the router_static actions serve with: the same options as the static file
 * server (MIME files, static-expires-*, static-gzip-*, honour-range, file-serve-mode,
 * static-index, static-skip-ext, static-safe), read once per core worker on first use, so
 * `static:` works without any check-static / static-map option.
 */
import type { ResolvedOptions } from '../../core/options/resolved.ts';
import { staticRulesFrom, type StaticPlan } from '../../core/static/plan.ts';
import type { StaticServeConfig } from '../../core/static/serve.ts';
import { serveConfigFrom } from '../../core/static/static-files.ts';
import { MimeTable } from '../../core/static/mime.ts';

export interface StaticRules {
  plan: StaticPlan;
  serve: StaticServeConfig;
}

/** Keyed by the worker's options object: one entry per core worker (and per reload generation). */
const cache = new WeakMap<ResolvedOptions, StaticRules>();

export function staticRules(options: ResolvedOptions, warn: (line: string) => void): StaticRules {
  let rules = cache.get(options);
  if (!rules) {
    const plan = staticRulesFrom(options);
    rules = { plan, serve: serveConfigFrom(plan, warn) };
    cache.set(options, rules);
  }
  return rules;
}

/** Only the MIME table (the `file:` actions' `mime=` key), shared with staticRules when both are used. */
export function mimeTable(options: ResolvedOptions, warn: (line: string) => void): MimeTable {
  return staticRules(options, warn).serve.mime;
}

/**
 * An expanded argument as a filesystem path. Request vars are latin-1 "byte strings" (file
 * names on disk are UTF-8 bytes); text from the config is ordinary Unicode. Bytes that form
 * valid UTF-8 are decoded as such, anything else is kept as written.
 */
export function fsPath(text: string): string {
  // Plain ASCII needs no decoding; a character above U+00FF cannot be a request byte.
  if (/^[\x00-\x7f]*$/.test(text) || /[^\x00-\xff]/.test(text)) return text;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(text, 'latin1'));
  } catch {
    return text;
  }
}
