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
        if (err instanceof RoutingError) throw err;
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

/** Split `key=value,key=value` (uWSGI's uwsgi_kvlist_parse, without escapes). */
export function parseKeyValues(arg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of arg.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new RoutingError(`"${part}" is not key=value`);
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1));
  }
  return out;
}
