/**
 * The rule engine (spec/subsystems.md §6.3): rules in order, NEXT / CONTINUE / BREAK,
 * forward-only goto by label or position, end of table = run the app. Every chain (request,
 * error, response, final) runs through here with its own program counter and goto state.
 *
 * A chain whose conditions and actions all answer synchronously also completes
 * synchronously (no promise): the response and final chains run on every response, and the
 * final chain must be done before the request log line is written (uWSGI runs it before the
 * log), which only a synchronous run can guarantee.
 */
import type { RouteOutcome } from './api.ts';
import type { RequestRouteContext } from './context.ts';
import type { CompiledRule, RoutingTable } from './table.ts';

/** What the pipeline does next: run the app, or stop (routing answered, or closed the request). */
export type ChainResult = 'continue' | 'break';

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

const NO_CAPTURES: readonly string[] = [];

/** Where the engine stands after a rule: a final result, or the next rule to look at. */
type Step = { done: ChainResult } | { next: number };

/** A rule failed (a throwing condition or action): uWSGI's -1, which breaks the request. */
function failed(ctx: RequestRouteContext, i: number, rule: CompiledRule, err: unknown): Step {
  ctx.log(`[uwsgi-route] ERROR in rule ${i} (${rule.text}): ${(err as Error).message}`);
  return { done: 'break' };
}

/** After an action: stop on CONTINUE/BREAK, else follow a pending goto, else the next rule. */
function afterAction(table: RoutingTable, ctx: RequestRouteContext, i: number, outcome: RouteOutcome): Step {
  if (outcome === 'continue') return { done: 'continue' };
  if (outcome === 'break') return { done: 'break' };
  if (ctx.pendingGoto !== null) {
    const target = ctx.pendingGoto;
    ctx.pendingGoto = null;
    // An unknown label is read as a number (uWSGI's atoi: garbage is 0).
    const pos = table.labels.get(target) ?? (Number.parseInt(target, 10) || 0);
    if (pos <= i) {
      ctx.log('[uwsgi-route] ERROR "goto" instruction can only jump forward (check your label !!!)');
      return { done: 'break' };
    }
    return { next: pos };
  }
  return { next: i + 1 };
}

function runAction(table: RoutingTable, ctx: RequestRouteContext, i: number, rule: Exclude<CompiledRule, { kind: 'label' }>): Step | Promise<Step> {
  let r: RouteOutcome | Promise<RouteOutcome>;
  try {
    r = rule.run(ctx);
  } catch (err) {
    return failed(ctx, i, rule, err);
  }
  if (isThenable(r)) {
    return r.then(
      (outcome) => afterAction(table, ctx, i, outcome),
      (err: unknown) => failed(ctx, i, rule, err),
    );
  }
  return afterAction(table, ctx, i, r);
}

/** Evaluate rule i: skip it (NEXT) when it does not match, else run its action. */
function step(table: RoutingTable, ctx: RequestRouteContext, i: number): Step | Promise<Step> {
  const rule = table.rules[i]!;
  // Captures belong to the rule that matched (uWSGI keeps one ovector per rule): a later
  // route-run or non-regexp route-if sees no $1. A subject or `regexp:` condition sets them.
  if (rule.kind !== 'label') ctx.captures = NO_CAPTURES;
  switch (rule.kind) {
    case 'label':
      return { next: i + 1 };
    case 'subject': {
      const m = rule.regex.exec(ctx.getVar(rule.subjectVar) ?? '');
      if (!m) return { next: i + 1 };
      ctx.captures = Array.from(m, (g) => g ?? '');
      return runAction(table, ctx, i, rule);
    }
    case 'status':
      // `*-route-status`: the response status, matched exactly (uWSGI compares the integers).
      return ctx.status === rule.status ? runAction(table, ctx, i, rule) : { next: i + 1 };
    case 'if': {
      let ok: boolean | Promise<boolean>;
      try {
        ok = rule.test(ctx);
      } catch (err) {
        return failed(ctx, i, rule, err);
      }
      if (isThenable(ok)) {
        return ok.then(
          (v) => (v === rule.negate ? { next: i + 1 } : runAction(table, ctx, i, rule)),
          (err: unknown) => failed(ctx, i, rule, err),
        );
      }
      return ok === rule.negate ? { next: i + 1 } : runAction(table, ctx, i, rule);
    }
    case 'run':
      return runAction(table, ctx, i, rule);
  }
}

async function continueAsync(table: RoutingTable, ctx: RequestRouteContext, pending: Promise<Step>): Promise<ChainResult> {
  let s = await pending;
  while ('next' in s) {
    if (s.next >= table.rules.length) return 'continue';
    const r = step(table, ctx, s.next);
    s = isThenable(r) ? await r : r;
  }
  return s.done;
}

/**
 * Run a chain from its first rule. Returns the result directly when every rule answered
 * synchronously, else a promise.
 */
export function runChain(table: RoutingTable, ctx: RequestRouteContext): ChainResult | Promise<ChainResult> {
  // Each run has its own goto state: a nested chain (the error chain run by `clearheaders:`
  // inside the response chain) must not consume or leak the outer chain's pending jump.
  const savedGoto = ctx.pendingGoto;
  ctx.pendingGoto = null;
  const restore = (r: ChainResult): ChainResult => {
    ctx.pendingGoto = savedGoto;
    return r;
  };
  let i = 0;
  while (i < table.rules.length) {
    const s = step(table, ctx, i);
    if (isThenable(s)) return continueAsync(table, ctx, s).then(restore);
    if ('done' in s) return restore(s.done);
    i = s.next;
  }
  return restore('continue');
}
