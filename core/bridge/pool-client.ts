/**
 * The core side of an app pool: persistent uwsgi connections to the pool's shared unix
 * socket (docs/bridge-protocol.md §3).
 *
 * Each connection starts with the hello packet, so the core learns which bridge process
 * and thread serves it; a bridge thread serves one connection at a time, so the number of
 * connections a core worker may hold is its share of processes × threads. Requests wait in
 * FIFO order for a free connection: every client connection is owned by the core and its
 * requests are served as bridge threads free up (no client is pinned to a worker).
 *
 * Pipelining. When every connection is busy, a request without a body may be queued behind
 * the one in progress on a connection (at most `pipelineDepth` of them), and packets written
 * in one event-loop turn go out in one write. A bridge then finds its next request already
 * in its socket buffer instead of idling while the core is busy, and the core makes far fewer
 * system calls per request — on these machines system calls are most of the core's cost.
 * To keep a slow request from holding others hostage, requests are only queued behind one
 * that started less than PIPELINE_FRESH_MS ago, on a connection whose previous request took
 * less than that too (a connection of a slow app — e.g. async cores sleeping for seconds — is
 * never given a queue: its waiting requests go to the first connection that frees up); and
 * requests queued behind one whose bridge dies are re-sent elsewhere (the bridge serves a
 * connection in order, so they never started).
 */
import net from 'node:net';
import { HttpResponseParser, type ResponseHead } from '../protocol/http-response-parser.ts';
import { decodeHeader, decodeVars, encodeHeader, encodePacket, getVar, isVarsError, Modifier1, type UwsgiVars } from '../protocol/uwsgi-packet.ts';
import { FastcgiTranslator, type FastcgiAdapter } from './fastcgi-translator.ts';
import type { CancelSendfile, SendfileDone } from '../static/sendfile.ts';
import { PoolCounters, type BridgeCounters } from '../stats/counters.ts';

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
   * `reason` is for the log; clients only get the standard reason phrase.
   */
  fail(status: number, reason: string): void;
  /** The front end calls `abort` if the client goes away mid-response (the bridge exchange is cut). */
  bindAbort(abort: () => void): void;
  /**
   * Cut the connection without any response (internal routing's bare `break:`, a backward
   * goto). `status` is what the request log shows (uWSGI logs the status prepared so far, 500
   * when none was). After raw output (see raw()) the bytes already written still reach the
   * client before the connection closes. Optional: a sink without it gets fail(500) instead.
   */
  close?(status?: number): void;
  /**
   * Raw output, around the HTTP framing (routing's `send:`, `disableheaders:`): write `chunk`
   * (possibly empty) to the client as it is. From the first call on the front end sends no
   * head of its own (a later head() is dropped, as uWSGI's `headers_sent`), body() bytes go out
   * unframed, and the connection is closed when the response ends: the client has no other
   * way to know where it ends. A head given before the first call and not yet on the wire goes
   * out first. Returns false to ask for a pause (onDrain). Implemented by the front ends.
   */
  raw?(chunk: Buffer): boolean;
  /**
   * Zero-copy static bodies (core/static/sendfile.ts): after head(), send `length` bytes of the
   * open file `fd` from `offset` with sendfile(2) instead of body() calls; `done` reports the
   * bytes sent. Returns null when this response cannot (the caller copies). Offered by the
   * front ends and passed on only by wrappers that never look at body bytes.
   */
  sendFile?(fd: number, offset: number, length: number, timeoutMs: number, done: SendfileDone): CancelSendfile | null;
  /**
   * The front end frames a body whose head says `Transfer-Encoding: chunked` by itself (the
   * http front end: Node's ServerResponse does). Transformations (`chunked:`) then only set the
   * header, or the framing would be on the wire twice.
   */
  framesChunked?: boolean;
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

/** An acquire callback. Called again with another connection to re-send a request. */
export type Waiter = (err: Error | null, conn: BridgeConnection | null) => void;

/** Connection attempts (~20 s with the backoff) before waiting requests are answered 503. */
const MAX_CONNECT_ATTEMPTS = 200;

/** Only queue behind a request that started less than this long ago (see above). */
export const PIPELINE_FRESH_MS = 10;

interface Exchange {
  sink: ResponseSink;
  info: ExchangeInfo;
  noBody: boolean;
  /** How to re-send it if the bridge dies before starting it; null when it has a body. */
  retry: Waiter | null;
  /** The request packet, kept by reference so the stats server can show its vars. */
  packet: Buffer;
}

export interface ExchangeInfo {
  /** Bridge that served the request (for logs, harakiri, stats). */
  bridge: BridgeIdentity;
  /** Request URI for harakiri logs. */
  uri: string;
  /**
   * Routing's `harakiri:N` for this request (seconds, 0 = none): a timer of its own next to
   * --harakiri, the first to expire wins (uWSGI's user harakiri).
   */
  harakiri?: number;
}

/** The hello of a pool whose bridge hands off a FastCGI responder (docs/bridge-protocol.md §3.4). */
const FASTCGI_HELLO = encodePacket(Modifier1.CONFIG, [['handoff', 'fastcgi']], 0);
const PLAIN_HELLO = encodeHeader({ modifier1: Modifier1.CONFIG, datasize: 0, modifier2: 0 });

export class BridgeConnection {
  /**
   * Where requests are written and responses read: the bridge connection, or after a FastCGI
   * handoff the connection to the responder the bridge named (then `link` is the bridge's).
   */
  socket: net.Socket;
  /** The bridge connection kept open beside a handed-off FastCGI connection (its end ends both). */
  private link: net.Socket | null = null;
  /** Converts requests and responses on a handed-off FastCGI connection. */
  private translator: FastcgiTranslator | null = null;
  private readonly fastcgi: FastcgiAdapter | null;
  private readonly logLine: (line: string) => void;
  /** The FastCGI connection being opened during the hello. */
  private handingOff: net.Socket | null = null;
  /** The pid of the responder a FastCGI handoff named (harakiri kills it, not the bridge). */
  responderPid: number | null = null;
  identity: BridgeIdentity | null = null;
  private helloBuf: Buffer | null = Buffer.alloc(0);
  private readonly parser: HttpResponseParser;
  /** Requests sent on this connection, in order; the first is in progress. */
  readonly queue: Exchange[] = [];
  /** When the request now in progress became the head of the queue. */
  headSince = 0;
  /** How long the last completed request took (ms); Infinity before the first one. */
  lastDuration = Infinity;
  /**
   * A request body is still being written to the bridge. An app may answer before it read its
   * body (the bridge then drains it), so a response can complete while the body still flows:
   * until it is all written, nothing else may be written on this connection, or the next
   * packet would land in the middle of the body.
   */
  bodyStreaming = false;
  /** The response completed while the body was still streaming: go idle when it ends. */
  private idleWhenBodyDone = false;
  private paused = false;
  private corked = false;
  /** Sink calls produced while parsing the current chunk, in order (head, body…, end). */
  private pending: PendingOp[] = [];
  closed = false;
  /** Set when the connection must not be reused after the current requests. */
  retire = false;
  /** The stats counters of the bridge serving this connection (set by the pool after the hello). */
  counters: BridgeCounters | null = null;
  /**
   * Time requests for the stats (running_time, avg_rt): two monotonic clock reads per request,
   * so only when a stats server runs; counting alone is a few additions.
   */
  timed = false;
  /** Response bytes (head + body) of the request in progress, for the stats' tx. */
  private txBytes = 0;
  /** performance.now() when the request in progress started, for the stats' response times (µs). */
  private startedHr = 0;
  onHello: ((err: Error | null) => void) | null = null;
  /** A request completed: the pool may hand the connection more work. */
  onIdle: ((conn: BridgeConnection) => void) | null = null;
  /** The connection closed; `orphans` are requests it never started. */
  onClosed: ((conn: BridgeConnection, orphans: Waiter[]) => void) | null = null;

  constructor(path: string, fastcgi: FastcgiAdapter | null = null, logLine: (line: string) => void = () => {}) {
    this.fastcgi = fastcgi;
    this.logLine = logLine;
    this.socket = net.createConnection(path);
    this.socket.setNoDelay(true);
    // Parser output is queued and delivered after each chunk is parsed (see deliver()).
    this.parser = new HttpResponseParser({
      onHead: (head) => {
        this.txBytes += head.headerBytes;
        const ex = this.queue[0];
        if (ex) this.pending.push({ sink: ex.sink, head, chunk: null });
      },
      onBody: (chunk) => {
        this.txBytes += chunk.length;
        const ex = this.queue[0];
        if (ex) this.pending.push({ sink: ex.sink, head: null, chunk });
      },
      onEnd: () => this.completeExchange(),
    });
    this.socket.on('connect', () => this.socket.write(fastcgi ? FASTCGI_HELLO : PLAIN_HELLO));
    this.socket.on('data', (d) => this.onData(d));
    this.socket.on('error', () => {
      /* 'close' follows and handles it */
    });
    // After a handoff the bridge connection only says the bridge is alive: its end cuts the
    // FastCGI connection, whose close does the rest.
    this.socket.on('close', () => (this.link ? this.socket.destroy() : this.onClose()));
  }

  /** The response sink of the request in progress. */
  get sink(): ResponseSink | null {
    return this.queue[0]?.sink ?? null;
  }

  /** The request in progress (harakiri, stats), or null when idle. */
  get exchange(): ExchangeInfo | null {
    return this.queue[0]?.info ?? null;
  }

  /** The packet of the request in progress (the stats server shows its vars), or null when idle. */
  get requestPacket(): Buffer | null {
    return this.queue[0]?.packet ?? null;
  }

  private onData(d: Buffer): void {
    if (this.helloBuf) {
      this.onHelloData(d);
      return;
    }
    if (this.translator) {
      try {
        this.translator.onData(d);
      } catch (err) {
        this.brokenResponse(err as Error);
        return;
      }
      if (this.translator.mustClose) this.socket.destroy();
      return;
    }
    this.parse(d);
  }

  /** The response bytes broke the protocol: answer 502 and never reuse the connection. */
  private brokenResponse(err: Error): void {
    this.failExchange(502, err.message);
    this.socket.destroy();
  }

  /** The hello is over (with an error when the connection cannot be used). */
  private helloDone(err: Error | null): void {
    const cb = this.onHello;
    this.onHello = null;
    cb?.(err);
  }

  /** Response bytes (from the bridge, or translated from FastCGI) for the HTTP response parser. */
  private parse(d: Buffer): void {
    if (this.queue.length === 0) {
      // Bytes with no request in flight: the bridge broke the contract; do not reuse it.
      this.socket.destroy();
      return;
    }
    try {
      this.parser.execute(d);
    } catch (err) {
      this.brokenResponse(err as Error);
      return;
    }
    this.deliver();
  }

  private onHelloData(d: Buffer): void {
    this.helloBuf = this.helloBuf!.length ? Buffer.concat([this.helloBuf!, d]) : d;
    if (this.helloBuf.length < 4) return;
    const h = decodeHeader(this.helloBuf);
    if (h.modifier1 !== Modifier1.CONFIG || h.modifier2 !== 1) {
      this.socket.destroy();
      this.helloDone(new Error(`bridge answered the hello with modifier ${h.modifier1}/${h.modifier2}`));
      return;
    }
    if (this.helloBuf.length < 4 + h.datasize) return;
    const vars = decodeVars(this.helloBuf.subarray(4, 4 + h.datasize));
    this.helloBuf = null;
    if (isVarsError(vars)) {
      this.socket.destroy();
      this.helloDone(new Error('bridge sent an invalid hello'));
      return;
    }
    this.identity = {
      pid: Number(getVar(vars, 'pid')),
      workerId: Number(getVar(vars, 'worker_id')),
      core: Number(getVar(vars, 'core')),
    };
    if (this.fastcgi) {
      const address = getVar(vars, 'fastcgi');
      if (!address) {
        this.socket.destroy();
        this.helloDone(new Error('the bridge did not hand off a FastCGI responder (no "fastcgi" in its hello)'));
        return;
      }
      const responderPid = Number(getVar(vars, 'fastcgi_pid'));
      this.responderPid = Number.isInteger(responderPid) && responderPid > 0 ? responderPid : null;
      this.handOff(address, this.fastcgi);
      return;
    }
    this.helloDone(null);
  }

  /**
   * Open the FastCGI responder the bridge dedicated to this connection; from then on requests
   * and responses go through it (docs/bridge-protocol.md §3.4). The hello completes when it is
   * connected.
   */
  private handOff(address: string, adapter: FastcgiAdapter): void {
    const fcgi = net.createConnection(address);
    this.handingOff = fcgi;
    const onConnectError = (err: Error) => {
      this.handingOff = null;
      this.socket.destroy();
      this.helloDone(new Error(`cannot connect to the FastCGI responder ${address} the bridge named: ${err.message}`));
    };
    fcgi.once('error', onConnectError);
    fcgi.once('connect', () => {
      fcgi.off('error', onConnectError);
      this.handingOff = null;
      this.link = this.socket;
      this.socket = fcgi;
      this.translator = new FastcgiTranslator(adapter, { feed: (http) => this.parse(http), log: this.logLine });
      fcgi.on('data', (d) => this.onData(d));
      fcgi.on('error', () => {
        /* 'close' follows and handles it */
      });
      fcgi.on('close', () => {
        this.link?.destroy();
        this.onClose();
      });
      this.helloDone(null);
    });
  }

  /**
   * Hand the parsed pieces to their sinks. When a response completed in this chunk, its
   * connection was already handed to the next request (completeExchange) before this runs:
   * the bridge starts on the next request while we write this one to the client, instead
   * of idling for the length of a client write.
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

  /** Send corked writes now (before the old generation is told to stop, on reload). */
  flush(): void {
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
  }

  /**
   * Write without a system call per packet: writes made during one event-loop turn are
   * corked and go out together when the turn's I/O callbacks are done.
   */
  private write(data: Buffer): boolean {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => this.flush());
    }
    return this.socket.write(data);
  }

  /**
   * Send one request: the packet (header + vars) then the body. `retry` re-sends it through
   * the pool if this bridge dies before starting it (only for requests without a body).
   * `vars` are the packet's vars, which a FastCGI handoff uses instead of decoding the packet.
   */
  send(packet: Buffer, body: BodySource | null, noBody: boolean, sink: ResponseSink, info: ExchangeInfo, retry: Waiter | null = null, vars: UwsgiVars | null = null): void {
    const ex: Exchange = { sink, info, noBody, retry: body ? null : retry, packet };
    this.queue.push(ex);
    if (this.queue.length === 1) {
      this.headSince = Date.now();
      if (this.timed) this.startedHr = performance.now();
      this.parser.start(noBody);
    }
    if (this.translator) {
      this.sendFastcgi(packet, vars, body, noBody, this.translator);
    } else {
      this.write(packet);
      if (body) this.sendBody(body, (chunk) => !this.socket.destroyed && this.socket.write(chunk), null);
    }
    // Last, because it may fire at once when the client is already gone.
    sink.bindAbort(() => {
      if (this.queue[0] === ex) {
        // The client is gone: log the request as failed and cut the bridge off this response.
        this.failExchange(499, 'client disconnected');
        this.socket.destroy();
      }
      // A request still queued behind another one is answered into a sink that discards it.
      // The response is complete but its body never finished arriving: the bridge waits for
      // bytes that will not come, so this connection cannot carry another request.
      else if (this.idleWhenBodyDone) this.socket.destroy();
    });
  }

  /**
   * A request on a handed-off FastCGI connection: the adapter may answer it at once (its body
   * is then read and dropped). After a body the responder closes the connection (see
   * FastcgiTranslator.request), so nothing more is sent on it.
   */
  private sendFastcgi(packet: Buffer, vars: UwsgiVars | null, body: BodySource | null, headOnly: boolean, translator: FastcgiTranslator): void {
    const request = translator.request(packet, vars, body !== null, headOnly);
    if (request) this.write(request);
    if (translator.exhausted || (request && body)) this.retire = true;
    if (!body) return;
    if (request) this.sendBody(body, (chunk) => !this.socket.destroyed && this.socket.write(translator.stdin(chunk)), translator.endOfStdin);
    else this.sendBody(body, () => true, null);
  }

  /** Stream a request body; `trailer` is written after it (FastCGI's empty STDIN record). */
  private sendBody(body: BodySource, write: (chunk: Buffer) => boolean, trailer: Buffer | null): void {
    this.bodyStreaming = true;
    body.pipe(
      write,
      (cb) => this.socket.once('drain', cb),
      () => {
        if (trailer && !this.socket.destroyed) this.socket.write(trailer);
        this.bodyStreaming = false;
        if (this.idleWhenBodyDone) {
          this.idleWhenBodyDone = false;
          if (this.retire) this.socket.end();
          else if (!this.closed) this.onIdle?.(this);
        }
      },
    );
  }

  private unpause(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private completeExchange(): void {
    const done = this.queue.shift()!;
    const now = Date.now();
    const nowHr = this.timed ? performance.now() : 0;
    this.lastDuration = now - this.headSince;
    this.countDone(now, nowHr);
    // The last chunk may have paused us; the next request on this connection must not hang
    // waiting for a 'drain' of a response that is already complete.
    this.unpause();
    if (this.parser.endsAtClose) this.retire = true;
    this.pending.push({ sink: done.sink, head: null, chunk: null });
    const next = this.queue[0];
    if (next) {
      this.headSince = now;
      this.startedHr = nowHr;
      this.parser.start(next.noBody);
    }
    if (this.retire && !next && !this.bodyStreaming) this.socket.end();
    else if (this.bodyStreaming) this.idleWhenBodyDone = !next;
    else this.onIdle?.(this);
  }

  /** Fail the request in progress (bridge died, harakiri, client gone). */
  failExchange(status: number, reason: string): void {
    this.deliver();
    const ex = this.queue.shift();
    if (ex) {
      // A failed request still ended on this core (uWSGI counts it too).
      this.countDone(Date.now(), this.timed ? performance.now() : 0);
      if (status === 499 && this.counters && this.identity) this.counters.writeError(this.identity.core);
    }
    ex?.sink.fail(status, reason);
  }

  /** Stats: the request in progress ended (a few additions on counters found at the hello). */
  private countDone(now: number, nowHr: number): void {
    if (this.counters) this.counters.done(this.identity!.core, this.txBytes, this.timed ? (nowHr - this.startedHr) * 1000 : 0, now);
    this.txBytes = 0;
  }

  private onClose(): void {
    this.closed = true;
    this.handingOff?.destroy();
    if (this.onHello) this.helloDone(new Error('bridge closed the connection during the hello'));
    if (this.queue.length > 0) {
      try {
        this.parser.finish();
        this.deliver();
      } catch {
        this.failExchange(502, 'bridge closed the connection before the response was complete');
      }
    }
    // Requests behind the one in progress were never started by the bridge: re-send them.
    const orphans: Waiter[] = [];
    for (const ex of this.queue.splice(0)) {
      if (ex.retry) orphans.push(ex.retry);
      else ex.sink.fail(502, 'bridge closed the connection');
    }
    this.onClosed?.(this, orphans);
  }
}

interface WaitingRequest {
  cb: Waiter;
  /** Has no body, so it may be queued behind another request on a connection. */
  pipelinable: boolean;
}

/**
 * Connections of one core worker to one pool. `capacity` is this worker's share of the
 * pool's bridge threads.
 */
export class PoolClient {
  private path: string;
  private readonly idle: BridgeConnection[] = [];
  /** Connections with requests in progress. */
  readonly busy = new Set<BridgeConnection>();
  private opening = 0;
  private readonly waiters: WaitingRequest[] = [];
  private capacity: number;
  private readonly pipelineDepth: number;
  private readonly timeRequests: boolean;
  private closing = false;
  /** Stats counters of the bridges this client talked to, by pid (read by core/stats/). */
  readonly counters = new PoolCounters();

  /**
   * `pipelineDepth`: requests that may wait behind the one in progress on a connection (0 = no
   * pipelining). `timeRequests`: measure response times for the stats server (see BridgeConnection.timed).
   * `fastcgi`: the plugin's adapter when the pool's bridges hand off FastCGI responders.
   */
  /** The pool's FastCGI handoff (docs/bridge-protocol.md §3.4), or null for plain bridges. */
  private fastcgi: FastcgiAdapter | null;
  private readonly logLine: (line: string) => void;

  constructor(path: string, capacity: number, pipelineDepth = 0, timeRequests = false, fastcgi: { adapter: FastcgiAdapter; log: (line: string) => void } | null = null) {
    this.path = path;
    this.fastcgi = fastcgi?.adapter ?? null;
    this.logLine = fastcgi?.log ?? (() => {});
    this.timeRequests = timeRequests;
    this.capacity = Math.max(1, capacity);
    this.pipelineDepth = Math.max(0, pipelineDepth);
  }

  get socketPath(): string {
    return this.path;
  }

  /**
   * Get a connection for one request: an idle one, a new one within capacity, a busy one to
   * queue behind (pipelinable requests only), or wait in line. The callback runs
   * synchronously when a connection is free, or with an error when the pool is closing.
   */
  acquire(cb: Waiter, pipelinable: boolean): void {
    const conn = this.idle.pop();
    if (conn) {
      this.busy.add(conn);
      cb(null, conn);
      return;
    }
    if (pipelinable && this.activeCount() >= this.capacity) {
      const target = this.pipelineTarget();
      if (target) {
        cb(null, target);
        return;
      }
    }
    this.waiters.push({ cb, pipelinable });
    this.fill();
  }

  /** The busy connection with the shortest queue that may take one more request, if any. */
  private pipelineTarget(): BridgeConnection | null {
    if (this.pipelineDepth === 0) return null;
    const now = Date.now();
    let best: BridgeConnection | null = null;
    for (const c of this.busy) {
      if (c.retire || c.closed || c.bodyStreaming || c.queue.length === 0 || c.queue.length > this.pipelineDepth) continue;
      if (now - c.headSince > PIPELINE_FRESH_MS || c.lastDuration > PIPELINE_FRESH_MS) continue;
      if (!best || c.queue.length < best.queue.length) best = c;
    }
    return best;
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
    const conn = new BridgeConnection(this.path, this.fastcgi, this.logLine);
    const generationPath = this.path;
    conn.onHello = (err) => {
      this.opening--;
      if (err) {
        // The bridge may be restarting (socket not listening yet): retry with a short backoff.
        if (!this.closing && generationPath === this.path && attempt < MAX_CONNECT_ATTEMPTS) {
          this.opening++;
          setTimeout(() => {
            this.opening--;
            if (this.waiters.length > 0) this.open(attempt + 1);
          }, Math.min(5 + attempt * 5, 100));
        } else if (generationPath === this.path && this.opening === 0 && this.busy.size === 0 && this.idle.length === 0) {
          // No app worker has answered for ~20 s and none is serving: answer the waiting
          // requests (503) instead of letting them hang; later requests try again.
          for (const w of this.waiters.splice(0)) w.cb(new Error('no app worker is accepting connections'), null);
        } else {
          this.fill();
        }
        return;
      }
      conn.onIdle = (c) => this.release(c);
      conn.onClosed = (c, orphans) => this.forget(c, orphans);
      conn.counters = this.counters.of(conn.identity!.pid, conn.identity!.workerId);
      conn.timed = this.timeRequests;
      if (generationPath !== this.path || this.closing) {
        conn.socket.end();
        return;
      }
      this.busy.add(conn);
      this.release(conn);
    };
  }

  /**
   * A request on `conn` completed (or the connection just opened): hand it the next waiting
   * request(s), or park it when it has nothing left to do.
   */
  private release(conn: BridgeConnection): void {
    if (conn.closed || this.closing || conn.retire) {
      if (conn.queue.length === 0) {
        this.busy.delete(conn);
        conn.socket.end();
      }
      return;
    }
    if (conn.queue.length === 0) {
      const w = this.waiters.shift();
      if (!w) {
        this.busy.delete(conn);
        this.idle.push(conn);
        return;
      }
      w.cb(null, conn);
    }
    // Queue more waiting requests behind it (they go out in the same write) — only when every
    // connection is taken: while others are still opening (a cold start of N threads or async
    // cores), the waiting requests are theirs, or N concurrent slow requests would run in turn.
    while (
      this.pipelineDepth > 0 &&
      this.opening === 0 &&
      this.activeCount() >= this.capacity &&
      conn.lastDuration <= PIPELINE_FRESH_MS &&
      !conn.bodyStreaming &&
      conn.queue.length > 0 &&
      conn.queue.length <= this.pipelineDepth &&
      this.waiters[0]?.pipelinable &&
      !conn.closed
    ) {
      this.waiters.shift()!.cb(null, conn);
    }
  }

  private forget(conn: BridgeConnection, orphans: Waiter[]): void {
    this.busy.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    // Never started by the dead bridge: first in line for the next connection.
    for (let k = orphans.length - 1; k >= 0; k--) this.waiters.unshift({ cb: orphans[k]!, pipelinable: true });
    this.fill();
  }

  /**
   * Point at a new generation's socket (graceful reload): idle connections to the old
   * generation close now, busy ones close after their current requests.
   */
  switchTo(path: string, capacity: number, fastcgi?: FastcgiAdapter): void {
    this.path = path;
    // The new generation's FastCGI settings (a reload re-read the plugin's options): new
    // connections use them, old ones finish with theirs.
    if (fastcgi && this.fastcgi) this.fastcgi = fastcgi;
    this.capacity = Math.max(1, capacity);
    for (const c of this.idle.splice(0)) c.socket.end();
    for (const c of this.busy) {
      // No new work for the old generation, and what it was sent must reach it before it is
      // told to stop (it serves what it has received, then exits).
      c.retire = true;
      c.flush();
    }
    this.fill();
  }

  /** Close everything (shutdown). Waiting requests are answered 503. */
  close(): void {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.socket.end();
    for (const c of this.busy) c.retire = true;
    for (const w of this.waiters.splice(0)) w.cb(new Error('server is shutting down'), null);
  }

  /** Connections with a request in progress (harakiri checks, stats). */
  inFlight(): BridgeConnection[] {
    return [...this.busy].filter((c) => c.queue.length > 0);
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
