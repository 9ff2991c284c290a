/**
 * §6.4 variable expansion of rule arguments: `$0`..`$9` (regexp captures), `${VAR}` (request
 * vars) and `${name[key]}` (route vars). Kept pure so the unit tests exercise it without a
 * request; the RouteContext supplies the three lookups.
 *
 * It follows uWSGI 2.0's uwsgi_routing_translate(), checked against uWSGI 2.0.21 by
 * test/differential/routing-vs-uwsgi.test.ts: an action's argument goes through two passes,
 * captures first (`$N`; a `$` before anything else stays, a `$` ending the text is dropped),
 * then `${…}`; a condition's operands only through the second (`$1` stays literal there, and
 * so does a trailing `$`). One deliberate difference: uWSGI runs its second pass over the
 * text the first produced, so `${…}` inside a CAPTURE — text from the request — is expanded
 * too (`/x/%24%7BHTTP_COOKIE%7D` would leak the cookie into a redirect); here captured text is
 * always literal.
 */

export interface ExpandSources {
  readonly captures: readonly string[];
  getVar(name: string): string | undefined;
  /** A route var's value, or undefined when no plugin provides `name`. */
  routeVar(name: string, key: string): string | undefined;
}

/**
 * Set as the context's captures while a condition operand is expanded (core-conditions.ts):
 * uWSGI expands operands without the captures pass. Compared by identity.
 */
export const CONDITION_OPERAND: readonly string[] = Object.freeze([] as string[]);

/** A piece of text after the captures pass: template text (syntax) or captured text (literal). */
type Piece = { text: string; captured: boolean };

/** uWSGI's first pass (uwsgi_regexp_apply_ovec). */
function applyCaptures(text: string, captures: readonly string[]): Piece[] {
  const pieces: Piece[] = [];
  let template = '';
  let dollar = false;
  for (const c of text) {
    if (dollar) {
      dollar = false;
      if (c >= '0' && c <= '9') {
        if (template) pieces.push({ text: template, captured: false });
        template = '';
        // A group beyond the match's count expands to nothing.
        const group = captures[c.charCodeAt(0) - 48] ?? '';
        if (group) pieces.push({ text: group, captured: true });
      } else {
        template += `$${c}`;
      }
    } else if (c === '$') {
      dollar = true;
    } else {
      template += c;
    }
  }
  // A `$` ending the text is dropped (dollar still set), as uWSGI does.
  if (template) pieces.push({ text: template, captured: false });
  return pieces;
}

export function expand(text: string, src: ExpandSources): string {
  // Most arguments are constants: skip the scan entirely.
  if (!text.includes('$')) return text;
  const pieces = src.captures === CONDITION_OPERAND ? [{ text, captured: false }] : applyCaptures(text, src.captures);
  // uWSGI's second pass: 0 = text, 1 = after a `$`, 2 = inside `${…}`.
  let out = '';
  let state: 0 | 1 | 2 = 0;
  let key = '';
  for (const piece of pieces) {
    if (piece.captured) {
      // Captured text is never syntax: it is copied where it lands.
      if (state === 0) out += piece.text;
      else if (state === 1) {
        out += `$${piece.text}`;
        state = 0;
      } else key += piece.text;
      continue;
    }
    for (const c of piece.text) {
      if (state === 0) {
        if (c === '$') state = 1;
        else out += c;
      } else if (state === 1) {
        if (c === '{') {
          state = 2;
          key = '';
        } else {
          out += `$${c}`;
          state = 0;
        }
      } else if (c === '}') {
        out += lookup(key, src);
        state = 0;
      } else {
        key += c;
      }
    }
  }
  // An unfinished `$` or `${…` is emitted literally.
  if (state === 1) out += '$';
  else if (state === 2) out += `\${${key}`;
  return out;
}

function lookup(inner: string, src: ExpandSources): string {
  const open = inner.indexOf('[');
  if (open >= 0 && inner.endsWith(']')) {
    const value = src.routeVar(inner.slice(0, open), inner.slice(open + 1, -1));
    if (value !== undefined) return value;
    // No such route var: uWSGI then reads a request var of that whole name.
  }
  return src.getVar(inner) ?? '';
}
