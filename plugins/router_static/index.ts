/**
 * router_static (spec/subsystems.md §6.6, §17): route actions that answer from the filesystem.
 *
 *   static:PATH            the static engine (MIME, Last-Modified, 304, Range, Expires, gzip, X-Sendfile)
 *   static-next:PATH       the same; when there is nothing to serve, go on with the next rule
 *   file:filename=..,…     the file as the body, status and Content-Type from the rule
 *   sendfile:…, fastfile:… the same keys (uWSGI's sendfile() / offload variants)
 *   file-next, sendfile-next, fastfile-next: the next rule when the file cannot be opened
 *
 * When nothing is served, the plain forms close the request without an answer, as uWSGI does
 * (a rule is expected to name a file that exists; use the -next forms to fall through).
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import type { RouteOutcome } from '../../core/routing/api.ts';
import { parseFileArgs, serveFileAction } from './file-action.ts';
import { serveStaticAction } from './static-action.ts';

function staticAction(name: string, next: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      if (arg.trim() === '') throw new RoutingError(`"${name}:" needs the path of a file (e.g. ${name}:/srv/www\${PATH_INFO}) in --${origin.option} "${origin.value}"`);
      return async (ctx): Promise<RouteOutcome> => {
        if (await serveStaticAction(ctx, arg)) return 'break';
        // [difference] uWSGI's static-next returns NEXT even after serving the file, so the app
        // would run and write a second response; here a served file ends routing.
        if (next) return 'next';
        ctx.log(`${name}: nothing to serve for ${ctx.getVar('REQUEST_METHOD') ?? ''} ${ctx.getVar('REQUEST_URI') ?? ''} (${ctx.expand(arg)}): the connection is closed (static-next falls through instead)`);
        return 'break';
      };
    },
  };
}

function fileAction(name: string, next: boolean, honoursNoCl: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const cfg = parseFileArgs(name, arg, origin, honoursNoCl);
      return async (ctx): Promise<RouteOutcome> => {
        if (await serveFileAction(ctx, cfg, name)) return 'break';
        if (next) return 'next';
        ctx.log(`${name}: unable to open ${ctx.expand(cfg.filename)}: the connection is closed (${name}-next falls through instead)`);
        return 'break';
      };
    },
  };
}

export default definePlugin({
  name: 'router_static',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: the static, file, sendfile and fastfile actions (answer from the filesystem)',
  routeActions: [
    staticAction('static', false),
    staticAction('static-next', true),
    fileAction('file', false, true),
    fileAction('file-next', true, true),
    fileAction('sendfile', false, false),
    fileAction('sendfile-next', true, false),
    fileAction('fastfile', false, false),
    fileAction('fastfile-next', true, false),
  ],
});
