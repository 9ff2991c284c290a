import { InvalidOptionError } from '../errors.ts';
import { isTruthyFlagValue, type ConfigEntry } from './spec.ts';

/**
 * The final, expanded option list with typed accessors. Keys are canonical option names
 * (aliases already mapped); custom placeholders keep their own names.
 *
 * Accessors take the canonical name only: a typo in code would silently read nothing, so
 * `has()`/`string()` etc. are meant to be called with names that exist in some OptionSpec.
 */
export class ResolvedOptions {
  readonly entries: readonly ConfigEntry[];
  private readonly byKey = new Map<string, string[]>();

  constructor(entries: readonly ConfigEntry[]) {
    this.entries = entries;
    for (const e of entries) {
      const list = this.byKey.get(e.key);
      if (list) list.push(e.value);
      else this.byKey.set(e.key, [e.value]);
    }
  }

  has(name: string): boolean {
    return this.byKey.has(name);
  }

  /** Every value given for a repeatable option, in declaration order. */
  all(name: string): string[] {
    return this.byKey.get(name) ?? [];
  }

  /** The last value given (uWSGI: later occurrences of a single-value option win). */
  string(name: string): string | undefined {
    const list = this.byKey.get(name);
    return list ? list[list.length - 1] : undefined;
  }

  /** A flag: present with a truthy value (see isTruthyFlagValue). */
  flag(name: string): boolean {
    const v = this.string(name);
    return v !== undefined && isTruthyFlagValue(v);
  }

  /** An integer option; a malformed value is an error naming the option. */
  int(name: string, defaultValue: number): number {
    const v = this.string(name);
    if (v === undefined || v.trim() === '') return defaultValue;
    if (!/^-?\d+$/.test(v.trim())) {
      throw new InvalidOptionError(`option "${name}" needs a whole number, got "${v}"`);
    }
    return Number.parseInt(v.trim(), 10);
  }

  /** Plain object for bridges and `uwsgi.opt`: single values as strings, repeats as arrays, flags as true. */
  toObject(): Record<string, string | string[] | true> {
    const out: Record<string, string | string[] | true> = {};
    for (const [k, values] of this.byKey) {
      // A flag holds 'true' (command line) or '' (an INI line without `=`): both are true.
      if (values.length === 1) out[k] = values[0] === undefined || values[0] === '' || values[0] === 'true' ? true : values[0];
      else out[k] = values;
    }
    return out;
  }
}
