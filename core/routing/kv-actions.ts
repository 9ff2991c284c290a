/**
 * The route actions router_memcached and router_redis share (uWSGI 2.0's
 * plugins/router_memcached/router_memcached.c and plugins/router_redis/router_redis.c are the
 * same code with another protocol): a lookup that serves a cached value as the response, and a
 * buffering transformation that stores the response body. Each plugin supplies its protocol
 * (a KvProtocol); the connections are core/routing/kv-client.ts.
 *
 *   NAME:addr=HOST:PORT,key=KEY[,content_type=TYPE][,no_offload=1]
 *   NAME-continue:…                     (same keys)
 *   NAMEstore:addr=…,key=…[,expires=SECONDS]   (alias NAME-store)
 *
 * `addr` and `key` are expanded per request (`$1`, `${VAR}`…). What uWSGI 2.0.21 does, and so
 * does tsuwsgi (test/integration/router-kv.test.ts):
 *
 * - a hit (a non-empty value) is answered `200 OK` with `Content-Type: TYPE` (default
 *   text/html) and `Content-Length`, the value as the body; `NAME` then stops routing,
 *   `NAME-continue` goes on with the next rule (the response is already sent: an app reached
 *   after it cannot send another);
 * - a miss, an empty value, and any failure (server down, timeout, error reply) go on with the
 *   next rule, for both names: the request falls through to the app. uWSGI fails silently;
 *   here a failure logs one line;
 * - the store transformation writes the final body under the key when the status is 200 and
 *   the body is not empty, before the client gets it; a failure is logged and the response
 *   goes out unchanged.
 *
 * Differences: uWSGI streams a large value to the client while reading it (and may hand that
 * to an offload thread, unless `no_offload` is set); here the value is read whole first, so a
 * server failing halfway is a miss the app answers instead of a truncated response, and
 * `no_offload` has nothing to turn off (accepted, ignored). Keys a protocol cannot carry are
 * refused instead of being written raw (see the plugins' protocol.ts).
 */
import type { RouteActionDefinition, RouteContext, RouteOutcome, RuleOrigin } from './api.ts';
import type { Transformation, TransformationDefinition, TransformView } from '../transform/api.ts';
import { parseKeyValues } from '../transform/actions.ts';
import { RoutingError } from '../errors.ts';
import { isValidAddr } from './proxy.ts';
import { respond } from './respond.ts';
import type { KvPool, ReplyParser } from './kv-client.ts';

export interface KvProtocol {
  /** "memcached" / "redis": the action names and the log lines. */
  readonly name: string;
  /** The server's usual port, for the examples in error messages. */
  readonly defaultPort: number;
  readonly pool: KvPool;
  /** Why the server cannot take this key, or null. */
  keyProblem(key: Buffer): string | null;
  encodeGet(key: Buffer): Buffer;
  /** The value (maybe empty), or null for a miss; throws on an error reply. */
  readonly parseGet: ReplyParser<Buffer | null>;
  encodeSet(key: Buffer, value: Buffer, expires: string): Buffer;
  /** null when stored, else the server's reason; throws on an error reply. */
  readonly parseSet: ReplyParser<string | null>;
}

const LOOKUP_KEYS = ['addr', 'key', 'content_type', 'no_offload'];
const STORE_KEYS = ['addr', 'key', 'expires'];

/** --socket-timeout (uWSGI's limit for these lookups too), 4 s when unset or 0: a lookup never waits forever. */
function timeoutMs(ctx: RouteContext): number {
  const s = ctx.options.int('socket-timeout', 4);
  return (s > 0 ? s : 4) * 1000;
}

/** The rule text as bytes (a latin-1 string, as request vars are), so expansion keeps every byte. */
function asBytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** A key for a log line: quoted, control characters escaped, long ones cut. */
function shownKey(key: Buffer): string {
  const text = key.toString('latin1');
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

function checkKeys(kv: Map<string, string>, allowed: readonly string[]): void {
  for (const k of kv.keys()) {
    if (!allowed.includes(k)) throw new RoutingError(`unknown key "${k}" (allowed: ${allowed.join(', ')})`);
  }
}

/** addr and key, required by every action (uWSGI refuses the route without them). */
function addrAndKey(kv: Map<string, string>, example: string): { addr: string; key: string } {
  const addr = kv.get('addr');
  const key = kv.get('key');
  if (!addr || !key) throw new RoutingError(`both addr= and key= are required (e.g. ${example})`);
  // A literal address is checked now; one with $ is known per request.
  if (!addr.includes('$') && !isValidAddr(addr)) throw new RoutingError(`invalid address "${addr}" (HOST:PORT or a unix socket path)`);
  return { addr, key };
}

interface LookupRule {
  readonly protocol: KvProtocol;
  readonly addr: string;
  readonly key: string;
  readonly contentType: string;
  readonly continueOnHit: boolean;
}

async function lookup(rule: LookupRule, ctx: RouteContext): Promise<RouteOutcome> {
  const p = rule.protocol;
  const addr = ctx.expand(rule.addr);
  const key = Buffer.from(ctx.expand(rule.key), 'latin1');
  const problem = p.keyProblem(key);
  if (problem !== null) {
    ctx.log(`${p.name}: key ${shownKey(key)} not looked up: ${problem}; routing goes on as for a miss`);
    return 'next';
  }
  let value: Buffer | null;
  try {
    value = await p.pool.exchange(addr, p.encodeGet(key), p.parseGet, timeoutMs(ctx));
  } catch (err) {
    ctx.log(`${p.name} ${addr}: GET ${shownKey(key)} failed: ${(err as Error).message}; routing goes on as for a miss`);
    return 'next';
  }
  // An empty value is a miss, as in uWSGI (its reply parser reads a 0 size as "no value").
  if (value === null || value.length === 0) return 'next';
  respond(ctx, 200, 'OK', ['Content-Type', rule.contentType, 'Content-Length', String(value.length)], value);
  return rule.continueOnHit ? 'next' : 'break';
}

/** `NAME:` and `NAME-continue:`. */
export function kvLookupActions(p: KvProtocol): RouteActionDefinition[] {
  const make = (name: string, continueOnHit: boolean): RouteActionDefinition => ({
    name,
    prepare(arg: string, origin: RuleOrigin) {
      let rule: LookupRule;
      try {
        const kv = parseKeyValues(arg);
        checkKeys(kv, LOOKUP_KEYS);
        const { addr, key } = addrAndKey(kv, `${name}:addr=127.0.0.1:${p.defaultPort},key=\${REQUEST_URI}`);
        rule = { protocol: p, addr: asBytes(addr), key: asBytes(key), contentType: kv.get('content_type') || 'text/html', continueOnHit };
      } catch (err) {
        throw new RoutingError(`invalid "${name}:" route in --${origin.option} "${origin.value}": ${(err as Error).message}`, err);
      }
      return (ctx) => lookup(rule, ctx);
    },
  });
  return [make(p.name, false), make(`${p.name}-continue`, true)];
}

class KvStore implements Transformation {
  readonly name: string;
  readonly streaming = false;
  readonly preservesLength = true;
  private readonly p: KvProtocol;
  private readonly addr: string;
  private readonly key: Buffer;
  private readonly expires: string;
  private readonly ctx: RouteContext;

  constructor(p: KvProtocol, addr: string, key: Buffer, expires: string, ctx: RouteContext) {
    this.name = `${p.name}store`;
    this.p = p;
    this.addr = addr;
    this.key = key;
    this.expires = expires;
    this.ctx = ctx;
  }

  async transform(body: Buffer, view: TransformView): Promise<Buffer> {
    // Only successful responses are stored (uWSGI: status 200, no write errors, a body). A
    // client that left stops the chain before this pass.
    if (view.statusCode === 200 && body.length > 0) await this.store(body);
    return body;
  }

  private async store(body: Buffer): Promise<void> {
    const p = this.p;
    const problem = p.keyProblem(this.key);
    if (problem !== null) {
      this.ctx.log(`${this.name}: key ${shownKey(this.key)} not stored: ${problem}`);
      return;
    }
    try {
      const refused = await p.pool.exchange(this.addr, p.encodeSet(this.key, body, this.expires), p.parseSet, timeoutMs(this.ctx));
      if (refused !== null) this.ctx.log(`${this.name} ${this.addr}: SET ${shownKey(this.key)} not stored: ${refused}`);
    } catch (err) {
      this.ctx.log(`${this.name} ${this.addr}: SET ${shownKey(this.key)} failed: ${(err as Error).message}; the response is not cached`);
    }
  }
}

/** `NAMEstore:` / `NAME-store:`, for transformationActions(). */
export function kvStoreTransformation(p: KvProtocol): TransformationDefinition {
  const name = `${p.name}store`;
  return {
    name,
    aliases: [`${p.name}-store`],
    prepare(arg: string) {
      const kv = parseKeyValues(arg);
      checkKeys(kv, STORE_KEYS);
      const { addr, key } = addrAndKey(kv, `${name}:addr=127.0.0.1:${p.defaultPort},key=\${REQUEST_URI}`);
      const expiresText = kv.get('expires') || '0';
      if (!/^\d{1,10}$/.test(expiresText)) throw new RoutingError(`expires "${expiresText}" is not a number of seconds (0 = never)`);
      const expires = String(Number(expiresText));
      const addrBytes = asBytes(addr);
      const keyBytes = asBytes(key);
      // Expanded when the rule runs, as uWSGI does: `$1` is this rule's capture.
      return (ctx) => new KvStore(p, ctx.expand(addrBytes), Buffer.from(ctx.expand(keyBytes), 'latin1'), expires, ctx);
    },
  };
}
