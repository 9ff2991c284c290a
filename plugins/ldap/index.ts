/**
 * ldap (spec/subsystems.md §6.6): HTTP Basic authentication checked against an LDAP directory,
 * the `ldapauth` actions of uWSGI's ldap plugin (plugins/ldap/ldap.c).
 *
 *   ldapauth:REALM,url=ldap://HOST[:PORT];basedn=DN[;binddn=DN;bindpw=PW][;filter=(…)][;attr=uid][;loglevel=0|1|2]
 *   ldapauth-next:…   (same arguments)
 *
 * The options are `;`-separated (DNs are full of commas). For `Authorization: Basic USER:PW`,
 * the entry `(&(ATTR=USER)FILTER)` is searched under basedn (subtree), bound as binddn when
 * binddn and bindpw are given (else anonymously); the entry whose ATTR is exactly USER is then
 * bound with PW. Success sets REMOTE_USER to USER and goes on (NEXT). An unknown user or a
 * refused bind answers uWSGI's 401 (BREAK), or for ldapauth-next goes on to the next rule; no
 * Basic credentials at all is a 401 for both, and a request already carrying REMOTE_USER
 * passes. loglevel=1 logs the refusals, 2 the successes too. Defaults: filter=(objectClass=*),
 * attr=uid, as in uWSGI.
 *
 * Where tsuwsgi differs from uWSGI, on purpose:
 * - a directory that cannot be asked (down, silent for --socket-timeout, refusing binddn or the
 *   search) gets `502 Bad Gateway` / `504 Gateway Timeout` and a log line, not a 401 (which
 *   makes browsers ask again for a password that was not wrong); ldapauth-next still goes on;
 * - USER is escaped in the filter (RFC 4515): uWSGI pastes it in as typed, so `*` or `)(` in a
 *   user name change the search;
 * - an empty password is refused without asking: an LDAP bind with a DN and no password is an
 *   "unauthenticated bind" that some servers accept as a success;
 * - unknown keys, binddn without bindpw (or the reverse), a bad filter or URL are refused at
 *   start-up (uWSGI ignores unknown keys and binds anonymously without both);
 * - connections are kept and reused (directory.ts): one shared search connection, bound once,
 *   and a few bind connections, instead of a new connection per request;
 * - --socket-timeout bounds connecting and every LDAP operation (libldap waits forever).
 * uWSGI's `--ldap` configuration loader and `--ldap-schema*` are not part of this plugin.
 */
import { FilterParser } from 'ldapts';
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext, type RouteOutcome, type RuleOrigin } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { parseKeyValues } from '../../core/transform/actions.ts';
import { authServerFailed, offeredCredentials, unauthorized } from '../router_basicauth/basic-auth.ts';
import { Directory, DirectoryError } from './directory.ts';

const KEYS = new Set(['url', 'binddn', 'bindpw', 'basedn', 'filter', 'attr', 'loglevel']);

interface LdapAuthRule {
  readonly realm: string;
  /** The url= as written, for log lines (uWSGI prints it so). */
  readonly url: string;
  readonly loglevel: number;
  readonly next: boolean;
  readonly directory: Directory;
}

function parseRule(name: string, arg: string, origin: RuleOrigin, next: boolean): LdapAuthRule {
  const fail = (why: string): never => {
    throw new RoutingError(`"${name}:${arg}" in --${origin.option} "${origin.value}": ${why} (write ${name}:REALM,url=ldap://HOST;basedn=DN[;binddn=DN;bindpw=PASSWORD][;filter=(objectClass=*)][;attr=uid][;loglevel=0])`);
  };
  const comma = arg.indexOf(',');
  if (comma < 0) fail('a realm and the options are needed');
  const realm = arg.slice(0, comma);
  let kv: Map<string, string>;
  try {
    kv = parseKeyValues(arg.slice(comma + 1), ';');
  } catch (err) {
    return fail((err as Error).message);
  }
  for (const key of kv.keys()) if (!KEYS.has(key)) fail(`unknown key "${key}" (the options are separated by ";")`);
  const url = kv.get('url');
  const basedn = kv.get('basedn');
  if (!url) fail('url= is required');
  if (!basedn) fail('basedn= is required');
  let server: URL;
  try {
    server = new URL(url!);
  } catch {
    return fail(`url=${url} is not an LDAP URL`);
  }
  if (server.protocol !== 'ldap:' && server.protocol !== 'ldaps:') fail(`url=${url}: only ldap:// and ldaps:// URLs are supported`);
  const binddn = kv.get('binddn') ?? null;
  const bindpw = kv.get('bindpw') ?? null;
  if ((binddn === null) !== (bindpw === null)) fail('binddn= and bindpw= go together');
  const filterText = kv.get('filter') || '(objectClass=*)';
  let filter;
  try {
    filter = FilterParser.parseString(filterText);
  } catch (err) {
    return fail(`filter=${filterText} is not an LDAP filter: ${(err as Error).message}`);
  }
  const loglevelText = kv.get('loglevel') ?? '0';
  if (!/^\d+$/.test(loglevelText)) fail(`loglevel=${loglevelText} is not 0, 1 or 2`);
  return {
    realm,
    url: url!,
    loglevel: Number(loglevelText),
    next,
    directory: new Directory({ url: `${server.protocol}//${server.host}`, binddn, bindpw, basedn: basedn!, filter, attr: kv.get('attr') || 'uid' }),
  };
}

async function run(rule: LdapAuthRule, ctx: RouteContext): Promise<RouteOutcome> {
  if ((ctx.getVar('REMOTE_USER') ?? '') !== '') return 'next';
  const decoded = offeredCredentials(ctx);
  if (decoded === null) return unauthorized(ctx, rule.realm);
  const refused = (): RouteOutcome => (rule.next ? 'next' : unauthorized(ctx, rule.realm));
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) return refused();
  const user = decoded.slice(0, colon);
  try {
    // --socket-timeout (default 4 s) bounds the connection and each operation: libldap, in
    // uWSGI, waits forever for a directory that accepts connections and never answers.
    const r = await rule.directory.check(user, decoded.slice(colon + 1), 1000 * (ctx.options.int('socket-timeout', 4) || 4));
    if (r.ok) {
      if (rule.loglevel > 1) ctx.log(`[router-ldapauth] successful bind as user '${r.dn}' to '${rule.url}'`);
      // Request vars are byte strings (latin-1): REMOTE_USER gets the user's UTF-8 bytes, as in uWSGI.
      ctx.setVar('REMOTE_USER', Buffer.from(user, 'utf8').toString('latin1'));
      return 'next';
    }
    if (rule.loglevel > 0) {
      ctx.log(r.reason === 'not-found' ? `[router-ldapauth] user '${user}' not found in LDAP server at '${rule.url}'` : `[router-ldapauth] can't bind as user '${r.dn}' to '${rule.url}': ${r.message}`);
    }
    return refused();
  } catch (err) {
    const e = err instanceof DirectoryError ? err : new DirectoryError(String((err as Error)?.message ?? err), false);
    ctx.log(`[router-ldapauth] cannot authenticate with the LDAP server at '${rule.url}': ${e.message}`);
    return rule.next ? 'next' : authServerFailed(ctx, e.timeout);
  }
}

function ldapauth(name: string, next: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const rule = parseRule(name, arg, origin, next);
      return (ctx) => run(rule, ctx);
    },
  };
}

export default definePlugin({
  name: 'ldap',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: HTTP Basic authentication checked against an LDAP directory (ldapauth, ldapauth-next)',
  routeActions: [ldapauth('ldapauth', false), ldapauth('ldapauth-next', true)],
});
