/**
 * §6.4 variable expansion of rule arguments: `$0`..`$9` (regexp captures), `${VAR}` (request
 * vars) and `${name[key]}` (route vars). Kept pure so the unit tests exercise it without a
 * request; the RouteContext supplies the three lookups.
 */

export interface ExpandSources {
  readonly captures: readonly string[];
  getVar(name: string): string | undefined;
  /** A route var's value, or undefined when no plugin provides `name` (expands to nothing). */
  routeVar(name: string, key: string): string | undefined;
}

export function expand(text: string, src: ExpandSources): string {
  // Most arguments are constants: skip the scan entirely.
  if (!text.includes('$')) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$' || i + 1 >= text.length) {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1]!;
    if (next >= '0' && next <= '9') {
      // A group beyond the match's count expands to nothing, as in uWSGI.
      out += src.captures[next.charCodeAt(0) - 48] ?? '';
      i += 2;
      continue;
    }
    if (next === '{') {
      const close = text.indexOf('}', i + 2);
      if (close < 0) {
        // An unterminated `${` is emitted literally.
        out += text.slice(i);
        break;
      }
      out += lookup(text.slice(i + 2, close), src);
      i = close + 1;
      continue;
    }
    // `$` followed by anything else is literal.
    out += c;
    i++;
  }
  return out;
}

function lookup(inner: string, src: ExpandSources): string {
  const open = inner.indexOf('[');
  if (open > 0 && inner.endsWith(']')) {
    return src.routeVar(inner.slice(0, open), inner.slice(open + 1, -1)) ?? '';
  }
  return src.getVar(inner) ?? '';
}
