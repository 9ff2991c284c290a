/**
 * Test helpers for the config loader: a hand-made OptionLookup (a few core options and two
 * plugins that start unloaded), temp directories, and a `load()` shortcut.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PluginError } from '../../core/errors.ts';
import type { OptionLookup } from '../../core/options/lookup.ts';
import type { OptionSpec, RegisteredOption } from '../../core/options/spec.ts';
import { loadConfig, type LoadConfigInput, type LoadedConfig } from '../../core/config/loader.ts';
import { getValues } from '../../core/config/introspect.ts';

const s = (spec: Omit<OptionSpec, 'help' | 'kind'> & Partial<Pick<OptionSpec, 'kind'>>): OptionSpec => ({
  kind: 'string',
  help: `test option ${spec.name}`,
  ...spec,
});

export const CORE_SPECS: readonly OptionSpec[] = [
  s({ name: 'socket', aliases: ['uwsgi-socket'], short: 's', argument: 'required', multiple: true }),
  s({ name: 'http-socket', argument: 'required', multiple: true }),
  s({ name: 'master', short: 'M', argument: 'none', kind: 'flag' }),
  s({ name: 'processes', aliases: ['workers'], short: 'p', argument: 'required', kind: 'number' }),
  s({ name: 'threads', argument: 'required', kind: 'number' }),
  s({ name: 'module', short: 'w', argument: 'required' }),
  s({ name: 'wsgi-file', argument: 'required' }),
  s({ name: 'callable', argument: 'required' }),
  s({ name: 'plugins', aliases: ['plugin'], argument: 'required', multiple: true }),
  s({ name: 'ini', argument: 'required', multiple: true }),
  s({ name: 'include', argument: 'required', multiple: true }),
  s({ name: 'inherit', argument: 'required', multiple: true }),
  s({ name: 'set-placeholder', aliases: ['set-ph'], argument: 'required', multiple: true }),
  s({ name: 'set', short: 'S', argument: 'required', multiple: true }),
  s({ name: 'strict', argument: 'none', kind: 'flag' }),
  s({ name: 'show-config', argument: 'none', kind: 'flag' }),
  s({ name: 'get', argument: 'required', multiple: true }),
  s({ name: 'print', argument: 'required', multiple: true }),
  s({ name: 'env', argument: 'required', multiple: true }),
  // a few more used by the spec's examples
  s({ name: 'memory-report', short: 'm', argument: 'none', kind: 'flag' }),
  s({ name: 'enable-threads', short: 'T', argument: 'none', kind: 'flag' }),
  s({ name: 'chdir', argument: 'required' }),
  s({ name: 'cheaper', argument: 'required', kind: 'number' }),
  s({ name: 'chmod-socket', short: 'C', argument: 'optional' }),
  s({ name: 'logto', argument: 'required' }),
];

/** Plugins the lookup knows but has not loaded: `--plugins python` loads one. */
export const PLUGIN_SPECS: Readonly<Record<string, readonly OptionSpec[]>> = {
  python: [
    s({ name: 'python-path', aliases: ['pythonpath', 'pp'], argument: 'required', multiple: true }),
    s({ name: 'pyhome', aliases: ['home'], short: 'H', argument: 'required' }),
  ],
  psgi: [s({ name: 'psgi', argument: 'required' })],
};

function index(specs: readonly OptionSpec[], owner: string, names: Map<string, RegisteredOption>, shorts: Map<string, RegisteredOption>): void {
  for (const spec of specs) {
    const registered = { spec, owner };
    names.set(spec.name, registered);
    for (const alias of spec.aliases ?? []) names.set(alias, registered);
    if (spec.short) shorts.set(spec.short, registered);
  }
}

export class TestLookup implements OptionLookup {
  readonly loaded = new Set<string>();
  readonly loadCalls: Array<{ value: string; origin: string }> = [];

  private tables(onlyLoaded: boolean | 'unloaded'): { names: Map<string, RegisteredOption>; shorts: Map<string, RegisteredOption> } {
    const names = new Map<string, RegisteredOption>();
    const shorts = new Map<string, RegisteredOption>();
    if (onlyLoaded !== 'unloaded') index(CORE_SPECS, 'core', names, shorts);
    for (const [plugin, specs] of Object.entries(PLUGIN_SPECS)) {
      const isLoaded = this.loaded.has(plugin);
      if (onlyLoaded === 'unloaded' ? !isLoaded : onlyLoaded ? isLoaded : true) index(specs, plugin, names, shorts);
    }
    return { names, shorts };
  }

  lookup(name: string): RegisteredOption | undefined {
    return this.tables(true).names.get(name);
  }

  lookupShort(letter: string): RegisteredOption | undefined {
    return this.tables(true).shorts.get(letter);
  }

  lookupUnloaded(name: string): RegisteredOption | undefined {
    return this.tables('unloaded').names.get(name);
  }

  allNames(): string[] {
    return [...this.tables(false).names.keys()];
  }

  isPluginLoaded(name: string): boolean {
    return this.loaded.has(name);
  }

  loadPlugins(value: string, origin: string): void {
    this.loadCalls.push({ value, origin });
    for (const raw of value.split(',')) {
      const name = raw.trim().replace(/^\d+:/, '');
      if (name === '') continue;
      if (!PLUGIN_SPECS[name]) throw new PluginError(`unable to load plugin "${name}" (${origin})`);
      this.loaded.add(name);
    }
  }
}

const created: string[] = [];

/** A fresh temp directory, removed by cleanupTempDirs(). */
export function tempDir(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-config-')));
  created.push(dir);
  return dir;
}

export function cleanupTempDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Write `content` to `dir/name` (creating subdirectories) and return the absolute path. */
export function write(dir: string, name: string, content: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

export interface LoadResult extends LoadedConfig {
  logs: string[];
  lookup: TestLookup;
}

/** loadConfig with a TestLookup, an empty environment and the logs captured. */
export function load(argv: string[], input: Partial<LoadConfigInput> & { lookup?: TestLookup } = {}): LoadResult {
  const logs: string[] = [];
  const lookup = input.lookup ?? new TestLookup();
  const config = loadConfig({
    env: {},
    cwd: os.tmpdir(),
    ...input,
    argv,
    lookup,
    log: (line) => logs.push(line),
  });
  return { ...config, logs, lookup };
}

/** `--get KEY`: the first value of a key, undefined when unset. */
export function get(config: LoadedConfig, key: string): string | undefined {
  return getValues(config.entries, key)[0];
}

/** Every value of a key, in order. */
export function all(config: LoadedConfig, key: string): string[] {
  return config.entries.filter((e) => e.key === key).map((e) => e.value);
}

/** `key = value` lines of the entries, for order assertions. */
export function pairs(config: LoadedConfig): string[] {
  return config.entries.map((e) => `${e.key} = ${e.value}`);
}
