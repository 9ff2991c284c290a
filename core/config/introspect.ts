/**
 * `--show-config` and `--get` (spec/core.md §4.16), formatted as uWSGI prints them.
 */
import type { ConfigEntry } from '../options/spec.ts';
import { POSITIONAL_KEY } from './builtin-options.ts';

/**
 * The final option list as INI, byte for byte as uWSGI's show_config(): a blank line,
 * `;uWSGI instance configuration`, `[uwsgi]`, one `key = value` per entry in declaration
 * order, `;end of configuration` and a blank line. A flag given on the command line holds
 * `true` and an INI line `master` holds the empty value, so they print as uWSGI prints
 * them (`master = true`, `master = `). Bare positional arguments are not options and are
 * left out.
 */
export function formatShowConfig(entries: readonly ConfigEntry[]): string {
  let out = '\n;uWSGI instance configuration\n[uwsgi]\n';
  for (const e of entries) {
    if (e.key === POSITIONAL_KEY) continue;
    out += `${e.key} = ${e.value}\n`;
  }
  return `${out};end of configuration\n\n`;
}

/**
 * What `--get KEY [--get KEY2…]` prints, one string per line: for each key, the value of
 * its FIRST occurrence (uwsgi_get_exported_opt), keys that are not set printing nothing.
 * `canonical` maps an alias to the option name the entries are stored under.
 */
export function getValues(
  entries: readonly ConfigEntry[],
  keys: string | readonly string[],
  canonical: (name: string) => string = (name) => name,
): string[] {
  const wanted = typeof keys === 'string' ? [keys] : keys;
  const out: string[] = [];
  for (const key of wanted) {
    const name = canonical(key);
    const entry = entries.find((e) => e.key === name);
    if (entry) out.push(entry.value);
  }
  return out;
}
