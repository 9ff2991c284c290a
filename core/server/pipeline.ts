/**
 * The request pipeline of a core worker: a parsed request (uwsgi vars + body) goes through
 * modifier1 dispatch and app selection to a bridge, and the response comes back to the
 * front end's sink; the request is logged when it ends.
 *
 *   front end (http / uwsgi) → dispatch(modifier1) → select app (mountpoint) → bridge → sink → log
 */
import type { BodySource, BridgeConnection, PoolClient, ResponseSink, Waiter } from '../bridge/pool-client.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import { encodePacket, getVar, UWSGI_HEADER_SIZE, type UwsgiVars } from '../protocol/uwsgi-packet.ts';
import type { RequestRecord } from '../logging/request-log.ts';
import type { RequestLogger } from '../logging/worker-log.ts';
import type { ServerLog } from '../logging/server-log.ts';

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
}

/** Per-bridge counters for the request log's "req: APPREQS/WORKERREQS". */
interface BridgeCounters {
  requests: number;
  apps: number[];
}

export class RequestPipeline {
  private readonly o: PipelineOptions;
  private readonly counters = new Map<number, BridgeCounters>();

  constructor(options: PipelineOptions) {
    this.o = options;
  }

  /** Route a request. Returns false when the modifier is unavailable (the front end closes the connection, as uWSGI). */
  handle(req: CoreRequest, sink: ResponseSink): boolean {
    const route = this.route(req.modifier1);
    if (!route) {
      this.o.log.warn(`-- unavailable modifier requested: ${req.modifier1} --`);
      return false;
    }
    const app = this.selectApp(route, req.vars);
    if (app < 0) {
      this.o.log.warn('--- no app found for this request (no mountpoint matches and --no-default-app is set) ---');
      sink.fail(404, 'Not Found');
      return true;
    }
    let packet: Buffer;
    try {
      packet = encodePacket(req.modifier1 === 30 ? 0 : req.modifier1, req.vars, req.modifier2);
    } catch {
      this.o.log.warn(`request vars for ${req.uri} do not fit in a uwsgi packet (65535 bytes): request refused`);
      sink.fail(431, 'Request Header Fields Too Large');
      return true;
    }
    const body = req.contentLength > 0 ? req.body : null;
    // Also the retry: a request queued behind one whose bridge died is re-sent through it.
    const dispatch: Waiter = (err, conn) => {
      if (err || !conn) sink.fail(503, 'Service Unavailable');
      else this.send(conn, req, app, packet, body, sink, dispatch);
    };
    route.client.acquire(dispatch, body === null);
    return true;
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
   * SCRIPT_NAME. The chosen mountpoint is sent as UWSGI_APPID so the bridge need not repeat this.
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
    if (mps.length === 1 && mps[0] === '' && !appIdVar) {
      vars.push(['UWSGI_APPID', '']);
      return 0;
    }
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

  private send(conn: BridgeConnection, req: CoreRequest, app: number, packet: Buffer, body: BodySource | null, sink: ResponseSink, retry: Waiter): void {
    const identity = conn.identity!;
    const log = this.o.requestLog;
    let head: ResponseHead | null = null;
    let bodyBytes = 0;
    /** The client went away mid-response: a write error for --log-ioerror and %(werr). */
    let clientGone = false;
    const t0 = performance.now();
    const finish = (status: number): void => {
      const c = this.count(identity.pid, app);
      if (!log) return;
      const record: RequestRecord = {
        pid: identity.pid,
        app,
        appRequests: c.apps[app] ?? 0,
        workerRequests: c.requests,
        workerId: identity.workerId,
        remoteAddr: req.remoteAddr,
        remoteUser: getVar(req.vars, 'REMOTE_USER') ?? '',
        varCount: req.vars.length,
        packetSize: packet.length - UWSGI_HEADER_SIZE,
        startedAt: req.startedAt,
        micros: Math.round((performance.now() - t0) * 1000),
        method: req.method,
        uri: req.uri,
        protocol: req.protocol,
        status,
        bodyBytes,
        headerCount: head ? head.headerCount : 0,
        headerBytes: head ? head.headerBytes : 0,
        core: identity.core,
        modifier1: req.modifier1,
        modifier2: req.modifier2,
        host: getVar(req.vars, 'HTTP_HOST') ?? '',
        userAgent: getVar(req.vars, 'HTTP_USER_AGENT') ?? '',
        referer: getVar(req.vars, 'HTTP_REFERER') ?? '',
        contentLength: getVar(req.vars, 'CONTENT_LENGTH') ?? '',
        vars: req.vars,
        readErrors: 0,
        writeErrors: clientGone ? 1 : 0,
        forwardedFor: getVar(req.vars, 'HTTP_X_FORWARDED_FOR') ?? '',
      };
      if (log.wants(record)) this.o.log.request(log.format(record));
    };
    const logged: ResponseSink = {
      head(h) {
        head = h;
        sink.head(h);
      },
      body(chunk) {
        bodyBytes += chunk.length;
        return sink.body(chunk);
      },
      onDrain: (cb) => sink.onDrain(cb),
      bindAbort: (abort) => sink.bindAbort(abort),
      end() {
        sink.end();
        finish(head ? head.statusCode : 500);
      },
      fail: (status, reason) => {
        // Clients get the standard reason phrase; the log gets what actually happened.
        if (status === 502) this.o.log.warn(`${req.method} ${req.uri} answered 502: ${reason}`);
        if (status === 499) clientGone = true;
        sink.fail(status, reason);
        finish(head ? head.statusCode : status);
      },
    };
    conn.send(packet, body, req.method === 'HEAD', logged, { bridge: identity, uri: req.uri }, retry);
  }

  private count(pid: number, app: number): BridgeCounters {
    let c = this.counters.get(pid);
    if (!c) {
      c = { requests: 0, apps: [] };
      this.counters.set(pid, c);
    }
    c.requests++;
    c.apps[app] = (c.apps[app] ?? 0) + 1;
    return c;
  }

  /** Forget counters of bridges that are gone (keeps the map small across respawns). */
  forgetBridge(pid: number): void {
    this.counters.delete(pid);
  }
}

