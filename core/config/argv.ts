/**
 * uWSGI command-line syntax (getopt_long, spec/core.md §4.1–4.2):
 * - `--opt value` and `--opt=value` for options with a required argument; the next word is
 *   taken whatever it looks like, as getopt does;
 * - flags (`--master`); `--master=false` is accepted and keeps the value (false/off/no/0
 *   mean false, §4.1);
 * - optional-argument options: `--opt`, `--opt=value`, and `--opt value` when the next word
 *   does not start with `-`;
 * - short forms from the specs: `-s :3031`, `-s:3031`, `-p 4`, `-p4`, clusters of flags
 *   `-MT`; a short option with an optional argument takes only an attached value (`-C644`);
 * - `--` ends the options; `-` alone and every other word are positional arguments.
 * Long options must be spelled in full: getopt's unambiguous abbreviations (`--mast`) are
 * deliberately not accepted, since a plugin adding an option would change their meaning.
 *
 * Parsing is lazy (a generator): the loader applies each option before the next word is
 * looked up, so options of a plugin loaded by `--ini app.ini` are known afterwards.
 */
import { InvalidOptionError, type TsuwsgiError } from '../errors.ts';
import type { RegisteredOption } from '../options/spec.ts';
import { PLUGIN_DIR_KEYS, PLUGIN_KEYS } from './builtin-options.ts';

export type ArgvItem =
  | {
      kind: 'option';
      /** Canonical option name. */
      name: string;
      /** How it was written, for messages: "--socket", "-s". */
      spelled: string;
      /** 'true' for a flag (or an optional-argument option) given without a value, as uWSGI stores it. */
      value: string;
      option: RegisteredOption;
    }
  | { kind: 'positional'; value: string };

export interface ArgvResolver {
  long(name: string): RegisteredOption | undefined;
  short(letter: string): RegisteredOption | undefined;
  unknownLong(name: string): TsuwsgiError;
  unknownShort(letter: string): TsuwsgiError;
}

/**
 * The value of a flag given without one on the command line. uWSGI stores it as "true"
 * (`--show-config` prints `master = true`), while an INI line `master` has the empty value.
 */
export const FLAG_VALUE = 'true';

function missingValue(spelled: string, option: RegisteredOption): InvalidOptionError {
  const also = spelled === `--${option.spec.name}` ? '' : ` (--${option.spec.name})`;
  const metavar = option.spec.metavar ?? 'VALUE';
  return new InvalidOptionError(`option "${spelled}"${also} requires a value: ${spelled} ${metavar}`);
}

export function* parseArgv(argv: readonly string[], resolver: ArgvResolver): Generator<ArgvItem, void, void> {
  let i = 0;
  let onlyPositionals = false;
  while (i < argv.length) {
    const arg = argv[i++] as string;
    if (onlyPositionals || arg === '-' || !arg.startsWith('-')) {
      yield { kind: 'positional', value: arg };
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    if (arg.startsWith('--')) {
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
      const option = resolver.long(name);
      if (!option) throw resolver.unknownLong(name);
      const spelled = `--${name}`;
      let value: string;
      switch (option.spec.argument) {
        case 'none':
          value = inline ?? FLAG_VALUE;
          break;
        case 'required':
          if (inline !== undefined) value = inline;
          else if (i < argv.length) value = argv[i++] as string;
          else throw missingValue(spelled, option);
          break;
        case 'optional': {
          const next = argv[i];
          if (inline !== undefined) value = inline;
          else if (next !== undefined && !next.startsWith('-')) {
            value = next;
            i++;
          } else value = FLAG_VALUE;
          break;
        }
      }
      yield { kind: 'option', name: option.spec.name, spelled, value, option };
      continue;
    }
    // A cluster of short options: -MT, -s:3031, -p4.
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j] as string;
      const option = resolver.short(letter);
      if (!option) throw resolver.unknownShort(letter);
      const spelled = `-${letter}`;
      if (option.spec.argument === 'none') {
        yield { kind: 'option', name: option.spec.name, spelled, value: FLAG_VALUE, option };
        continue;
      }
      const attached = arg.slice(j + 1);
      let value: string;
      if (attached !== '') value = attached;
      else if (option.spec.argument === 'optional') value = FLAG_VALUE;
      else if (i < argv.length) value = argv[i++] as string;
      else throw missingValue(spelled, option);
      yield { kind: 'option', name: option.spec.name, spelled, value, option };
      break;
    }
  }
}

/**
 * Every plugin-loading option on the command line (`--plugins`, `--plugin`, `--need-plugin`…)
 * and every `--plugins-dir`, in order, found before anything else is parsed so the plugins'
 * options are known to every other option. Unknown words are skipped here; the real parse
 * reports them.
 */
export function scanArgvPlugins(
  argv: readonly string[],
  resolver: Pick<ArgvResolver, 'long' | 'short'>,
): Array<{ kind: 'plugins' | 'dir'; value: string }> {
  const found: Array<{ kind: 'plugins' | 'dir'; value: string }> = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') break;
    if (arg === '-' || !arg.startsWith('-')) continue;
    if (arg.startsWith('--')) {
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      const option = resolver.long(name);
      const canonical = option?.spec.name ?? name;
      const takesNext = eq < 0 && option?.spec.argument === 'required';
      const kind = PLUGIN_KEYS.has(canonical) || PLUGIN_KEYS.has(name) ? 'plugins' : PLUGIN_DIR_KEYS.has(canonical) || PLUGIN_DIR_KEYS.has(name) ? 'dir' : undefined;
      if (kind) {
        const value = eq >= 0 ? body.slice(eq + 1) : argv[i + 1];
        if (value !== undefined) found.push({ kind, value });
      }
      if (takesNext) i++;
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const option = resolver.short(arg[j] as string);
      if (!option) break;
      if (option.spec.argument === 'none') continue;
      if (option.spec.argument === 'required' && j === arg.length - 1) i++;
      break;
    }
  }
  return found;
}
