/**
 * Running plugin lifecycle hooks. A hook's error is wrapped with the plugin and hook name
 * (PluginHookError), so the user learns which plugin refused the configuration.
 */
import { PluginHookError } from '../errors.ts';
import type { PluginContext, PluginDescriptor } from './api.ts';

/** Call every loaded plugin's `init` in load order, once the options are final. */
export async function runInitHooks(plugins: readonly PluginDescriptor[], ctx: PluginContext): Promise<void> {
  for (const d of plugins) {
    if (!d.init) continue;
    try {
      await d.init(ctx);
    } catch (err) {
      throw new PluginHookError(d.name, 'init', err);
    }
  }
}
