/**
 * router_basicauth (spec/subsystems.md §6.6): HTTP Basic authentication as a route action.
 *
 *   basicauth:REALM,USER:PASSWORD    one account
 *   basicauth:REALM,/path/htpasswd   accounts from an htpasswd file ({SHA}, $1$, $apr1$)
 *   basicauth:REALM,                 always 401
 *
 * A request already carrying REMOTE_USER (authenticated by an earlier rule) passes. A valid
 * `Authorization: Basic` sets REMOTE_USER and continues (NEXT); otherwise 401 with
 * `WWW-Authenticate` (BREAK), or, for basicauth-next, NEXT so a later rule may accept it.
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { respond } from '../../core/routing/respond.ts';
import { checkHtpasswd } from './htpasswd.ts';

type Credentials = { kind: 'account'; text: string } | { kind: 'file'; path: string } | { kind: 'none' };

/** The client's user:password from `Authorization: Basic …`, or null. */
function clientCredentials(ctx: RouteContext): [string, string] | null {
  const auth = ctx.getVar('HTTP_AUTHORIZATION') ?? '';
  if (!auth.startsWith('Basic ')) return null;
  const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

function authenticated(ctx: RouteContext, creds: Credentials): string | null {
  const client = clientCredentials(ctx);
  if (!client) return null;
  const [user, password] = client;
  if (creds.kind === 'account') return `${user}:${password}` === creds.text ? user : null;
  if (creds.kind === 'file') {
    const r = checkHtpasswd(creds.path, user, password);
    if ('error' in r) {
      ctx.log(`[router-basicauth] ${r.error}`);
      return null;
    }
    return r.ok ? user : null;
  }
  return null;
}

function basicauth(name: string, next: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const comma = arg.indexOf(',');
      if (comma < 0) throw new RoutingError(`"${name}:${arg}" in --${origin.option} "${origin.value}": write ${name}:REALM,USER:PASSWORD or ${name}:REALM,/path/to/htpasswd`);
      const realm = arg.slice(0, comma);
      const rest = arg.slice(comma + 1);
      const creds: Credentials = rest === '' ? { kind: 'none' } : rest.includes(':') ? { kind: 'account', text: rest } : { kind: 'file', path: rest };
      return (ctx) => {
        if ((ctx.getVar('REMOTE_USER') ?? '') !== '') return 'next';
        const user = authenticated(ctx, creds);
        if (user !== null) {
          ctx.setVar('REMOTE_USER', user);
          return 'next';
        }
        if (next) return 'next';
        respond(ctx, 401, 'Authorization Required', ['WWW-Authenticate', `Basic realm="${ctx.expand(realm)}"`, 'Content-Type', 'text/plain', 'Content-Length', '12'], 'Unauthorized');
        return 'break';
      };
    },
  };
}

export default definePlugin({
  name: 'router_basicauth',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: HTTP Basic authentication (basicauth, basicauth-next) from an account or an htpasswd file',
  routeActions: [basicauth('basicauth', false), basicauth('basicauth-next', true)],
});
