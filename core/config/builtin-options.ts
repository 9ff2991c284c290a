/**
 * The options the config loader executes itself while it parses (uWSGI's "immediate"
 * options, spec/core.md §4.1), and the fallback specs that keep them usable when the option
 * registry does not declare them (the registry may declare `ini` but not the config-logic
 * family, for instance). The registry always wins: these specs are consulted only when
 * `OptionLookup` does not know a name.
 */
import type { OptionSpec, RegisteredOption } from '../options/spec.ts';

/**
 * Key of the entries holding bare command-line arguments that are not config files
 * (`app.py`, `module:callable`): the core offers them to the plugins' "magic" (§4.2).
 */
export const POSITIONAL_KEY = '__positional__';

/** Config files read at the point they appear (§4.11). */
export const INI_KEYS: ReadonlySet<string> = new Set(['ini']);
export const INCLUDE_KEYS: ReadonlySet<string> = new Set(['include']);
/** Templates: read after the expansion passes, their values stay unexpanded (§4.11). */
export const INHERIT_KEYS: ReadonlySet<string> = new Set(['inherit']);
/** Options naming plugins: loaded the moment they are met (§4.1 "immediate"). */
export const PLUGIN_KEYS: ReadonlySet<string> = new Set(['plugins', 'plugin', 'need-plugins', 'need-plugin']);
/** Where plugin files are searched (immediate: must come before the `plugins` it serves). */
export const PLUGIN_DIR_KEYS: ReadonlySet<string> = new Set(['plugins-dir', 'plugin-dir']);
export const SET_PLACEHOLDER_KEYS: ReadonlySet<string> = new Set(['set-placeholder', 'set-ph']);
export const SET_KEYS: ReadonlySet<string> = new Set(['set']);
export const STRICT_KEYS: ReadonlySet<string> = new Set(['strict']);
/** `config FILE`: a config file whose format is picked by its extension (like a bare argument). */
export const CONFIG_KEYS: ReadonlySet<string> = new Set(['config']);
/** Custom options that expand to others (§4.14). */
export const DECLARE_OPTION_KEYS: ReadonlySet<string> = new Set(['declare-option', 'declare-option2']);
/** `fallback-config FILE`: the config to run instead when startup fails (§4.12). */
export const FALLBACK_CONFIG_KEYS: ReadonlySet<string> = new Set(['fallback-config']);
/** `iprint MSG`: printed the moment it is parsed (unexpanded), unlike `print`. */
export const IPRINT_KEYS: ReadonlySet<string> = new Set(['iprint']);

/**
 * Options whose value uWSGI consumes while parsing, so it never goes through the
 * `$()`/`@()`/`%()` passes (they are "configured" before the passes run, §4.9). Kept to the
 * options that are consumed at parse time in tsuwsgi too, plus the uWSGI-immediate ones
 * another part of tsuwsgi may implement (fallback-config, declare-option, inject-*, iprint…),
 * so a config behaves the same here and on uWSGI. Deliberately NOT listed although uWSGI
 * flags them immediate: `listen`, `umask` — tsuwsgi applies them after parsing like any
 * setting, and expanding them is strictly more useful.
 */
export const NOT_EXPANDED_KEYS: ReadonlySet<string> = new Set([
  'ini', 'include', 'xml', 'xmlconfig', 'yaml', 'yml', 'yal', 'json', 'js', 'config',
  'plugins', 'plugin', 'need-plugins', 'need-plugin', 'plugins-dir', 'plugin-dir', 'autoload', 'dlopen',
  'declare-option', 'declare-option2', 'set', 'set-placeholder', 'set-ph', 'resolve', 'strict', 'fallback-config',
  'for', 'for-glob', 'for-times', 'for-readline', 'endfor', 'end-for',
  'if-opt', 'if-not-opt', 'if-env', 'ifenv', 'if-not-env', 'if-reload', 'if-not-reload',
  'if-exists', 'ifexists', 'if-not-exists', 'if-file', 'if-not-file', 'if-dir', 'ifdir', 'if-directory',
  'if-not-dir', 'if-plugin', 'ifplugin', 'if-not-plugin', 'endif', 'end-if', 'end',
  'blacklist', 'end-blacklist', 'whitelist', 'end-whitelist',
  'stop', 'reload', 'pause', 'suspend', 'resume', 'connect-and-read', 'extract',
  'early-envdir', 'iprint', 'exit', 'cflags', 'dot-h', 'config-py', 'build-plugin', 'binary-append-data',
  'inject-before', 'inject-after',
]);

const logicOpener = (name: string, help: string, aliases?: string[]): OptionSpec => ({
  name,
  ...(aliases ? { aliases } : {}),
  argument: 'required',
  kind: 'string',
  multiple: true,
  help: `(config logic) ${help}`,
});

/** Fallback specs, in the registry's shape. Names and aliases are uWSGI's. */
export const LOADER_OPTION_SPECS: readonly OptionSpec[] = [
  { name: 'ini', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE[:SECTION]', help: 'load config from an ini file' },
  { name: 'include', argument: 'required', kind: 'path', multiple: true, help: 'include a config file (type by extension) at this point' },
  { name: 'inherit', argument: 'required', kind: 'path', multiple: true, help: 'include a config file as a template (its values are not expanded)' },
  { name: 'xml', aliases: ['xmlconfig'], short: 'x', argument: 'required', kind: 'path', multiple: true, help: 'load config from an xml file' },
  { name: 'yaml', aliases: ['yml', 'yal'], short: 'y', argument: 'required', kind: 'path', multiple: true, help: 'load config from a yaml file' },
  { name: 'json', aliases: ['js'], short: 'j', argument: 'required', kind: 'path', multiple: true, help: 'load config from a json file' },
  { name: 'config', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE[:SECTION]', help: 'load a config file, its format picked by the extension (.ini, .xml, .yaml, .yml, .json, .js)' },
  { name: 'declare-option', argument: 'required', kind: 'string', multiple: true, metavar: 'NAME=OPT=VALUE[;OPT=VALUE…]', help: 'declare a custom option NAME expanding to other options; $1..$9 are the space-separated words of its value' },
  { name: 'declare-option2', argument: 'required', kind: 'string', multiple: true, metavar: 'NAME=OPT=VALUE[;OPT=VALUE…]', help: 'same as declare-option (uWSGI applies it later; tsuwsgi declares both at once)' },
  { name: 'fallback-config', argument: 'required', kind: 'path', metavar: 'FILE', help: 'if startup fails (exit status 1 or 22), log it and start again with only this config file' },
  { name: 'iprint', argument: 'required', kind: 'string', multiple: true, help: 'print a message the moment it is parsed (before expansion)' },
  { name: 'set-placeholder', aliases: ['set-ph'], argument: 'required', kind: 'string', multiple: true, metavar: 'KEY=VALUE', help: 'define a placeholder usable as %(KEY)' },
  { name: 'set', short: 'S', argument: 'required', kind: 'string', multiple: true, metavar: 'KEY=VALUE', help: 'set any option (or placeholder) by name' },
  { name: 'strict', argument: 'none', kind: 'flag', help: 'refuse unknown config keys instead of treating them as placeholders' },
  { name: 'plugins', aliases: ['plugin'], argument: 'required', kind: 'list', multiple: true, help: 'load plugins by name' },
  { name: 'plugins-dir', aliases: ['plugin-dir'], argument: 'required', kind: 'path', multiple: true, metavar: 'DIR', help: 'search DIR for <name>_plugin.cjs files (before the build\'s own plugin directory)' },
  { name: 'need-plugin', aliases: ['need-plugins'], argument: 'required', kind: 'list', multiple: true, help: 'load plugins by name and exit if one is missing' },
  logicOpener('for', 'repeat the following options for each space-separated item (%(_) is the item)'),
  logicOpener('for-glob', 'repeat the following options for each path matching a glob'),
  logicOpener('for-times', 'repeat the following options N times (%(_) is 1..N)'),
  logicOpener('for-readline', 'repeat the following options for each line of a file'),
  logicOpener('if-opt', 'apply the following options if an option is set (NAME or NAME=VALUE)'),
  logicOpener('if-not-opt', 'apply the following options if an option is not set'),
  logicOpener('if-env', 'apply the following options if an environment variable is set (VAR or VAR=VALUE)', ['ifenv']),
  logicOpener('if-not-env', 'apply the following options if an environment variable is not set'),
  logicOpener('if-exists', 'apply the following options if a file or directory exists', ['ifexists']),
  logicOpener('if-not-exists', 'apply the following options if a file or directory does not exist'),
  logicOpener('if-file', 'apply the following options if a regular file exists'),
  logicOpener('if-not-file', 'apply the following options if a regular file does not exist'),
  logicOpener('if-dir', 'apply the following options if a directory exists', ['ifdir', 'if-directory']),
  logicOpener('if-not-dir', 'apply the following options if a directory does not exist'),
  logicOpener('if-plugin', 'apply the following options if a plugin is loaded', ['ifplugin']),
  logicOpener('if-not-plugin', 'apply the following options if a plugin is not loaded'),
  { name: 'if-reload', argument: 'none', kind: 'flag', multiple: true, help: '(config logic) apply the following options after a graceful reload' },
  { name: 'if-not-reload', argument: 'none', kind: 'flag', multiple: true, help: '(config logic) apply the following options unless after a graceful reload' },
  { name: 'endfor', aliases: ['end-for'], argument: 'optional', kind: 'string', multiple: true, help: '(config logic) end a for block' },
  { name: 'endif', aliases: ['end-if'], argument: 'optional', kind: 'string', multiple: true, help: '(config logic) end an if block' },
  { name: 'end', argument: 'optional', kind: 'string', multiple: true, help: '(config logic) end a for/if block' },
];

const byName = new Map<string, RegisteredOption>();
const byShort = new Map<string, RegisteredOption>();
for (const spec of LOADER_OPTION_SPECS) {
  const registered: RegisteredOption = { spec, owner: 'core' };
  byName.set(spec.name, registered);
  for (const alias of spec.aliases ?? []) byName.set(alias, registered);
  if (spec.short) byShort.set(spec.short, registered);
}

export function builtinOption(name: string): RegisteredOption | undefined {
  return byName.get(name);
}

export function builtinShortOption(letter: string): RegisteredOption | undefined {
  return byShort.get(letter);
}

export function builtinOptionNames(): string[] {
  return [...byName.keys()];
}
