/**
 * glob(3) with GLOB_MARK | GLOB_NOCHECK, as uWSGI's `for-glob` uses it (spec/core.md §4.13):
 * `*`, `?` and `[…]` per path segment, leading dots matched only explicitly, results sorted,
 * directories marked with a trailing `/`, and no match at all gives the pattern itself.
 * (Node 20 has no fs.glob; this is the small subset glob(3) offers without extensions.)
 */
import fs from 'node:fs';
import path from 'node:path';

const MAGIC = /[*?[]/;

function segmentRegex(segment: string): RegExp {
  let re = '^';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i] as string;
    if (ch === '\\' && i + 1 < segment.length) {
      re += (segment[++i] as string).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

function join(prefix: string, name: string): string {
  if (prefix === '') return name;
  return prefix.endsWith('/') ? prefix + name : `${prefix}/${name}`;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Paths matching `pattern` (relative to `cwd` when relative), in glob(3) order. */
export function globPaths(pattern: string, cwd: string): string[] {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter((s) => s !== '');
  const trailingSlash = pattern.endsWith('/') && pattern.length > 1;
  let prefixes = [absolute ? '/' : ''];
  for (const segment of segments) {
    if (!MAGIC.test(segment)) {
      prefixes = prefixes.map((p) => join(p, segment.replace(/\\(.)/g, '$1')));
      continue;
    }
    const re = segmentRegex(segment);
    const next: string[] = [];
    for (const prefix of prefixes) {
      let names: string[];
      try {
        names = fs.readdirSync(path.resolve(cwd, prefix === '' ? '.' : prefix));
      } catch {
        continue;
      }
      for (const name of names) {
        if (name.startsWith('.') && !segment.startsWith('.')) continue;
        if (re.test(name)) next.push(join(prefix, name));
      }
    }
    prefixes = next;
  }
  let results = prefixes.filter((p) => p !== '' && exists(path.resolve(cwd, p)));
  if (trailingSlash) results = results.filter((p) => isDirectory(path.resolve(cwd, p)));
  results = results.map((p) => (isDirectory(path.resolve(cwd, p)) && !p.endsWith('/') ? `${p}/` : p));
  results.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return results.length > 0 ? results : [pattern];
}
