/**
 * Internal routing as the pipeline uses it: the four chains (request, error, response,
 * final) and the response header options, built once per core worker from the options, run
 * per request. `routingPlan` runs in the master at start-up (so a bad rule in any chain is
 * fatal before anything is served) and yields the serialisable part of a CoreWorkerPlan; a
 * core worker (child or in-process) rebuilds the same tables from it.
 */
import path from 'node:path';
import type { BodySource, ResponseSink } from '../bridge/pool-client.ts';
import { ResolvedOptions } from '../options/resolved.ts';
import type { ConfigEntry } from '../options/spec.ts';
import type { PluginDescriptor } from '../plugins/api.ts';
import type { UwsgiVars } from '../protocol/uwsgi-packet.ts';
import type { ClientTunnel, RouteChainName } from './api.ts';
import { RequestRouteContext } from './context.ts';
import { runChain, type ChainResult } from './engine.ts';
import { compileErrorPages, compileHeaderOptions, errorPageWarnings, HEADER_OPTION_NAMES } from './header-options.ts';
import { CORE_ROUTING } from './module.ts';
import type { ResponseChainTables } from './response-chains.ts';
import { RouteResponseEdits, type HeaderOptions } from './response-edits.ts';
import { ALL_CHAIN_OPTIONS, parseChain } from './rules.ts';
import { compileTable, RouteDefinitions, type RoutingTable } from './table.ts';

/** What a core worker needs to rebuild the routing tables (null in the plan: no routing at all). */
export interface RoutingPlan {
  entries: ConfigEntry[];
  /** Loaded plugins, in load order: their route actions/conditions/vars. */
  plugins: string[];
  /**
   * Plugins of `plugins` the master loaded from a file (`--plugins-dir`, a path, a build's
   * own plugin directory): name → absolute path. A core worker process cannot find those by
   * name in the build, so it loads the same files (core/plugins/plan-plugins.ts).
   */
  pluginFiles: Record<string, string>;
}

export interface RoutedRequest {
  vars: UwsgiVars;
  modifier1: number;
  modifier2: number;
  startedAt: number;
  /** The pipeline's CoreRequest has both: proxy actions forward the body. */
  body?: BodySource | null;
  contentLength?: number;
  /**
   * A CONNECT request's client connection: the HTTP front end puts it on the request it hands
   * to the pipeline, which passes the request here as it is.
   */
  tunnel?: ClientTunnel | null;
}

/** Every chain's table (null: the chain has no rule, and costs nothing) and the header options. */
export interface RoutingTables extends ResponseChainTables {
  readonly request: RoutingTable | null;
  readonly final: RoutingTable | null;
  readonly headers: HeaderOptions;
  readonly defs: RouteDefinitions;
}

export class RequestRouter {
  readonly tables: RoutingTables;
  /**
   * Responses need the error/response chain stage (core/routing/response-chains.ts): an
   * error or response chain, collect/pull-header or error pages are configured.
   */
  readonly chainsResponses: boolean;
  private readonly options: ResolvedOptions;
  private readonly log: (line: string) => void;
  private readonly workerId: number;

  constructor(tables: RoutingTables, options: ResolvedOptions, log: (line: string) => void, workerId: number) {
    this.tables = tables;
    this.options = options;
    this.log = log;
    this.workerId = workerId;
    const h = tables.headers;
    this.chainsResponses = tables.error !== null || tables.response !== null || tables.errorPages.size > 0 || h.collect.size > 0 || h.pull.size > 0;
  }

  /** The request chain's table (null when only other chains or header options are configured). */
  get table(): RoutingTable | null {
    return this.tables.request;
  }

  /**
   * The routing context of one request, shared by its chains. `makeSink(ctx)` gives the sink
   * routing's own responses go to (the pipeline's logged front-end sink).
   */
  context(req: RoutedRequest, makeSink: (ctx: RequestRouteContext) => ResponseSink): RequestRouteContext {
    let ctx!: RequestRouteContext;
    const edits = new RouteResponseEdits(() => makeSink(ctx), this.tables.headers);
    ctx = new RequestRouteContext({
      options: this.options,
      vars: req.vars,
      modifier1: req.modifier1,
      modifier2: req.modifier2,
      defs: this.tables.defs,
      response: edits,
      log: this.log,
      workerId: this.workerId,
      pid: process.pid,
      startedAt: req.startedAt,
      body: req.body,
      contentLength: req.contentLength,
      tunnel: req.tunnel,
    });
    return ctx;
  }

  /** Run the request chain (the app runs on 'continue'); synchronous when every rule is. */
  runRequestChain(ctx: RequestRouteContext): ChainResult | Promise<ChainResult> {
    return this.tables.request ? runChain(this.tables.request, ctx) : 'continue';
  }

  /** context() + runRequestChain(), for callers that want both at once. */
  async route(req: RoutedRequest, makeSink: (ctx: RequestRouteContext) => ResponseSink): Promise<{ result: ChainResult; ctx: RequestRouteContext }> {
    const ctx = this.context(req, makeSink);
    const result = await this.runRequestChain(ctx);
    return { result, ctx };
  }
}

function compileChain(chain: RouteChainName, entries: readonly ConfigEntry[], defs: RouteDefinitions, hint?: (action: string) => string | undefined): RoutingTable | null {
  const specs = parseChain(chain, entries);
  return specs.length === 0 ? null : compileTable(specs, defs, hint);
}

/** Compile every chain and the header options; throws a RoutingError for a bad rule or option. */
export function compileRoutingTables(entries: readonly ConfigEntry[], plugins: readonly PluginDescriptor[], hint?: (action: string) => string | undefined): RoutingTables {
  const defs = new RouteDefinitions([CORE_ROUTING, ...plugins]);
  const options = new ResolvedOptions(entries);
  return {
    request: compileChain('request', entries, defs, hint),
    error: compileChain('error', entries, defs, hint),
    response: compileChain('response', entries, defs, hint),
    final: compileChain('final', entries, defs, hint),
    headers: compileHeaderOptions(options),
    errorPages: compileErrorPages(options),
    defs,
  };
}

/** Compile the request chain from the options; throws a RoutingError for a bad rule. */
export function compileRequestTable(entries: readonly ConfigEntry[], plugins: readonly PluginDescriptor[], hint?: (action: string) => string | undefined): RoutingTable {
  return compileTable(parseChain('request', entries), new RouteDefinitions([CORE_ROUTING, ...plugins]), hint);
}

/** Is any routing rule or response header option configured? */
export function hasRouting(entries: readonly ConfigEntry[]): boolean {
  return entries.some((e) => ALL_CHAIN_OPTIONS.has(e.key) || HEADER_OPTION_NAMES.includes(e.key));
}

/**
 * Validate the routing options at start-up and return the plan for core workers, or null
 * when there is no rule in any chain and no header option (the pipeline then does nothing
 * extra per request). `log` gets the tables' dump.
 */
export function routingPlan(
  options: ResolvedOptions,
  plugins: readonly PluginDescriptor[],
  hint?: (action: string) => string | undefined,
  log?: (line: string) => void,
  pluginFile?: (name: string) => string | undefined,
): RoutingPlan | null {
  if (!hasRouting(options.entries)) return null;
  const tables = compileRoutingTables(options.entries, plugins, hint);
  if (log) {
    // The start-up dump of the tables, as uWSGI prints them.
    if (tables.request) for (const line of describeTable(tables.request)) log(line);
    for (const chain of ['error', 'response', 'final'] as const) {
      const t = tables[chain];
      if (!t) continue;
      log(`*** dumping internal ${chain} routing table ***`);
      for (const line of describeTable(t)) log(line);
      log(`*** end of the internal ${chain} routing table ***`);
    }
    for (const [name, vars] of tables.headers.collect) log(`collecting header ${name} to var ${vars.join(',')}`);
    for (const [name, vars] of tables.headers.pull) log(`pulling header ${name} to var ${vars.join(',')}`);
    for (const line of errorPageWarnings(tables.errorPages)) log(line);
  }
  const pluginFiles: Record<string, string> = {};
  for (const d of plugins) {
    const file = pluginFile?.(d.name);
    if (file !== undefined) pluginFiles[d.name] = path.resolve(file);
  }
  return { entries: [...options.entries], plugins: plugins.map((d) => d.name), pluginFiles };
}

/** One line per rule, as uWSGI dumps its routing table at start-up. */
export function describeTable(table: RoutingTable): string[] {
  return table.rules.map((r, i) => {
    switch (r.kind) {
      case 'label':
        return `[rule: ${i}] label: ${r.label}`;
      case 'subject': {
        const space = r.origin.value.indexOf(' ');
        return `[rule: ${i}] subject: ${r.subjectVar} regexp: ${r.origin.value.slice(0, space)} action: ${r.origin.value.slice(space + 1)}`;
      }
      case 'if': {
        const space = r.origin.value.indexOf(' ');
        return `[rule: ${i}] func: ${r.negate ? '!' : ''}${r.origin.value.slice(0, space)} action: ${r.origin.value.slice(space + 1)}`;
      }
      case 'status': {
        const space = r.origin.value.indexOf(' ');
        return `[rule: ${i}] status: ${r.status} action: ${r.origin.value.slice(space + 1)}`;
      }
      case 'run':
        return `[rule: ${i}] action: ${r.origin.value}`;
    }
  });
}

/** `--router-list`: every route action, condition and route var, with the plugin providing it. */
export function formatRouterList(plugins: readonly PluginDescriptor[]): string {
  const all = [CORE_ROUTING, ...plugins];
  const section = (title: string, pick: (d: PluginDescriptor) => ReadonlyArray<{ name: string; aliases?: readonly string[] }>): string[] => {
    const lines = [`*** ${title} ***`];
    for (const d of all) for (const x of pick(d)) lines.push(`${[x.name, ...(x.aliases ?? [])].join(', ')} (${d.name === 'routing' ? 'core' : d.name})`);
    return lines;
  };
  return [
    ...section('uWSGI loaded routers', (d) => d.routeActions ?? []),
    ...section('uWSGI loaded route conditions', (d) => d.routeConditions ?? []),
    ...section('uWSGI loaded route vars', (d) => d.routeVars ?? []),
  ].join('\n') + '\n';
}
