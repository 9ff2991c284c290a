/**
 * router_radius (spec/subsystems.md §6.6): HTTP Basic authentication checked by a RADIUS
 * server (PAP), as a route action.
 *
 *   radius:realm=REALM,server=HOST:PORT,secret=SECRET[,nas_port=N][,nas_address=HOST]
 *   radius-next:…   (same arguments)
 *
 * As uWSGI's plugins/router_radius/radius.c: a request already carrying REMOTE_USER passes. The
 * user:password of `Authorization: Basic` goes to the server in an Access-Request (packet.ts);
 * Access-Accept sets REMOTE_USER to the user and goes on (NEXT). Anything else — Access-Reject,
 * Access-Challenge, credentials without a colon or with an empty user — answers uWSGI's 401
 * (BREAK), or for radius-next goes on to the next rule. A request offering no Basic credentials
 * gets the 401 from radius-next too (that is what makes a browser prompt). The server has
 * --socket-timeout seconds (default 4) to answer the one request sent.
 *
 * Where tsuwsgi differs from uWSGI: a server that does not answer in time, refuses the packet
 * or answers with a wrong authenticator (a secret mismatch) gets `504 Gateway Timeout` /
 * `502 Bad Gateway` and a log line from radius: rather than a 401 (radius-next still goes on,
 * so a second radius rule can name a fallback server); `server=` without a port means the
 * standard port 1812 (uWSGI then fails every request); unknown keys are refused at start-up
 * (uWSGI ignores them, so a mistyped `secret` passed silently). Packet details: packet.ts.
 */
import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext, type RouteOutcome, type RuleOrigin } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { parseKeyValues } from '../../core/transform/actions.ts';
import { authServerFailed, offeredCredentials, unauthorized } from '../router_basicauth/basic-auth.ts';
import { exchange, type RadiusServer } from './client.ts';
import { ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT, accessRequest, MAX_PASSWORD_BYTES, MAX_USER_NAME_BYTES, replyCode } from './packet.ts';

const KEYS = new Set(['realm', 'server', 'secret', 'nas_port', 'nas_address']);
const DEFAULT_PORT = 1812;

interface RadiusConfig {
  readonly realm: string;
  readonly server: RadiusServer;
  readonly secret: Buffer;
  readonly nasPort: number;
  /** NAS-IP-Address: resolved once, in the background, from nas_address= or the host name. */
  nasAddress: number | Promise<number>;
  readonly next: boolean;
}

/** "host:port", "[v6]:port", or a bare host (port 1812). */
function parseServer(text: string, fail: (why: string) => never): RadiusServer {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) return net.isIPv6(text) ? { host: text, port: DEFAULT_PORT } : fail(`server=${text} is not HOST:PORT`);
  const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
  if (!(port > 0 && port < 65536)) fail(`server=${text}: the port must be 1..65535`);
  return { host: m[1]!, port };
}

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/**
 * uWSGI's gethostbyname(nas_address or the host name) at start-up, done without blocking: an
 * IPv4 literal at once, a name through dns.lookup the first time a request needs it. A name that
 * does not resolve gives 0.0.0.0, as in uWSGI (the attribute is still sent).
 */
function nasAddress(name: string): number | Promise<number> {
  if (net.isIPv4(name)) return ipv4Number(name);
  return dns.promises.lookup(name, { family: 4 }).then(
    (r) => ipv4Number(r.address),
    () => 0,
  );
}

function parseConfig(name: string, arg: string, origin: RuleOrigin, next: boolean): RadiusConfig {
  const fail = (why: string): never => {
    throw new RoutingError(`"${name}:${arg}" in --${origin.option} "${origin.value}": ${why} (write ${name}:realm=REALM,server=HOST:PORT,secret=SECRET[,nas_port=N][,nas_address=IP])`);
  };
  let kv: Map<string, string>;
  try {
    kv = parseKeyValues(arg);
  } catch (err) {
    return fail((err as Error).message);
  }
  for (const key of kv.keys()) if (!KEYS.has(key)) fail(`unknown key "${key}"`);
  const realm = kv.get('realm');
  const server = kv.get('server');
  const secret = kv.get('secret');
  if (realm === undefined || !server || !secret) fail('realm=, server= and secret= are required');
  let nasPort = 0;
  const port = kv.get('nas_port');
  if (port !== undefined) {
    if (!/^\d+$/.test(port) || Number(port) > 0xffffffff) fail(`nas_port=${port} is not a number 0..4294967295`);
    nasPort = Number(port);
  }
  return { realm: realm!, server: parseServer(server!, fail), secret: Buffer.from(secret!), nasPort, nasAddress: nasAddress(kv.get('nas_address') || os.hostname()), next };
}

type Verdict = { user: string } | 'refused' | { error: string; timeout: boolean };

/** Ask the server about `decoded` ("user:password"), waiting `timeoutSeconds` for its answer. */
async function authenticate(conf: RadiusConfig, decoded: string, timeoutSeconds: number): Promise<Verdict> {
  const colon = decoded.indexOf(':');
  // uWSGI asks the server about an empty user too, but never accepts one (REMOTE_USER would be empty).
  if (colon <= 0) return 'refused';
  const user = Buffer.from(decoded.slice(0, colon));
  const password = Buffer.from(decoded.slice(colon + 1));
  // Too long for the attributes: uWSGI gives up on such a password without asking, and would
  // overflow the User-Name length byte; neither can be a valid account.
  if (user.length > MAX_USER_NAME_BYTES || password.length > MAX_PASSWORD_BYTES) return 'refused';
  if (typeof conf.nasAddress !== 'number') conf.nasAddress = await conf.nasAddress;
  const request = accessRequest(user, password, conf.secret, conf.nasPort, conf.nasAddress);
  const r = await exchange(conf.server, request, 1000 * timeoutSeconds);
  if ('error' in r) return r;
  const code = replyCode(r.reply, request, conf.secret);
  if (typeof code !== 'number') return { error: code.error, timeout: false };
  // Request vars are byte strings (latin-1): REMOTE_USER gets the user's UTF-8 bytes, as in uWSGI.
  if (code === ACCESS_ACCEPT) return { user: user.toString('latin1') };
  if (code === ACCESS_REJECT || code === ACCESS_CHALLENGE) return 'refused';
  return { error: `unexpected reply code ${code}`, timeout: false };
}

async function run(conf: RadiusConfig, ctx: RouteContext): Promise<RouteOutcome> {
  if ((ctx.getVar('REMOTE_USER') ?? '') !== '') return 'next';
  const decoded = offeredCredentials(ctx);
  if (decoded === null) return unauthorized(ctx, conf.realm);
  // uWSGI waits uwsgi.socket_timeout; 0 would mean "never answer" here, so it gets the default.
  const verdict = await authenticate(conf, decoded, ctx.options.int('socket-timeout', 4) || 4);
  if (verdict === 'refused') return conf.next ? 'next' : unauthorized(ctx, conf.realm);
  if ('user' in verdict) {
    ctx.setVar('REMOTE_USER', verdict.user);
    return 'next';
  }
  ctx.log(`[router-radius] cannot authenticate with the RADIUS server ${conf.server.host}:${conf.server.port}: ${verdict.error}`);
  return conf.next ? 'next' : authServerFailed(ctx, verdict.timeout);
}

function radius(name: string, next: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const conf = parseConfig(name, arg, origin, next);
      return (ctx) => run(conf, ctx);
    },
  };
}

export default definePlugin({
  name: 'router_radius',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: HTTP Basic authentication checked by a RADIUS server (radius, radius-next)',
  routeActions: [radius('radius', false), radius('radius-next', true)],
});
