/**
 * router_hash (spec/subsystems.md §6.6): `hash:key=..,var=..,algo=djb33x|murmur2,items=a;b;c`
 * stores `items[hash(key) % n]` in request var `var` (NEXT) — a stable pick for sharding
 * (e.g. followed by `uwsgi:${var},0,0`). key and items are expanded per request; a trailing
 * `;` in items does not count as an empty item, as in uWSGI's router_hash.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { HASH_ALGOS } from './hash.ts';

/** uWSGI's kvlist: `k=v,k=v` (a value cannot contain a comma). */
export function parseKeyvals(text: string, what: string, origin: { option: string; value: string }, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new RoutingError(`"${what}:" expects key=value pairs, got "${part}" in --${origin.option} "${origin.value}"`);
    const k = part.slice(0, eq);
    if (!allowed.includes(k)) throw new RoutingError(`"${what}:" unknown key "${k}" (allowed: ${allowed.join(', ')}) in --${origin.option} "${origin.value}"`);
    out.set(k, part.slice(eq + 1));
  }
  return out;
}

/** The item for `key`, or null when the list is empty. Exported for tests. */
export function pickItem(algo: (key: Buffer) => number, key: string, items: string): string | null {
  const list = items.split(';');
  if (list.length > 1 && list[list.length - 1] === '') list.pop();
  if (list.length === 1 && list[0] === '') return null;
  return list[algo(Buffer.from(key, 'latin1')) % list.length]!;
}

export default definePlugin({
  name: 'router_hash',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: the hash action (consistent item pick for sharding)',
  routeActions: [
    {
      name: 'hash',
      prepare(arg, origin) {
        const kv = parseKeyvals(arg, 'hash', origin, ['key', 'var', 'algo', 'items']);
        const key = kv.get('key');
        const name = kv.get('var');
        const items = kv.get('items');
        const algoName = kv.get('algo') || 'djb33x';
        if (!key || !name || !items) throw new RoutingError(`"hash:" needs key=, var= and items= in --${origin.option} "${origin.value}"`);
        const algo = HASH_ALGOS[algoName];
        if (!algo) throw new RoutingError(`"hash:" unknown algo "${algoName}" (djb33x, murmur2) in --${origin.option} "${origin.value}"`);
        return (ctx) => {
          const item = pickItem(algo, ctx.expand(key), ctx.expand(items));
          if (item !== null) ctx.setVar(name, item);
          return 'next';
        };
      },
    },
  ],
});
