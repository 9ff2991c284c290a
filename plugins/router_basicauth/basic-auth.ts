/**
 * The HTTP Basic side of every authentication action (basicauth here; radius and ldapauth in
 * plugins/router_radius and plugins/ldap import it): reading the credentials a request offers
 * and the 401 that asks for them. uWSGI repeats the same code in each router; tsuwsgi keeps one
 * copy so the actions answer byte for byte alike.
 */
import type { RouteContext } from '../../core/plugins/api.ts';
import { respond } from '../../core/routing/respond.ts';

/**
 * The decoded `user:password` of `Authorization: Basic …`, or null when the request offers
 * no Basic credentials at all. As uWSGI: the header must be longer than 7 bytes and start
 * with exactly "Basic ".
 */
export function offeredCredentials(ctx: RouteContext): string | null {
  const auth = ctx.getVar('HTTP_AUTHORIZATION') ?? '';
  if (auth.length <= 7 || !auth.startsWith('Basic ')) return null;
  return Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
}

/**
 * uWSGI's `401 Authorization Required` with `WWW-Authenticate: Basic realm="REALM"` and the
 * body `Unauthorized`; routing stops (the action returns what this returns). The realm is sent
 * as written: uWSGI does not expand it. No Content-Type: uWSGI's 401 carries only
 * WWW-Authenticate (and the body).
 */
export function unauthorized(ctx: RouteContext, realm: string): 'break' {
  respond(ctx, 401, 'Authorization Required', ['WWW-Authenticate', `Basic realm="${realm}"`, 'Content-Length', '12'], 'Unauthorized');
  return 'break';
}

/**
 * The answer when the server that should check the credentials (RADIUS, LDAP) could not be
 * asked: it is down, silent, or misconfigured. uWSGI answers its 401 then, which makes the
 * browser ask for a password that was never wrong; tsuwsgi says what happened instead — 504
 * when the server stayed silent, 502 otherwise — as for a proxied backend (core/routing/proxy.ts).
 * The reason goes to the log, not to the client.
 */
export function authServerFailed(ctx: RouteContext, timeout: boolean): 'break' {
  const text = timeout ? 'Gateway Timeout' : 'Bad Gateway';
  respond(ctx, timeout ? 504 : 502, text, ['Content-Type', 'text/plain', 'Content-Length', String(text.length)], text);
  return 'break';
}
