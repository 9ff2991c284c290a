/**
 * router_redirect (spec/subsystems.md §6.6): `redirect:URL` answers 302, `redirect-permanent:URL`
 * 301, with `Location: URL` (expanded) and uWSGI's short body. Embedded, as in uWSGI's default build.
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { respond } from '../../core/routing/respond.ts';

function redirect(name: string, aliases: string[], code: number, reason: string, body: string): RouteActionDefinition {
  return {
    name,
    aliases,
    prepare(arg, origin) {
      if (arg === '') throw new RoutingError(`"${name}:" needs a URL in --${origin.option} "${origin.value}"`);
      return (ctx) => {
        respond(ctx, code, reason, ['Location', ctx.expand(arg), 'Content-Length', String(body.length)], body);
        return 'break';
      };
    },
  };
}

export default definePlugin({
  name: 'router_redirect',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: the redirect (302) and redirect-permanent (301) actions',
  routeActions: [
    redirect('redirect', ['redirect-302'], 302, 'Found', 'Moved'),
    redirect('redirect-permanent', ['redirect-301'], 301, 'Moved Permanently', 'Moved Permanently'),
  ],
});
