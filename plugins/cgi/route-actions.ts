/**
 * The cgi plugin's route actions (uWSGI's cgi_plugin.c, spec/languages.md §9.5 CGI11):
 *
 *   cgi:COMMAND                 run COMMAND (expanded: $1, ${VAR}…) as a CGI script
 *   cgihelper:HELPER COMMAND    run it through HELPER (`HELPER COMMAND [args]`), as --cgi-helper does
 *
 * uWSGI runs the script right there, in the worker routing the request, whatever the
 * request's modifier1. tsuwsgi's scripts are started by the CGI bridge (bridges/cgi/bridge.pl),
 * so the action hands the request to it: modifier1 9, and the command in the request var
 * TSUWSGI_CGI_ROUTE, which the bridge takes out of the request before the script sees it. The
 * bridge honours that var only with this server's token in it (a random value made at
 * start-up, in the environment of the core workers and bridges), so a client talking the
 * uwsgi protocol cannot name a command of its choosing.
 *
 * As in uWSGI, `cgi:` answers 404 when COMMAND is not a regular file and 403 when it is not
 * executable; `cgihelper:` checks nothing (the helper reads the file). Routing stops here.
 * The script gets no PATH_INFO; SCRIPT_NAME is COMMAND below DOCUMENT_ROOT (uWSGI cuts
 * DOCUMENT_ROOT's length off COMMAND even when COMMAND is elsewhere; tsuwsgi passes COMMAND
 * whole then). The bridge starts when a rule uses these actions, even without --cgi.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidOptionError } from '../../core/errors.ts';
import type { ResolvedOptions } from '../../core/options/resolved.ts';
import type { RouteActionDefinition, RouteContext, RouteOutcome, RuleOrigin } from '../../core/plugins/api.ts';
import { respond } from '../../core/routing/respond.ts';
import { parseRule, REQUEST_CHAIN_OPTIONS } from '../../core/routing/rules.ts';

export const CGI_MODIFIER1 = 9;
/** The request var that carries `TOKEN \0 HELPER \0 COMMAND` to the bridge. */
export const ROUTE_VAR = 'TSUWSGI_CGI_ROUTE';
/** The environment variable holding this server's token (see above). */
export const ROUTE_TOKEN_ENV = 'TSUWSGI_CGI_ROUTE_TOKEN';

const ACTIONS = new Set(['cgi', 'cgihelper']);

/** Whether a request-chain rule uses `cgi:` or `cgihelper:` (then the bridge must run). */
export function routesUseCgi(options: ResolvedOptions): boolean {
  for (const option of REQUEST_CHAIN_OPTIONS) {
    for (const value of options.all(option)) {
      try {
        const rule = parseRule(option, value);
        if ('action' in rule && ACTIONS.has(rule.action)) return true;
      } catch {
        // A malformed rule is reported by the routing plan, with its origin.
      }
    }
  }
  return false;
}

/** Made once, in the master, before the core workers and bridges inherit the environment. */
export function ensureRouteToken(): void {
  process.env[ROUTE_TOKEN_ENV] ||= crypto.randomBytes(24).toString('hex');
}

/** The token, read once (process.env is a lookup through the C++ environment on every access). */
let routeToken: string | undefined;

function token(ctx: RouteContext): string | null {
  const t = (routeToken ||= process.env[ROUTE_TOKEN_ENV]);
  if (!t) ctx.log('cgi: route action: no CGI route token in the environment (the cgi plugin was not initialised by the master); answering 500');
  return t || null;
}

async function fileKind(file: string): Promise<'missing' | 'not-executable' | 'ok'> {
  try {
    if (!(await fs.promises.stat(file)).isFile()) return 'missing';
  } catch {
    return 'missing';
  }
  try {
    await fs.promises.access(file, fs.constants.X_OK);
    return 'ok';
  } catch {
    return 'not-executable';
  }
}

function handOver(ctx: RouteContext, helper: string, command: string): RouteOutcome {
  const t = token(ctx);
  if (!t) {
    respond(ctx, 500, 'Internal Server Error', ['Content-Type', 'text/plain', 'Content-Length', '21'], 'Internal Server Error');
    return 'break';
  }
  ctx.modifier1 = CGI_MODIFIER1;
  ctx.setVar(ROUTE_VAR, `${t}\0${helper}\0${command}`);
  // Run the "app" now: the CGI bridge, which starts the command.
  return 'continue';
}

const cgi: RouteActionDefinition = {
  name: 'cgi',
  prepare(arg) {
    return async (ctx) => {
      const command = path.resolve(ctx.expand(arg));
      const kind = await fileKind(command);
      if (kind === 'missing') {
        respond(ctx, 404, 'Not Found', ['Content-Type', 'text/plain', 'Content-Length', '9'], 'Not Found');
        return 'break';
      }
      if (kind === 'not-executable') {
        respond(ctx, 403, 'Forbidden', ['Content-Type', 'text/plain', 'Content-Length', '9'], 'Forbidden');
        return 'break';
      }
      return handOver(ctx, '', command);
    };
  },
};

const cgihelper: RouteActionDefinition = {
  name: 'cgihelper',
  prepare(arg, origin: RuleOrigin) {
    const space = arg.indexOf(' ');
    if (space <= 0 || space === arg.length - 1) {
      throw new InvalidOptionError(`--${origin.option} ${origin.value}: invalid cgihelper syntax, must be "cgihelper:helper command" (e.g. cgihelper:perl /srv/cgi/$1.pl)`);
    }
    const helperTemplate = arg.slice(0, space);
    const commandTemplate = arg.slice(space + 1);
    return (ctx) => {
      const helper = ctx.expand(helperTemplate);
      const command = ctx.expand(commandTemplate);
      if (helper === '' || command === '') {
        respond(ctx, 404, 'Not Found', ['Content-Type', 'text/plain', 'Content-Length', '9'], 'Not Found');
        return 'break';
      }
      return handOver(ctx, helper, command.includes('/') ? path.resolve(command) : command);
    };
  },
};

export const CGI_ROUTE_ACTIONS: readonly RouteActionDefinition[] = [cgi, cgihelper];
