/**
 * router_uwsgi (spec/subsystems.md §6.6): `uwsgi:addr,m1,m2[,appid]` forwards the request —
 * a uwsgi packet of the current request vars with the new modifiers, then the request body —
 * to the uwsgi server at `addr` (TCP `host:port` or a unix socket path, expanded per request)
 * and streams its HTTP response back to the client (BREAK). The local form
 * `uwsgi:,m1,m2[,appid]` (empty addr) only changes the modifiers / UWSGI_APPID and lets the
 * app run (CONTINUE). `proxyuwsgi` is the same action: uWSGI's only difference (never handing
 * the exchange to offload threads) does not apply here, where every proxy runs on the event loop.
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import type { RouteOutcome } from '../../core/routing/api.ts';
import { encodePacket, type UwsgiVars } from '../../core/protocol/uwsgi-packet.ts';
import { isValidAddr, proxyRequest } from '../../core/routing/proxy.ts';

/**
 * A modifier: empty means 0, as uWSGI's atoi(); anything else must be 0..255 (uWSGI would
 * silently wrap 300 to 44 or read "x" as 0: a typo there sends requests to the wrong plugin).
 */
function modifier(text: string, which: string, name: string, origin: { option: string; value: string }): number {
  const t = text.trim();
  if (t === '') return 0;
  if (!/^\d+$/.test(t) || Number(t) > 255) throw new RoutingError(`"${name}:" ${which} must be a number 0..255, not "${t}", in --${origin.option} "${origin.value}"`);
  return Number(t);
}

function uwsgiAction(name: string): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const parts = arg.split(',');
      if (parts.length < 3) throw new RoutingError(`"${name}:" needs addr,modifier1,modifier2[,appid] (e.g. ${name}:127.0.0.1:3031,0,0) in --${origin.option} "${origin.value}"`);
      const addr = parts[0]!.trim();
      const m1 = modifier(parts[1]!, 'modifier1', name, origin);
      const m2 = modifier(parts[2]!, 'modifier2', name, origin);
      // The appid is the rest of the argument, as in uWSGI: a mountpoint may contain commas.
      const appid = parts.length > 3 ? parts.slice(3).join(',') : null;
      if (addr !== '' && !addr.includes('$') && !isValidAddr(addr)) throw new RoutingError(`"${name}:" invalid address "${addr}" (HOST:PORT or a unix socket path) in --${origin.option} "${origin.value}"`);
      if (addr === '') {
        return (ctx): RouteOutcome => {
          ctx.modifier1 = m1;
          ctx.modifier2 = m2;
          if (appid !== null && appid !== '') ctx.setVar('UWSGI_APPID', ctx.expand(appid));
          return 'continue';
        };
      }
      return async (ctx): Promise<RouteOutcome> => {
        // The backend sees the request as routing left it, plus the new app id.
        const vars: UwsgiVars = ctx.vars.map(([k, v]) => [k, v]);
        if (appid !== null && appid !== '') {
          const id = ctx.expand(appid);
          const at = vars.findIndex(([k]) => k === 'UWSGI_APPID');
          if (at >= 0) vars[at] = ['UWSGI_APPID', id];
          else vars.push(['UWSGI_APPID', id]);
        }
        let packet: Buffer;
        try {
          packet = encodePacket(m1, vars, m2);
        } catch (err) {
          // More than 64 KiB of vars: the uwsgi protocol cannot carry them. Closing is uWSGI's answer too.
          ctx.log(`error routing request to uwsgi server ${addr}: ${(err as Error).message}`);
          return 'break';
        }
        await proxyRequest(ctx, ctx.expand(addr), packet, { kind: 'uwsgi' });
        return 'break';
      };
    },
  };
}

export default definePlugin({
  name: 'router_uwsgi',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: the uwsgi and proxyuwsgi actions (forward the request to a uwsgi server)',
  routeActions: [uwsgiAction('uwsgi'), uwsgiAction('proxyuwsgi')],
});
