/**
 * router_memcached (spec/subsystems.md §6.6, §7): responses cached in memcached.
 *
 *   memcached:addr=127.0.0.1:11211,key=KEY[,content_type=TYPE][,no_offload=1]
 *   memcached-continue:…
 *   memcachedstore:addr=…,key=…[,expires=SECONDS]    (alias memcached-store)
 *
 * A hit answers `200 OK` with the value; a miss, an empty value or a failing server lets
 * routing go on (the app answers). The store transformation saves 200 bodies. Behaviour and
 * the differences from uWSGI 2.0.21: core/routing/kv-actions.ts; the wire: ./protocol.ts.
 * Not embedded here (load it with --plugin router_memcached).
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { KvPool, type ParsedReply } from '../../core/routing/kv-client.ts';
import { kvLookupActions, kvStoreTransformation, type KvProtocol } from '../../core/routing/kv-actions.ts';
import { transformationActions } from '../../core/transform/actions.ts';
import { encodeGet, encodeSet, keyProblem, parseGetReply, parseStoreReply } from './protocol.ts';

function parseSet(buf: Buffer): ParsedReply<string | null> {
  const r = parseStoreReply(buf);
  if (typeof r === 'number') return r;
  return { value: r.value === 'STORED' ? null : `memcached answered "${r.value}"`, used: r.used };
}

const memcached: KvProtocol = {
  name: 'memcached',
  defaultPort: 11211,
  pool: new KvPool(),
  keyProblem,
  encodeGet,
  parseGet: parseGetReply,
  encodeSet,
  parseSet,
};

export default definePlugin({
  name: 'router_memcached',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: serve and store responses in memcached (memcached, memcached-continue, memcachedstore)',
  routeActions: [...kvLookupActions(memcached), ...transformationActions([kvStoreTransformation(memcached)])],
});
