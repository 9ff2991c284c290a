/**
 * Build profiles (buildconf/*.ini, spec/core.md §7.1) and the plugin-file loader's errors
 * (issue 4 part 3): each says what was searched and what to do.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadProfile, ProfileError } from '../../buildsys/profiles.ts';
import { PluginError } from '../../core/errors.ts';
import { PLUGIN_API_VERSION, type PluginDescriptor } from '../../core/plugins/api.ts';
import { PluginRegistry } from '../../core/plugins/registry.ts';
import { REPO_ROOT } from '../helpers/server.ts';

const BUILDCONF = path.join(REPO_ROOT, 'buildconf');
const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-build-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('build profiles (buildconf/)', () => {
  it('ships core, base, default, one *only profile per built language, and modular', () => {
    const names = fs.readdirSync(BUILDCONF).filter((f) => f.endsWith('.ini')).map((f) => f.slice(0, -4));
    expect(names).toEqual(expect.arrayContaining(['core', 'base', 'default', 'pyonly', 'psgionly', 'rackonly', 'modular']));
  });

  it('core embeds nothing; default embeds python and http and builds the other languages as files', () => {
    expect(loadProfile(BUILDCONF, 'core', {}).embeddedPlugins).toEqual([]);
    const def = loadProfile(BUILDCONF, 'default', {});
    expect(def.embeddedPlugins).toEqual(expect.arrayContaining(['python', 'http']));
    expect(def.plugins).toEqual(expect.arrayContaining(['psgi', 'rack']));
    expect(def.binName).toBe('tsuwsgi');
  });

  it('inherits, interpolates %(key)s, and takes UWSGI_EMBED_PLUGINS, UWSGI_BIN_NAME, UWSGI_EMBED_CONFIG', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'base.ini'), '[uwsgi]\nmain_plugin = python\nembedded_plugins = %(main_plugin)s, http\nbin_name = tsuwsgi\n');
    fs.writeFileSync(path.join(dir, 'mine.ini'), '[uwsgi]\ninherit = base\nmain_plugin = psgi\nplugins = rack, http\n');
    const profile = loadProfile(dir, 'mine', { UWSGI_EMBED_PLUGINS: 'dummy', UWSGI_BIN_NAME: 'myapp', UWSGI_EMBED_CONFIG: 'app.ini' });
    expect(profile.embeddedPlugins).toEqual(['psgi', 'http', 'dummy']);
    // A plugin that is embedded is not built again as a file.
    expect(profile.plugins).toEqual(['rack']);
    expect(profile.binName).toBe('myapp');
    expect(profile.embedConfig).toBe('app.ini');
  });

  it('names the profiles when one does not exist, and refuses inheritance loops', () => {
    expect(() => loadProfile(BUILDCONF, 'nope', {})).toThrow(ProfileError);
    expect(() => loadProfile(BUILDCONF, 'nope', {})).toThrow(/no build profile "nope" .*profiles: .*core.*default/);
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'a.ini'), '[uwsgi]\ninherit = b\n');
    fs.writeFileSync(path.join(dir, 'b.ini'), '[uwsgi]\ninherit = a\n');
    expect(() => loadProfile(dir, 'a', {})).toThrow(/profile "a" inherits itself \(a -> b -> a\)/);
  });
});

describe('loading plugin files (--plugins-dir, <name>_plugin.cjs)', () => {
  function pluginFile(dir: string, file: string, body: string): void {
    fs.writeFileSync(path.join(dir, file), body);
  }
  const descriptor = (name: string, extra = ''): string =>
    `module.exports = { ${name}_plugin: { name: ${JSON.stringify(name)}, apiVersion: ${PLUGIN_API_VERSION}, options: [{ name: '${name}-opt', argument: 'required', kind: 'string', help: 'x' }] ${extra} } };`;
  const registry = (): PluginRegistry => new PluginRegistry([], { available: new Map(), embedded: [] });

  it('finds <dir>/<name>_plugin.cjs in --plugins-dir order, adds its options, and loads it once', () => {
    const first = tempDir();
    const second = tempDir();
    pluginFile(second, 'alpha_plugin.cjs', descriptor('alpha'));
    const r = registry();
    r.addPluginDir(first);
    r.addPluginDir(second);
    r.loadPlugins('alpha,alpha', 'test');
    expect(r.plugins().map((d) => d.name)).toEqual(['alpha']);
    expect(r.lookup('alpha-opt')?.owner).toBe('alpha');
    expect(r.pluginFile('alpha')).toBe(path.join(second, 'alpha_plugin.cjs'));
  });

  it('loads a plugin given as a path', () => {
    const dir = tempDir();
    pluginFile(dir, 'beta_plugin.cjs', descriptor('beta'));
    const r = registry();
    r.load(path.join(dir, 'beta'), 'test');
    expect(r.isLoaded('beta')).toBe(true);
  });

  it('says what was searched when a plugin is not found', () => {
    const dir = tempDir();
    const r = registry();
    r.addPluginDir(dir);
    expect(() => r.load('gamma', 'test')).toThrow(PluginError);
    expect(() => r.load('gamma', 'test')).toThrow(new RegExp(`no plugin file was found \\(searched ${dir}/gamma_plugin\\.cjs\\); build it .*or add --plugins-dir DIR before --plugins`));
  });

  it('refuses a wrong API version, a name that does not match the file, a non-plugin and a missing requirement', () => {
    const dir = tempDir();
    pluginFile(dir, 'old_plugin.cjs', `module.exports = { old_plugin: { name: 'old', apiVersion: ${PLUGIN_API_VERSION + 1} } };`);
    pluginFile(dir, 'liar_plugin.cjs', descriptor('other'));
    pluginFile(dir, 'junk_plugin.cjs', 'module.exports = { hello: 1 };');
    pluginFile(dir, 'needy_plugin.cjs', descriptor('needy', ", requires: ['absent']"));
    pluginFile(dir, 'broken_plugin.cjs', 'this is not javascript');
    const r = registry();
    r.addPluginDir(dir);
    expect(() => r.load('old', 't')).toThrow(new RegExp(`plugin "old" was built for plugin API ${PLUGIN_API_VERSION + 1}, this core speaks ${PLUGIN_API_VERSION}: rebuild the plugin`));
    expect(() => r.load('liar', 't')).toThrow(/liar_plugin\.cjs declares the plugin "other", not "liar": rename the file/);
    expect(() => r.load('junk', 't')).toThrow(/junk_plugin\.cjs is not a tsuwsgi plugin: it must export "junk_plugin"/);
    expect(() => r.load('needy', 't')).toThrow(/plugin "needy" requires plugin "absent", which cannot be loaded: .*no plugin file was found/);
    expect(() => r.load('broken', 't')).toThrow(/UNABLE to load uWSGI plugin: .*broken_plugin\.cjs/);
  });

  it('refuses a second copy of an embedded plugin', () => {
    const dir = tempDir();
    pluginFile(dir, 'twin_plugin.cjs', descriptor('twin'));
    const embedded: PluginDescriptor = { name: 'twin', apiVersion: PLUGIN_API_VERSION, description: 'embedded twin' };
    const r = new PluginRegistry([], { available: new Map([['twin', embedded]]), embedded: [] });
    r.addPluginDir(dir);
    // The embedded one wins by name: asking by path for the file is the duplicate.
    expect(() => r.load(path.join(dir, 'twin_plugin.cjs'), 't')).toThrow(/is a second "twin" plugin: one is already embedded/);
  });
});
