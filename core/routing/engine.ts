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

/**
 * Where the engine stands after a rule: the index of the next rule to look at, or a final
 * result. A number rather than an object: a chain of 20 rules would otherwise allocate 20
 * objects per request.
 */
type Step = number | ChainResult;

/** A rule failed (a throwing condition or action): uWSGI's -1, which breaks the request. */
function failed(ctx: RequestRouteContext, i: number, rule: CompiledRule, err: unknown): Step {
  ctx.log(`[uwsgi-route] ERROR in rule ${i} (${rule.text}): ${(err as Error).message}`);
  return 'break';
}

/** After an action: stop on CONTINUE/BREAK, else follow a pending goto, else the next rule. */
function afterAction(table: RoutingTable, ctx: RequestRouteContext, i: number, outcome: RouteOutcome): Step {
  // Also after it: the action may have run another chain that read vars before changing them.
  ctx.subjectMemoName = null;
  if (outcome === 'continue') return 'continue';
  if (outcome === 'break') return 'break';
  if (ctx.pendingGoto !== null) {
    const target = ctx.pendingGoto;
    ctx.pendingGoto = null;
    // An unknown label is read as a number (uWSGI's atoi: garbage is 0).
    const pos = table.labels.get(target) ?? (Number.parseInt(target, 10) || 0);
    if (pos <= i) {
      ctx.log('[uwsgi-route] ERROR "goto" instruction can only jump forward (check your label !!!)');
      return 'break';
    }
    return pos;
  }
  return i + 1;
}

function runAction(table: RoutingTable, ctx: RequestRouteContext, i: number, rule: Exclude<CompiledRule, { kind: 'label' }>): Step | Promise<Step> {
  // An action may change any var: the subject memo no longer holds.
  ctx.subjectMemoName = null;
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
      return i + 1;
    case 'subject': {
      // Consecutive subject rules mostly read the same var (PATH_INFO): look it up once.
      let subject: string;
      if (ctx.subjectMemoName === rule.subjectVar) subject = ctx.subjectMemoValue;
      else {
        subject = ctx.getVar(rule.subjectVar) ?? '';
        ctx.subjectMemoName = rule.subjectVar;
        ctx.subjectMemoValue = subject;
      }
      const m = rule.regex.exec(subject);
      if (!m) return i + 1;
      ctx.captures = Array.from(m, (g) => g ?? '');
      return runAction(table, ctx, i, rule);
    }
    case 'status':
      // `*-route-status`: the response status, matched exactly (uWSGI compares the integers).
      return ctx.status === rule.status ? runAction(table, ctx, i, rule) : i + 1;
    case 'if': {
      let ok: boolean | Promise<boolean>;
      try {
        ok = rule.test(ctx);
      } catch (err) {
        return failed(ctx, i, rule, err);
      }
      if (isThenable(ok)) {
        return ok.then(
          (v) => (v === rule.negate ? i + 1 : runAction(table, ctx, i, rule)),
          (err: unknown) => failed(ctx, i, rule, err),
        );
      }
      return ok === rule.negate ? i + 1 : runAction(table, ctx, i, rule);
    }
    case 'run':
      return runAction(table, ctx, i, rule);
  }
}

async function continueAsync(table: RoutingTable, ctx: RequestRouteContext, pending: Promise<Step>): Promise<ChainResult> {
  let s = await pending;
  while (typeof s === 'number') {
    if (s >= table.rules.length) return 'continue';
    const r = step(table, ctx, s);
    s = isThenable(r) ? await r : r;
  }
  return s;
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
  // The vars may have changed since the last run (the pipeline, another chain).
  ctx.subjectMemoName = null;
  let i = 0;
  while (i < table.rules.length) {
    const s = step(table, ctx, i);
    if (isThenable(s)) {
      return continueAsync(table, ctx, s).then((r) => {
        ctx.pendingGoto = savedGoto;
        return r;
      });
    }
    if (typeof s !== 'number') {
      ctx.pendingGoto = savedGoto;
      return s;
    }
    i = s;
  }
  ctx.pendingGoto = savedGoto;
  return 'continue';
}
