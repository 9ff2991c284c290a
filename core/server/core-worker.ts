/**
 * The core worker role: serve every client socket, run the request pipeline, hold the
 * connections to the app pools, enforce harakiri. Runs inside the only process (no
 * --master) or in a child of the master (see core/master/master.ts).
 */
import type http from 'node:http';
import type net from 'node:net';
import { PoolClient } from '../bridge/pool-client.ts';
import type { FastcgiAdapter } from '../bridge/fastcgi-translator.ts';

/** What a core worker needs to make a FastCGI adapter: the plugin (and its file) and its bridge settings. */
export interface FastcgiHandoff {
  plugin: string;
  file?: string;
  settings: Record<string, unknown>;
}
import { PluginError } from '../errors.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { compileRequestLogger, type ChildLogSettings, type RequestLogSettings } from '../logging/worker-log.ts';
import { startHttpFrontend } from './http-frontend.ts';
import { RequestPipeline, type AppRoute } from './pipeline.ts';
import { defaultPluginSource } from '../plugins/catalog.ts';
import { planPlugins } from '../plugins/plan-plugins.ts';
import { ResolvedOptions } from '../options/resolved.ts';
import { compileRoutingTables, RequestRouter, type RoutingPlan } from '../routing/router.ts';
import type { BoundSocket } from './sockets.ts';
import { startUwsgiFrontend } from './uwsgi-frontend.ts';
import type { StaticPlan } from '../static/plan.ts';
import { StaticFiles } from '../static/static-files.ts';
import type { CoreWorkerStats } from '../stats/counters.ts';
import { coreWorkerSnapshot } from '../stats/snapshot.ts';

/** What a core worker needs to know; serialisable so the master can send it to a child. */
export interface CoreWorkerPlan {
  sockets: BoundSocket[];
  pools: Array<{
    name: string;
    socketPath: string;
    capacity: number;
    mountpoints: string[];
    /**
     * The pool's bridges hand off FastCGI responders (docs/bridge-protocol.md §3.4): the plugin
     * (and its file, when loaded from one) whose bridge.fastcgi() makes the adapter, with the
     * bridge settings it gets.
     */
    fastcgi?: FastcgiHandoff;
  }>;
  /** modifier1 → pool name (after N:name and remap-modifier). */
  modifierRoutes: Record<number, string>;
  /** Pool for modifier1 0 when no python app is loaded. */
  defaultPool: string | null;
  allowedModifiers: number[] | null;
  manageScriptName: boolean;
  noDefaultApp: boolean;
  bufferSize: number;
  maxVars: number;
  socketTimeout: number;
  limitPost: number;
  keepAliveSeconds: number;
  listenBacklog: number;
  httpSocketModifier1: number;
  httpSocketModifier2: number;
  httpModifier1: number;
  httpModifier2: number;
  harakiri: number;
  /** Requests that may queue behind the one in progress on a bridge connection (0 = off). */
  bridgePipeline: number;
  /** Which requests are logged and how (--disable-logging, --log-4xx…, --log-format, --log-json). */
  requestLog: RequestLogSettings;
  /** A core worker child's own log (descriptors, JSON, --log-date). */
  childLog: ChildLogSettings;
  /** This worker's index and the number of core workers (pool capacity is shared). */
  workerIndex: number;
  workerCount: number;
  /** The internal router's request chain (validated by the master); null = no rules. */
  routing: RoutingPlan | null;
  /** Static file serving (--check-static, --static-map…); null/absent = off. */
  staticFiles?: StaticPlan | null;
  /** A stats server runs: time every request (two clock reads) for running_time and avg_rt. */
  statsTiming?: boolean;
}

/** Calls from the core role into the master role. */
export interface MasterLink {
  /**
   * Kill the bridge `pid` stuck on `uri` — or, on a FastCGI handoff, only the responder
   * `responderPid` it handed this connection (docs/bridge-protocol.md §3.4).
   */
  harakiri(pool: string, pid: number, uri: string, startedAt: number, responderPid: number | null): void;
}

/** This worker's share of a pool's bridge threads, so all core workers together never exceed it. */
export function capacityShare(total: number, index: number, count: number): number {
  return Math.floor(total / count) + (index < total % count ? 1 : 0);
}

export class CoreWorker {
  private readonly plan: CoreWorkerPlan;
  private readonly log: ServerLog;
  private readonly master: MasterLink;
  private readonly clients = new Map<string, PoolClient>();
  private readonly servers: Array<http.Server | net.Server> = [];
  private harakiriTimer: NodeJS.Timeout | null = null;
  private pipeline: RequestPipeline | null = null;

  constructor(plan: CoreWorkerPlan, log: ServerLog, master: MasterLink) {
    this.plan = plan;
    this.log = log;
    this.master = master;
  }

  start(): void {
    const p = this.plan;
    const routeByPool = new Map<string, AppRoute>();
    for (const pool of p.pools) {
      const fastcgi = pool.fastcgi ? { adapter: this.fastcgiAdapter(pool.fastcgi), log: (line: string) => this.log.error(line) } : null;
      const client = new PoolClient(pool.socketPath, capacityShare(pool.capacity, p.workerIndex, p.workerCount), p.bridgePipeline, p.statsTiming === true, fastcgi);
      this.clients.set(pool.name, client);
      routeByPool.set(pool.name, { plugin: pool.name, client, mountpoints: pool.mountpoints });
    }
    const routes: Array<AppRoute | undefined> = new Array(256);
    for (const [mod, name] of Object.entries(p.modifierRoutes)) routes[Number(mod)] = routeByPool.get(name);
    const requestLog = compileRequestLogger(p.requestLog);
    const router = p.routing ? this.buildRouter(p.routing) : null;
    const pipeline = new RequestPipeline({
      routes,
      defaultRoute: p.defaultPool ? routeByPool.get(p.defaultPool) : undefined,
      allowedModifiers: p.allowedModifiers ? new Set(p.allowedModifiers) : null,
      manageScriptName: p.manageScriptName,
      noDefaultApp: p.noDefaultApp,
      log: this.log,
      requestLog,
      router,
      workerId: p.workerIndex + 1,
      staticFiles: p.staticFiles ? new StaticFiles(p.staticFiles, this.log, requestLog, p.workerIndex + 1) : null,
    });
    this.pipeline = pipeline;

    for (const s of p.sockets) {
      if (s.protocol === 'http') {
        const isRouter = s.option === 'http';
        this.servers.push(
          startHttpFrontend({
            fd: s.fd,
            backlog: p.listenBacklog,
            bufferSize: p.bufferSize,
            modifier1: isRouter ? p.httpModifier1 : p.httpSocketModifier1,
            modifier2: isRouter ? p.httpModifier2 : p.httpSocketModifier2,
            limitPost: p.limitPost,
            keepAliveSeconds: p.keepAliveSeconds,
            pipeline,
            log: this.log,
          }),
        );
      } else {
        this.servers.push(
          startUwsgiFrontend({
            fd: s.fd,
            backlog: p.listenBacklog,
            bufferSize: p.bufferSize,
            maxVars: p.maxVars,
            socketTimeout: p.socketTimeout,
            limitPost: p.limitPost,
            pipeline,
            log: this.log,
          }),
        );
      }
    }
    // With routing, a `harakiri:` rule may set a timer for a request even without --harakiri.
    if (p.harakiri > 0 || p.routing !== null) {
      // uWSGI's master checks every second (check-interval); so do we.
      this.harakiriTimer = setInterval(() => this.checkHarakiri(), 1000);
      this.harakiriTimer.unref();
    }
  }

  /** The FastCGI adapter of a pool whose bridges hand off responders (the plugin is loaded here too). */
  private fastcgiAdapter(spec: FastcgiHandoff): FastcgiAdapter {
    const [d] = planPlugins([spec.plugin], spec.file ? { [spec.plugin]: spec.file } : {}, defaultPluginSource().available);
    const make = d?.bridge?.fastcgi;
    if (!d || !make) throw new PluginError(`core worker: the plugin "${spec.plugin}" has no FastCGI adapter here, but its pool hands off FastCGI responders`);
    return make.call(d.bridge, spec.settings);
  }

  /**
   * Rebuild the routing tables the master validated. Route actions come from the plugins the
   * master had loaded: found by name in this build, or loaded from the same plugin file. A
   * file that fails here throws, and start() fails (a child reports it to the master, which
   * stops start-up with the message).
   */
  private buildRouter(plan: RoutingPlan): RequestRouter {
    const plugins = planPlugins(plan.plugins, plan.pluginFiles, defaultPluginSource().available);
    const tables = compileRoutingTables(plan.entries, plugins);
    return new RequestRouter(tables, new ResolvedOptions(plan.entries), (line) => this.log.info(line), this.plan.workerIndex + 1);
  }

  private checkHarakiri(): void {
    const global = this.plan.harakiri * 1000;
    const now = Date.now();
    for (const [name, client] of this.clients) {
      for (const conn of client.inFlight()) {
        const ex = conn.exchange!;
        // A routing `harakiri:N` is a second timer for this request (uWSGI's user harakiri, checked
        // next to the worker's): whichever expires first kills it.
        const own = (ex.harakiri ?? 0) * 1000;
        const limit = own > 0 && (global === 0 || own < global) ? own : global;
        if (limit === 0) continue;
        // Counted from when the bridge started the request (uWSGI: when the worker took it),
        // not from when it arrived: time spent waiting for a free worker is not the app's.
        if (now - conn.headSince < limit) continue;
        // The client gets 504 now; the master dumps the bridge's stack and replaces it.
        conn.retire = true;
        conn.failExchange(504, 'Gateway Timeout');
        conn.socket.destroy();
        this.master.harakiri(name, ex.bridge.pid, ex.uri, conn.headSince, conn.responderPid);
      }
    }
  }

  /** This worker's counters and requests in flight, for the stats server (asked by the master, never per request). */
  statsSnapshot(): CoreWorkerStats {
    const pipeline = this.pipeline;
    return coreWorkerSnapshot(this.clients, (pid) => pipeline?.appRequests(pid));
  }

  /**
   * A pool moved to a new generation (graceful reload). `fastcgi`: the new generation's
   * handoff settings, for a pool whose bridges hand off FastCGI responders (re-read options).
   */
  switchPool(name: string, socketPath: string, capacity: number, fastcgi?: FastcgiHandoff): void {
    this.clients.get(name)?.switchTo(socketPath, capacityShare(capacity, this.plan.workerIndex, this.plan.workerCount), fastcgi ? this.fastcgiAdapter(fastcgi) : undefined);
  }

  /** Stop accepting; with `graceful`, wait for requests in flight (bounded by `mercyMs`). */
  async stop(graceful: boolean, mercyMs: number): Promise<void> {
    if (this.harakiriTimer) clearInterval(this.harakiriTimer);
    for (const s of this.servers) {
      s.close();
      const maybeHttp = s as http.Server;
      if (typeof maybeHttp.closeIdleConnections === 'function') maybeHttp.closeIdleConnections();
    }
    if (graceful) {
      const deadline = Date.now() + mercyMs;
      while (Date.now() < deadline && [...this.clients.values()].some((c) => c.busy.size > 0 || c.waiting > 0)) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    for (const c of this.clients.values()) c.close();
    for (const s of this.servers) {
      const maybeHttp = s as http.Server;
      if (typeof maybeHttp.closeAllConnections === 'function') maybeHttp.closeAllConnections();
    }
  }
}
