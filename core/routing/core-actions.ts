/**
 * The core's route actions (spec/subsystems.md §6.6, "core" rows): flow control, logging,
 * request vars, response headers and var math. Registered through the core routing module
 * (module.ts) exactly as a plugin registers its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RoutingError } from '../errors.ts';
import type { RouteActionDefinition, RouteContext, RuleOrigin } from './api.ts';
import { parseStatusLine, respond } from './respond.ts';
import { uwsgiStatusPhrase } from './status-phrases.ts';

const where = (o: RuleOrigin): string => `--${o.option} "${o.value}"`;

/** An action that sets one request var to its expanded argument. */
function setVarAction(name: string, varName: string, aliases?: string[]): RouteActionDefinition {
  return {
    name,
    ...(aliases ? { aliases } : {}),
    prepare: (arg) => (ctx) => {
      ctx.setVar(varName, ctx.expand(arg));
      return 'next';
    },
  };
}

/** strtol-like: leading integer, anything unparsable is 0 (uWSGI uses strtol/atoi). */
export function toInt(text: string): number {
  const n = Number.parseInt(text.trim(), 10);
  return Number.isFinite(n) ? n : 0;
}

function mathAction(name: string, op: (a: number, b: number) => number): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const comma = arg.indexOf(',');
      const varName = comma < 0 ? arg : arg.slice(0, comma);
      const operand = comma < 0 ? null : arg.slice(comma + 1);
      if (varName === '') throw new RoutingError(`"${name}:" needs VAR[,N] in ${where(origin)}`);
      return (ctx) => {
        const b = operand === null ? 1 : toInt(ctx.expand(operand));
        ctx.setVar(varName, String(op(toInt(ctx.getVar(varName) ?? '0'), b)));
        return 'next';
      };
    },
  };
}

/** `Name: value` → [name, value] (value without the spaces after the colon). */
function splitHeader(text: string): [string, string] | null {
  const colon = text.indexOf(':');
  if (colon <= 0) return null;
  return [text.slice(0, colon).trim(), text.slice(colon + 1).trimStart()];
}

/**
 * `send:` / `send-crnl:`: the expanded text as bytes. The rule text was read as UTF-8 and
 * request vars are latin-1 byte strings, so the text is turned into its UTF-8 bytes (as a
 * latin-1 string) before expansion and the result is encoded latin-1: every byte is what the
 * config file and the request held, as uWSGI sends them.
 */
function sendAction(name: string, crnl: boolean): RouteActionDefinition {
  return {
    name,
    prepare(arg) {
      const text = Buffer.from(arg, 'utf8').toString('latin1');
      return (ctx) => {
        const out = ctx.expand(text) + (crnl ? '\r\n' : '');
        // uWSGI writes a 0-byte body: nothing reaches the client and nothing changes.
        if (out !== '') ctx.response.send(Buffer.from(out, 'latin1'));
        return 'next';
      };
    },
  };
}

/**
 * `chdir:DIR`: uWSGI changes the worker's directory, and the app runs there (this request and
 * the next ones, until another chdir). Here the app runs in a bridge process: the core checks
 * the directory (uWSGI's failing chdir() breaks the request with this log line) and sends it
 * as UWSGI_CHDIR, which the bridge applies before calling the app. The core's own directory
 * does not change (it also serves other requests, and without --master it is the master).
 */
const chdirAction: RouteActionDefinition = {
  name: 'chdir',
  prepare(arg, origin) {
    if (arg.trim() === '') throw new RoutingError(`"chdir:" needs a directory in ${where(origin)}`);
    return (ctx) => {
      const dir = path.resolve(ctx.expand(arg));
      let problem: string | null = null;
      try {
        if (!fs.statSync(dir).isDirectory()) problem = 'Not a directory';
        else fs.accessSync(dir, fs.constants.X_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        problem = code === 'ENOENT' ? 'No such file or directory' : code === 'EACCES' ? 'Permission denied' : (err as Error).message;
      }
      if (problem !== null) {
        ctx.log(`uwsgi_router_chdir_func()/chdir(): ${problem} [${dir}] during ${ctx.getVar('REQUEST_METHOD') ?? ''} ${ctx.getVar('REQUEST_URI') ?? ''} (${ctx.getVar('REMOTE_ADDR') ?? ''})`);
        return 'break';
      }
      ctx.setVar('UWSGI_CHDIR', dir);
      return 'next';
    };
  },
};

export const CORE_ACTIONS: readonly RouteActionDefinition[] = [
  { name: 'continue', aliases: ['last'], prepare: () => () => 'continue' },
  {
    name: 'break',
    prepare(arg, origin) {
      if (arg.length < 3) return () => 'break';
      const status = parseStatusLine(arg);
      if (!status) throw new RoutingError(`"break:${arg}" in ${where(origin)}: the argument must be a status line such as "404 Not Found" or "403"`);
      // Headers only, no body: uWSGI sends the status with Connection: close and nothing else.
      return (ctx) => {
        respond(ctx, status[0], status[1], ['Connection', 'close', 'Content-Type', 'text/plain'], null);
        return 'break';
      };
    },
  },
  {
    name: 'return',
    aliases: ['break-with-status'],
    prepare(arg, origin) {
      const code = Number(arg.trim());
      if (!/^\d{3}$/.test(arg.trim())) throw new RoutingError(`"return:${arg}" in ${where(origin)}: the argument must be a 3-digit status code`);
      const reason = uwsgiStatusPhrase(code);
      // An unknown code is a plain break (the connection is closed), as in uWSGI.
      if (reason === undefined) return () => 'break';
      return (ctx) => {
        respond(ctx, code, reason, ['Content-Type', 'text/plain', 'Content-Length', String(Buffer.byteLength(reason))], reason);
        return 'break';
      };
    },
  },
  {
    name: 'log',
    prepare: (arg) => (ctx) => {
      ctx.log(ctx.expand(arg));
      return 'next';
    },
  },
  {
    name: 'logvar',
    prepare(arg, origin) {
      const eq = arg.indexOf('=');
      if (eq <= 0) throw new RoutingError(`"logvar:${arg}" in ${where(origin)}: write logvar:KEY=VALUE`);
      const key = arg.slice(0, eq);
      const value = arg.slice(eq + 1);
      return (ctx) => {
        ctx.setLogVar(key, ctx.expand(value));
        return 'next';
      };
    },
  },
  {
    name: 'donotlog',
    prepare: () => (ctx) => {
      ctx.noLog = true;
      return 'next';
    },
  },
  {
    name: 'goto',
    prepare(arg, origin) {
      if (arg === '') throw new RoutingError(`"goto:" needs a label or rule number in ${where(origin)}`);
      return (ctx) => {
        ctx.goto(ctx.expand(arg));
        return 'next';
      };
    },
  },
  {
    name: 'addvar',
    prepare(arg, origin) {
      const eq = arg.indexOf('=');
      if (eq <= 0) throw new RoutingError(`"addvar:${arg}" in ${where(origin)}: write addvar:KEY=VALUE`);
      const key = arg.slice(0, eq);
      const value = arg.slice(eq + 1);
      // Replace-or-append rather than a duplicate var: ${KEY} and the app must agree on the value.
      return (ctx) => {
        ctx.setVar(key, ctx.expand(value));
        return 'next';
      };
    },
  },
  {
    name: 'addheader',
    prepare(arg, origin) {
      if (!splitHeader(arg)) throw new RoutingError(`"addheader:${arg}" in ${where(origin)}: write addheader:Name: value`);
      return (ctx) => {
        const h = splitHeader(ctx.expand(arg));
        if (h) ctx.response.addHeader(h[0], h[1]);
        return 'next';
      };
    },
  },
  {
    name: 'delheader',
    aliases: ['remheader'],
    prepare(arg, origin) {
      if (arg.trim() === '') throw new RoutingError(`"delheader:" needs a header name in ${where(origin)}`);
      return (ctx) => {
        ctx.response.delHeader(ctx.expand(arg).trim());
        return 'next';
      };
    },
  },
  {
    // uWSGI's "prepare the headers again" (see RouteResponse.clearHeaders): useful in the
    // response chain, to turn any response into another status.
    name: 'clearheaders',
    aliases: ['resetheaders'],
    prepare(arg, origin) {
      if (arg.trim().length < 3) throw new RoutingError(`"clearheaders:${arg}" in ${where(origin)}: the argument must be a status line such as "404 Not Found" or "404"`);
      return (ctx) => ctx.response.clearHeaders(ctx.expand(arg));
    },
  },
  sendAction('send', false),
  // uWSGI's docs spell it send-crn1; the code registers send-crnl.
  sendAction('send-crnl', true),
  {
    name: 'disableheaders',
    prepare: () => (ctx) => {
      ctx.response.disableHeaders();
      return 'next';
    },
  },
  {
    // uWSGI's set_user_harakiri: a timer for this request next to --harakiri. As uWSGI reads
    // the argument with atoi, 0 or garbage sets nothing; a negative value is refused here.
    name: 'harakiri',
    prepare(arg, origin) {
      const secs = toInt(arg);
      if (secs < 0) throw new RoutingError(`"harakiri:${arg}" in ${where(origin)}: the argument is a number of seconds`);
      return (ctx) => {
        if (secs > 0) ctx.harakiri = secs;
        return 'next';
      };
    },
  },
  chdirAction,
  // uWSGI's virtualenv of a dynamic app (python only): the app sees UWSGI_HOME in its environ.
  setVarAction('sethome', 'UWSGI_HOME'),
  // uWSGI 2.0 writes this one to UWSGI_HOME too (a bug): UWSGI_FILE is what the action means.
  setVarAction('setfile', 'UWSGI_FILE'),
  {
    // uWSGI renames the worker that runs the request. The rule runs in the core worker: it is
    // the process renamed (without --master, the only tsuwsgi process, as in uWSGI).
    name: 'setprocname',
    prepare(arg, origin) {
      if (arg === '') throw new RoutingError(`"setprocname:" needs a name in ${where(origin)}`);
      return (ctx) => {
        process.title = ctx.expand(arg);
        return 'next';
      };
    },
  },
  {
    name: 'donotoffload',
    prepare: () => (ctx) => {
      ctx.offloadDisabled = true;
      return 'next';
    },
  },
  setVarAction('setapp', 'UWSGI_APPID'),
  {
    name: 'setuser',
    prepare: (arg) => (ctx) => {
      const v = ctx.expand(arg);
      const colon = v.indexOf(':');
      ctx.setVar('REMOTE_USER', colon < 0 ? v : v.slice(0, colon));
      return 'next';
    },
  },
  setVarAction('setscriptname', 'SCRIPT_NAME'),
  setVarAction('setmethod', 'REQUEST_METHOD'),
  setVarAction('seturi', 'REQUEST_URI'),
  setVarAction('setremoteaddr', 'REMOTE_ADDR'),
  setVarAction('setpathinfo', 'PATH_INFO'),
  setVarAction('setdocroot', 'DOCUMENT_ROOT'),
  setVarAction('setscheme', 'UWSGI_SCHEME'),
  {
    name: 'fixpathinfo',
    prepare: () => (ctx) => {
      const script = ctx.getVar('SCRIPT_NAME') ?? '';
      const path = ctx.getVar('PATH_INFO') ?? '';
      if (script !== '' && path.startsWith(script)) ctx.setVar('PATH_INFO', path.slice(script.length));
      return 'next';
    },
  },
  modifierAction('setmodifier1', (ctx, n) => (ctx.modifier1 = n)),
  modifierAction('setmodifier2', (ctx, n) => (ctx.modifier2 = n)),
  mathAction('+', (a, b) => a + b),
  mathAction('-', (a, b) => a - b),
  mathAction('*', (a, b) => a * b),
  // uWSGI 2.0's "/" multiplies (a bug); a real integer divide, and 0 for a zero divisor.
  mathAction('/', (a, b) => (b === 0 ? 0 : Math.trunc(a / b))),
];

function modifierAction(name: string, set: (ctx: RouteContext, n: number) => void): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const n = Number(arg.trim());
      if (!/^\d+$/.test(arg.trim()) || n > 255) throw new RoutingError(`"${name}:${arg}" in ${where(origin)}: the modifier must be 0..255`);
      return (ctx) => {
        set(ctx, n);
        return 'next';
      };
    },
  };
}
