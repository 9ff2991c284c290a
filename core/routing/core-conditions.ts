/**
 * The core's `route-if` conditions (spec/subsystems.md §6.5). Two-operand checks split their
 * raw argument at the first `;` and expand each side on its own (as uWSGI), so a `;` inside
 * an expanded value cannot move the split; no `;` at all makes the condition false.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { RouteConditionDefinition, RouteContext } from './api.ts';
import { toInt } from './core-actions.ts';
import { CONDITION_OPERAND } from './expand.ts';

type Test = (ctx: RouteContext) => boolean;

/**
 * Expand one operand as uWSGI does: `${…}` only. uWSGI translates condition operands without
 * the captures pass, so `$1` stays literal and a trailing `$` is kept (expand.ts).
 */
function operand(ctx: RouteContext, text: string): string {
  if (!text.includes('$')) return text;
  const captures = ctx.captures;
  ctx.captures = CONDITION_OPERAND;
  try {
    return ctx.expand(text);
  } finally {
    ctx.captures = captures;
  }
}

function oneOperand(name: string, check: (value: string) => boolean, aliases?: string[]): RouteConditionDefinition {
  return { name, ...(aliases ? { aliases } : {}), prepare: (args) => (ctx) => check(operand(ctx, args)) };
}

function twoOperands(name: string, check: (a: string, b: string, ctx: RouteContext) => boolean, aliases?: string[]): RouteConditionDefinition {
  return {
    name,
    ...(aliases ? { aliases } : {}),
    prepare(args): Test {
      const semi = args.indexOf(';');
      if (semi < 0) return () => false;
      const left = args.slice(0, semi);
      const right = args.slice(semi + 1);
      return (ctx) => check(operand(ctx, left), operand(ctx, right), ctx);
    },
  };
}

function statOf(path: string, link = false): fs.Stats | undefined {
  if (path === '') return undefined;
  return link ? fs.lstatSync(path, { throwIfNoEntry: false }) : fs.statSync(path, { throwIfNoEntry: false });
}

/** Per-process cache of regexps built from expanded text (most expand to the same few). */
const regexCache = new Map<string, RegExp>();
function cachedRegex(source: string): RegExp {
  let re = regexCache.get(source);
  if (!re) {
    re = new RegExp(source);
    if (regexCache.size > 256) regexCache.clear();
    regexCache.set(source, re);
  }
  return re;
}

function inSubnet(ip: string, spec: string, family: 'ipv4' | 'ipv6'): boolean {
  const slash = spec.indexOf('/');
  const base = slash < 0 ? spec : spec.slice(0, slash);
  const prefix = slash < 0 ? (family === 'ipv4' ? 32 : 128) : Number(spec.slice(slash + 1));
  const version = family === 'ipv4' ? 4 : 6;
  if (net.isIP(ip) !== version || net.isIP(base) !== version || !Number.isInteger(prefix)) return false;
  const list = new net.BlockList();
  try {
    list.addSubnet(base, prefix, family);
  } catch {
    return false;
  }
  return list.check(ip, family);
}

export const CORE_CONDITIONS: readonly RouteConditionDefinition[] = [
  oneOperand('exists', (p) => statOf(p) !== undefined),
  oneOperand('isfile', (p) => statOf(p)?.isFile() ?? false),
  oneOperand('isdir', (p) => statOf(p)?.isDirectory() ?? false),
  oneOperand('islink', (p) => statOf(p, true)?.isSymbolicLink() ?? false),
  oneOperand('isexec', (p) => {
    if (p === '') return false;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }),
  oneOperand('empty', (v) => v.length === 0),
  twoOperands('equal', (a, b) => a === b, ['isequal', 'eq', '==']),
  twoOperands('startswith', (a, b) => a.startsWith(b)),
  twoOperands('endswith', (a, b) => a.endsWith(b)),
  twoOperands('contains', (a, b) => a.includes(b), ['contain']),
  // 2.0 registers `regexp` and `re`; the docs say `regex`: accept all three.
  twoOperands(
    'regexp',
    (a, b, ctx) => {
      const m = cachedRegex(b).exec(a);
      if (!m) return false;
      ctx.captures = Array.from(m, (g) => g ?? '');
      return true;
    },
    ['re', 'regex'],
  ),
  twoOperands('ishigher', (a, b) => toInt(a) > toInt(b), ['>']),
  twoOperands('ishigherequal', (a, b) => toInt(a) >= toInt(b), ['>=']),
  twoOperands('islower', (a, b) => toInt(a) < toInt(b), ['<']),
  twoOperands('islowerequal', (a, b) => toInt(a) <= toInt(b), ['<=']),
  twoOperands('ipv4in', (a, b) => inSubnet(a, b, 'ipv4')),
  twoOperands('ipv6in', (a, b) => inSubnet(a, b, 'ipv6')),
];
