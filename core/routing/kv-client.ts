/**
 * The client side of the cache servers route actions read and write (router_memcached's
 * `memcached:` / `memcachedstore:`, router_redis's `redis:` / `redisstore:`): one request, one
 * reply, over a TCP (`host:port`) or unix socket connection, with the protocol's encoding and
 * reply parsing left to the plugin (plugins/router_memcached/protocol.ts,
 * plugins/router_redis/protocol.ts).
 *
 * uWSGI connects for every lookup and closes after it. Both protocols answer requests in order
 * on one connection, so here a connection that ended its exchange cleanly (the whole reply
 * read, nothing more) goes back to a small idle list per address and serves the next lookup:
 * no connect per request, no TIME_WAIT sockets piling up. A connection is never shared by two
 * exchanges at once, and one whose exchange failed in any way (timeout, error reply, bytes
 * left over) is destroyed, so a late reply can never be read as the answer to another key.
 *
 * Nothing waits forever: connecting and every wait for reply bytes is limited to `timeoutMs`
 * (the actions pass --socket-timeout). Failures reject with a KvError whose message says what
 * happened, for the action's one log line.
 */
import net from 'node:net';
import { connectOptions } from './proxy.ts';

/**
 * What a reply parser answers for the bytes received so far: the reply and how many bytes it
 * took, or the number of bytes needed before trying again (0: at least one more). It throws on
 * a malformed reply.
 */
export type ParsedReply<T> = { value: T; used: number } | number;
export type ReplyParser<T> = (buf: Buffer) => ParsedReply<T>;

export class KvError extends Error {
  /**
   * The failure hit a connection taken from the idle list before any reply byte arrived (the
   * server closed it meanwhile, or restarted): the exchange is worth one retry on a new one.
   */
  readonly stale: boolean;

  constructor(message: string, stale = false) {
    super(message);
    this.stale = stale;
  }
}

/** Idle connections kept per address; more concurrent lookups open extra ones, closed after use. */
const MAX_IDLE_PER_ADDR = 8;
/** An idle connection unused for this long is closed (servers close idle clients too). */
const IDLE_MS = 30_000;

interface Pending {
  parse: ReplyParser<unknown>;
  resolve(value: unknown): void;
  reject(err: KvError): void;
  timeoutMs: number;
}

class KvConnection {
  readonly addr: string;
  private readonly pool: KvPool;
  private readonly socket: net.Socket;
  private pending: Pending | null = null;
  /** Reply bytes received for the exchange in flight, and how many the parser asked for. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = 0;
  /** Served an exchange before: a failure with no reply byte may be a stale connection. */
  private reused = false;
  private closed = false;

  constructor(pool: KvPool, addr: string) {
    this.pool = pool;
    this.addr = addr;
    this.socket = net.createConnection(connectOptions(addr));
    this.socket.setNoDelay(true);
    // Handlers bound once per connection, not per exchange.
    this.socket.on('data', this.onData.bind(this));
    this.socket.on('error', this.onError.bind(this));
    this.socket.on('close', this.onClose.bind(this));
    this.socket.on('timeout', this.onTimeout.bind(this));
  }

  get usable(): boolean {
    return !this.closed && !this.socket.destroyed;
  }

  exchange<T>(request: Buffer, parse: ReplyParser<T>, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending = { parse, resolve: resolve as (v: unknown) => void, reject, timeoutMs };
      this.chunks = [];
      this.buffered = 0;
      this.need = 0;
      this.socket.ref();
      this.socket.setTimeout(timeoutMs);
      this.socket.write(request);
    });
  }

  private onData(chunk: Buffer): void {
    const p = this.pending;
    if (p === null) {
      // Bytes nobody asked for: the stream is out of step, never read it again.
      this.destroy();
      return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.need) return;
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [buf];
    let r: ParsedReply<unknown>;
    try {
      r = p.parse(buf);
    } catch (err) {
      this.fail(new KvError((err as Error).message));
      return;
    }
    if (typeof r === 'number') {
      this.need = r;
      return;
    }
    this.pending = null;
    this.chunks = [];
    this.buffered = 0;
    this.need = 0;
    // Bytes after the reply: out of step, do not reuse.
    if (r.used === buf.length) this.idle();
    else this.destroy();
    p.resolve(r.value);
  }

  private onTimeout(): void {
    const p = this.pending;
    if (p === null) {
      this.destroy(); // idle too long
      return;
    }
    const s = p.timeoutMs / 1000;
    this.fail(new KvError(this.socket.connecting ? `no connection within ${s} seconds (--socket-timeout)` : `no reply within ${s} seconds (--socket-timeout)`));
  }

  private onError(err: Error): void {
    this.fail(new KvError(err.message, this.reused && this.buffered === 0));
  }

  private onClose(): void {
    this.closed = true;
    this.pool.forget(this);
    if (this.pending) this.fail(new KvError('the server closed the connection before its reply was complete', this.reused && this.buffered === 0));
  }

  private fail(err: KvError): void {
    const p = this.pending;
    this.pending = null;
    this.destroy();
    p?.reject(err);
  }

  private idle(): void {
    this.reused = true;
    this.socket.setTimeout(IDLE_MS);
    // An idle connection must not keep the process alive.
    this.socket.unref();
    if (!this.pool.release(this)) this.destroy();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
    this.pool.forget(this);
  }
}

/** Connections to the servers of one protocol, by address. One per plugin, per process. */
export class KvPool {
  private readonly idle = new Map<string, KvConnection[]>();

  /**
   * Send `request` to `addr` and parse the reply. A connection from the idle list that turns
   * out to be closed gets one retry on a new connection (the request is a GET or a SET, safe
   * to send twice).
   */
  async exchange<T>(addr: string, request: Buffer, parse: ReplyParser<T>, timeoutMs: number): Promise<T> {
    const reused = this.take(addr);
    if (reused) {
      try {
        return await reused.exchange(request, parse, timeoutMs);
      } catch (err) {
        if (!(err instanceof KvError) || !err.stale) throw err;
      }
    }
    return new KvConnection(this, addr).exchange(request, parse, timeoutMs);
  }

  private take(addr: string): KvConnection | null {
    const list = this.idle.get(addr);
    while (list && list.length > 0) {
      const c = list.pop()!;
      if (c.usable) return c;
    }
    return null;
  }

  /** Keep a connection for the next exchange; false when the list is full. */
  release(c: KvConnection): boolean {
    let list = this.idle.get(c.addr);
    if (!list) {
      list = [];
      this.idle.set(c.addr, list);
    }
    if (list.length >= MAX_IDLE_PER_ADDR) return false;
    list.push(c);
    return true;
  }

  forget(c: KvConnection): void {
    const list = this.idle.get(c.addr);
    if (!list) return;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(c.addr);
  }

  /** Idle connections to `addr` (tests: a lookup must not leave more sockets behind). */
  idleCount(addr: string): number {
    return this.idle.get(addr)?.length ?? 0;
  }

  /** Close every idle connection. */
  close(): void {
    for (const list of [...this.idle.values()]) for (const c of [...list]) c.destroy();
    this.idle.clear();
  }
}
