/**
 * The core's `${name[key]}` route vars (spec/subsystems.md §6.4): cookie, qs, time,
 * httptime, base64, hex, uwsgi.
 */
import { randomUUID } from 'node:crypto';
import type { RouteContext, RouteVarDefinition } from './api.ts';
import { MimeTable } from '../static/mime.ts';

/** `a=1; b=2` / `a=1&b=2` → value of `key`, raw (not URL-decoded, as uWSGI). */
function findItem(text: string, sep: RegExp, key: string): string {
  for (const part of text.split(sep)) {
    const eq = part.indexOf('=');
    const k = (eq < 0 ? part : part.slice(0, eq)).trim();
    if (k === key) return eq < 0 ? '' : part.slice(eq + 1);
  }
  return '';
}

function uwsgiVar(key: string, ctx: RouteContext): string {
  switch (key) {
    case 'wid':
      return String(ctx.workerId);
    case 'pid':
      return String(ctx.pid);
    case 'uuid':
      return randomUUID();
    case 'status':
      // uWSGI sets 500 as the default status when it parses the request vars, before any
      // rule runs, so the request chain sees 500 until a response exists (checked against
      // uWSGI 2.0.21 by test/differential/routing-vs-uwsgi.test.ts).
      return String(ctx.status || 500);
    case 'rtime':
      return String(Math.max(0, Date.now() - ctx.startedAt) * 1000);
    case 'sor':
      return String(ctx.startedAt * 1000);
    case 'rsize':
      return String(ctx.responseSize);
    // The listen queue lives in the kernel and the stats server reads it on demand
    // (core/stats/); uWSGI's master copies it into shared memory, which tsuwsgi has not.
    case 'lq':
      return '0';
    default:
      return '';
  }
}

/**
 * `${mime[VAR]}`: the MIME type of the file name in request var VAR, from /etc/mime.types and
 * --mimefile (core/static/mime.ts), loaded on first use. uWSGI answers empty unless a static
 * option made it load its table; tsuwsgi always knows the types.
 */
let mimeTable: MimeTable | null = null;
function mimeVar(key: string, ctx: RouteContext): string {
  mimeTable ??= MimeTable.load(ctx.options.all('mimefile'), (line) => ctx.log(line));
  return mimeTable.lookup(ctx.getVar(key) ?? '') ?? '';
}

export const CORE_VARS: readonly RouteVarDefinition[] = [
  { name: 'cookie', get: (key, ctx) => findItem(ctx.getVar('HTTP_COOKIE') ?? '', /;/, key) },
  { name: 'qs', get: (key, ctx) => findItem(ctx.getVar('QUERY_STRING') ?? '', /&/, key) },
  {
    name: 'time',
    get(key) {
      if (key === 'unix') return String(Math.floor(Date.now() / 1000));
      if (key === 'micros') return String(Math.round((performance.timeOrigin + performance.now()) * 1000));
      return '';
    },
  },
  { name: 'httptime', get: (key) => new Date(Date.now() + (Number.parseInt(key, 10) || 0) * 1000).toUTCString() },
  { name: 'base64', get: (key, ctx) => Buffer.from(ctx.getVar(key) ?? '').toString('base64') },
  // Upper-case digits, as uWSGI 2.0.21 prints them (`${hex[REQUEST_METHOD]}` → 474554, `/` → 2F).
  { name: 'hex', get: (key, ctx) => Buffer.from(ctx.getVar(key) ?? '').toString('hex').toUpperCase() },
  { name: 'uwsgi', get: uwsgiVar },
  { name: 'mime', get: mimeVar },
];
