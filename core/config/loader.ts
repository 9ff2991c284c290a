/**
 * The config loader: assembles the option list the way uWSGI's uwsgi_setup() does
 * (spec/core.md §4), then expands it.
 *
 *   1. plugins named by UWSGI_PLUGINS and on the command line are loaded first, so their
 *      options are known everywhere (uWSGI autoloads UWSGI_PLUGINS before parsing; getopt
 *      meets `--plugins` before the options that need it);
 *   2. the embedded config (INI text baked into the build, §4.17);
 *   3. `UWSGI_*` environment variables (§4.3);
 *   4. the command line, option by option (§4.2); bare config files after all options, as
 *      getopt permutes them;
 *   5. the three expansion passes `$()`, `@()`, `%()` (§4.9, expand.ts);
 *   6. `inherit`ed templates, appended unexpanded (§4.11);
 *   7. strict mode: every key must be an option or a declared placeholder (§4.15).
 *
 * Every option line, wherever it comes from, goes through ConfigAssembler.add(), the
 * counterpart of add_exported_option(): config logic first, then the key is classified
 * (option → canonical name; option of a plugin that is not loaded → error; anything else →
 * placeholder), then the options the loader executes itself run at once ("immediate":
 * `ini`, `include`, `plugins`, `set`, `set-ph`, `strict`, config logic), so a file read by
 * `ini =` is injected at that very point (§4.11).
 */
import path from 'node:path';
import { ConfigError, UnknownOptionError } from '../errors.ts';
import type { OptionLookup } from '../options/lookup.ts';
import { isTruthyFlagValue, type ConfigEntry, type RegisteredOption } from '../options/spec.ts';
import { parseArgv, scanArgvPlugins, type ArgvResolver } from './argv.ts';
import {
  builtinOption,
  builtinOptionNames,
  builtinShortOption,
  CONFIG_KEYS,
  DECLARE_OPTION_KEYS,
  FALLBACK_CONFIG_KEYS,
  INCLUDE_KEYS,
  IPRINT_KEYS,
  INHERIT_KEYS,
  NOT_EXPANDED_KEYS,
  PLUGIN_DIR_KEYS,
  PLUGIN_KEYS,
  POSITIONAL_KEY,
  SET_KEYS,
  SET_PLACEHOLDER_KEYS,
  STRICT_KEYS,
} from './builtin-options.ts';
import { optionsFromEnv } from './env.ts';
import { expandEntries } from './expand.ts';
import { formatForName, formatForOption, type ConfigFormat } from './formats.ts';
import { DEFAULT_INI_SECTION, iniFormat } from './ini.ts';
import { isLogicOpener, LOGIC_TERMINATORS, LogicBlock, recursiveLogicError, type LogicContext } from './logic.ts';
import { MagicTable } from './magic.ts';
import { isSchemeSource, readConfigFile, readSource, splitSection } from './source.ts';
import { CustomOption, customOptionSpec, parseDeclaration, DECLARED_OWNER } from './declare-option.ts';
import { findUnusedKeys } from './unused-keys.ts';
import { didYouMean, unknownOptionError, unknownShortOptionError, unloadedPluginMessage } from './suggest.ts';

export { POSITIONAL_KEY } from './builtin-options.ts';

export interface LoadConfigInput {
  /** process.argv.slice(2) */
  argv: string[];
  /** For UWSGI_* options, `$(ENV)` and `if-env`. */
  env: NodeJS.ProcessEnv;
  /** Base of relative paths; `%v`. */
  cwd: string;
  lookup: OptionLookup;
  /** Text of an embedded INI config, parsed first (may be absent). */
  embeddedIni?: string;
  /** Receives "[uWSGI] getting INI configuration from F" and warnings; default: stderr. */
  log?: (line: string) => void;
  /** Reads stdin for `--ini -` / `@(-)`; default: fd 0. */
  readStdin?: () => string;
  /**
   * Told the moment `fallback-config` is parsed (uWSGI registers it at once, so a failure
   * later in the parse, or at startup, runs the fallback).
   */
  onFallbackConfig?: (file: string) => void;
}

export interface LoadedConfig {
  /**
   * Final, expanded entries in declaration order. Keys are canonical option names (aliases
   * and short options mapped); placeholders keep their names; bare command-line arguments
   * that are not config files have the key `__positional__`.
   */
  entries: ConfigEntry[];
  /** Keys that are not options (placeholders, declared or not). */
  placeholders: Set<string>;
}

interface WorkEntry extends ConfigEntry {
  /** False for values never run through the expansion passes. */
  expand: boolean;
  kind: 'option' | 'placeholder' | 'positional';
  /** Defined with set-placeholder/set-ph: allowed in strict mode. */
  declared?: boolean;
}

interface AddOptions {
  /** The plugins of this line were loaded already (command line / UWSGI_PLUGINS pre-scan). */
  pluginsLoaded?: boolean;
}

type LoadMode =
  /** `ini`, `xml`… options: the format is forced; the first one sets the upper-case magic vars. */
  | { kind: 'format-option'; format: ConfigFormat }
  /** `include`, `inherit`, bare arguments: the format comes from the extension. */
  | { kind: 'by-name'; via: 'include' | 'inherit' | 'argument' | 'config' };

const EMBEDDED = 'embedded config';

class ConfigAssembler {
  readonly entries: WorkEntry[] = [];
  private readonly input: LoadConfigInput;
  private readonly log: (line: string) => void;
  private readonly magic: MagicTable;
  private readonly logicContext: LogicContext;
  private logic: LogicBlock | undefined;
  /** True while the lines produced by a logic block are applied (they bypass the block). */
  private logicRunning = false;
  private strict = false;
  /** After the expansion passes: everything added now stays unexpanded (templates). */
  private inheritPhase = false;
  /** > 0 while a file read by include/inherit/bare argument is applied (no upper-case magic). */
  private upperLock = 0;
  /** The last INI file read, for `ini = :section` ('' = the embedded config). */
  private lastIniFile: string | undefined;
  /** Sources being applied, to report include loops instead of recursing forever. */
  private readonly loading: string[] = [];
  /** Options made with declare-option, by name. */
  private readonly custom = new Map<string, CustomOption>();

  constructor(input: LoadConfigInput) {
    this.input = input;
    this.log = input.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.magic = new MagicTable({ cwd: input.cwd });
    this.logicContext = {
      env: input.env,
      cwd: input.cwd,
      findOption: (name) => {
        const key = this.canonical(name);
        return this.entries.find((e) => e.key === key)?.value;
      },
      pluginLoaded: (name) => input.lookup.isPluginLoaded?.(name) ?? false,
    };
  }

  resolve(name: string): RegisteredOption | undefined {
    return this.input.lookup.lookup(name) ?? builtinOption(name) ?? this.custom.get(name)?.registered;
  }

  canonical(name: string): string {
    return this.resolve(name)?.spec.name ?? name;
  }

  private knownNames(): string[] {
    return [...new Set([...this.input.lookup.allNames(), ...builtinOptionNames(), ...this.custom.keys()])];
  }

  argvResolver(): ArgvResolver {
    return {
      long: (name) => this.resolve(name),
      short: (letter) => this.input.lookup.lookupShort(letter) ?? builtinShortOption(letter),
      unknownLong: (name) => unknownOptionError(name, this.input.lookup, this.knownNames()),
      unknownShort: (letter) => unknownShortOptionError(letter),
    };
  }

  /** One option line (add_exported_option). */
  add(key: string, value: string, origin: string, options: AddOptions = {}): void {
    const registered = this.resolve(key);
    const name = registered?.spec.name ?? key;
    if (!this.logicRunning) {
      if (LOGIC_TERMINATORS.has(name) || LOGIC_TERMINATORS.has(key)) {
        this.logic = undefined;
      } else if (this.logic) {
        const lines = this.logic.apply({ key, value }, this.logicContext);
        this.logicRunning = true;
        try {
          for (const line of lines) this.add(line.key, line.value, origin, options);
        } finally {
          this.logicRunning = false;
        }
        return;
      }
    }
    if (!registered) {
      // uWSGI keeps unknown keys as placeholders (§4.1); an option of a plugin that is not
      // loaded is always a mistake, so say which plugin to load.
      const plugin = unloadedPluginMessage(key, this.input.lookup);
      if (plugin) throw new UnknownOptionError(`${plugin} (${origin})`);
      this.entries.push({ key, value, origin, expand: !this.inheritPhase, kind: 'placeholder' });
      return;
    }
    const expand = !this.inheritPhase && !NOT_EXPANDED_KEYS.has(name) && !NOT_EXPANDED_KEYS.has(key);
    this.entries.push({ key: name, value, origin, expand, kind: 'option' });
    if (registered.owner === DECLARED_OWNER) {
      // A custom option: its template's options follow it, as if written there (§4.14).
      const custom = this.custom.get(name) as CustomOption;
      for (const line of custom.expand(value)) {
        const via = `${origin} via ${name}`;
        const generated = this.canonical(line.key);
        // set/set-ph run without an entry of their own, as uWSGI applies them (the
        // placeholder they define is listed; the `set-ph = …` line is not).
        if (SET_KEYS.has(generated) || SET_PLACEHOLDER_KEYS.has(generated)) this.set(generated, line.value, via);
        else this.add(line.key, line.value, via);
      }
      return;
    }
    this.runImmediate(name, value, origin, options);
  }

  /** The options the loader executes the moment they are met. */
  private runImmediate(name: string, value: string, origin: string, options: AddOptions): void {
    if (isLogicOpener(name)) {
      // Only reachable while a block's lines are applied: uWSGI has no nested blocks.
      if (this.logic) throw recursiveLogicError(name, origin);
      this.logic = new LogicBlock(name, value);
      return;
    }
    const format = formatForOption(name);
    if (format) {
      this.loadSource(value, { kind: 'format-option', format }, origin);
      return;
    }
    if (INCLUDE_KEYS.has(name)) {
      this.loadSource(value, { kind: 'by-name', via: 'include' }, origin);
      return;
    }
    if (CONFIG_KEYS.has(name)) {
      this.loadSource(value, { kind: 'by-name', via: 'config' }, origin);
      return;
    }
    if (DECLARE_OPTION_KEYS.has(name)) {
      this.declare(name, value, origin);
      return;
    }
    if (FALLBACK_CONFIG_KEYS.has(name)) {
      this.input.onFallbackConfig?.(value);
      return;
    }
    if (IPRINT_KEYS.has(name)) {
      this.log(value);
      return;
    }
    if (PLUGIN_KEYS.has(name)) {
      if (!options.pluginsLoaded) this.input.lookup.loadPlugins(value, origin);
      return;
    }
    if (PLUGIN_DIR_KEYS.has(name)) {
      this.input.lookup.addPluginDir?.(value);
      return;
    }
    if (SET_KEYS.has(name) || SET_PLACEHOLDER_KEYS.has(name)) {
      this.set(name, value, origin);
      return;
    }
    if (STRICT_KEYS.has(name)) this.strict = isTruthyFlagValue(value);
  }

  /** `declare-option NAME=OPT=VALUE;…`: NAME becomes an option of this config. */
  private declare(option: string, value: string, origin: string): void {
    const declaration = parseDeclaration(option, value, origin);
    const existing = this.input.lookup.lookup(declaration.name) ?? builtinOption(declaration.name);
    if (existing) {
      throw new ConfigError(
        `${option} = ${value} (${origin}): "${declaration.name}" is already an option${existing.owner === 'core' ? '' : ` of the ${existing.owner} plugin`}; pick another name for the custom option`,
      );
    }
    this.custom.set(declaration.name, new CustomOption(declaration, customOptionSpec(declaration)));
  }

  /** `set KEY=VALUE` (any option or placeholder) and `set-ph KEY=VALUE` (placeholder only). */
  private set(option: string, value: string, origin: string): void {
    const eq = value.indexOf('=');
    // Deliberate fix (§4.8): both sides are trimmed. uWSGI 2.0 splits on the first `=`
    // without trimming, so the doc's own `set-ph = max_customer_address_space = 64` defines
    // the key "max_customer_address_space " (trailing space) that no %() can reach.
    const key = eq < 0 ? '' : value.slice(0, eq).trim();
    if (eq < 0 || key === '') {
      throw new ConfigError(`invalid placeholder/--set value "${value}" (${option}, ${origin}): write ${option} = KEY=VALUE`);
    }
    const val = value.slice(eq + 1).trim();
    if (SET_KEYS.has(option)) {
      this.add(key, val, origin);
      return;
    }
    if (this.resolve(key)) {
      throw new ConfigError(
        `you cannot use ${key} as a placeholder, it is already available as an option (${origin}); set it with set = ${key}=VALUE or --${key} VALUE`,
      );
    }
    // Placeholders set this way are "configured" in uWSGI: their value is never expanded (§4.9).
    this.entries.push({ key, value: val, origin, expand: false, kind: 'placeholder', declared: true });
  }

  /** Read a config source and apply its lines at this point. */
  private loadSource(spec: string, mode: LoadMode, origin: string): void {
    const format = mode.kind === 'format-option' ? mode.format : formatForName(spec);
    if (!format) {
      const via = mode.kind === 'by-name' && mode.via !== 'argument' ? mode.via : 'a bare argument';
      throw new ConfigError(
        `unable to load configuration from ${spec} (${origin}): ${via} picks the format from the extension (.ini, .xml, .yaml, .yml, .json, .js); use --ini ${spec} to read it as INI`,
      );
    }
    // uwsgi_opt_load() (include, inherit, bare argument) never sets the upper-case magic vars.
    const locks = mode.kind === 'by-name';
    if (locks) this.upperLock++;
    try {
      this.readAndApply(spec, format, mode.kind === 'format-option' && this.upperLock === 0, origin);
    } finally {
      if (locks) this.upperLock--;
    }
  }

  private readAndApply(spec: string, format: ConfigFormat, setUpper: boolean, origin: string): void {
    const { file, section, sectionGiven } = splitSection(spec);
    this.magic.fillForFile(spec, { setUpper });
    let source = file;
    if (sectionGiven && file === '') {
      // `ini = :section`: a section of the last INI file read (not necessarily this one).
      if (this.lastIniFile === undefined) {
        throw new ConfigError(`${spec} (${origin}) names a section of the last INI file read, but no INI file was read before`);
      }
      source = this.lastIniFile;
    } else if (file !== '') {
      this.log(format.loadLogLine(file));
    }
    const guard = `${source === '' || source === '-' || isSchemeSource(source) ? source : path.resolve(this.input.cwd, source)}:${section || DEFAULT_INI_SECTION}`;
    if (this.loading.includes(guard)) {
      throw new ConfigError(`config file ${spec} includes itself (${origin}); remove the ini/include line that loops`);
    }
    // An empty name is the embedded config (§4.6).
    if (source === '' && this.input.embeddedIni === undefined) {
      throw new ConfigError(`cannot read config file "${spec}" (${origin}): empty file name and no embedded config`);
    }
    const raw =
      source === ''
        ? (this.input.embeddedIni ?? '')
        : readConfigFile(source, { cwd: this.input.cwd, ...(this.input.readStdin ? { readStdin: this.input.readStdin } : {}) });
    const text = this.magic.substitute(raw);
    if (format === iniFormat) this.lastIniFile = source;
    const display = source === '' ? EMBEDDED : source;
    const lines = format.parse(text, { file: display, section, log: this.log });
    this.loading.push(guard);
    try {
      for (const line of lines) this.add(line.key, line.value, `${display}:${line.line}`);
    } finally {
      this.loading.pop();
    }
  }

  /** The embedded config: INI, default section, no file magic, no log line (uWSGI reads it as file ""). */
  loadEmbedded(text: string): void {
    this.lastIniFile = '';
    const lines = iniFormat.parse(this.magic.substitute(text), { file: EMBEDDED, section: undefined, log: this.log });
    this.loading.push(`:${DEFAULT_INI_SECTION}`);
    try {
      for (const line of lines) this.add(line.key, line.value, `${EMBEDDED}:${line.line}`);
    } finally {
      this.loading.pop();
    }
  }

  /** A bare command-line argument (§4.2). */
  addArgument(value: string): void {
    if (value.startsWith('[')) return; // uWSGI ignores bare `[...]` arguments
    if (formatForName(value)) {
      this.loadSource(value, { kind: 'by-name', via: 'argument' }, 'command line');
      return;
    }
    this.entries.push({ key: POSITIONAL_KEY, value, origin: 'command line', expand: false, kind: 'positional' });
  }

  finish(): LoadedConfig {
    const readStdin = this.input.readStdin;
    // Which undeclared placeholders nothing refers to: looked at before the passes replace
    // the %(…) references (§4.1: tsuwsgi reports likely typos that uWSGI silently keeps).
    const unused = findUnusedKeys(this.entries);
    expandEntries(this.entries, {
      env: this.input.env,
      readSource: (name) => readSource(name, { cwd: this.input.cwd, ...(readStdin ? { readStdin } : {}) }),
      canonical: (name) => this.canonical(name),
    });
    // Templates come after the passes, appended (uwsgi_configure() applies `inherit`, which
    // is not immediate, and its options land at the end of the list), and stay unexpanded.
    this.inheritPhase = true;
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[i] as WorkEntry;
      if (entry.kind === 'option' && INHERIT_KEYS.has(entry.key)) {
        this.loadSource(entry.value, { kind: 'by-name', via: 'inherit' }, entry.origin);
      }
    }
    if (this.strict) {
      const unknown = this.entries.find((e) => e.kind === 'placeholder' && !e.declared);
      if (unknown) {
        const suggestion = didYouMean(unknown.key, this.knownNames(), '');
        const hint = `in strict mode placeholders are declared with set-ph = ${unknown.key}=VALUE`;
        throw new ConfigError(
          `[strict-mode] unknown config directive: ${unknown.key} (${unknown.origin}): ${suggestion ? `${suggestion} (${hint})` : hint}`,
        );
      }
    }
    if (!this.strict) {
      for (const entry of unused) {
        const suggestion = didYouMean(entry.key, this.knownNames(), '');
        this.log(
          `*** WARNING: "${entry.key}" (${entry.origin}) is not an option and no %(${entry.key}) uses it${suggestion ? `: ${suggestion}` : ''}; it is kept as a placeholder — declare it with set-ph = ${entry.key}=VALUE if that is what you meant ***`,
        );
      }
    }
    return {
      entries: this.entries.map(({ key, value, origin }) => ({ key, value, origin })),
      placeholders: new Set(this.entries.filter((e) => e.kind === 'placeholder').map((e) => e.key)),
    };
  }
}

/** Assemble, expand and check the whole configuration (see the module comment). */
export function loadConfig(input: LoadConfigInput): LoadedConfig {
  const assembler = new ConfigAssembler(input);
  const resolver = assembler.argvResolver();
  const envPlugins = input.env.UWSGI_PLUGINS;
  if (envPlugins !== undefined && envPlugins !== '') input.lookup.loadPlugins(envPlugins, 'env UWSGI_PLUGINS');
  for (const item of scanArgvPlugins(input.argv, resolver)) {
    if (item.kind === 'dir') input.lookup.addPluginDir?.(item.value);
    else input.lookup.loadPlugins(item.value, 'command line');
  }

  if (input.embeddedIni !== undefined) assembler.loadEmbedded(input.embeddedIni);
  for (const option of optionsFromEnv(input.env)) {
    assembler.add(option.key, option.value, option.origin, { pluginsLoaded: option.origin === 'env UWSGI_PLUGINS' });
  }
  const bareArguments: string[] = [];
  for (const item of parseArgv(input.argv, resolver)) {
    if (item.kind === 'positional') bareArguments.push(item.value);
    else assembler.add(item.name, item.value, 'command line', { pluginsLoaded: true });
  }
  for (const value of bareArguments) assembler.addArgument(value);
  return assembler.finish();
}

/** The canonical key of an option name or alias (for `--get workers`), the name itself otherwise. */
export function canonicalKey(lookup: OptionLookup, name: string): string {
  return (lookup.lookup(name) ?? builtinOption(name))?.spec.name ?? name;
}
