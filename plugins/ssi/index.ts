/**
 * ssi (spec/subsystems.md §6.6): server-side includes, as uWSGI's ssi plugin's route action.
 *
 *   ssi:FILE        (expanded per request: ${VAR}, $1…)
 *
 * The file is parsed as uWSGI parses it (parser.ts: directives `<!--#command key="value" -->`)
 * and the result answered as `200 OK` with Content-Length and `Content-Type: text/html`;
 * routing stops. The commands, uWSGI's four:
 *
 *   <!--#echo var="NAME" -->        the request var NAME (as it is: no HTML escaping)
 *   <!--#printenv -->               every request var, `NAME=value` a line, in request order
 *   <!--#include file="PATH" -->    the file's bytes, not parsed (relative paths: the server's
 *                                   working directory); `virtual=` is not supported
 *   <!--#cache key="K" name="C" --> the item K of uWSGI cache C: tsuwsgi has no uWSGI cache,
 *                                   so it produces nothing, as uWSGI without a cache
 *
 * A directive that is unknown, malformed, or names a missing var or file produces nothing.
 * A FILE that cannot be read gets no answer: the connection is closed and a line logged, as
 * uWSGI does (its BREAK without a response). test/integration/ssi.test.ts compares every
 * case with Debian's uWSGI 2.0.21.
 */
import fs from 'node:fs';
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext, type RouteOutcome } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { respond } from '../../core/routing/respond.ts';
import { parseSsi, ssiArg, type SsiDirective } from './parser.ts';

/** A path as the bytes uWSGI would open: request text is latin1 (a byte a char); a config's own Unicode is UTF-8. */
function pathBytes(text: string): Buffer {
  return Buffer.from(text, /[^\x00-\xff]/.test(text) ? 'utf8' : 'latin1');
}

/** uwsgi_buffer_from_file: the whole file, or null (missing, unreadable, a directory). */
async function readWhole(file: Buffer): Promise<Buffer | null> {
  try {
    return await fs.promises.readFile(file);
  } catch {
    return null;
  }
}

let cacheNoted = false;

/** What one directive produces (null for nothing). */
async function run(d: SsiDirective, ctx: RouteContext): Promise<Buffer | null> {
  switch (d.command) {
    case 'echo': {
      const name = ssiArg(d, 'var');
      if (name === null || name.length === 0) return null;
      const value = ctx.getVar(name.toString('latin1'));
      return value ? Buffer.from(value, 'latin1') : null;
    }
    case 'printenv': {
      let text = '';
      for (const [k, v] of ctx.vars) text += `${k}=${v}\n`;
      return Buffer.from(text, 'latin1');
    }
    case 'include': {
      const file = ssiArg(d, 'file');
      if (file === null || file.length === 0) return null;
      return readWhole(file);
    }
    case 'cache': {
      if (!cacheNoted) {
        cacheNoted = true;
        ctx.log('ssi: <!--#cache --> reads uWSGI caches, which tsuwsgi does not have: it produces nothing');
      }
      return null;
    }
  }
}

/** The document with its directives replaced by what they produce. */
export async function renderSsi(doc: Buffer, ctx: RouteContext): Promise<Buffer> {
  const parts = parseSsi(doc);
  const out: Buffer[] = [];
  for (const p of parts) {
    if (Buffer.isBuffer(p)) out.push(p);
    else {
      const b = await run(p, ctx);
      if (b !== null && b.length > 0) out.push(b);
    }
  }
  return Buffer.concat(out);
}

const ssi: RouteActionDefinition = {
  name: 'ssi',
  prepare(arg, origin) {
    if (arg.trim() === '') throw new RoutingError(`"ssi:" needs the path of a document (e.g. ssi:/srv/www/$1.shtml) in --${origin.option} "${origin.value}"`);
    return async (ctx: RouteContext): Promise<RouteOutcome> => {
      const file = ctx.expand(arg);
      const doc = await readWhole(pathBytes(file));
      if (doc === null) {
        // uWSGI answers nothing when the document cannot be read: the connection is closed.
        ctx.log(`ssi: unable to read ${file}: the connection is closed`);
        return 'break';
      }
      const body = await renderSsi(doc, ctx);
      respond(ctx, 200, 'OK', ['Content-Length', String(body.length), 'Content-Type', 'text/html'], body);
      return 'break';
    };
  },
};

export default definePlugin({
  name: 'ssi',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: server-side includes (ssi)',
  routeActions: [ssi],
});
