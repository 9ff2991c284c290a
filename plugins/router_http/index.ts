/**
 * router_http (spec/subsystems.md §6.6): `http:addr[,Host-override[,url]]` rebuilds the
 * request as HTTP/1.0 (uWSGI's proto/http.c uwsgi_to_http) and proxies it to `addr`,
 * streaming the backend's response back (BREAK). `proxyhttp` is the same action: uWSGI's only
 * difference (never offloaded) does not apply here, where every proxy runs on the event loop.
 * node:net is used rather than node:http's client so the request goes out exactly as built
 * and the response bytes are parsed by the core's own HttpResponseParser.
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import type { RouteContext, RouteOutcome } from '../../core/routing/api.ts';
import { isValidAddr, proxyRequest } from '../../core/routing/proxy.ts';

/** Hop-by-hop headers uWSGI does not forward; X-Forwarded-For is rebuilt, not copied. */
const DROPPED = new Set(['HTTP_CONNECTION', 'HTTP_KEEP_ALIVE', 'HTTP_TE', 'HTTP_TRAILER', 'HTTP_X_FORWARDED_FOR']);

/** HTTP_X_FORWARDED_FOR → X-Forwarded-For (header names are case-insensitive; this reads best). */
function headerName(varName: string): string {
  return varName
    .slice(5)
    .split('_')
    .map((w) => w.charAt(0) + w.slice(1).toLowerCase())
    .join('-');
}

/** The HTTP/1.0 request head for the backend (latin1: vars carry raw header bytes). */
export function buildHttpRequest(ctx: RouteContext, host: string | null, url: string | null): Buffer {
  const method = ctx.getVar('REQUEST_METHOD') ?? 'GET';
  const target = url ?? ctx.getVar('REQUEST_URI') ?? '/';
  let head = `${method} ${target} HTTP/1.0\r\n`;
  for (const [k, v] of ctx.vars) {
    if (!k.startsWith('HTTP_') || DROPPED.has(k)) continue;
    if (k === 'HTTP_HOST' && host !== null) continue;
    head += `${headerName(k)}: ${v}\r\n`;
  }
  if (host !== null) head += `Host: ${host}\r\n`;
  const ct = ctx.getVar('CONTENT_TYPE');
  if (ct) head += `Content-Type: ${ct}\r\n`;
  const cl = ctx.getVar('CONTENT_LENGTH');
  if (cl) head += `Content-Length: ${cl}\r\n`;
  head += 'Connection: close\r\n';
  const xff = ctx.getVar('HTTP_X_FORWARDED_FOR');
  const remote = ctx.getVar('REMOTE_ADDR') ?? '';
  head += `X-Forwarded-For: ${xff ? `${xff}, ` : ''}${remote}\r\n\r\n`;
  return Buffer.from(head, 'latin1');
}

function httpAction(name: string): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const parts = arg.split(',');
      const addr = parts[0]!.trim();
      if (addr === '') throw new RoutingError(`"${name}:" needs addr[,host[,url]] in --${origin.option} "${origin.value}"`);
      if (!addr.includes('$') && !isValidAddr(addr)) throw new RoutingError(`"${name}:" invalid address "${addr}" in --${origin.option} "${origin.value}"`);
      const host = parts[1] !== undefined && parts[1] !== '' ? parts[1] : null;
      // The url is the rest: a query string may contain commas.
      const url = parts.length > 2 && parts.slice(2).join(',') !== '' ? parts.slice(2).join(',') : null;
      return async (ctx): Promise<RouteOutcome> => {
        const request = buildHttpRequest(ctx, host === null ? null : ctx.expand(host), url === null ? null : ctx.expand(url));
        await proxyRequest(ctx, ctx.expand(addr), request, name);
        return 'break';
      };
    },
  };
}

export default definePlugin({
  name: 'router_http',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: the http and proxyhttp actions (forward the request to an HTTP server)',
  routeActions: [httpAction('http'), httpAction('proxyhttp')],
});
