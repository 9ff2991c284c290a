/**
 * The request chain as the pipeline uses it: built once per core worker from the options,
 * run per request. `routingPlan` runs in the master at start-up (so a bad rule is fatal
 * before anything is served) and yields the serialisable part of a CoreWorkerPlan; a core
 * worker (child or in-process) rebuilds the same table from it.
 */
import type { BodySource, ResponseSink } from '../bridge/pool-client.ts';
import { ResolvedOptions } from '../options/resolved.ts';
import type { ConfigEntry } from '../options/spec.ts';
import type { PluginDescriptor } from '../plugins/api.ts';
import type { UwsgiVars } from '../protocol/uwsgi-packet.ts';
import { RequestRouteContext } from './context.ts';
import { runChain, type ChainResult } from './engine.ts';
import { CORE_ROUTING } from './module.ts';
import { RouteResponseEdits } from './response-edits.ts';
import { parseRequestChain, REQUEST_CHAIN_OPTIONS } from './rules.ts';
import { compileTable, RouteDefinitions, type RoutingTable } from './table.ts';

/** What a core worker needs to rebuild the routing table (null in the plan: no rules). */
export interface RoutingPlan {
  entries: ConfigEntry[];
  /** Loaded plugins, in load order: their route actions/conditions/vars. */
  plugins: string[];
}

export interface RoutedRequest {
  vars: UwsgiVars;
  modifier1: number;
  modifier2: number;
  startedAt: number;
  /** The pipeline's CoreRequest has both: proxy actions forward the body. */
  body?: BodySource | null;
  contentLength?: number;
}

export class RequestRouter {
  readonly table: RoutingTable;
  private readonly options: ResolvedOptions;
  private readonly log: (line: string) => void;
  private readonly workerId: number;

  constructor(table: RoutingTable, options: ResolvedOptions, log: (line: string) => void, workerId: number) {
    this.table = table;
    this.options = options;
    this.log = log;
    this.workerId = workerId;
  }

  /**
   * Run the request chain. `makeSink(ctx)` gives the sink routing's own responses go to
   * (the pipeline's logged front-end sink).
   */
  async route(req: RoutedRequest, makeSink: (ctx: RequestRouteContext) => ResponseSink): Promise<{ result: ChainResult; ctx: RequestRouteContext }> {
    let ctx!: RequestRouteContext;
    const edits = new RouteResponseEdits(() => makeSink(ctx));
    ctx = new RequestRouteContext({
      options: this.options,
      vars: req.vars,
      modifier1: req.modifier1,
      modifier2: req.modifier2,
      defs: this.table.defs,
      response: edits,
      log: this.log,
      workerId: this.workerId,
      pid: process.pid,
      startedAt: req.startedAt,
      body: req.body,
      contentLength: req.contentLength,
    });
    const result = await runChain(this.table, ctx);
    return { result, ctx };
  }
}

/** Compile the request chain from the options; throws a RoutingError for a bad rule. */
export function compileRequestTable(entries: readonly ConfigEntry[], plugins: readonly PluginDescriptor[], hint?: (action: string) => string | undefined): RoutingTable {
  return compileTable(parseRequestChain(entries), new RouteDefinitions([CORE_ROUTING, ...plugins]), hint);
}

/**
 * Validate the routing options at start-up and return the plan for core workers, or null
 * when there are no rules (the pipeline then does nothing extra per request). `log` gets the
 * table dump.
 */
export function routingPlan(options: ResolvedOptions, plugins: readonly PluginDescriptor[], hint?: (action: string) => string | undefined, log?: (line: string) => void): RoutingPlan | null {
  if (!options.entries.some((e) => REQUEST_CHAIN_OPTIONS.includes(e.key))) return null;
  const table = compileRequestTable(options.entries, plugins, hint);
  // The start-up dump of the table, as uWSGI prints it.
  if (log) for (const line of describeTable(table)) log(line);
  return { entries: [...options.entries], plugins: plugins.map((d) => d.name) };
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
