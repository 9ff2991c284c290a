/**
 * The rule engine (spec/subsystems.md §6.3): rules in order, NEXT / CONTINUE / BREAK,
 * forward-only goto by label or position, end of table = run the app.
 */
import type { RequestRouteContext } from './context.ts';
import type { RoutingTable } from './table.ts';

/** What the pipeline does next: run the app, or stop (routing answered, or closed the request). */
export type ChainResult = 'continue' | 'break';

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

export async function runChain(table: RoutingTable, ctx: RequestRouteContext): Promise<ChainResult> {
  const rules = table.rules;
  let i = 0;
  while (i < rules.length) {
    const rule = rules[i]!;
    try {
      if (rule.kind === 'label') {
        i++;
        continue;
      }
      if (rule.kind === 'subject') {
        const m = rule.regex.exec(ctx.getVar(rule.subjectVar) ?? '');
        if (!m) {
          i++;
          continue;
        }
        ctx.captures = Array.from(m, (g) => g ?? '');
      } else if (rule.kind === 'if') {
        const r = rule.test(ctx);
        const ok = isThenable(r) ? await r : r;
        if (ok === rule.negate) {
          i++;
          continue;
        }
      }
      const r = rule.run(ctx);
      const outcome = isThenable(r) ? await r : r;
      if (outcome === 'continue') return 'continue';
      if (outcome === 'break') return 'break';
    } catch (err) {
      // uWSGI: a failing condition or action (-1) breaks the request.
      ctx.log(`[uwsgi-route] ERROR in rule ${i} (${rule.text}): ${(err as Error).message}`);
      return 'break';
    }
    if (ctx.pendingGoto !== null) {
      const target = ctx.pendingGoto;
      ctx.pendingGoto = null;
      // An unknown label is read as a number (uWSGI's atoi: garbage is 0).
      const pos = table.labels.get(target) ?? (Number.parseInt(target, 10) || 0);
      if (pos <= i) {
        ctx.log('[uwsgi-route] ERROR "goto" instruction can only jump forward (check your label)');
        return 'break';
      }
      i = pos;
      continue;
    }
    i++;
  }
  return 'continue';
}
