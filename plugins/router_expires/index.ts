/**
 * router_expires (spec/subsystems.md §6.6): `expires:filename=<f>,value=<secs>` (or `file=`)
 * adds `Expires:` = the file's mtime + value; `expires:unix=<epoch>,value=<secs>` uses the
 * given time instead (NEXT). Every value is expanded per request (e.g. `unix=${time[unix]}`).
 * A file that cannot be stat()ed adds no header and routing goes on (logged); uWSGI closes the
 * request instead, which turns a missing asset into a dropped connection.
 */
import fs from 'node:fs';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import type { RouteOutcome } from '../../core/routing/api.ts';
import { parseKeyvals } from '../router_hash/index.ts';

/** An integer as C's atoi reads it: leading digits (with sign), anything else 0. */
function atoi(text: string): number {
  const m = /^\s*([+-]?\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

export default definePlugin({
  name: 'router_expires',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: the expires action (Expires header from a file mtime or an epoch)',
  routeActions: [
    {
      name: 'expires',
      prepare(arg, origin) {
        const kv = parseKeyvals(arg, 'expires', origin, ['filename', 'file', 'unix', 'value']);
        const file = kv.get('filename') ?? kv.get('file');
        const unix = kv.get('unix');
        const value = kv.get('value');
        if (!file && !unix) throw new RoutingError(`"expires:" needs filename= (or file=) or unix= in --${origin.option} "${origin.value}"`);
        return async (ctx): Promise<RouteOutcome> => {
          let base: number;
          if (file) {
            const f = ctx.expand(file);
            try {
              // fs.promises: a stat on a slow disk must not stall every other request of the worker.
              base = Math.floor((await fs.promises.stat(f)).mtimeMs / 1000);
            } catch (err) {
              ctx.log(`expires: unable to stat() ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
              return 'next';
            }
          } else base = atoi(ctx.expand(unix!));
          const at = base + (value ? atoi(ctx.expand(value)) : 0);
          ctx.response.addHeader('Expires', new Date(at * 1000).toUTCString());
          return 'next';
        };
      },
    },
  ],
});
