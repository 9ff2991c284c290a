/**
 * The internal router's plugin contract (spec/subsystems.md §6): what a route action, a
 * `route-if` condition and a `${name[key]}` route var get to work with. Router plugins
 * (`plugins/router_redirect/`, `plugins/router_basicauth/`…) register definitions on their
 * PluginDescriptor (`routeActions`, `routeConditions`, `routeVars`); the engine in
 * core/routing/ parses the rules at start-up and runs them per request. Nothing is
 * hard-wired: even `break` and `continue` are registered the same way by the core.
 */
import type net from 'node:net';
import type { ResolvedOptions } from '../options/resolved.ts';
import type { UwsgiVars } from '../protocol/uwsgi-packet.ts';
import type { BodySource, ResponseSink } from '../bridge/pool-client.ts';
import type { Transformation } from '../transform/api.ts';

/** What an action tells the engine (uWSGI's UWSGI_ROUTE_NEXT / CONTINUE / BREAK). */
export type RouteOutcome = 'next' | 'continue' | 'break';

export type RouteChainName = 'request' | 'error' | 'response' | 'final';

/** The request, as routing sees and changes it. One per request, shared by all chains. */
export interface RouteContext {
  readonly chain: RouteChainName;
  readonly options: ResolvedOptions;
  /** The request vars; actions may change them (addvar, rewrite, setpathinfo…). */
  readonly vars: UwsgiVars;
  modifier1: number;
  modifier2: number;
  /**
   * `$0`..`$9` of the last matching regexp (rule subject or `regexp:` condition). Replaced
   * (not mutated) by whoever matches: the engine, or a condition such as `regexp:`.
   */
  captures: readonly string[];
  /** `donotlog:` sets it: the request log line is skipped. */
  noLog: boolean;
  /**
   * `harakiri:N` sets it: seconds this request may run in an app worker (0 = no timer of its
   * own), next to --harakiri (the first to expire wins). Read when the request is sent to the app.
   */
  harakiri: number;
  /** `donotoffload:` sets it: `offload:` refuses this request (uWSGI's can_offload = 0). */
  offloadDisabled: boolean;
  /** `logvar:KEY=VALUE`: a request logvar, printed by `%(KEY)` in --log-format. */
  setLogVar(key: string, value: string): void;
  getVar(name: string): string | undefined;
  /** Replace the var, or append it when absent. */
  setVar(name: string, value: string): void;
  /** §6.4 expansion: `$N` captures, `${VAR}`, `${name[key]}` route vars. */
  expand(text: string): string;
  /** A server log line (the `log:` action, errors). */
  log(line: string): void;
  /** Jump forward to a label or rule number (the `goto:` action); the engine checks direction. */
  goto(target: string): void;
  /** The response status once known (error/response/final chains), else 0. */
  readonly status: number;
  /** Body bytes sent to the client (`${uwsgi[rsize]}`): known in the final chain, 0 before. */
  readonly responseSize: number;
  /** Response header edits applied when the head goes out (addheader, delheader, clearheaders). */
  readonly response: RouteResponse;
  /** Append a transformation to this request's response chain (§7). */
  addTransformation(t: Transformation): void;
  /**
   * The request body (CONTENT_LENGTH bytes) for actions that forward the request elsewhere
   * (`uwsgi:`, `http:`); null when the request has none. It can be piped once: an action that
   * reads it must answer the request itself (return break).
   */
  readonly body: BodySource | null;
  /** CONTENT_LENGTH as the front end parsed it (0 for none). */
  readonly contentLength: number;
  /**
   * The client connection, for a CONNECT request on an HTTP socket (router_http's
   * `httpconnect:`); absent or null for every other request, whose connection the front end
   * keeps framing as HTTP.
   */
  readonly tunnel?: ClientTunnel | null;
  /** Per-request storage for plugins, keyed by plugin name (e.g. basicauth's state). */
  readonly state: Map<string, unknown>;
  /** Identity of the serving process, for `${uwsgi[wid]}` / `${uwsgi[pid]}`. */
  readonly workerId: number;
  readonly pid: number;
  /** Request start (ms since epoch) for `${uwsgi[sor]}` / `${uwsgi[rtime]}`. */
  readonly startedAt: number;
}

/**
 * A CONNECT request's client connection, offered by the HTTP front end. Until take() it is an
 * HTTP connection (an answer such as a 502 is framed as usual); after it, the action owns the
 * socket's reading side and the response sink writes raw bytes: the head as a bare status
 * line and headers, the body unframed, end() half-closes the connection.
 */
export interface ClientTunnel {
  /** Take the connection over; `head` holds the bytes the client sent after the request head. Callable once. */
  take(): { socket: net.Socket; head: Buffer };
}

export interface RouteResponse {
  /** True once the status line and headers have gone to the client. */
  readonly headersSent: boolean;
  addHeader(name: string, value: string): void;
  /** Drop every header of that name (case-insensitive), from the app's and from addHeader's. */
  delHeader(name: string): void;
  /**
   * `clearheaders:` — uWSGI's "prepare the headers again": forget the status and headers
   * prepared so far and use this status line instead (in the response chain: the app's
   * response becomes that status; in the request chain: the head sent if the request ends
   * without a response). Headers from `addheader`/`delheader` stay, as in uWSGI. Returns what
   * the action returns: the error chain runs again for the new status and may stop the
   * response ('break'); an invalid status line is a 'break' too.
   */
  clearHeaders(statusLine: string): RouteOutcome | Promise<RouteOutcome>;
  /**
   * `send:` / `send-crnl:` — write bytes to the client as they are, outside the HTTP framing
   * (ResponseSink.raw): a head prepared by `clearheaders:` and not yet sent goes out first; no
   * head goes out after them. Inside the error/response chains they wait for the head in
   * flight, which goes out first (uWSGI writes the headers before any body). Throws when the
   * front end has no raw path.
   */
  send(bytes: Buffer): void;
  /**
   * `disableheaders:` — the response's head is not sent (uWSGI marks the headers as sent): the
   * body goes out as it is and the connection closes after it.
   */
  disableHeaders(): void;
  /**
   * Answer the request from routing (break, return, redirect, basicauth, static…): the head
   * goes through the same header edits and transformations as an app response.
   */
  sink(): ResponseSink;
}

/** Where a rule came from, for error messages ("--route '^/x brek:'"). */
export interface RuleOrigin {
  readonly option: string;
  readonly value: string;
}

export type RouteActionRunner = (ctx: RouteContext) => RouteOutcome | Promise<RouteOutcome>;

export interface RouteActionDefinition {
  /** As uWSGI spells it (`redirect-permanent`), plus aliases (`redirect-301`). */
  readonly name: string;
  readonly aliases?: readonly string[];
  /**
   * Parse the argument once at start-up and return the runner. Throw a TsuwsgiError for a bad
   * argument: uWSGI refuses such a config at start-up, and so do we.
   */
  prepare(arg: string, origin: RuleOrigin): RouteActionRunner;
}

export interface RouteConditionDefinition {
  readonly name: string;
  readonly aliases?: readonly string[];
  /** `args` is the raw text after `name:`; expand it per request with ctx.expand. */
  prepare(args: string, origin: RuleOrigin): (ctx: RouteContext) => boolean | Promise<boolean>;
}

/** `${name[key]}`: e.g. `cookie`, `qs`, `mime`, `time`, `httptime`, `base64`, `hex`, `uwsgi`, `math`. */
export interface RouteVarDefinition {
  readonly name: string;
  get(key: string, ctx: RouteContext): string;
}
