/**
 * router_rewrite (spec/subsystems.md §6.6): `rewrite:PATH[?QS]` sets PATH_INFO to the
 * URL-decoded path and, with `?QS`, QUERY_STRING to QS followed by the original query
 * string; `rewrite-last` does the same and runs the app at once. Embedded, as in uWSGI.
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';

/** Percent-decoding that leaves a malformed escape as it is (uWSGI's decoder does not fail). */
function urlDecode(text: string): string {
  return text.replace(/(%[0-9a-fA-F]{2})+/g, (seq) => {
    try {
      return decodeURIComponent(seq);
    } catch {
      return Buffer.from(seq.split('%').slice(1).map((h) => parseInt(h, 16))).toString('latin1');
    }
  });
}

export function rewrite(ctx: RouteContext, target: string): void {
  const q = target.indexOf('?');
  if (q < 0) {
    ctx.setVar('PATH_INFO', urlDecode(target));
    return;
  }
  const original = ctx.getVar('QUERY_STRING') ?? '';
  const qs = target.slice(q + 1);
  ctx.setVar('PATH_INFO', urlDecode(target.slice(0, q)));
  ctx.setVar('QUERY_STRING', original === '' ? qs : `${qs}&${original}`);
}

function action(name: string, outcome: 'next' | 'continue'): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      if (arg === '') throw new RoutingError(`"${name}:" needs a path in --${origin.option} "${origin.value}"`);
      return (ctx) => {
        rewrite(ctx, ctx.expand(arg));
        return outcome;
      };
    },
  };
}

export default definePlugin({
  name: 'router_rewrite',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: the rewrite and rewrite-last actions (change PATH_INFO / QUERY_STRING)',
  routeActions: [action('rewrite', 'next'), action('rewrite-last', 'continue')],
});
