/**
 * router_http (spec/subsystems.md §6.6): `http:addr[,Host[,url]]` rebuilds the request as
 * HTTP/1.0 (uWSGI's proto/http.c uwsgi_to_http) and proxies it to `addr`, streaming the
 * backend's response back (BREAK). `proxyhttp` is the same action: uWSGI's only difference
 * (never handing the exchange to offload threads) does not apply here, where every proxy
 * runs on the event loop. `httpdumb` is uwsgi_to_http_dumb: the client's protocol and every
 * header as received (no hop-by-hop filtering, no `Connection: close`). `httpconnect` and
 * `proxyhttpconnect` open CONNECT tunnels (connect.ts).
 * node:net is used rather than node:http's client so the request goes out exactly as built
 * and the response bytes are parsed by the core's own HttpResponseParser.
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import type { RouteContext, RouteOutcome } from '../../core/routing/api.ts';
import { isValidAddr, proxyRequest } from '../../core/routing/proxy.ts';
import { connectAction } from './connect.ts';

/**
 * Headers uWSGI does not forward (hop-by-hop); X-Forwarded-For is rebuilt, not copied.
 * Two more than uWSGI: Transfer-Encoding, since the body always goes out with Content-Length
 * (a conflicting framing header is how requests get smuggled), and Expect, since the front end
 * already answered `100-continue` to the client and HTTP/1.0 has no such expectation.
 */
const DROPPED = new Set(['HTTP_CONNECTION', 'HTTP_KEEP_ALIVE', 'HTTP_TE', 'HTTP_TRAILER', 'HTTP_X_FORWARDED_FOR', 'HTTP_TRANSFER_ENCODING', 'HTTP_EXPECT']);
/** The dumb conversion only rebuilds X-Forwarded-For (and never forwards a framing header it does not send). */
const DROPPED_DUMB = new Set(['HTTP_X_FORWARDED_FOR', 'HTTP_TRANSFER_ENCODING']);

/** The backend's hop-by-hop answer headers: they describe its connection to us, not the client's. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection']);

/** HTTP_X_FORWARDED_FOR → X-Forwarded-For (uWSGI's uwsgi_httpize_var). */
function headerName(varName: string): string {
  return varName
    .slice(5)
    .split('_')
    .map((w) => w.charAt(0) + w.slice(1).toLowerCase())
    .join('-');
}

/** The request head for the backend (latin1: vars carry raw header bytes). */
export function buildHttpRequest(ctx: RouteContext, host: string | null, url: string | null, dumb: boolean): Buffer {
  const method = ctx.getVar('REQUEST_METHOD') ?? 'GET';
  const target = url ?? ctx.getVar('REQUEST_URI') ?? '/';
  const protocol = dumb ? (ctx.getVar('SERVER_PROTOCOL') ?? 'HTTP/1.0') : 'HTTP/1.0';
  const dropped = dumb ? DROPPED_DUMB : DROPPED;
  let head = `${method} ${target} ${protocol}\r\n`;
  for (const [k, v] of ctx.vars) {
    if (!k.startsWith('HTTP_') || dropped.has(k)) continue;
    if (k === 'HTTP_HOST' && host !== null) continue;
    head += `${headerName(k)}: ${v}\r\n`;
  }
  if (host !== null) head += `Host: ${host}\r\n`;
  const ct = ctx.getVar('CONTENT_TYPE');
  if (ct) head += `Content-Type: ${ct}\r\n`;
  // The length of the body that follows (the front end de-chunked a chunked upload).
  if (ctx.contentLength > 0) head += `Content-Length: ${ctx.contentLength}\r\n`;
  if (!dumb) head += 'Connection: close\r\n';
  const xff = ctx.getVar('HTTP_X_FORWARDED_FOR');
  const remote = ctx.getVar('REMOTE_ADDR') ?? '';
  head += `X-Forwarded-For: ${xff ? `${xff}, ` : ''}${remote}\r\n\r\n`;
  return Buffer.from(head, 'latin1');
}

function httpAction(name: string, dumb: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      // uWSGI splits at the first two commas: the url (third part) keeps any further comma.
      const parts = arg.split(',');
      const addr = parts[0]!.trim();
      if (addr === '') throw new RoutingError(`"${name}:" needs addr[,host[,url]] (e.g. ${name}:127.0.0.1:8080) in --${origin.option} "${origin.value}"`);
      if (!addr.includes('$') && !isValidAddr(addr)) throw new RoutingError(`"${name}:" invalid address "${addr}" (HOST:PORT or a unix socket path) in --${origin.option} "${origin.value}"`);
      const host = parts[1] !== undefined && parts[1] !== '' ? parts[1] : null;
      const rest = parts.slice(2).join(',');
      const url = rest !== '' ? rest : null;
      return async (ctx): Promise<RouteOutcome> => {
        const request = buildHttpRequest(ctx, host === null ? null : ctx.expand(host), url === null ? null : ctx.expand(url), dumb);
        await proxyRequest(ctx, ctx.expand(addr), request, { kind: 'http', dropResponseHeaders: HOP_BY_HOP });
        return 'break';
      };
    },
  };
}

export default definePlugin({
  name: 'router_http',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: the http, proxyhttp and httpdumb actions (forward the request to an HTTP server), httpconnect and proxyhttpconnect (CONNECT tunnels)',
  routeActions: [httpAction('http', false), httpAction('proxyhttp', false), httpAction('httpdumb', true), connectAction('httpconnect'), connectAction('proxyhttpconnect')],
});
