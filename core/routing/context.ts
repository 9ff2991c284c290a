/**
 * The RouteContext of one request: its vars, captures, header edits and goto state, as the
 * engine and the actions see them (core/routing/api.ts).
 */
import type { BodySource } from '../bridge/pool-client.ts';
import type { ResolvedOptions } from '../options/resolved.ts';
import type { UwsgiVars } from '../protocol/uwsgi-packet.ts';
import type { Transformation } from '../transform/api.ts';
import type { ClientTunnel, RouteChainName, RouteContext } from './api.ts';
import { expand } from './expand.ts';
import type { RouteResponseEdits } from './response-edits.ts';
import type { RouteDefinitions } from './table.ts';

export interface RouteContextInit {
  options: ResolvedOptions;
  vars: UwsgiVars;
  modifier1: number;
  modifier2: number;
  defs: RouteDefinitions;
  response: RouteResponseEdits;
  log: (line: string) => void;
  workerId: number;
  pid: number;
  startedAt: number;
  /** The request body, for proxy actions; absent = none. */
  body?: BodySource | null;
  contentLength?: number;
  /** A CONNECT request's client connection (HTTP front end only). */
  tunnel?: ClientTunnel | null;
}

export class RequestRouteContext implements RouteContext {
  chain: RouteChainName = 'request';
  readonly options: ResolvedOptions;
  readonly vars: UwsgiVars;
  modifier1: number;
  modifier2: number;
  captures: readonly string[] = [];
  status = 0;
  responseSize = 0;
  readonly response: RouteResponseEdits;
  private stateMap: Map<string, unknown> | null = null;
  readonly workerId: number;
  readonly pid: number;
  readonly startedAt: number;
  readonly body: BodySource | null;
  readonly contentLength: number;
  readonly tunnel: ClientTunnel | null;
  /** Set by `goto:`, consumed by the engine after the action returns (each chain run saves and restores it). */
  pendingGoto: string | null = null;
  /** `donotlog:` — the request log line is skipped. */
  noLog = false;
  /** `harakiri:N` — this request's own harakiri (seconds, 0 = none). */
  harakiri = 0;
  /** `donotoffload:` — `offload:` refuses this request. */
  offloadDisabled = false;
  /**
   * The engine's memo of the last rule subject it read (name and value): valid until an action
   * runs or a chain starts (core/routing/engine.ts clears it then).
   */
  subjectMemoName: string | null = null;
  subjectMemoValue = '';
  /** `logvar:` values, for the request log line; null until one is set. */
  logvars: Map<string, string> | null = null;
  /** The response's transformation chain (§7), in the order the actions ran. */
  readonly transformations: Transformation[] = [];
  private readonly defs: RouteDefinitions;
  private readonly logLine: (line: string) => void;

  constructor(init: RouteContextInit) {
    this.options = init.options;
    this.vars = init.vars;
    this.modifier1 = init.modifier1;
    this.modifier2 = init.modifier2;
    this.defs = init.defs;
    this.response = init.response;
    this.logLine = init.log;
    this.workerId = init.workerId;
    this.pid = init.pid;
    this.startedAt = init.startedAt;
    this.contentLength = init.contentLength ?? 0;
    this.body = this.contentLength > 0 ? (init.body ?? null) : null;
    this.tunnel = init.tunnel ?? null;
  }

  // Indexed loops, not for…of with destructuring: every subject rule reads a var, so with 20
  // rules these scans are most of the routing cost per request.
  /** Per-request storage for plugins; made on first use (most requests never need it). */
  get state(): Map<string, unknown> {
    return (this.stateMap ??= new Map());
  }

  getVar(name: string): string | undefined {
    const vars = this.vars;
    for (let i = 0; i < vars.length; i++) {
      const pair = vars[i]!;
      if (pair[0] === name) return pair[1];
    }
    return undefined;
  }

  setVar(name: string, value: string): void {
    const vars = this.vars;
    for (let i = 0; i < vars.length; i++) {
      const pair = vars[i]!;
      if (pair[0] === name) {
        pair[1] = value;
        return;
      }
    }
    vars.push([name, value]);
  }

  /**
   * Append a request var even when one of that name exists (uWSGI's uwsgi_req_append, used by
   * --collect-header/--pull-header): the first one stays what ${VAR} reads.
   */
  appendVar(name: string, value: string): void {
    this.vars.push([name, value]);
  }

  expand(text: string): string {
    return expand(text, {
      captures: this.captures,
      getVar: (n) => this.getVar(n),
      routeVar: (name, key) => this.defs.vars.get(name)?.get(key, this),
    });
  }

  log(line: string): void {
    this.logLine(line);
  }

  setLogVar(key: string, value: string): void {
    (this.logvars ??= new Map()).set(key, value);
  }

  goto(target: string): void {
    this.pendingGoto = target;
  }

  addTransformation(t: Transformation): void {
    this.transformations.push(t);
  }
}
