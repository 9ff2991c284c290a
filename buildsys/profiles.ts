/**
 * Build profiles (buildconf/<name>.ini, uWSGI's shape): a `[uwsgi]` section whose keys say
 * which plugins are embedded and which are built as files (see buildconf/base.ini).
 * `inherit = other` reads the other profile first; `%(key)s` is replaced by another key's
 * value, as Python's ConfigParser does for uwsgiconfig.py. The environment adjusts a
 * profile as in uWSGI: UWSGI_EMBED_PLUGINS (added), UWSGI_BIN_NAME, UWSGI_EMBED_CONFIG.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseIni } from '../core/config/ini.ts';

export interface Profile {
  name: string;
  embeddedPlugins: string[];
  plugins: string[];
  binName: string;
  pluginDir: string | null;
  embedConfig: string | null;
}

export class ProfileError extends Error {}

function readKeys(dir: string, name: string, seen: string[]): Map<string, string> {
  if (seen.includes(name)) throw new ProfileError(`profile "${name}" inherits itself (${[...seen, name].join(' -> ')})`);
  const file = path.join(dir, `${name}.ini`);
  if (!fs.existsSync(file)) {
    const known = fs.readdirSync(dir).filter((f) => f.endsWith('.ini')).map((f) => f.slice(0, -4)).sort();
    throw new ProfileError(`no build profile "${name}" (looked for ${file}); profiles: ${known.join(', ')}`);
  }
  const { lines } = parseIni(fs.readFileSync(file, 'utf8'));
  const own = new Map(lines.map((l) => [l.key, l.value]));
  const parent = own.get('inherit');
  const keys = parent ? readKeys(dir, parent, [...seen, name]) : new Map<string, string>();
  for (const [k, v] of own) if (k !== 'inherit') keys.set(k, v);
  return keys;
}

function interpolate(keys: Map<string, string>, value: string, depth = 0): string {
  if (depth > 10) throw new ProfileError(`%(…)s references loop in value "${value}"`);
  return value.replace(/%\(([\w-]+)\)s/g, (_m, key: string) => interpolate(keys, keys.get(key) ?? '', depth + 1));
}

const list = (text: string): string[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'null');

export function loadProfile(dir: string, name: string, env: NodeJS.ProcessEnv = process.env): Profile {
  const keys = readKeys(dir, name, []);
  const get = (key: string): string => interpolate(keys, keys.get(key) ?? '');
  const embedded = list(get('embedded_plugins'));
  for (const extra of list(env.UWSGI_EMBED_PLUGINS ?? '')) if (!embedded.includes(extra)) embedded.push(extra);
  const plugins = list(get('plugins')).filter((p) => !embedded.includes(p));
  const embedConfig = env.UWSGI_EMBED_CONFIG ?? get('embed_config');
  return {
    name,
    embeddedPlugins: [...new Set(embedded)],
    plugins: [...new Set(plugins)],
    binName: env.UWSGI_BIN_NAME ?? (get('bin_name') || 'tsuwsgi'),
    pluginDir: get('plugin_dir') || null,
    embedConfig: embedConfig ? embedConfig : null,
  };
}
