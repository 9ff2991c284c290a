/**
 * The compiled routing table: rule specs resolved against the actions, conditions and route
 * vars that the core routing module and the loaded plugins register, with every action and
 * condition argument prepared once at start-up (so a bad config fails before serving).
 */
import { RoutingError } from '../errors.ts';
import type { PluginDescriptor } from '../plugins/api.ts';
import type { RouteActionDefinition, RouteActionRunner, RouteConditionDefinition, RouteContext, RouteVarDefinition, RuleOrigin } from './api.ts';
import type { RuleSpec } from './rules.ts';

export type CompiledRule =
  | { kind: 'subject'; subjectVar: string; regex: RegExp; run: RouteActionRunner; origin: RuleOrigin; text: string }
  | { kind: 'status'; status: number; run: RouteActionRunner; origin: RuleOrigin; text: string }
  | { kind: 'label'; label: string; origin: RuleOrigin; text: string }
  | { kind: 'if'; negate: boolean; test: (ctx: RouteContext) => boolean | Promise<boolean>; run: RouteActionRunner; origin: RuleOrigin; text: string }
  | { kind: 'run'; run: RouteActionRunner; origin: RuleOrigin; text: string };

/** Name (and alias) → definition; the first plugin to register a name wins, as in uWSGI. */
export class RouteDefinitions {
  readonly actions = new Map<string, RouteActionDefinition>();
  readonly conditions = new Map<string, RouteConditionDefinition>();
  readonly vars = new Map<string, RouteVarDefinition>();

  /** `plugins` in load order; the core routing module comes first. */
  constructor(plugins: readonly PluginDescriptor[]) {
    for (const d of plugins) {
      for (const a of d.routeActions ?? []) for (const n of [a.name, ...(a.aliases ?? [])]) if (!this.actions.has(n)) this.actions.set(n, a);
      for (const c of d.routeConditions ?? []) for (const n of [c.name, ...(c.aliases ?? [])]) if (!this.conditions.has(n)) this.conditions.set(n, c);
      for (const v of d.routeVars ?? []) if (!this.vars.has(v.name)) this.vars.set(v.name, v);
    }
  }
}

export interface RoutingTable {
  readonly rules: readonly CompiledRule[];
  /** Label → rule position (positions count labels too, as uWSGI's goto numbers do). */
  readonly labels: ReadonlyMap<string, number>;
  readonly defs: RouteDefinitions;
}

export function compileTable(specs: readonly RuleSpec[], defs: RouteDefinitions, hint?: (action: string) => string | undefined): RoutingTable {
  const labels = new Map<string, number>();
  const rules = specs.map((spec, index): CompiledRule => {
    const text = `--${spec.origin.option} "${spec.origin.value}"`;
    switch (spec.kind) {
      case 'label':
        if (!labels.has(spec.label)) labels.set(spec.label, index);
        return { kind: 'label', label: spec.label, origin: spec.origin, text };
      case 'subject':
        return { kind: 'subject', subjectVar: spec.subjectVar, regex: spec.regex, run: prepareAction(spec.action, spec.arg, spec.origin, defs, hint), origin: spec.origin, text };
      case 'status':
        return { kind: 'status', status: spec.status, run: prepareAction(spec.action, spec.arg, spec.origin, defs, hint), origin: spec.origin, text };
      case 'run':
        return { kind: 'run', run: prepareAction(spec.action, spec.arg, spec.origin, defs, hint), origin: spec.origin, text };
      case 'if': {
        const cond = defs.conditions.get(spec.condition);
        if (!cond) {
          const known = [...defs.conditions.keys()].sort().join(' ');
          throw new RoutingError(`unable to find routing condition "${spec.condition}" in ${text}; known conditions: ${known}`);
        }
        return { kind: 'if', negate: spec.negate, test: prepare(() => cond.prepare(spec.condArgs, spec.origin), text), run: prepareAction(spec.action, spec.arg, spec.origin, defs, hint), origin: spec.origin, text };
      }
    }
  });
  return { rules, labels, defs };
}

function prepareAction(name: string, arg: string, origin: RuleOrigin, defs: RouteDefinitions, hint?: (action: string) => string | undefined): RouteActionRunner {
  const text = `--${origin.option} "${origin.value}"`;
  const def = defs.actions.get(name);
  if (!def) {
    const plugin = hint?.(name);
    const how = plugin ? `it is provided by plugin "${plugin}": add --plugins ${plugin}` : `--router-list shows the available actions (docs/routing.md)`;
    throw new RoutingError(`unable to find routing action "${name}" in ${text}: ${how}`);
  }
  return prepare(() => def.prepare(arg, origin), text);
}

/** Run a definition's prepare; a plain Error from a plugin still becomes a RoutingError naming the rule. */
function prepare<T>(fn: () => T, text: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RoutingError) throw err;
    throw new RoutingError(`invalid routing rule ${text}: ${(err as Error).message}`, err);
  }
}
