/**
 * A third-party plugin, built out of tree: uWSGI's `echo` request plugin (modifier1 101),
 * which answers every request with the request's own variables. It shows the three things
 * a plugin can bring: options (`--echo`, `--echo-prefix`), a request handler with its own
 * modifier1, and a bridge (bridge.mjs, a Node script beside this file).
 *
 *   tsuwsgi --build-plugin examples/plugins/echo        → ./echo_plugin.cjs + ./echo/bridge.mjs
 *   tsuwsgi --plugins-dir . --plugins echo --echo --http-socket :9090
 *
 * It imports nothing from tsuwsgi but the typed plugin API.
 */
import { fileURLToPath } from 'node:url';
import { definePlugin, PLUGIN_API_VERSION } from 'tsuwsgi/plugin-api';

const BRIDGE = fileURLToPath(new URL('./bridge.mjs', import.meta.url));

export default definePlugin({
  name: 'echo',
  apiVersion: PLUGIN_API_VERSION,
  description: 'answers every request with its uwsgi vars (uWSGI echo plugin, modifier1 101)',
  modifier1: 101,
  options: [
    { name: 'echo', argument: 'optional', kind: 'string', metavar: 'MOUNTPOINT', help: 'mount the echo app (at MOUNTPOINT, default the root)' },
    { name: 'echo-prefix', argument: 'required', kind: 'string', help: 'a line written before the vars', defaultValue: 'echo' },
  ],
  bridge: {
    runtime: 'Echo',
    apps(options) {
      if (!options.has('echo')) return [];
      const mountpoint = options.string('echo') ?? '';
      return [{ mountpoint: mountpoint === 'true' || mountpoint === '/' ? '' : mountpoint, load: { kind: 'echo', target: 'vars' }, origin: '--echo' }];
    },
    command() {
      return { file: process.execPath, args: [BRIDGE] };
    },
    settings(options) {
      return { prefix: options.string('echo-prefix') ?? 'echo' };
    },
  },
});
