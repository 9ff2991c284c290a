/**
 * Likely typos (issue 3, spec/core.md §4.1): uWSGI keeps every unknown config key as a
 * placeholder without a word, so `procesess = 4` silently does nothing. tsuwsgi keeps that
 * behaviour (custom placeholders are a feature) but finds the keys that are neither options
 * nor declared with set-ph, and that nothing refers to: no `%(key)` (placeholder math
 * included), no `if-opt`/`if-not-opt`, no `--get`. The loader warns about each of them.
 */
import { findReferences } from './expand.ts';

export interface KeyedEntry {
  key: string;
  value: string;
  origin: string;
  kind: 'option' | 'placeholder' | 'positional';
  declared?: boolean;
}

/** Options whose value names another key. */
const NAMING_OPTIONS = new Set(['if-opt', 'if-not-opt', 'get']);

/** The first entry of each undeclared placeholder that nothing refers to, in order. */
export function findUnusedKeys<T extends KeyedEntry>(entries: readonly T[]): T[] {
  const referenced = new Set<string>();
  for (const entry of entries) {
    for (const ref of findReferences(entry.value, '%')) {
      // `%(a + b)` (placeholder math) refers to every word of it.
      for (const word of ref.key.split(' ')) if (word !== '') referenced.add(word);
    }
    if (entry.kind === 'option' && NAMING_OPTIONS.has(entry.key)) {
      const eq = entry.value.indexOf('=');
      referenced.add(eq < 0 ? entry.value : entry.value.slice(0, eq));
    }
  }
  const reported = new Set<string>();
  const unused: T[] = [];
  for (const entry of entries) {
    if (entry.kind !== 'placeholder' || entry.declared || referenced.has(entry.key) || reported.has(entry.key)) continue;
    reported.add(entry.key);
    unused.push(entry);
  }
  return unused;
}
