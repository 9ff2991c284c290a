/**
 * The http plugin: uWSGI's `--http` router. In uWSGI it is a separate gateway process that
 * proxies to the workers over uwsgi; in tsuwsgi the core worker already owns client
 * connections and speaks uwsgi to the bridges, so `--http ADDR` is an HTTP listener of the
 * core, served exactly like `--http-socket` (docs/ARCHITECTURE.md explains the choice).
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';

export default definePlugin({
  name: 'http',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the HTTP router (--http): an HTTP front end for the app workers',
  options: [
    { name: 'http', argument: 'required', kind: 'address', multiple: true, metavar: 'ADDR', help: 'serve HTTP on this address (the core worker routes requests to the app workers)' },
    { name: 'http-modifier1', argument: 'required', kind: 'number', help: 'modifier1 for requests arriving on --http', defaultValue: '0' },
    { name: 'http-modifier2', argument: 'required', kind: 'number', help: 'modifier2 for requests arriving on --http', defaultValue: '0' },
  ],
});
