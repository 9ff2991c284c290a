/**
 * Rule parsing (spec/subsystems.md §6.2): turn each chain's options, in the order they were
 * given across all the different option names, into rule specs. The request chain's options
 * are `route*`; the error, response and final chains repeat the same set with their prefix
 * (`error-route-if`, `final-route-run`…) plus `*-route-status`. Nothing here knows which
 * actions exist; core/routing/table.ts resolves names against the registered plugins.
 */
import { RoutingError } from '../errors.ts';
import type { RouteChainName, RuleOrigin } from './api.ts';

/** Subject options of the request chain and the request var each one matches. */
export const SUBJECT_OPTIONS: Readonly<Record<string, string>> = {
  route: 'PATH_INFO',
  'route-host': 'HTTP_HOST',
  'route-uri': 'REQUEST_URI',
  'route-qs': 'QUERY_STRING',
  'route-remote-addr': 'REMOTE_ADDR',
  'route-user-agent': 'HTTP_USER_AGENT',
  'route-remote-user': 'REMOTE_USER',
  'route-referer': 'HTTP_REFERER',
};

export const REQUEST_CHAIN_OPTIONS: readonly string[] = [...Object.keys(SUBJECT_OPTIONS), 'route-label', 'route-if', 'route-if-not', 'route-run'];

export const CHAIN_NAMES: readonly RouteChainName[] = ['request', 'error', 'response', 'final'];

/** `error-route-if` → `route-if`: what the rule option is, whatever its chain. */
const CHAIN_PREFIX: Readonly<Record<RouteChainName, string>> = { request: '', error: 'error-', response: 'response-', final: 'final-' };

/**
 * The rule options of one chain, in a fixed order. `*-route-status` exists only on the error,
 * response and final chains: the request chain runs before there is a status (uWSGI has no
 * `route-status`).
 */
export function chainOptions(chain: RouteChainName): readonly string[] {
  if (chain === 'request') return REQUEST_CHAIN_OPTIONS;
  const prefix = CHAIN_PREFIX[chain];
  return [...REQUEST_CHAIN_OPTIONS.map((o) => prefix + o), `${prefix}route-status`];
}

/** Every rule option of every chain (for "is any routing configured"). */
export const ALL_CHAIN_OPTIONS: ReadonlySet<string> = new Set(CHAIN_NAMES.flatMap((c) => chainOptions(c)));

export type RuleSpec =
  | { kind: 'subject'; subjectVar: string; regex: RegExp; action: string; arg: string; origin: RuleOrigin }
  | { kind: 'status'; status: number; action: string; arg: string; origin: RuleOrigin }
  | { kind: 'label'; label: string; origin: RuleOrigin }
  | { kind: 'if'; negate: boolean; condition: string; condArgs: string; action: string; arg: string; origin: RuleOrigin }
  | { kind: 'run'; action: string; arg: string; origin: RuleOrigin };

function describe(origin: RuleOrigin): string {
  return `--${origin.option} "${origin.value}"`;
}

/** `name:arg` → [name, arg]; the name ends at the first colon, which is required. */
function splitAction(text: string, origin: RuleOrigin): [string, string] {
  const colon = text.indexOf(':');
  if (colon < 0) {
    throw new RoutingError(`invalid route syntax in ${describe(origin)}: "${text}" has no colon; write ACTION:ARGS (e.g. "continue:" or "break:404 Not Found")`);
  }
  const name = text.slice(0, colon);
  if (name === '') throw new RoutingError(`invalid route syntax in ${describe(origin)}: the action name before ":" is empty`);
  return [name, text.slice(colon + 1)];
}

/** At the first space: the subject regexp (or condition) cannot contain a space (use \s). */
function splitAtSpace(value: string, origin: RuleOrigin, what: string): [string, string] {
  const space = value.indexOf(' ');
  if (space < 0) {
    throw new RoutingError(`invalid route syntax in ${describe(origin)}: expected "${what} ACTION:ARGS" (separated by the first space)`);
  }
  return [value.slice(0, space), value.slice(space + 1)];
}

export function compileRegex(source: string, origin: RuleOrigin): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new RoutingError(`invalid regexp "${source}" in ${describe(origin)}: ${(err as Error).message}`, err);
  }
}

/** Which chain an option belongs to (`final-route-run` → final), or null for none. */
export function chainOf(option: string): RouteChainName | null {
  for (const c of CHAIN_NAMES) if (chainOptions(c).includes(option)) return c;
  return null;
}

/** Parse one rule option of any chain (`route-if`, `error-route-status`, `final-route-run`…). */
export function parseRule(option: string, value: string): RuleSpec {
  const origin: RuleOrigin = { option, value };
  const chain = chainOf(option);
  if (chain === null) throw new RoutingError(`--${option} is not a routing rule option; the rule options are route, route-host, route-if… and their error-, response- and final- versions (docs/routing.md)`);
  // The chain's own prefix off: every chain parses the same way.
  const base = option.slice(CHAIN_PREFIX[chain].length);
  if (base === 'route-status') {
    const [code, actionText] = splitAtSpace(value, origin, 'STATUS');
    // uWSGI reads it with atoi (so "40x" would silently be 40 and never match what was meant).
    if (!/^\d+$/.test(code)) throw new RoutingError(`invalid status "${code}" in ${describe(origin)}: write ${option} = CODE ACTION:ARGS, CODE an HTTP status such as 404`);
    const [action, arg] = splitAction(actionText, origin);
    return { kind: 'status', status: Number(code), action, arg, origin };
  }
  const subjectVar = SUBJECT_OPTIONS[base];
  if (subjectVar !== undefined) {
    const [re, actionText] = splitAtSpace(value, origin, 'REGEXP');
    const [action, arg] = splitAction(actionText, origin);
    return { kind: 'subject', subjectVar, regex: compileRegex(re, origin), action, arg, origin };
  }
  switch (base) {
    case 'route-label':
      return { kind: 'label', label: value, origin };
    case 'route-run': {
      const [action, arg] = splitAction(value, origin);
      return { kind: 'run', action, arg, origin };
    }
    case 'route-if':
    case 'route-if-not': {
      const [condText, actionText] = splitAtSpace(value, origin, 'CONDITION:ARGS');
      const colon = condText.indexOf(':');
      if (colon <= 0) {
        throw new RoutingError(`invalid route-if syntax in ${describe(origin)}: "${condText}" is not CONDITION:ARGS (e.g. "equal:\${qs[a]};1")`);
      }
      const [action, arg] = splitAction(actionText, origin);
      return { kind: 'if', negate: base === 'route-if-not', condition: condText.slice(0, colon), condArgs: condText.slice(colon + 1), action, arg, origin };
    }
    default:
      throw new RoutingError(`--${option} is not a routing rule option`);
  }
}

/** One chain's rules, in declaration order across every rule option of that chain. */
export function parseChain(chain: RouteChainName, entries: ReadonlyArray<{ key: string; value: string }>): RuleSpec[] {
  const options = chainOptions(chain);
  const out: RuleSpec[] = [];
  for (const e of entries) {
    if (options.includes(e.key)) out.push(parseRule(e.key, e.value));
  }
  return out;
}

/** The request chain's rules, in declaration order across every rule option. */
export function parseRequestChain(entries: ReadonlyArray<{ key: string; value: string }>): RuleSpec[] {
  return parseChain('request', entries);
}
