/**
 * Plugins built as separate files (uwsgiconfig.ts --plugin, tsuwsgi --build-plugin): uWSGI's
 * `<name>_plugin.so`, here `<name>_plugin.cjs`, a CommonJS bundle exporting the descriptor
 * as `<name>_plugin` (or `default`). CommonJS because loading must be synchronous: `plugins =`
 * is immediate, and the options a plugin adds are needed on the very next config line.
 *
 * Resolution follows core/plugins.c: a name with a `/` is a path (`_plugin.cjs` appended
 * unless it already ends in `.cjs`/`.js`); otherwise `<dir>/<name>_plugin.cjs` in each
 * `--plugins-dir`, in order, then the build's default plugin directory.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PluginError } from '../errors.ts';
import type { PluginDescriptor } from './api.ts';

export const PLUGIN_FILE_SUFFIX = '_plugin.cjs';

const requireFile = createRequire(import.meta.url);

/** The files `name` may be in, in search order. */
export function pluginFileCandidates(name: string, dirs: readonly string[], cwd: string = process.cwd()): string[] {
  if (name.includes('/')) {
    const file = /\.(c?js)$/.test(name) ? name : `${name}${PLUGIN_FILE_SUFFIX}`;
    return [path.resolve(cwd, file)];
  }
  return dirs.map((dir) => path.resolve(cwd, dir, `${name}${PLUGIN_FILE_SUFFIX}`));
}

/** The plugin name a file or path stands for: `/x/psgi_plugin.cjs` → `psgi`. */
export function pluginNameOf(spec: string): string {
  return path.basename(spec).replace(/\.(c?js)$/, '').replace(/_plugin$/, '');
}

function isDescriptor(value: unknown): value is PluginDescriptor {
  return typeof value === 'object' && value !== null && typeof (value as { name?: unknown }).name === 'string' && typeof (value as { apiVersion?: unknown }).apiVersion === 'number';
}

/**
 * Load the first existing candidate. Returns undefined when no file exists (the caller says
 * what was searched); throws PluginError when a file exists but is not a usable plugin.
 */
export function loadPluginFile(name: string, candidates: readonly string[]): { descriptor: PluginDescriptor; file: string } | undefined {
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) return undefined;
  let exported: Record<string, unknown>;
  try {
    exported = requireFile(fs.realpathSync(file)) as Record<string, unknown>;
  } catch (err) {
    throw new PluginError(`!!! UNABLE to load uWSGI plugin: ${file}: ${(err as Error).message} !!! (rebuild the plugin against this core: tsuwsgi --build-plugin <dir>)`, err);
  }
  // `<name>_plugin`, else `default`, else any `*_plugin` export (then the name check says
  // which plugin the file really holds).
  const anyPlugin = Object.keys(exported).find((k) => k.endsWith('_plugin'));
  const descriptor = exported[`${name}_plugin`] ?? exported.default ?? (anyPlugin ? exported[anyPlugin] : exported);
  if (!isDescriptor(descriptor)) {
    throw new PluginError(`${file} is not a tsuwsgi plugin: it must export "${name}_plugin" (or default) = definePlugin({ name: '${name}', apiVersion, … })`);
  }
  if (descriptor.name !== name) {
    throw new PluginError(`${file} declares the plugin "${descriptor.name}", not "${name}": rename the file to ${descriptor.name}${PLUGIN_FILE_SUFFIX} or fix the descriptor's name`);
  }
  return { descriptor, file };
}
