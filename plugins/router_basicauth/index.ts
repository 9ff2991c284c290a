/**
 * router_basicauth (spec/subsystems.md §6.6): HTTP Basic authentication as a route action.
 *
 *   basicauth:REALM,USER:PASSWORD    one account
 *   basicauth:REALM,/path/htpasswd   accounts from an htpasswd file ({SHA}, DES crypt, $1$, $apr1$)
 *   basicauth:REALM,                 always 401
 *
 * A request already carrying REMOTE_USER (authenticated by an earlier rule) passes. A valid
 * `Authorization: Basic` sets REMOTE_USER and continues (NEXT); otherwise 401 with
 * `WWW-Authenticate` (BREAK), or, for basicauth-next, NEXT so a later rule may accept it —
 * but only for wrong credentials: a request offering none gets the 401 from basicauth-next
 * too, as in uWSGI (that is what makes a browser prompt).
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { offeredCredentials, unauthorized } from './basic-auth.ts';
import { checkHtpasswd } from './htpasswd.ts';

type Credentials = { kind: 'account'; text: string } | { kind: 'file'; path: string } | { kind: 'none' };

/** The user these credentials authenticate, or null. */
function check(ctx: RouteContext, creds: Exclude<Credentials, { kind: 'none' }>, decoded: string): string | null {
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  const user = decoded.slice(0, colon);
  if (creds.kind === 'account') return decoded === creds.text ? user : null;
  const r = checkHtpasswd(creds.path, user, decoded.slice(colon + 1));
  if ('error' in r) {
    ctx.log(`[router-basicauth] ${r.error}`);
    return null;
  }
  return r.ok ? user : null;
}

function basicauth(name: string, next: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const comma = arg.indexOf(',');
      if (comma < 0) throw new RoutingError(`"${name}:${arg}" in --${origin.option} "${origin.value}": write ${name}:REALM,USER:PASSWORD or ${name}:REALM,/path/to/htpasswd`);
      // The realm is sent as written: uWSGI does not expand it.
      const realm = arg.slice(0, comma);
      const rest = arg.slice(comma + 1);
      const creds: Credentials = rest === '' ? { kind: 'none' } : rest.includes(':') ? { kind: 'account', text: rest } : { kind: 'file', path: rest };
      return (ctx) => {
        if ((ctx.getVar('REMOTE_USER') ?? '') !== '') return 'next';
        // uWSGI's order (router_basicauth.c, checked by test/differential/routing-vs-uwsgi.test.ts):
        // no Basic credentials offered, or an empty credential list, is a 401 even for
        // basicauth-next — that is what makes a browser ask for a password; only WRONG
        // credentials let basicauth-next go on to the next rule.
        const decoded = offeredCredentials(ctx);
        if (decoded === null || creds.kind === 'none') return unauthorized(ctx, realm);
        const user = check(ctx, creds, decoded);
        if (user !== null) {
          // Request vars are byte strings (latin-1): the app gets the user's UTF-8 bytes, as in uWSGI.
          ctx.setVar('REMOTE_USER', Buffer.from(user, 'utf8').toString('latin1'));
          return 'next';
        }
        return next ? 'next' : unauthorized(ctx, realm);
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
