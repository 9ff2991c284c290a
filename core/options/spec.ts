/**
 * Option specs: the typed replacement for uWSGI's `struct uwsgi_option[]`.
 *
 * Every option belongs to exactly one owner (the core or a plugin). The same specs drive
 * command-line parsing, config-file checking ("unknown option, did you mean…", "provided by
 * plugin X"), `--help` and the generated docs/options.md.
 */

/** Whether the option takes an argument: uWSGI's required_argument / optional_argument / no_argument. */
export type OptionArgument = 'required' | 'optional' | 'none';

/**
 * How the value is read. Values are always kept as the strings the user wrote (so
 * `--show-config` prints them back unchanged); the kind only tells accessors and docs how
 * to interpret them.
 */
export type OptionKind = 'string' | 'number' | 'flag' | 'path' | 'address' | 'list';

export interface OptionSpec {
  /** The long name exactly as uWSGI spells it, e.g. "http-socket". */
  readonly name: string;
  /** Other accepted spellings, e.g. ["uwsgi-socket"] for "socket". */
  readonly aliases?: readonly string[];
  /** Single-letter command-line form, e.g. "s" for socket. */
  readonly short?: string;
  readonly argument: OptionArgument;
  readonly kind: OptionKind;
  /** True when the option may be given several times and every occurrence counts. */
  readonly multiple?: boolean;
  /** One line for --help and docs/options.md. */
  readonly help: string;
  /** Default shown in docs (the code applies defaults where it reads the value). */
  readonly defaultValue?: string;
  /** Placeholder for the argument in --help, e.g. "ADDR". */
  readonly metavar?: string;
  /**
   * Accepted so uWSGI configs keep working, but tsuwsgi has nothing to do for it
   * (e.g. `enable-threads`: threads always work). Documented as such; never silently a typo.
   */
  readonly accepted?: string;
}

/** An option as the registry knows it: the spec plus who provides it. */
export interface RegisteredOption {
  readonly spec: OptionSpec;
  /** "core" or the plugin name. */
  readonly owner: string;
}

/** A parsed config entry, in declaration order (uWSGI keeps the order: it matters). */
export interface ConfigEntry {
  /** Key as written (alias or canonical name, or a custom placeholder name). */
  key: string;
  value: string;
  /** Where it came from, for error messages: "command line", "app.ini:12", "env UWSGI_X". */
  origin: string;
}

/** Boolean values as uWSGI reads them: false/off/no/0 (any case) are false, anything else true. */
export function isTruthyFlagValue(value: string): boolean {
  const v = value.trim().toLowerCase();
  return !(v === 'false' || v === 'off' || v === 'no' || v === '0');
}
