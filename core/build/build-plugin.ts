/**
 * `tsuwsgi --build-plugin "DIR [NAME]"` (uWSGI 1.9.21's embedded plugin builder): build an
 * out-of-tree plugin against this core, into the current directory:
 *
 *   ./<name>_plugin.cjs   the plugin (load it with --plugins-dir . --plugins <name>)
 *   ./<name>/…            the plugin directory's other files (its bridge, templates…)
 *
 * The plugin imports the API as `tsuwsgi/plugin-api`, which resolves to this core's own copy
 * (lib/plugin-api in a build, core/plugins/api.ts in a checkout), so what it is built
 * against is what loads it; the API version inside is checked again at load time. Its
 * `import.meta.url` points into ./<name>/, so `new URL('./bridge.mjs', import.meta.url)`
 * finds the copied bridge. NAME defaults to the directory's name without a `uwsgi-` or
 * `tsuwsgi-` prefix.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PluginError } from '../errors.ts';
import { INSTALL_ROOT, IS_BUILD } from '../paths.ts';
import { PLUGIN_FILE_SUFFIX } from '../plugins/plugin-files.ts';
import { bundle } from './bundle.ts';

const ENTRY_CANDIDATES = ['index.ts', 'index.mts', 'index.js', 'index.mjs', 'plugin.ts', 'plugin.js'];

/** Where `tsuwsgi/plugin-api` comes from for this core. */
export function pluginApiFile(): string {
  return IS_BUILD ? path.join(INSTALL_ROOT, 'lib', 'plugin-api', 'core', 'plugins', 'api.ts') : path.join(INSTALL_ROOT, 'core', 'plugins', 'api.ts');
}

function copyOthers(from: string, to: string): number {
  let count = 0;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const src = path.join(from, entry.name);
    const dest = path.join(to, entry.name);
    if (entry.isDirectory()) count += copyOthers(src, dest);
    else if (!/\.(ts|mts|cts)$/.test(entry.name)) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(src, dest);
      fs.chmodSync(dest, fs.statSync(src).mode & 0o777);
      count++;
    }
  }
  return count;
}

export async function buildPlugin(spec: string, outDir: string, log: (line: string) => void): Promise<string> {
  const [dirArg, nameArg] = spec.trim().split(/\s+/);
  if (!dirArg) throw new PluginError('--build-plugin needs a plugin directory: --build-plugin "DIR [NAME]"');
  const dir = path.resolve(dirArg);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new PluginError(`--build-plugin ${dirArg}: no such directory`);
  const entryName = ENTRY_CANDIDATES.find((f) => fs.existsSync(path.join(dir, f)));
  if (!entryName) throw new PluginError(`--build-plugin ${dirArg}: no entry module (looked for ${ENTRY_CANDIDATES.join(', ')}); the entry default-exports definePlugin({...})`);
  const name = nameArg ?? path.basename(dir).replace(/^t?s?uwsgi-/, '');
  if (!/^[A-Za-z][\w-]*$/.test(name)) throw new PluginError(`--build-plugin: "${name}" is not a usable plugin name; give one: --build-plugin "${dirArg} NAME"`);
  const api = pluginApiFile();
  if (!fs.existsSync(api)) throw new PluginError(`this core has no plugin API to build against (${api} is missing): reinstall the core package`);
  const outFile = path.join(outDir, `${name}${PLUGIN_FILE_SUFFIX}`);
  const entry = path.join(dir, entryName);
  const wrapper = path.join(dir, `.${name}_plugin_entry.ts`);
  let result: { bytes: number; ms: number };
  try {
    result = await bundle({
      entry: wrapper,
      outFile,
      moduleRoot: dir,
      rootFromBundle: `./${name}`,
      aliases: { 'tsuwsgi/plugin-api': api },
      virtualModules: { [wrapper]: { contents: `export { default, default as ${name}_plugin } from ${JSON.stringify(entry)};`, resolveDir: dir } },
    });
  } catch (err) {
    const details = (err as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    const first = details?.[0];
    throw new PluginError(`cannot build ${dirArg}: ${first ? `${first.text}${first.location ? ` (${first.location.file}:${first.location.line})` : ''}` : (err as Error).message}`, err);
  }
  const copied = copyOthers(dir, path.join(outDir, name));
  log(`*** plugin ${name} built: ${outFile} (${(result.bytes / 1024).toFixed(0)} KiB, ${result.ms} ms)${copied ? `, ${copied} file(s) in ${path.join(outDir, name)}` : ''} ***`);
  log(`load it with: --plugins-dir ${outDir} --plugins ${name}`);
  return outFile;
}
