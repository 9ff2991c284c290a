/**
 * Messages for unknown options. uWSGI only says "getopt_long() error"; tsuwsgi names the
 * plugin that provides the option, or the closest known names (DESIGN.md §1.2).
 */
import { UnknownOptionError } from '../errors.ts';
import type { OptionLookup } from '../options/lookup.ts';

/** Classic edit distance (insert, delete, substitute), enough for option-name typos. */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * Known names close to `name`: edit distance ≤ 2, or sharing a prefix (the typed name is
 * the start of a known one, or the other way round; at least 3 characters, so `-a` does
 * not suggest every option starting with "a"). Closest first, at most `max`.
 */
export function closestNames(name: string, candidates: Iterable<string>, max = 3): string[] {
  const scored: Array<{ name: string; score: number }> = [];
  const seen = new Set<string>();
  // Two edits turn any 2-letter name into many options: allow fewer for short names.
  const maxDistance = Math.min(2, Math.max(1, Math.floor(name.length / 3)));
  for (const candidate of candidates) {
    if (candidate === name || seen.has(candidate)) continue;
    seen.add(candidate);
    const distance = levenshtein(name, candidate);
    const prefix =
      Math.min(name.length, candidate.length) >= 3 && (candidate.startsWith(name) || name.startsWith(candidate));
    if (distance <= maxDistance) scored.push({ name: candidate, score: distance });
    else if (prefix) scored.push({ name: candidate, score: 3 + Math.abs(candidate.length - name.length) / 100 });
  }
  scored.sort((x, y) => x.score - y.score || x.name.localeCompare(y.name));
  return scored.slice(0, max).map((s) => s.name);
}

/** `"--a"`, `"--a" or "--b"`, `"--a", "--b" or "--c"` (prefix '' for config-file keys). */
function quoteList(names: string[], prefix: string): string {
  const quoted = names.map((n) => `"${prefix}${n}"`);
  if (quoted.length <= 1) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

/** The message for an option of a plugin that is known but not loaded, or undefined. */
export function unloadedPluginMessage(name: string, lookup: OptionLookup): string | undefined {
  const unloaded = lookup.lookupUnloaded(name);
  if (!unloaded) return undefined;
  return `unknown option "--${name}": it is provided by plugin "${unloaded.owner}", which is not loaded; add --plugins ${unloaded.owner}`;
}

/** "did you mean …?" for a name, or undefined when nothing is close. */
export function didYouMean(name: string, knownNames: Iterable<string>, prefix = '--'): string | undefined {
  const close = closestNames(name, knownNames);
  return close.length > 0 ? `did you mean ${quoteList(close, prefix)}?` : undefined;
}

/**
 * The error for an unknown `--name` on the command line (uWSGI rejects it too, §4.1): names
 * the plugin that provides it, else suggests close names and how to define a placeholder.
 */
export function unknownOptionError(name: string, lookup: OptionLookup, knownNames: Iterable<string>): UnknownOptionError {
  const plugin = unloadedPluginMessage(name, lookup);
  if (plugin) return new UnknownOptionError(plugin);
  const suggestion = didYouMean(name, knownNames);
  const hint = `to define a placeholder use --set-ph ${name}=VALUE`;
  return new UnknownOptionError(
    suggestion ? `unknown option "--${name}": ${suggestion} (${hint})` : `unknown option "--${name}"; ${hint}`,
  );
}

/** The error for an unknown single-letter option. */
export function unknownShortOptionError(letter: string): UnknownOptionError {
  return new UnknownOptionError(`unknown option "-${letter}"; run with --help to list the options`);
}
