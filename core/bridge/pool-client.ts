/**
 * The core side of an app pool: persistent uwsgi connections to the pool's shared unix
 * socket (docs/bridge-protocol.md §3).
 *
 * Each connection starts with the hello packet, so the core learns which bridge process
 * and thread serves it; a bridge thread serves one connection at a time, so the number of
 * connections a core worker may hold is its share of processes × threads. Requests wait in
 * FIFO order for an idle connection: every client connection is owned by the core and its
 * requests are served as bridge threads free up (no client is pinned to a worker).
 */
import net from 'node:net';
import { HttpResponseParser, type ResponseHead } from '../protocol/http-response-parser.ts';
import { decodeHeader, decodeVars, encodeHeader, getVar, isVarsError, Modifier1 } from '../protocol/uwsgi-packet.ts';

/** Where a response goes: implemented by each front end (HTTP, uwsgi socket). */
export interface ResponseSink {
  /** The status line and headers arrived. */
  head(head: ResponseHead): void;
  /** A piece of de-framed body. Return false to ask the bridge to pause (backpressure). */
  body(chunk: Buffer): boolean;
  /** Register a callback for when a paused sink can take more. */
  onDrain(cb: () => void): void;
  end(): void;
  /**
   * The exchange failed. `status` is the answer to give when no head was sent yet
   * (502 bridge died, 504 harakiri); after a head the sink must cut the client connection.
   */
  fail(status: number, reason: string): void;
  /** The front end calls `abort` if the client goes away mid-response (the bridge exchange is cut). */
  bindAbort(abort: () => void): void;
}

/** Where the request body comes from. */
export interface BodySource {
  /** Start streaming into `write`; call `done` at the end. `write` returns false to pause. */
  pipe(write: (chunk: Buffer) => boolean, waitDrain: (cb: () => void) => void, done: () => void): void;
}

/** One queued sink call: a head, a body chunk, or (both null) the end. */
interface PendingOp {
  sink: ResponseSink;
  head: ResponseHead | null;
  chunk: Buffer | null;
}

export interface BridgeIdentity {
  pid: number;
  workerId: number;
  core: number;
}

export interface ExchangeInfo {
  /** Bridge that served the request (for logs, harakiri, stats). */
  bridge: BridgeIdentity;
  startedAt: number;
  /** Request URI for harakiri logs. */
  uri: string;
}

export class BridgeConnection {
  readonly socket: net.Socket;
  identity: BridgeIdentity | null = null;
  private helloBuf: Buffer | null = Buffer.alloc(0);
  private readonly parser: HttpResponseParser;
  sink: ResponseSink | null = null;
  exchange: ExchangeInfo | null = null;
  private paused = false;
  /** Sink calls produced while parsing the current chunk, in order (head, body…, end). */
  private pending: PendingOp[] = [];
  closed = false;
  /** Set when the connection must not be reused after the current request. */
  retire = false;
  onHello: ((err: Error | null) => void) | null = null;
  onIdle: ((conn: BridgeConnection) => void) | null = null;
  onClosed: ((conn: BridgeConnection) => void) | null = null;

  constructor(path: string) {
    this.socket = net.createConnection(path);
    this.socket.setNoDelay(true);
    // Parser output is queued and delivered after each chunk is parsed (see onData).
    this.parser = new HttpResponseParser({
      onHead: (head) => {
        if (this.sink) this.pending.push({ sink: this.sink, head, chunk: null });
      },
      onBody: (chunk) => {
        if (this.sink) this.pending.push({ sink: this.sink, head: null, chunk });
      },
      onEnd: () => this.completeExchange(),
    });
    this.socket.on('connect', () => this.socket.write(encodeHeader({ modifier1: Modifier1.CONFIG, datasize: 0, modifier2: 0 })));
    this.socket.on('data', (d) => this.onData(d));
    this.socket.on('error', () => {
      /* 'close' follows and handles it */
    });
    this.socket.on('close', () => this.onClose());
  }

  private onData(d: Buffer): void {
    if (this.helloBuf) {
      this.helloBuf = this.helloBuf.length ? Buffer.concat([this.helloBuf, d]) : d;
      if (this.helloBuf.length < 4) return;
      const h = decodeHeader(this.helloBuf);
      if (h.modifier1 !== Modifier1.CONFIG || h.modifier2 !== 1) {
        this.socket.destroy();
        this.onHello?.(new Error(`bridge answered the hello with modifier ${h.modifier1}/${h.modifier2}`));
        return;
      }
      if (this.helloBuf.length < 4 + h.datasize) return;
      const vars = decodeVars(this.helloBuf.subarray(4, 4 + h.datasize));
      this.helloBuf = null;
      if (isVarsError(vars)) {
        this.socket.destroy();
        this.onHello?.(new Error('bridge sent an invalid hello'));
        return;
      }
      this.identity = {
        pid: Number(getVar(vars, 'pid')),
        workerId: Number(getVar(vars, 'worker_id')),
        core: Number(getVar(vars, 'core')),
      };
      const cb = this.onHello;
      this.onHello = null;
      cb?.(null);
      return;
    }
    if (!this.sink) {
      // Bytes with no request in flight: the bridge broke the contract; do not reuse it.
      this.socket.destroy();
      return;
    }
    try {
      this.parser.execute(d);
    } catch (err) {
      this.failExchange(502, (err as Error).message);
      this.socket.destroy();
      return;
    }
    this.deliver();
  }

  /**
   * Hand the parsed pieces to their sinks. When a response completed in this chunk, its
   * connection was already handed to the next waiting request (completeExchange) before
   * this runs: the bridge starts on the next request while we write this one to the client,
   * instead of idling for the length of a client write syscall.
   */
  private deliver(): void {
    if (this.pending.length === 0) return;
    const ops = this.pending;
    this.pending = [];
    for (const op of ops) {
      if (op.head) op.sink.head(op.head);
      else if (op.chunk) {
        if (!op.sink.body(op.chunk) && op.sink === this.sink && !this.paused) {
          const sink = op.sink;
          this.paused = true;
          this.socket.pause();
          sink.onDrain(() => {
            // Only the response that paused may resume: a later one manages its own pause.
            if (this.sink === sink) this.unpause();
          });
        }
      } else op.sink.end();
    }
  }

  /** Send one request: the packet (header + vars) then the body. */
  send(packet: Buffer, body: BodySource | null, noBody: boolean, sink: ResponseSink, exchange: ExchangeInfo): void {
    this.sink = sink;
    this.exchange = exchange;
    this.parser.start(noBody);
    this.socket.write(packet);
    if (body) {
      body.pipe(
        (chunk) => !this.socket.destroyed && this.socket.write(chunk),
        (cb) => this.socket.once('drain', cb),
        () => {},
      );
    }
    // Last, because it may fire at once when the client is already gone.
    sink.bindAbort(() => {
      if (this.sink === sink) {
        // The client is gone: log the request as failed and cut the bridge off this response.
        this.failExchange(499, 'client disconnected');
        this.socket.destroy();
      }
    });
  }


  private unpause(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private completeExchange(): void {
    const sink = this.sink;
    this.sink = null;
    this.exchange = null;
    // The last chunk may have paused us; the next request on this connection must not hang
    // waiting for a 'drain' of a response that is already complete.
    this.unpause();
    if (this.parser.endsAtClose) this.retire = true;
    if (sink) this.pending.push({ sink, head: null, chunk: null });
    if (this.retire) this.socket.end();
    else this.onIdle?.(this);
  }

  failExchange(status: number, reason: string): void {
    this.deliver();
    const sink = this.sink;
    this.sink = null;
    this.exchange = null;
    sink?.fail(status, reason);
  }

  private onClose(): void {
    this.closed = true;
    if (this.onHello) {
      const cb = this.onHello;
      this.onHello = null;
      cb(new Error('bridge closed the connection during the hello'));
    }
    if (this.sink) {
      try {
        this.parser.finish();
        this.deliver();
      } catch {
        this.failExchange(502, 'bridge closed the connection before the response was complete');
      }
    }
    this.onClosed?.(this);
  }
}

type Waiter = (err: Error | null, conn: BridgeConnection | null) => void;

/**
 * Connections of one core worker to one pool. `capacity` is this worker's share of the
 * pool's bridge threads.
 */
export class PoolClient {
  private path: string;
  private readonly idle: BridgeConnection[] = [];
  readonly busy = new Set<BridgeConnection>();
  private opening = 0;
  private readonly waiters: Waiter[] = [];
  private capacity: number;
  private closing = false;

  constructor(path: string, capacity: number) {
    this.path = path;
    this.capacity = Math.max(1, capacity);
  }

  get socketPath(): string {
    return this.path;
  }

  /**
   * Get an idle connection, open a new one within capacity, or wait in line. The callback
   * runs synchronously when a connection is free (a finished response hands its connection
   * straight to the next request), or with an error when the pool is closing.
   */
  acquire(cb: (err: Error | null, conn: BridgeConnection | null) => void): void {
    const conn = this.idle.pop();
    if (conn) {
      this.busy.add(conn);
      cb(null, conn);
      return;
    }
    this.waiters.push(cb);
    this.fill();
  }

  /** Open connections while requests wait and capacity allows. */
  private fill(): void {
    while (!this.closing && this.waiters.length > this.opening && this.activeCount() < this.capacity) {
      this.open(0);
    }
  }

  /** Connections that count against capacity: retiring ones (old generation) do not. */
  private activeCount(): number {
    let busy = 0;
    for (const c of this.busy) if (!c.retire) busy++;
    return busy + this.idle.length + this.opening;
  }

  private open(attempt: number): void {
    this.opening++;
    const conn = new BridgeConnection(this.path);
    const generationPath = this.path;
    conn.onHello = (err) => {
      this.opening--;
      if (err) {
        // The bridge may be restarting (socket not listening yet): retry with a short backoff.
        if (!this.closing && generationPath === this.path && attempt < 200) {
          this.opening++;
          setTimeout(() => {
            this.opening--;
            if (this.waiters.length > 0) this.open(attempt + 1);
          }, Math.min(5 + attempt * 5, 100));
        } else {
          this.fill();
        }
        return;
      }
      conn.onIdle = (c) => this.release(c);
      conn.onClosed = (c) => this.forget(c);
      if (generationPath !== this.path || this.closing) {
        conn.socket.end();
        return;
      }
      this.release(conn);
    };
  }

  /** A connection finished its request: hand it to the next waiter or park it. */
  private release(conn: BridgeConnection): void {
    this.busy.delete(conn);
    if (conn.closed || conn.retire || this.closing) {
      conn.socket.end();
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      this.busy.add(conn);
      w(null, conn);
    } else {
      this.idle.push(conn);
    }
  }

  private forget(conn: BridgeConnection): void {
    this.busy.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    this.fill();
  }

  /**
   * Point at a new generation's socket (graceful reload): idle connections to the old
   * generation close now, busy ones close after their current request.
   */
  switchTo(path: string, capacity: number): void {
    this.path = path;
    this.capacity = Math.max(1, capacity);
    for (const c of this.idle.splice(0)) c.socket.end();
    for (const c of this.busy) c.retire = true;
    this.fill();
  }

  /** Close everything (shutdown). Waiting requests are answered 503. */
  close(): void {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.socket.end();
    for (const c of this.busy) c.retire = true;
    for (const w of this.waiters.splice(0)) w(new Error('server is shutting down'), null);
  }

  /** Requests in flight, with their bridge (harakiri checks, stats). */
  inFlight(): BridgeConnection[] {
    return [...this.busy].filter((c) => c.exchange !== null);
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
