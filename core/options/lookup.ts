import type { RegisteredOption } from './spec.ts';

/**
 * What the config loader needs to know about options while it parses. Implemented by the
 * plugin registry (core/plugins/registry.ts); kept as an interface so the loader can be
 * tested with a hand-made table.
 */
export interface OptionLookup {
  /** The option (core or a loaded plugin) for a long name or alias. */
  lookup(name: string): RegisteredOption | undefined;
  /** The option for a single-letter command-line form (-s, -p, -M…). */
  lookupShort(letter: string): RegisteredOption | undefined;
  /** An option of a plugin that is known (could be loaded) but is not loaded. */
  lookupUnloaded(name: string): RegisteredOption | undefined;
  /** Every known long name and alias, loaded or not (for "did you mean"). */
  allNames(): string[];
  /**
   * Called when the loader meets `plugins`/`plugin`/`need-plugin` (they are immediate in
   * uWSGI: options they add are usable on the following lines). Throws PluginError when a
   * named plugin cannot be loaded.
   */
  loadPlugins(value: string, origin: string): void;
  /** `--plugins-dir DIR`: where later `plugins` look for plugin files. */
  addPluginDir?(dir: string): void;
  /** True when the plugin is loaded (for `if-plugin`); absent = no plugin is. */
  isPluginLoaded?(name: string): boolean;
}
