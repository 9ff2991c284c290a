/**
 * router_spnego (spec/subsystems.md §6.6): Kerberos SPNEGO ("Negotiate", RFC 4559)
 * authentication as a route action, as uWSGI's plugins/router_spnego/router_spnego.c.
 *
 *   spnego:                    accept tickets for any HTTP/<host> principal of the keytab
 *   spnego:HTTP@www.example.com  only HTTP/www.example.com (a host-based service name, expanded per request)
 *   spnego-next:…              as spnego:, but a refused token goes on to the next rule
 *
 * The keytab is GSS-API's default acceptor keytab, as for uWSGI: the KRB5_KTNAME environment
 * variable (of the server's environment, or `--env KRB5_KTNAME=/etc/tsuwsgi/http.keytab`),
 * else krb5.conf's default_keytab_name, else /etc/krb5.keytab. The token is checked by MIT krb5's GSS-API in native/spnego.c (built
 * by `npm ci`; without libkrb5-dev the plugin refuses to load and says what to install), off
 * the event loop.
 *
 * What uWSGI does, and tsuwsgi with it (test/integration/router-spnego.test.ts, against a real
 * MIT KDC and curl --negotiate):
 * - `Authorization: Negotiate <base64>` accepted: REMOTE_USER is the client principal as
 *   GSS-API displays it, realm included (`alice@EXAMPLE.COM`), the GSS-API output token goes
 *   back in `WWW-Authenticate: Negotiate <base64>` (mutual authentication) on the app's
 *   response, and routing goes on (NEXT).
 * - no Negotiate credentials (no Authorization, another scheme, `Negotiate` alone): `401
 *   Authorization Required` with `Connection: close`, `Content-Type: text/plain`,
 *   `WWW-Authenticate: Negotiate` and the body `Unauthorized`; routing stops.
 * - a token GSS-API refuses (garbage, a ticket for another service, a replay, a keytab without
 *   the key): GSS-API's reasons are logged (`[uwsgi-spnego] gss_accept_sec_context() error
 *   (major): …`) and the same 401 answers — or, for spnego-next, routing goes on to the next
 *   rule with no response and no REMOTE_USER.
 * - each request is one complete exchange: no context is kept between requests, so a
 *   mechanism that needs a second round trip is refused.
 *
 * Where tsuwsgi differs, on purpose (uWSGI bugs that hurt users):
 * - spnego-next without Negotiate credentials: uWSGI writes its 401 and then goes on routing
 *   anyway, so the next rules and the app still run and their body follows the 401's on the
 *   wire (the protected page leaks behind the 401). tsuwsgi answers the 401 and stops, as
 *   basicauth-next does: asking for credentials is what makes the browser send a ticket.
 * - a token that is not base64 counts as a refused token (spnego-next goes on); uWSGI sends it
 *   down its 401-then-continue path too.
 * - a completed exchange without an output token (a client that did not ask for mutual
 *   authentication) is accepted, with no WWW-Authenticate; uWSGI only accepts when GSS-API
 *   returns a token, so it refuses such clients forever.
 * - the argument is checked at start-up: a path (`spnego:/etc/http.keytab`, a common mistake:
 *   the keytab comes from KRB5_KTNAME) or a malformed service name is refused with what to
 *   write; uWSGI takes it and fails every request.
 */
import { definePlugin, PLUGIN_API_VERSION, type PluginContext, type RouteActionDefinition, type RouteContext, type RouteOutcome } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { respond } from '../../core/routing/respond.ts';
import { loadSpnegoAddon, spnegoAccept } from './addon.ts';

/** uWSGI's default service when the argument is empty: any HTTP/<host> key of the keytab. */
const DEFAULT_SERVICE = 'HTTP';

/**
 * uWSGI's 401 for SPNEGO (not basicauth's: it closes the connection, has a Content-Type and
 * no realm); routing stops. The Content-Length is tsuwsgi's: uWSGI sends none and closes,
 * here the body is framed either way.
 */
function unauthorized(ctx: RouteContext): 'break' {
  respond(ctx, 401, 'Authorization Required', ['Connection', 'close', 'Content-Type', 'text/plain', 'WWW-Authenticate', 'Negotiate', 'Content-Length', '12'], 'Unauthorized');
  return 'break';
}

/**
 * The decoded token of `Authorization: Negotiate <base64>`: null when the request offers no
 * Negotiate credentials (as uWSGI: the header must be longer than 10 bytes and start with
 * exactly "Negotiate "), an empty Buffer when what follows is not base64.
 */
function offeredToken(ctx: RouteContext): Buffer | null {
  const auth = ctx.getVar('HTTP_AUTHORIZATION') ?? '';
  if (auth.length <= 10 || !auth.startsWith('Negotiate ')) return null;
  const b64 = auth.slice(10).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return Buffer.alloc(0);
  return Buffer.from(b64, 'base64');
}

/** Refuse at start-up what can never be a host-based service name (after expansion it is GSS-API's to judge). */
function checkService(name: string, arg: string, option: string, value: string): void {
  if (arg.includes('$')) return;
  const example = `write ${name}: (any HTTP/<host> key of the keytab) or ${name}:HTTP@www.example.com; the keytab comes from the KRB5_KTNAME environment variable (--env KRB5_KTNAME=/path/to/http.keytab)`;
  if (arg.includes('/')) throw new RoutingError(`"${name}:${arg}" in --${option} "${value}": the argument is a GSS-API service name (SERVICE or SERVICE@HOST), not a keytab or principal: ${example}`);
  if (arg !== '' && !/^[^\s@]+(@[^\s@]+)?$/.test(arg)) throw new RoutingError(`"${name}:${arg}" in --${option} "${value}": "${arg}" is not a service name (SERVICE or SERVICE@HOST): ${example}`);
}

/**
 * uWSGI's way to name the keytab is `--env KRB5_KTNAME=…`: uWSGI's --env is a setenv() in its
 * own process, where GSS-API reads it. tsuwsgi's --env only sets the apps' environment, and
 * tokens are checked here, in the server process: apply the Kerberos variables (KRB5_KTNAME,
 * KRB5_CONFIG, KRB5RCACHEDIR, KRB5_TRACE…) of --env to it too, before the first request.
 */
function applyKerberosEnv(ctx: PluginContext): void {
  for (const e of ctx.options.all('env')) {
    const eq = e.indexOf('=');
    if (eq > 0 && e.startsWith('KRB5')) process.env[e.slice(0, eq)] = e.slice(eq + 1);
  }
}

function logMessages(ctx: RouteContext, messages: string): void {
  if (messages === '') return;
  for (const line of messages.replace(/\n$/, '').split('\n')) ctx.log(`[uwsgi-spnego] ${line}`);
}

function spnego(name: string, next: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      checkService(name, arg, origin.option, origin.value);
      return async (ctx: RouteContext): Promise<RouteOutcome> => {
        const token = offeredToken(ctx);
        if (token === null) return unauthorized(ctx);
        if (token.length > 0) {
          const service = (arg === '' ? '' : ctx.expand(arg)) || DEFAULT_SERVICE;
          const result = await spnegoAccept(service, token);
          logMessages(ctx, result.messages);
          if (result.ok) {
            ctx.setVar('REMOTE_USER', result.user);
            if (result.output) ctx.response.addHeader('WWW-Authenticate', `Negotiate ${result.output.toString('base64')}`);
            return 'next';
          }
        } else {
          ctx.log('[uwsgi-spnego] the Negotiate token is not base64');
        }
        return next ? 'next' : unauthorized(ctx);
      };
    },
  };
}

export default definePlugin({
  name: 'router_spnego',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: Kerberos SPNEGO (Negotiate) authentication (spnego, spnego-next) through GSS-API',
  // Without the addon (libkrb5-dev missing at `npm ci`) the plugin refuses the config at
  // start-up rather than failing every request.
  init(ctx) {
    loadSpnegoAddon();
    applyKerberosEnv(ctx);
  },
  routeActions: [spnego('spnego', false), spnego('spnego-next', true)],
});
