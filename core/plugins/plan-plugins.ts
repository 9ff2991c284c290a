/**
 * The plugins a core worker needs to rebuild the routing tables the master validated. The plan
 * only carries names and file paths (it crosses the IPC channel as JSON), so a core worker
 * process finds each plugin again: one of this build by name, or one the master loaded from a
 * file (`--plugins-dir`, a path, a build's own plugin directory) from that same file. Without
 * the files, a third-party plugin's route actions would exist in the master, pass validation,
 * and be missing where requests are served.
 */
import { PluginError } from '../errors.ts';
import { PLUGIN_API_VERSION, type PluginDescriptor } from './api.ts';
import { loadPluginFile } from './plugin-files.ts';

/**
 * Descriptors for `names`, in order. A name with an entry in `files` is loaded from that file
 * (Node's module cache makes this free in the master's own process); other names come from
 * `available`. A name found in neither is skipped: it was a plugin with nothing this process
 * can load, and a rule using its actions fails to compile with "unable to find routing action".
 * Throws a PluginError when a file is gone or no longer loads: a core worker must not serve
 * with fewer actions than the master checked.
 */
export function planPlugins(names: readonly string[], files: Readonly<Record<string, string>>, available: ReadonlyMap<string, PluginDescriptor>): PluginDescriptor[] {
  const out: PluginDescriptor[] = [];
  for (const name of names) {
    const file = files[name];
    if (file === undefined) {
      const d = available.get(name);
      if (d) out.push(d);
      continue;
    }
    let found: ReturnType<typeof loadPluginFile>;
    try {
      found = loadPluginFile(name, [file]);
    } catch (err) {
      throw new PluginError(`core worker: the plugin "${name}" the master loaded from ${file} does not load here: ${(err as Error).message}`, err);
    }
    if (!found) {
      throw new PluginError(`core worker: the plugin file ${file} (plugin "${name}", loaded by the master) is gone: do not move or delete plugin files while tsuwsgi starts, or give --plugins-dir an absolute, stable directory`);
    }
    if (found.descriptor.apiVersion !== PLUGIN_API_VERSION) {
      throw new PluginError(`core worker: ${file} was replaced by a plugin built for plugin API ${found.descriptor.apiVersion} (this core speaks ${PLUGIN_API_VERSION}): rebuild it with tsuwsgi --build-plugin`);
    }
    out.push(found.descriptor);
  }
  return out;
}
