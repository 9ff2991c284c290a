/**
 * Where tsuwsgi's own files are, from a source checkout and from a build (uwsgiconfig.ts).
 *
 * From source, the root is the checkout. A build keeps the same layout below its root
 * (`bin/tsuwsgi`, `bridges/<language>/…`, `plugins/<name>_plugin.cjs`), and the bundler
 * rewrites each module's `import.meta.url` to the URL that module has in that layout, so
 * `new URL('../../bridges/python/bridge.py', import.meta.url)` finds the bridge in both.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set by the bundler's banner in a build (uwsgiconfig.ts); absent when running from source. */
declare const __tsuwsgiBundleFile: string | undefined;
declare const __tsuwsgiBuildInfo: { profile: string; pluginDir: string | null; embeddedConfig: string | null } | undefined;

export const IS_BUILD = typeof __tsuwsgiBundleFile === 'string';

/** The install root: the checkout, or the directory above a build's `bin/`. */
export const INSTALL_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The script that starts tsuwsgi (core workers are forked from it). */
export const ENTRY_SCRIPT = IS_BUILD ? (__tsuwsgiBundleFile as string) : path.join(INSTALL_ROOT, 'bin', 'tsuwsgi.js');

/** The build profile baked into a build, or null from source. */
export const BUILD_PROFILE: string | null = typeof __tsuwsgiBuildInfo === 'object' ? __tsuwsgiBuildInfo.profile : null;

/**
 * Where `--plugins NAME` looks after every `--plugins-dir`: the profile's plugin_dir, else
 * `<root>/plugins` of a build. From source every in-tree plugin is known already.
 */
export const DEFAULT_PLUGIN_DIRS: readonly string[] = IS_BUILD
  ? [typeof __tsuwsgiBuildInfo === 'object' && __tsuwsgiBuildInfo.pluginDir ? __tsuwsgiBuildInfo.pluginDir : path.join(INSTALL_ROOT, 'plugins')]
  : [];

/** The INI text baked in with UWSGI_EMBED_CONFIG / `embed_config` (read before env and argv). */
export const EMBEDDED_CONFIG: string | undefined =
  typeof __tsuwsgiBuildInfo === 'object' && __tsuwsgiBuildInfo.embeddedConfig !== null ? __tsuwsgiBuildInfo.embeddedConfig : undefined;
