/**
 * A third-party plugin that extends internal routing (docs/routing.md): one route action, one
 * `route-if` condition and one route var, the three things uWSGI's uwsgi_register_router,
 * uwsgi_register_route_condition and uwsgi_register_route_var add.
 *
 *   tsuwsgi --build-plugin examples/plugins/stamp       → ./stamp_plugin.cjs
 *   tsuwsgi --plugins-dir . --plugins stamp --http-socket :9090 --wsgi-file app.py \
 *     --route-run 'stamp:X-Stamp=${stamp[worker]}' \
 *     --route-if 'palindrome:${qs[word]} addheader:X-Palindrome: yes'
 *
 * Every core worker loads this file itself (with --master, --core-workers N), so module state
 * such as `stamped` below is per core worker process, like a C plugin's globals after fork.
 * It imports nothing from tsuwsgi but the typed plugin API.
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteContext, type RouteOutcome } from 'tsuwsgi/plugin-api';

/** Requests this process has stamped: `${stamp[count]}`. */
let stamped = 0;

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

export default definePlugin({
  name: 'stamp',
  apiVersion: PLUGIN_API_VERSION,
  description: 'routing example: the stamp action, the palindrome condition and the stamp[] route var',
  routeActions: [
    {
      // stamp:NAME[=VALUE] adds the response header NAME (VALUE expanded per request; default
      // ${stamp[worker]}) and goes on with the next rule.
      name: 'stamp',
      prepare(arg) {
        const eq = arg.indexOf('=');
        const name = (eq < 0 ? arg : arg.slice(0, eq)).trim();
        // Thrown at start-up: the core turns it into a TSUWSGI_E_ROUTING error naming the rule.
        if (!HEADER_NAME.test(name)) throw new Error(`"stamp:" needs a header name: stamp:NAME[=VALUE], e.g. stamp:X-Stamp=\${stamp[worker]}`);
        const value = eq < 0 ? '${stamp[worker]}' : arg.slice(eq + 1);
        return (ctx: RouteContext): RouteOutcome => {
          stamped++;
          ctx.response.addHeader(name, ctx.expand(value));
          return 'next';
        };
      },
    },
  ],
  routeConditions: [
    {
      // palindrome:TEXT is true when the expanded TEXT is not empty and reads the same backwards.
      name: 'palindrome',
      prepare(args) {
        return (ctx) => {
          const text = ctx.expand(args);
          return text.length > 0 && text === [...text].reverse().join('');
        };
      },
    },
  ],
  routeVars: [
    {
      // ${stamp[worker]} = "WID:PID" of the core worker running the request; ${stamp[count]}
      // = requests stamped by that process so far.
      name: 'stamp',
      get(key, ctx) {
        if (key === 'worker') return `${ctx.workerId}:${ctx.pid}`;
        if (key === 'count') return String(stamped);
        return '';
      },
    },
  ],
});
