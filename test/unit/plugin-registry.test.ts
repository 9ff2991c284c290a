import { definePlugin, PLUGIN_API_VERSION, type PluginDescriptor } from '../../core/plugins/api.ts';
import { PluginRegistry } from '../../core/plugins/registry.ts';
import type { OptionSpec } from '../../core/options/spec.ts';

const CORE: OptionSpec[] = [{ name: 'socket', short: 's', argument: 'required', kind: 'address', multiple: true, help: 'x' }];

function registry(plugins: PluginDescriptor[], embedded: string[] = []): PluginRegistry {
  return new PluginRegistry(CORE, { available: new Map(plugins.map((p) => [p.name, p])), embedded });
}

const psgi = definePlugin({
  name: 'psgi',
  apiVersion: PLUGIN_API_VERSION,
  description: 'perl',
  modifier1: 5,
  options: [{ name: 'psgi', argument: 'required', kind: 'path', help: 'app' }],
});

describe('plugin registry', () => {
  it('knows options of available plugins before they are loaded, and who provides them', () => {
    const r = registry([psgi]);
    expect(r.lookup('psgi')).toBeUndefined();
    expect(r.lookupUnloaded('psgi')?.owner).toBe('psgi');
    r.loadPlugins('psgi', 'test');
    expect(r.lookup('psgi')?.owner).toBe('psgi');
    expect(r.lookupUnloaded('psgi')).toBeUndefined();
  });

  it('registers a plugin at its modifier1, and N:name binds another modifier too', () => {
    const r = registry([psgi]);
    r.load('0:psgi', 'test');
    expect(r.pluginAt(5)?.name).toBe('psgi');
    expect(r.pluginAt(0)?.name).toBe('psgi');
  });

  it('loading twice is a no-op (uWSGI skips an already loaded plugin)', () => {
    const r = registry([psgi], ['psgi']);
    r.loadPlugins('psgi,psgi', 'test');
    expect(r.plugins().filter((p) => p.name === 'psgi')).toHaveLength(1);
  });

  it('refuses a plugin built for another API version, saying to rebuild it', () => {
    const old = { ...psgi, name: 'old', apiVersion: PLUGIN_API_VERSION + 1, options: [] };
    expect(() => registry([old]).load('old', 'test')).toThrow(/built for plugin API .* rebuild the plugin/);
  });

  it('loads the plugins a plugin requires first', () => {
    const router = definePlugin({ name: 'router_x', apiVersion: PLUGIN_API_VERSION, description: 'r', requires: ['psgi'] });
    const r = registry([psgi, router]);
    r.load('router_x', 'test');
    expect(r.plugins().map((p) => p.name)).toEqual(['psgi', 'router_x']);
  });

  it('refuses two plugins defining the same option', () => {
    const clash = definePlugin({ name: 'clash', apiVersion: PLUGIN_API_VERSION, description: 'c', options: [{ name: 'psgi', argument: 'none', kind: 'flag', help: 'x' }] });
    const r = registry([psgi, clash]);
    r.load('psgi', 'test');
    expect(() => r.load('clash', 'test')).toThrow(/option "psgi" of plugin "clash" is already defined by "psgi"/);
  });

  it('remap-modifier needs a plugin at the source modifier', () => {
    const r = registry([psgi]);
    expect(() => r.remap(5, 0)).toThrow(/no plugin is registered at modifier 5/);
    r.load('psgi', 'test');
    r.remap(5, 0);
    expect(r.pluginAt(0)?.name).toBe('psgi');
  });
});

describe('plugin lifecycle hooks', () => {
  it('runs init in load order and names the plugin and hook when one fails', async () => {
    const { runInitHooks } = await import('../../core/plugins/lifecycle.ts');
    const { ResolvedOptions } = await import('../../core/options/resolved.ts');
    const calls: string[] = [];
    const ok = definePlugin({ name: 'ok', apiVersion: PLUGIN_API_VERSION, description: 'x', init: () => void calls.push('ok') });
    const bad = definePlugin({
      name: 'bad',
      apiVersion: PLUGIN_API_VERSION,
      description: 'x',
      init: () => {
        throw new Error('needs --bad-option');
      },
    });
    const ctx = { options: new ResolvedOptions([]), log: () => {} };
    await runInitHooks([ok], ctx);
    expect(calls).toEqual(['ok']);
    await expect(runInitHooks([ok, bad], ctx)).rejects.toThrow('plugin "bad" failed in hook init: needs --bad-option');
  });
});
