/**
 * The dummy plugin: hosts the dummy bridge (bridges/dummy/bridge.mjs), a dependency-free
 * Node implementation of the bridge contract. It exists so core behaviour (supervision,
 * framing, harakiri, reload, dispatch) is tested without a language runtime, and as the
 * smallest example of a language plugin. Not embedded: load it with `--plugins dummy`.
 */
import { fileURLToPath } from 'node:url';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';

const BRIDGE_SCRIPT = fileURLToPath(new URL('../../bridges/dummy/bridge.mjs', import.meta.url));

export default definePlugin({
  name: 'dummy',
  apiVersion: PLUGIN_API_VERSION,
  description: 'a test app (hello, echo, sleep, pid, crash) in a Node bridge; needs no language runtime',
  // Unassigned in uWSGI's modifier table.
  modifier1: 250,
  options: [
    { name: 'dummy-app', argument: 'optional', kind: 'string', metavar: 'MOUNTPOINT', help: 'host the dummy test app (at MOUNTPOINT, default the root)' },
  ],
  bridge: {
    runtime: 'Dummy',
    apps(options) {
      if (!options.has('dummy-app')) return [];
      const mp = options.string('dummy-app') ?? '';
      return [{ mountpoint: mp === 'true' || mp === '/' ? '' : mp, load: { kind: 'dummy', target: 'builtin' }, origin: '--dummy-app' }];
    },
    command() {
      return { file: process.execPath, args: [BRIDGE_SCRIPT] };
    },
  },
});
