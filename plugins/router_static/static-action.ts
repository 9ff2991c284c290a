/**
 * `static:PATH` / `static-next:PATH` (uWSGI's uwsgi_file_serve with is_a_file=1): serve one
 * file through the full static engine (core/static/serve.ts: MIME type, Last-Modified,
 * If-Modified-Since → 304, Range with --honour-range, Expires rules, gzip variants,
 * file-serve-mode), after the same checks uWSGI makes:
 *
 *  - the realpath of PATH must be PATH itself, or lie under a --static-safe dir: a symlink to
 *    elsewhere, or `..` smuggled in through an expanded `$1`, is refused with uWSGI's
 *    `[uwsgi-fileserve] security error` line;
 *  - a directory is served through the first --static-index file in it, or not at all;
 *  - --static-skip-ext suffixes are never served; only GET and HEAD are.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RouteContext } from '../../core/routing/api.ts';
import type { FoundFile } from '../../core/static/lookup.ts';
import { isUnder } from '../../core/static/lookup.ts';
import { serveStatic } from '../../core/static/serve.ts';
import { fsPath, staticRules, type StaticRules } from './serve-config.ts';

async function statOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.stat(p);
  } catch {
    return null;
  }
}

/** Realpaths of the --static-safe dirs, resolved once per rules object. */
const safeReal = new WeakMap<StaticRules, Promise<string[]>>();
function safeRoots(rules: StaticRules): Promise<string[]> {
  let p = safeReal.get(rules);
  if (!p) {
    p = Promise.all(rules.plan.safe.map((s) => fs.promises.realpath(s).catch(() => s)));
    safeReal.set(rules, p);
  }
  return p;
}

/** The file `static:` would serve for this expanded path, or null (the reason is logged when it is not simply missing). */
export async function resolveStaticFile(ctx: RouteContext, rules: StaticRules, expanded: string): Promise<FoundFile | null> {
  let literal = fsPath(expanded);
  if (literal === '') return null;
  if (!literal.startsWith('/')) literal = `${process.cwd()}/${literal}`;
  // realpath() never has duplicate or trailing slashes; only those are forgiven in the comparison.
  literal = literal.replace(/\/{2,}/g, '/');
  if (literal.length > 1) literal = literal.replace(/\/+$/, '');
  let real: string;
  try {
    real = await fs.promises.realpath(literal);
  } catch {
    return null;
  }
  if (real !== literal) {
    const safe = await safeRoots(rules);
    if (!safe.some((s) => isUnder(real, s))) {
      ctx.log(`[uwsgi-fileserve] security error: ${real} is not under ${literal} or a safe path`);
      return null;
    }
  }
  let file = literal;
  let st = await statOrNull(real);
  if (!st) return null;
  if (st.isDirectory()) {
    let indexed: fs.Stats | null = null;
    for (const idx of rules.plan.index) {
      const s = await statOrNull(path.join(real, idx));
      if (s && s.isFile()) {
        file = path.join(literal, idx);
        indexed = s;
        break;
      }
    }
    if (!indexed) return null;
    st = indexed;
  }
  if (!st.isFile()) return null;
  for (const ext of rules.plan.skipExt) if (file.endsWith(ext)) return null;
  return { file, stat: st };
}

/**
 * Serve it. True when the request was answered (a response went out, or began to), false
 * when there was nothing to serve.
 */
export async function serveStaticAction(ctx: RouteContext, arg: string): Promise<boolean> {
  const method = ctx.getVar('REQUEST_METHOD') ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') return false;
  const rules = staticRules(ctx.options, (line) => ctx.log(line));
  const found = await resolveStaticFile(ctx, rules, ctx.expand(arg));
  if (!found) return false;
  try {
    await serveStatic(rules.serve, found, ctx.vars, method, ctx.response.sink());
  } catch (err) {
    // Only before any header (the file vanished or is unreadable): the request is not answered.
    ctx.log(`[uwsgi-fileserve] unable to serve ${found.file}: ${(err as Error).message}`);
    return ctx.response.headersSent;
  }
  return true;
}
