/**
 * The plugin registry: which plugins are loaded, which options exist and who owns them,
 * and the modifier1 table (uWSGI's `p[256]`).
 */
import { PluginError } from '../errors.ts';
import type { OptionLookup } from '../options/lookup.ts';
import type { OptionSpec, RegisteredOption } from '../options/spec.ts';
import type { LogEncoderDefinition, LoggerDefinition } from '../logging/api.ts';
import type { LoopEngineDefinition, SuspendEngineDefinition } from '../loop/api.ts';
import type { RouteActionDefinition, RouteConditionDefinition, RouteVarDefinition } from '../routing/api.ts';
import { PLUGIN_API_VERSION, type PluginDescriptor } from './api.ts';
import { loadPluginFile, pluginFileCandidates, pluginNameOf } from './plugin-files.ts';

export interface PluginSource {
  /** Every plugin this build can load, by name (in-tree, embedded or loadable). */
  available: ReadonlyMap<string, PluginDescriptor>;
  /** Names loaded at start without being asked for (the build profile's embedded plugins). */
  embedded: readonly string[];
  /** Directories searched for `<name>_plugin.cjs` after every `--plugins-dir` (a build's own). */
  defaultPluginDirs?: readonly string[];
}

export class PluginRegistry implements OptionLookup {
  private readonly source: PluginSource;
  private readonly loaded = new Map<string, PluginDescriptor>();
  private readonly order: PluginDescriptor[] = [];
  private readonly options = new Map<string, RegisteredOption>();
  private readonly shorts = new Map<string, RegisteredOption>();
  /** Options of available-but-not-loaded plugins, for "provided by plugin X" errors. */
  private readonly unloadedOptions = new Map<string, RegisteredOption>();
  /** modifier1 → plugin; `N:name` and `remap-modifier` write here. */
  private readonly modifiers: Array<PluginDescriptor | undefined> = new Array(256);
  /** `--plugins-dir` values, in order (searched before the build's default directory). */
  private readonly pluginDirs: string[] = [];
  /** Plugins loaded from files, by name → file (for --plugins-list and messages). */
  private readonly files = new Map<string, string>();

  constructor(coreOptions: readonly OptionSpec[], source: PluginSource) {
    this.source = source;
    for (const spec of coreOptions) this.addOption(spec, 'core');
    for (const name of source.embedded) this.load(name, 'embedded');
    this.refreshUnloaded();
  }

  private addOption(spec: OptionSpec, owner: string): void {
    const reg: RegisteredOption = { spec, owner };
    for (const n of [spec.name, ...(spec.aliases ?? [])]) {
      const prev = this.options.get(n);
      if (prev && prev.owner !== owner) {
        throw new PluginError(`option "${n}" of plugin "${owner}" is already defined by "${prev.owner}"`);
      }
      this.options.set(n, reg);
    }
    if (spec.short) this.shorts.set(spec.short, reg);
  }

  private refreshUnloaded(): void {
    this.unloadedOptions.clear();
    for (const [name, d] of this.source.available) {
      if (this.loaded.has(name)) continue;
      for (const spec of d.options ?? []) {
        for (const n of [spec.name, ...(spec.aliases ?? [])]) {
          if (!this.options.has(n)) this.unloadedOptions.set(n, { spec, owner: name });
        }
      }
    }
  }

  /**
   * Load one plugin by name (idempotent, as uWSGI skips an already loaded plugin).
   * `N:name` binds it to modifier1 N instead of its own.
   */
  load(spec: string, origin: string): PluginDescriptor {
    let name = spec.trim();
    let modifier: number | undefined;
    const m = /^(\d+):(.+)$/.exec(name);
    if (m) {
      modifier = Number(m[1]);
      name = m[2]!.trim();
      if (modifier > 255) throw new PluginError(`invalid modifier in "${spec}" (${origin}): modifier1 is 0..255`);
    }
    // uWSGI accepts "python3" for the python plugin and "xxx_plugin" file names.
    name = name.replace(/_plugin(\.\w+)?$/, '');
    const d =
      this.loaded.get(pluginNameOf(name)) ??
      this.source.available.get(name) ??
      (name === 'python3' ? this.source.available.get('python') : undefined) ??
      this.loadFromFile(name, origin);
    if (!this.loaded.has(d.name)) {
      if (d.apiVersion !== PLUGIN_API_VERSION) {
        throw new PluginError(`plugin "${d.name}" was built for plugin API ${d.apiVersion}, this core speaks ${PLUGIN_API_VERSION}: rebuild the plugin`);
      }
      for (const req of d.requires ?? []) {
        try {
          this.load(req, `required by plugin "${d.name}"`);
        } catch (err) {
          throw new PluginError(`plugin "${d.name}" requires plugin "${req}", which cannot be loaded: ${(err as Error).message}`, err);
        }
      }
      this.loaded.set(d.name, d);
      this.order.push(d);
      for (const opt of d.options ?? []) this.addOption(opt, d.name);
      if (d.modifier1 !== undefined && this.modifiers[d.modifier1] === undefined) this.modifiers[d.modifier1] = d;
      this.refreshUnloaded();
    }
    if (modifier !== undefined) this.modifiers[modifier] = d;
    return d;
  }

  /** A plugin from `<dir>/<name>_plugin.cjs` (or a path), or a PluginError saying what was searched. */
  private loadFromFile(spec: string, origin: string): PluginDescriptor {
    const name = pluginNameOf(spec);
    const dirs = [...this.pluginDirs, ...(this.source.defaultPluginDirs ?? [])];
    const candidates = pluginFileCandidates(spec, dirs);
    const found = loadPluginFile(name, candidates);
    if (!found) {
      const known = [...this.source.available.keys()].sort().join(', ');
      const searched = candidates.length > 0 ? `searched ${candidates.join(', ')}` : 'no --plugins-dir given';
      throw new PluginError(
        `plugin "${name}" (${origin}) is not available: it is not embedded in this build (embedded/in-tree: ${known || 'none'}) and no plugin file was found (${searched}); build it (tsx uwsgiconfig.ts --plugin plugins/${name}), install its package, or add --plugins-dir DIR before --plugins`,
      );
    }
    const clash = this.source.available.get(found.descriptor.name);
    if (clash) throw new PluginError(`${found.file} is a second "${clash.name}" plugin: one is already embedded in this build; remove the file or load the embedded one`);
    this.files.set(found.descriptor.name, found.file);
    return found.descriptor;
  }

  /** `--plugins-dir DIR` (immediate, like in uWSGI: give it before the `--plugins` it serves). */
  addPluginDir(dir: string): void {
    for (const d of dir.split(',')) {
      const trimmed = d.trim();
      if (trimmed !== '' && !this.pluginDirs.includes(trimmed)) this.pluginDirs.push(trimmed);
    }
  }

  /** The file a plugin was loaded from, if it was not embedded. */
  pluginFile(name: string): string | undefined {
    return this.files.get(name);
  }

  // --- OptionLookup ---------------------------------------------------------------------

  lookup(name: string): RegisteredOption | undefined {
    return this.options.get(name);
  }

  lookupShort(letter: string): RegisteredOption | undefined {
    return this.shorts.get(letter);
  }

  lookupUnloaded(name: string): RegisteredOption | undefined {
    return this.unloadedOptions.get(name);
  }

  allNames(): string[] {
    return [...this.options.keys(), ...this.unloadedOptions.keys()];
  }

  loadPlugins(value: string, origin: string): void {
    for (const part of value.split(',')) {
      if (part.trim()) this.load(part, origin);
    }
  }

  // --- dispatch ----------------------------------------------------------------------------

  /** Plugins in load order. */
  plugins(): readonly PluginDescriptor[] {
    return this.order;
  }

  pluginAt(modifier1: number): PluginDescriptor | undefined {
    return this.modifiers[modifier1];
  }

  /** `remap-modifier FROM:TO`: requests arriving with TO are served by the plugin at FROM. */
  remap(from: number, to: number): void {
    const d = this.modifiers[from];
    if (!d) throw new PluginError(`remap-modifier ${from}:${to}: no plugin is registered at modifier ${from}`);
    this.modifiers[to] = d;
  }

  /** Every option spec with its owner, loaded or not (docs, --help). */
  allOptions(): RegisteredOption[] {
    const seen = new Set<OptionSpec>();
    const out: RegisteredOption[] = [];
    for (const r of [...this.options.values(), ...this.unloadedOptions.values()]) {
      if (!seen.has(r.spec)) {
        seen.add(r.spec);
        out.push(r);
      }
    }
    return out;
  }

  // --- loggers and log encoders (registered by loaded plugins) ------------------------------

  /** The logger NAME of a loaded plugin (the first one to register it wins, as in uWSGI). */
  logger(name: string): { logger: LoggerDefinition; plugin: string } | undefined {
    for (const d of this.order) {
      const l = d.loggers?.find((x) => x.name === name);
      if (l) return { logger: l, plugin: d.name };
    }
    return undefined;
  }

  /** Loggers of loaded plugins, in load order. */
  loggers(): Array<{ logger: LoggerDefinition; plugin: string }> {
    return this.order.flatMap((d) => (d.loggers ?? []).map((logger) => ({ logger, plugin: d.name })));
  }

  /** Which available-but-not-loaded plugin provides logger NAME (for "load plugin X" hints). */
  unloadedLoggerPlugin(name: string): string | undefined {
    for (const [pname, d] of this.source.available) {
      if (!this.loaded.has(pname) && d.loggers?.some((x) => x.name === name)) return pname;
    }
    return undefined;
  }

  logEncoder(name: string): LogEncoderDefinition | undefined {
    for (const d of this.order) {
      const e = d.logEncoders?.find((x) => x.name === name);
      if (e) return e;
    }
    return undefined;
  }

  unloadedLogEncoderPlugin(name: string): string | undefined {
    for (const [pname, d] of this.source.available) {
      if (!this.loaded.has(pname) && d.logEncoders?.some((x) => x.name === name)) return pname;
    }
    return undefined;
  }

  // --- loop and suspend engines (registered by loaded plugins) -----------------------------

  /** Loop engines of loaded plugins, in load order (core/loop/select.ts adds the core's). */
  loopEngines(): Array<{ engine: LoopEngineDefinition; plugin: string }> {
    return this.order.flatMap((d) => (d.loopEngines ?? []).map((engine) => ({ engine, plugin: d.name })));
  }

  suspendEngines(): Array<{ engine: SuspendEngineDefinition; plugin: string }> {
    return this.order.flatMap((d) => (d.suspendEngines ?? []).map((engine) => ({ engine, plugin: d.name })));
  }

  /** Which available-but-not-loaded plugin provides loop engine NAME (for "load plugin X" hints). */
  unloadedLoopEnginePlugin(name: string): string | undefined {
    for (const [pname, d] of this.source.available) {
      if (!this.loaded.has(pname) && d.loopEngines?.some((x) => x.name === name)) return pname;
    }
    return undefined;
  }

  // --- internal routing (actions, conditions, route vars of loaded plugins) -----------------

  /** Route actions of loaded plugins, in load order (core/routing/table.ts adds the core's first). */
  routeActions(): Array<{ action: RouteActionDefinition; plugin: string }> {
    return this.order.flatMap((d) => (d.routeActions ?? []).map((action) => ({ action, plugin: d.name })));
  }

  routeConditions(): Array<{ condition: RouteConditionDefinition; plugin: string }> {
    return this.order.flatMap((d) => (d.routeConditions ?? []).map((condition) => ({ condition, plugin: d.name })));
  }

  routeVars(): Array<{ routeVar: RouteVarDefinition; plugin: string }> {
    return this.order.flatMap((d) => (d.routeVars ?? []).map((routeVar) => ({ routeVar, plugin: d.name })));
  }

  /** Which available-but-not-loaded plugin provides route action NAME (for "load plugin X" hints). */
  unloadedRouteActionPlugin(name: string): string | undefined {
    for (const [pname, d] of this.source.available) {
      if (!this.loaded.has(pname) && d.routeActions?.some((x) => x.name === name || x.aliases?.includes(name))) return pname;
    }
    return undefined;
  }

  availableNames(): string[] {
    return [...this.source.available.keys()];
  }

  isLoaded(name: string): boolean {
    return this.loaded.has(name);
  }

  isPluginLoaded(name: string): boolean {
    return this.isLoaded(name);
  }
}
