/**
 * The three expansion passes run once the whole option list is assembled (spec/core.md
 * §4.9), in uWSGI's order: (1) `$(NAME)` environment variables, (2) `@(SOURCE)` file or
 * `exec://` contents, (3) `%(name)` placeholders with placeholder math (§4.8, §4.10). Each
 * pass goes over every value in declaration order. Values of options consumed while parsing
 * (`ini`, `set-ph`, config logic…) and of `inherit`ed templates are never expanded.
 *
 * Semantics, following the live reference (errata) where it differs from the doc:
 * - unset `$(VAR)` and undefined `%(name)` stay verbatim; an unreadable `@()` fails;
 * - `@()` strips exactly one trailing `\n` or `\r`;
 * - `%(name)` is the value of the FIRST occurrence of `name` (option or placeholder) at the
 *   moment it is read: earlier entries are already expanded, so backward chains resolve;
 *   later entries are still raw, so a forward chain (`z = %(y)`, `y = %(x)`, `x = 9`) leaves
 *   `z = %(x)`. Inserted text is not scanned again;
 * - a placeholder that refers to itself, directly or through others, is an error (uWSGI 2.0
 *   hangs on some of these, e.g. `a = x%(a)`).
 * Parentheses may nest inside a reference (`@($(HOME)/f)` works because `$` runs first).
 */
import { ConfigError } from '../errors.ts';
import { SourceReadError } from './source.ts';

export interface ExpandableEntry {
  key: string;
  value: string;
  origin: string;
  /** False for values uWSGI never expands (immediate options, set-ph, inherited templates). */
  expand: boolean;
}

export interface ExpandContext {
  env: NodeJS.ProcessEnv;
  /** Reads an `@()` source: a file (relative to the cwd), `exec://…`, `-`. */
  readSource(name: string): string;
  /** The key under which a `%(name)` is looked up: option aliases map to their option. */
  canonical(name: string): string;
}

export interface Reference {
  /** Index of the symbol. */
  start: number;
  /** Index after the closing parenthesis. */
  end: number;
  key: string;
}

/** Every top-level `S(key)` of a value, balanced parentheses allowed inside the key. */
export function findReferences(value: string, symbol: string): Reference[] {
  const refs: Reference[] = [];
  let i = 0;
  while (i < value.length) {
    if (value[i] === symbol && value[i + 1] === '(') {
      let depth = 0;
      let k = i + 2;
      for (; k < value.length; k++) {
        const ch = value[k];
        if (ch === '(') depth++;
        else if (ch === ')') {
          if (depth === 0) break;
          depth--;
        }
      }
      if (k >= value.length) break; // unclosed: the rest stays as written
      const key = value.slice(i + 2, k);
      if (key !== '') refs.push({ start: i, end: k + 1, key }); // `%()` stays as written
      i = k + 1;
      continue;
    }
    i++;
  }
  return refs;
}

/** Replace each reference whose resolver returns a string; the others stay verbatim. */
export function substitute(value: string, symbol: string, resolve: (key: string) => string | undefined): string {
  const refs = findReferences(value, symbol);
  if (refs.length === 0) return value;
  let out = '';
  let last = 0;
  for (const ref of refs) {
    const replacement = resolve(ref.key);
    if (replacement === undefined) continue;
    out += value.slice(last, ref.start) + replacement;
    last = ref.end;
  }
  return out + value.slice(last);
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/** C strtoll(s, NULL, 10): leading blanks, sign, digits; 0 when none; saturates. */
export function strtoll(text: string): bigint {
  const m = /^[ \t\n\r\f\v]*([+-]?\d+)/.exec(text);
  if (!m) return 0n;
  const n = BigInt(m[1] as string);
  return n > INT64_MAX ? INT64_MAX : n < INT64_MIN ? INT64_MIN : n;
}

const OPERATORS = new Set(['+', '-', '*', '/']);
const isNumber = (token: string): boolean => /^\d+$/.test(token);

/** Names a placeholder key looks up (one name, or the non-literal tokens of a math key). */
export function placeholderNames(key: string): string[] {
  if (!key.includes(' ')) return [key];
  return key.split(' ').filter((t) => t !== '' && !isNumber(t) && !OPERATORS.has(t) && t !== '++' && t !== '--');
}

/**
 * The value of `%(key)` (uwsgi_manage_placeholder). A key with spaces is placeholder math
 * (§4.10): tokens separated by spaces, evaluated left to right as a pipeline with no
 * precedence; numbers are literals, other tokens are looked up (missing → ""); `+ - * /`
 * on int64 (`/` truncates, by zero gives 0); `++`/`--` change the running value; two
 * operands in a row are concatenated as strings. Undefined when nothing resolves.
 */
export function evaluatePlaceholder(key: string, lookup: (name: string) => string | undefined): string | undefined {
  if (!key.includes(' ')) return lookup(key);
  let state: 'concat' | '+' | '-' | '*' | '/' = 'concat';
  let current: string | undefined;
  for (const token of key.split(' ')) {
    if (token === '') continue;
    if (OPERATORS.has(token)) {
      state = token as '+' | '-' | '*' | '/';
      continue;
    }
    if (token === '++' || token === '--') {
      if (current !== undefined) {
        current = BigInt.asIntN(64, strtoll(current) + (token === '++' ? 1n : -1n)).toString();
      }
      state = 'concat';
      continue;
    }
    const value = isNumber(token) ? token : (lookup(token) ?? '');
    if (state === 'concat') current = (current ?? '') + value;
    else {
      const a = current === undefined ? 0n : strtoll(current);
      const b = strtoll(value);
      let r: bigint;
      if (state === '+') r = a + b;
      else if (state === '-') r = a - b;
      else if (state === '*') r = a * b;
      else r = b === 0n ? 0n : a / b;
      current = BigInt.asIntN(64, r).toString();
    }
    state = 'concat';
  }
  return current;
}

/** Index of the first entry of each key. */
function firstOccurrences(entries: readonly ExpandableEntry[]): Map<string, number> {
  const first = new Map<string, number>();
  entries.forEach((e, i) => {
    if (!first.has(e.key)) first.set(e.key, i);
  });
  return first;
}

/**
 * A cycle among the `%()` references of expandable values (each reference pointing at the
 * first occurrence of its name), as the list of keys `[a, b, a]`, or undefined.
 */
export function findPlaceholderCycle(
  entries: readonly ExpandableEntry[],
  canonical: (name: string) => string,
): { keys: string[]; origin: string } | undefined {
  const first = firstOccurrences(entries);
  const edges = entries.map((e) => {
    if (!e.expand) return [];
    const targets: number[] = [];
    for (const ref of findReferences(e.value, '%')) {
      for (const name of placeholderNames(ref.key)) {
        const j = first.get(canonical(name));
        if (j !== undefined && entries[j]?.expand) targets.push(j);
      }
    }
    return targets;
  });
  const color = new Uint8Array(entries.length); // 0 new, 1 on the current path, 2 done
  for (let root = 0; root < entries.length; root++) {
    if (color[root] !== 0) continue;
    const path: number[] = [root];
    const next: number[] = [0];
    color[root] = 1;
    while (path.length > 0) {
      const node = path[path.length - 1] as number;
      const k = next[next.length - 1] as number;
      const targets = edges[node] ?? [];
      if (k >= targets.length) {
        color[node] = 2;
        path.pop();
        next.pop();
        continue;
      }
      next[next.length - 1] = k + 1;
      const target = targets[k] as number;
      if (color[target] === 1) {
        const cycle = path.slice(path.indexOf(target));
        cycle.push(target);
        return {
          keys: cycle.map((i) => entries[i]?.key ?? ''),
          origin: entries[target]?.origin ?? '',
        };
      }
      if (color[target] === 0) {
        color[target] = 1;
        path.push(target);
        next.push(0);
      }
    }
  }
  return undefined;
}

/** `@()` content: one trailing `\n` or `\r` removed (uwsgi_at_file_read). */
function readAt(name: string, entry: ExpandableEntry, ctx: ExpandContext): string {
  let text: string;
  try {
    text = ctx.readSource(name);
  } catch (err) {
    const reason = err instanceof SourceReadError ? err.reason : err instanceof Error ? err.message : String(err);
    throw new ConfigError(`cannot read @(${name}) in "${entry.key}" (${entry.origin}): ${reason}`, err);
  }
  return text.endsWith('\n') || text.endsWith('\r') ? text.slice(0, -1) : text;
}

/** Run the three passes over the entries, in place. */
export function expandEntries(entries: ExpandableEntry[], ctx: ExpandContext): void {
  for (const e of entries) {
    if (e.expand) e.value = substitute(e.value, '$', (name) => ctx.env[name]);
  }
  for (const e of entries) {
    if (e.expand) e.value = substitute(e.value, '@', (name) => readAt(name, e, ctx));
  }
  const cycle = findPlaceholderCycle(entries, ctx.canonical);
  if (cycle) {
    throw new ConfigError(
      `placeholder cycle: ${cycle.keys.join(' -> ')} (${cycle.origin}); a placeholder cannot refer to itself, directly or through others`,
    );
  }
  const first = firstOccurrences(entries);
  const lookup = (name: string): string | undefined => {
    const index = first.get(ctx.canonical(name));
    return index === undefined ? undefined : entries[index]?.value;
  };
  for (const e of entries) {
    if (e.expand) e.value = substitute(e.value, '%', (key) => evaluatePlaceholder(key, lookup));
  }
}
