/**
 * Transformations are appended by route actions of the same name (`route-run = gzip:`): this
 * turns TransformationDefinitions into RouteActionDefinitions, so a transformation plugin
 * registers them through the ordinary `routeActions` field of its descriptor
 * (`routeActions: transformationActions([...])`) and the routing engine needs nothing new.
 */
import { RoutingError } from '../errors.ts';
import type { RouteActionDefinition } from '../routing/api.ts';
import type { TransformationDefinition } from './api.ts';

export function transformationActions(defs: readonly TransformationDefinition[]): RouteActionDefinition[] {
  return defs.map((def) => ({
    name: def.name,
    ...(def.aliases ? { aliases: def.aliases } : {}),
    prepare(arg, origin) {
      let make;
      try {
        make = def.prepare(arg);
      } catch (err) {
        // Every argument error names the rule, whoever threw it (parseKeyValues, the plugin).
        throw new RoutingError(`invalid "${def.name}:" transformation in --${origin.option} "${origin.value}": ${(err as Error).message}`, err);
      }
      // uWSGI's transformation actions return NEXT: the rules after them still run.
      return (ctx) => {
        ctx.addTransformation(make(ctx));
        return 'next';
      };
    },
  }));
}

/**
 * Split `key=value,key=value` as uWSGI's uwsgi_kvlist_parse does: a backslash makes the next
 * character literal (`filename=/tmp/a\,b` names the file `/tmp/a,b`), the first unescaped
 * `=` of an item separates key and value. `sep` is the item separator (`;` for ldapauth,
 * whose values are DNs full of commas).
 */
export function parseKeyValues(arg: string, sep = ','): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of splitEscaped(arg, sep)) {
    if (item.text === '') continue;
    const eq = item.separators[0];
    if (eq === undefined || eq === 0) throw new RoutingError(`"${item.text}" is not key=value`);
    out.set(item.text.slice(0, eq).trim(), item.text.slice(eq + 1));
  }
  return out;
}

/** Items of `text` split at unescaped `sep`, unescaped, with the positions of their unescaped `=`. */
function splitEscaped(text: string, sep: string): Array<{ text: string; separators: number[] }> {
  const items: Array<{ text: string; separators: number[] }> = [];
  let cur = '';
  let eqs: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
    } else if (c === sep) {
      items.push({ text: cur, separators: eqs });
      cur = '';
      eqs = [];
    } else {
      if (c === '=') eqs.push(cur.length);
      cur += c;
    }
  }
  items.push({ text: cur, separators: eqs });
  return items;
}
