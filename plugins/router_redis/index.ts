/**
 * router_redis (spec/subsystems.md §6.6, §7): responses cached in redis.
 *
 *   redis:addr=127.0.0.1:6379,key=KEY[,content_type=TYPE][,no_offload=1]
 *   redis-continue:…
 *   redisstore:addr=…,key=…[,expires=SECONDS]    (alias redis-store)
 *
 * A hit answers `200 OK` with the value; a miss, an empty value or a failing server lets
 * routing go on (the app answers). The store transformation saves 200 bodies. Behaviour and
 * the differences from uWSGI 2.0.21: core/routing/kv-actions.ts; the wire: ./protocol.ts.
 * Not embedded here (load it with --plugin router_redis).
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { KvPool, type ParsedReply } from '../../core/routing/kv-client.ts';
import { kvLookupActions, kvStoreTransformation, type KvProtocol } from '../../core/routing/kv-actions.ts';
import { transformationActions } from '../../core/transform/actions.ts';
import { encodeGet, encodeSet, parseReply } from './protocol.ts';

/** GET: a bulk string or nil. An error reply (-WRONGTYPE, -NOAUTH…) is a failure, logged. */
function parseGet(buf: Buffer): ParsedReply<Buffer | null> {
  const r = parseReply(buf);
  if (typeof r === 'number') return r;
  const reply = r.value;
  if (reply.type === 'bulk') return { value: reply.value, used: r.used };
  if (reply.type === 'error') throw new Error(`redis answered "-${reply.value}"`);
  throw new Error(`redis answered GET with a ${reply.type} reply`);
}

/** SET: +OK, or the reason it was not. */
function parseSet(buf: Buffer): ParsedReply<string | null> {
  const r = parseReply(buf);
  if (typeof r === 'number') return r;
  const reply = r.value;
  if (reply.type === 'simple' && reply.value === 'OK') return { value: null, used: r.used };
  return { value: reply.type === 'error' ? `redis answered "-${reply.value}"` : `redis answered SET with a ${reply.type} reply`, used: r.used };
}

const redis: KvProtocol = {
  name: 'redis',
  defaultPort: 6379,
  pool: new KvPool(),
  // RESP carries any bytes; redis takes the empty key too.
  keyProblem: () => null,
  encodeGet,
  parseGet,
  encodeSet,
  parseSet,
};

export default definePlugin({
  name: 'router_redis',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: serve and store responses in redis (redis, redis-continue, redisstore)',
  routeActions: [...kvLookupActions(redis), ...transformationActions([kvStoreTransformation(redis)])],
});
