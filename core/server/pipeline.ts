/**
 * The request pipeline of a core worker: a parsed request (uwsgi vars + body) goes through
 * modifier1 dispatch and app selection to a bridge, and the response comes back to the
 * front end's sink; the request is logged when it ends.
 *
 *   front end (http / uwsgi) → dispatch(modifier1) → select app (mountpoint) → bridge → sink → log
 */
import type { BodySource, BridgeConnection, PoolClient, ResponseSink, Waiter } from '../bridge/pool-client.ts';
import { encodePacket, UWSGI_HEADER_SIZE, type UwsgiVars } from '../protocol/uwsgi-packet.ts';
import type { RequestLogger } from '../logging/worker-log.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { ClientWire } from '../routing/client-wire.ts';
import type { RequestRouteContext } from '../routing/context.ts';
import type { ChainResult } from '../routing/engine.ts';
import { finalChainSink } from '../routing/final-chain.ts';
import { parseStatusLine, respond } from '../routing/respond.ts';
import { ChainedResponse } from '../routing/response-chains.ts';
import { editingSink } from '../routing/response-edits.ts';
import type { RequestRouter } from '../routing/router.ts';
import type { StaticFiles } from '../static/static-files.ts';
import { transformingSink } from '../transform/chain.ts';
import type { PipelineRequestRecord } from '../logging/request-record.ts';
import { requestRecord, tallyingSink, varsBlockSize } from './logged-sink.ts';
import { ForwardingSink } from '../bridge/forwarding-sink.ts';

/** A request as a front end hands it over. */
export interface CoreRequest {
  modifier1: number;
  modifier2: number;
  vars: UwsgiVars;
  method: string;
  uri: string;
  protocol: string;
  remoteAddr: string;
  /** Body bytes announced (CONTENT_LENGTH), 0 for none. */
  contentLength: number;
  body: BodySource | null;
  startedAt: number;
}

/** Where requests of one modifier go: the pool of a language plugin and its apps. */
export interface AppRoute {
  plugin: string;
  client: PoolClient;
  /** Mountpoints by app index ("" is the default app). */
  mountpoints: string[];
}

export interface PipelineOptions {
  /** modifier1 → route; undefined = unavailable. */
  routes: Array<AppRoute | undefined>;
  /** The route for modifier1 0 requests when no python app is loaded (first loaded app). */
  defaultRoute: AppRoute | undefined;
  allowedModifiers: Set<number> | null;
  manageScriptName: boolean;
  noDefaultApp: boolean;
  log: ServerLog;
  /** null when no request is ever logged (--disable-logging without re-enablers). */
  requestLog: RequestLogger | null;
  /** The internal router's request chain; null when no route rule is configured (no per-request cost). */
  router?: RequestRouter | null;
  /** This core worker's id (1-based), for routing's `${uwsgi[wid]}` and its own log lines. */
  workerId?: number;
  /** The static file server (core/static/); null when no static lookup option is set (no per-request cost). */
  staticFiles?: StaticFiles | null;
}

/** A request waiting for a bridge connection (PipelineRequest.dispatch). */
interface PendingDispatch {
  req: CoreRequest;
  app: number;
  packet: Buffer;
  body: BodySource | null;
  sink: ResponseSink;
  routed: RequestRouteContext | null;
  waiter: Waiter | null;
}

/** Per-bridge counters for the request log's "req: APPREQS/WORKERREQS". */
interface BridgeCounters {
  requests: number;
  apps: number[];
}

export class RequestPipeline {
  private readonly o: PipelineOptions;
  private readonly counters = new Map<number, BridgeCounters>();
  /** How many bridges' counters are kept before the exited ones are looked for (sweepCounters). */
  private sweepCountersAt = 64;

  constructor(options: PipelineOptions) {
    this.o = options;
  }

  /** Route a request. Returns false when the modifier is unavailable (the front end closes the connection, as uWSGI). */
  handle(req: CoreRequest, sink: ResponseSink): boolean {
    const router = this.o.router;
    if (!router) return this.dispatch(req, sink, null);
    // Routing runs before the modifier is looked up, as in uWSGI (wsgi_req_recv applies the
    // routes, then the plugin of modifier1 runs): a server with routes and static files but no
    // app answers what its rules answer, and `setmodifier1:` can pick a pool.
    let ctx: RequestRouteContext | null = null;
    // The final chain wraps the client sink once: whoever answers (app, routing, static
    // file, an error), it runs when that response is over. The wire above it is where raw
    // output (send:, disableheaders:) and every response of the request meet.
    const front = new ClientWire(router.tables.final ? finalChainSink(sink, router.tables.final, () => ctx, (line) => this.o.log.error(line)) : sink);
    const c = router.context(req, (rc) => this.routedSink(req, front, rc));
    c.response.wire = front;
    c.response.protocol = req.protocol;
    ctx = c;
    const failed = (err: Error): void => {
      this.o.log.error(`internal routing failed for ${req.uri}: ${err.message}`);
      front.fail(500, 'Internal Server Error');
    };
    try {
      const result = router.runRequestChain(c);
      if (typeof (result as Promise<ChainResult>).then === 'function') {
        (result as Promise<ChainResult>).then((r) => this.afterRequestChain(r, req, front, c)).catch(failed);
      } else {
        this.afterRequestChain(result as ChainResult, req, front, c);
      }
    } catch (err) {
      failed(err as Error);
    }
    return true;
  }

  /**
   * After the request chain (spec/subsystems.md §6.1), which runs before the app: it may have
   * answered itself (break, return, redirect…), closed the request, or changed vars and
   * modifiers for the dispatch.
   */
  private afterRequestChain(result: ChainResult, req: CoreRequest, sink: ResponseSink, ctx: RequestRouteContext): void {
    if (result === 'break') {
      if (ctx.response.answered) return;
      // `clearheaders:` prepared a head and nothing answered: uWSGI writes prepared headers
      // when the request closes, so that status goes out with no body.
      const prepared = ctx.response.prepared === null ? null : parseStatusLine(ctx.response.prepared);
      if (prepared) {
        respond(ctx, prepared[0], prepared[1], [], null);
        return;
      }
      // BREAK without a response (bare `break:`, an error, a backward goto): close, as uWSGI.
      this.closeUnanswered(req, sink, ctx);
      return;
    }
    // An action answered and let routing go on (memcached-continue, redis-continue on a hit):
    // the response is out and the app could not send another. uWSGI runs the app anyway and
    // its start_response fails ("headers already sent"); here it is not run at all.
    if (ctx.response.answered) return;
    // Actions may have rewritten the method, URI and modifiers the log and dispatch use.
    req.modifier1 = ctx.modifier1;
    req.modifier2 = ctx.modifier2;
    req.method = ctx.getVar('REQUEST_METHOD') ?? req.method;
    req.uri = ctx.getVar('REQUEST_URI') ?? req.uri;
    if (!this.dispatch(req, sink, ctx)) {
      // Too late to refuse the connection silently (routing may have waited): close it.
      this.closeUnanswered(req, sink, ctx);
    }
  }

  /**
   * Close a request routing ended without an answer, with a log line as uWSGI writes one:
   * nothing prepared a status, so 500 (and the bytes `send:` wrote, if any).
   */
  private closeUnanswered(req: CoreRequest, sink: ResponseSink, ctx: RequestRouteContext): void {
    const logged = this.routingLog(req, sink, ctx);
    if (logged.close) logged.close(500);
    else logged.fail(500, 'Internal Server Error');
  }

  /**
   * A response tsuwsgi makes itself before any app answered (no app, no bridge, a packet too
   * big). With the error/response chains or error pages configured it goes through them and
   * is logged, as uWSGI's managed responses (uwsgi_404, uwsgi_500) are; otherwise the front
   * end answers it directly.
   */
  private failRequest(req: CoreRequest, sink: ResponseSink, routed: RequestRouteContext | null, status: number, reason: string): void {
    if (routed && this.o.router?.chainsResponses) this.routedSink(req, sink, routed).fail(status, reason);
    else sink.fail(status, reason);
  }

  private dispatch(req: CoreRequest, sink: ResponseSink, routed: RequestRouteContext | null): boolean {
    // Static files (§17) answer before the app, after routing (a route `break` can block them).
    const statics = this.o.staticFiles;
    if (statics) {
      // A static file goes through routing's chains, header edits and transformations like an app response.
      const wrap = routed ? (out: ResponseSink): ResponseSink => this.responseSink(routed, out) : undefined;
      if (statics.tryServe(req, sink, routed?.noLog, wrap)) return true;
    }
    const route = this.route(req.modifier1);
    if (!route) {
      this.o.log.warn(`-- unavailable modifier requested: ${req.modifier1} --`);
      return false;
    }
    const app = this.selectApp(route, req.vars);
    if (app < 0) {
      this.o.log.warn('--- no app found for this request (no mountpoint matches and --no-default-app is set) ---');
      this.failRequest(req, sink, routed, 404, 'Not Found');
      return true;
    }
    let packet: Buffer;
    try {
      packet = encodePacket(req.modifier1 === 30 ? 0 : req.modifier1, req.vars, req.modifier2);
    } catch {
      this.o.log.warn(`request vars for ${req.uri} do not fit in a uwsgi packet (65535 bytes): request refused`);
      this.failRequest(req, sink, routed, 431, 'Request Header Fields Too Large');
      return true;
    }
    const body = req.contentLength > 0 ? req.body : null;
    // The waiter is bound, not an arrow: run from source, tsx names every arrow function
    // created per request with a defineProperty call (measurable on the hot path).
    const pending: PendingDispatch = { req, app, packet, body, sink, routed, waiter: null };
    const waiter: Waiter = this.onBridgeConnection.bind(this, pending);
    pending.waiter = waiter;
    route.client.acquire(waiter, body === null);
    return true;
  }

  /** A bridge connection for a waiting request, or none (503). Also the retry: a request queued behind one whose bridge died is re-sent through it. */
  private onBridgeConnection(p: PendingDispatch, err: Error | null, conn: BridgeConnection | null): void {
    if (err || !conn) this.failRequest(p.req, p.sink, p.routed, 503, 'Service Unavailable');
    else this.send(conn, p.req, p.app, p.packet, p.body, p.sink, p.waiter!, p.routed);
  }

  private route(modifier1: number): AppRoute | undefined {
    if (this.o.allowedModifiers && !this.o.allowedModifiers.has(modifier1)) return undefined;
    const r = this.o.routes[modifier1];
    if (r) return r;
    // uWSGI 1.9.18+: modifier1 0 with no python app goes to the first loaded app.
    if (modifier1 === 0 && !this.o.noDefaultApp) return this.o.defaultRoute;
    return undefined;
  }

  /**
   * Pick the app (uWSGI's uwsgi_get_app_id): UWSGI_APPID, else SCRIPT_NAME, else the default
   * app. With --manage-script-name the longest mountpoint prefixing PATH_INFO becomes
   * SCRIPT_NAME. The chosen mountpoint is sent as UWSGI_APPID so the bridge need not repeat this
   * (except with a single default app, where there is nothing to choose).
   */
  private selectApp(route: AppRoute, vars: UwsgiVars): number {
    const mps = route.mountpoints;
    let appIdVar: [string, string] | undefined;
    let scriptName: [string, string] | undefined;
    let pathInfo: [string, string] | undefined;
    for (const pair of vars) {
      const k = pair[0];
      if (k === 'UWSGI_APPID') appIdVar = pair;
      else if (k === 'SCRIPT_NAME') scriptName = pair;
      else if (k === 'PATH_INFO') pathInfo = pair;
    }
    // One default app and no UWSGI_APPID from the front end: nothing to select. uWSGI sends no
    // UWSGI_APPID to the app then, and every bridge falls back to its default app without one
    // (docs/bridge-protocol.md §3.2), so none is added (the app's environ stays uWSGI's).
    if (mps.length === 1 && mps[0] === '' && !appIdVar) return 0;
    let idx = -1;
    if (appIdVar) idx = mps.indexOf(appIdVar[1]);
    if (idx < 0 && this.o.manageScriptName && pathInfo) {
      let best = -1;
      for (let i = 0; i < mps.length; i++) {
        const mp = mps[i]!;
        if (mp === '' || mp === '/') continue;
        const p = pathInfo[1];
        if ((p === mp || p.startsWith(mp.endsWith('/') ? mp : mp + '/')) && (best < 0 || mp.length > mps[best]!.length)) best = i;
      }
      if (best >= 0) {
        const mp = mps[best]!;
        pathInfo[1] = pathInfo[1].slice(mp.length);
        if (scriptName) scriptName[1] = mp;
        else vars.push(['SCRIPT_NAME', mp]);
        idx = best;
      }
    }
    if (idx < 0 && scriptName && scriptName[1] !== '') idx = mps.indexOf(scriptName[1]);
    if (idx < 0) {
      if (this.o.noDefaultApp) return -1;
      idx = mps.indexOf('');
      if (idx < 0) idx = mps.indexOf('/');
      if (idx < 0) idx = 0;
    }
    const id = mps[idx]!;
    if (appIdVar) appIdVar[1] = id;
    else vars.push(['UWSGI_APPID', id]);
    return idx;
  }

  /**
   * The sink routing's own responses go to: the response chains, transformations and header
   * edits, then the front end's sink, and a request log line like an app response's (this
   * core worker stands in for the bridge).
   */
  private routedSink(req: CoreRequest, sink: ResponseSink, ctx: RequestRouteContext): ResponseSink {
    return this.responseSink(ctx, this.routingLog(req, sink, ctx));
  }

  /** `sink` with the request log line of a response this core worker makes (routing's own). */
  private routingLog(req: CoreRequest, sink: ResponseSink, ctx: RequestRouteContext): ResponseSink {
    const log = this.o.requestLog;
    const logged =
      !log || ctx.noLog
        ? sink
        : tallyingSink(sink, (status, tally) => {
            if (ctx.noLog) return;
            const record = requestRecord(req, status, tally);
            record.pid = process.pid;
            record.workerId = this.o.workerId ?? 1;
            record.packetSize = varsBlockSize(req);
            record.micros = Math.max(0, Date.now() - req.startedAt) * 1000;
            // The chain may have rewritten the method, URI and modifiers before answering.
            record.method = ctx.getVar('REQUEST_METHOD') ?? req.method;
            record.uri = ctx.getVar('REQUEST_URI') ?? req.uri;
            record.modifier1 = ctx.modifier1;
            record.modifier2 = ctx.modifier2;
            if (ctx.logvars) record.logvars = ctx.logvars;
            logRawOutput(record, ctx);
            log.emit(record, this.o.log);
          });
    return logged;
  }

  /**
   * What a response (app, routing's, static) is written to when routing is configured:
   *
   *   [error chain → collect/pull → response chain] → transformations → header edits → `logged`
   *
   * The first stage exists only when the router has something for it; transformations and
   * header edits are built when the head goes out, so the response chain can still add them.
   */
  private responseSink(routed: RequestRouteContext, logged: ResponseSink): ResponseSink {
    const build = (): ResponseSink => this.transformed(routed.response.active ? editingSink(logged, routed.response) : logged, routed);
    const router = this.o.router;
    if (!router?.chainsResponses) return build();
    return new ChainedResponse(routed, router.tables, build, (line) => this.o.log.error(line)).entry();
  }

  /** Wrap `out` in the request's transformation chain (§7) when routing appended any. */
  private transformed(out: ResponseSink, routed: RequestRouteContext | null): ResponseSink {
    if (!routed || routed.transformations.length === 0) return out;
    return transformingSink(out, routed.transformations, { frontEndChunks: out.framesChunked === true, log: (line) => this.o.log.error(line) });
  }

  private send(conn: BridgeConnection, req: CoreRequest, app: number, packet: Buffer, body: BodySource | null, sink: ResponseSink, retry: Waiter, routed: RequestRouteContext | null): void {
    const identity = conn.identity!;
    const log = this.o.requestLog;
    const t0 = performance.now();
    // Clients get the standard reason phrase; the log gets what actually happened.
    const notice = this.notice502.bind(this, req);
    // With the response chains, a failure before the head becomes a response of its own
    // (chains, error page), so the notice is taken where the bridge reports it.
    const chained = routed !== null && this.o.router?.chainsResponses === true;
    const logged = tallyingSink(
      sink,
      (status, tally) => {
        const c = this.count(identity.pid, app);
        if (!log || routed?.noLog) return;
        const record = requestRecord(req, status, tally);
        record.pid = identity.pid;
        record.app = app;
        record.appRequests = c.apps[app] ?? 0;
        record.workerRequests = c.requests;
        record.workerId = identity.workerId;
        record.packetSize = packet.length - UWSGI_HEADER_SIZE;
        record.micros = Math.round((performance.now() - t0) * 1000);
        record.core = identity.core;
        if (routed) {
          if (routed.logvars) record.logvars = routed.logvars;
          logRawOutput(record, routed);
        }
        log.emit(record, this.o.log);
      },
      chained ? undefined : notice,
    );
    // Routing's chains, transformations and addheader/delheader apply to the app's response on
    // its way out (and the log counts what was sent).
    const out = routed ? this.responseSink(routed, logged) : logged;
    const info = { bridge: identity, uri: req.uri, harakiri: routed ? routed.harakiri : 0 };
    conn.send(packet, body, req.method === 'HEAD', chained ? failNotice(out, notice) : out, info, retry, req.vars);
  }

  private notice502(req: CoreRequest, status: number, reason: string): void {
    if (status === 502) this.o.log.warn(`${req.method} ${req.uri} answered 502: ${reason}`);
  }

  private count(pid: number, app: number): BridgeCounters {
    let c = this.counters.get(pid);
    if (!c) {
      if (this.counters.size >= this.sweepCountersAt) this.sweepCounters();
      c = { requests: 0, apps: [] };
      this.counters.set(pid, c);
    }
    c.requests++;
    c.apps[app] = (c.apps[app] ?? 0) + 1;
    return c;
  }

  /**
   * Forget the counters of bridges (and FastCGI responders) that have exited. Workers come and
   * go (--max-requests, php-cgi recycling, respawns), each with a new pid, so the map would
   * grow for ever; it is swept when it reaches a size, which doubles when every pid in it is
   * still alive (a large pool), so a sweep stays rare next to the requests that fill the map.
   */
  private sweepCounters(): void {
    for (const pid of this.counters.keys()) {
      try {
        process.kill(pid, 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') this.counters.delete(pid);
      }
    }
    if (this.counters.size >= this.sweepCountersAt / 2) this.sweepCountersAt *= 2;
  }

  /** Stats server (core/stats/): requests per app index of a bridge, as the request log counts them. Read-only, never on the hot path. */
  appRequests(pid: number): readonly number[] | undefined {
    return this.counters.get(pid)?.apps;
  }
}


/**
 * What the log line says after routing's raw output (`send:`, `disableheaders:`), which the
 * tally does not see: the bytes `send:` wrote count as body bytes (uWSGI's "generated N
 * bytes"), a head `send:` wrote for a `clearheaders:` is the status and headers, and a head
 * that was dropped sent 0 header bytes.
 */
function logRawOutput(record: PipelineRequestRecord, ctx: RequestRouteContext): void {
  const wire = ctx.response.wire;
  if (wire === null || !wire.rawStarted) return;
  record.bodyBytes += wire.sentBytes;
  if (wire.sentHead) {
    record.status = wire.sentHead.statusCode;
    record.headerBytes = wire.sentHead.headerBytes;
    record.headerCount = wire.sentHead.headerCount;
  } else if (wire.headDropped) {
    record.headerBytes = 0;
  }
}

/** `sink`, telling `notice` about a failure before passing it on. */
function failNotice(sink: ResponseSink, notice: (status: number, reason: string) => void): ResponseSink {
  return new FailNoticeSink(sink, notice);
}

class FailNoticeSink extends ForwardingSink {
  private readonly notice: (status: number, reason: string) => void;

  constructor(inner: ResponseSink, notice: (status: number, reason: string) => void) {
    super(inner);
    this.notice = notice;
  }

  override fail(status: number, reason: string): void {
    this.notice(status, reason);
    this.inner.fail(status, reason);
  }
}
