/**
 * router_xmldir (spec/subsystems.md §6.6): a directory listing as XML, as a route action.
 *
 *   xmldir:DIR        (expanded per request: ${VAR}, $1…)
 *
 * What uWSGI 2.0.21's router_xmldir answers (checked by test/integration/router-xmldir.test.ts
 * against Debian's uWSGI): `200 OK` and, through libxml2,
 *
 *   <?xml version="1.0"?>
 *   <index path="PATH_INFO">
 *     <file size="6" mtime="2026-01-02T03:04:05">a.txt</file>
 *     <directory size="4096" mtime="…">sub</directory>
 *   </index>
 *
 * (`<index path="…"/>` when empty): every entry but `.` and `..` (hidden ones too) that is a
 * regular file or a directory itself (symbolic links, FIFOs and sockets are left out), in byte
 * order of the names (alphasort), with the size and the local modification time; characters
 * beyond ASCII as character references, as libxml2 writes them. A DIR that is
 * missing or not a directory gets `404 Not Found` (text/plain). Routing stops either way.
 * uWSGI's 200 carries no headers at all; tsuwsgi adds `Content-Type: application/xml` and a
 * Content-Length, so the connection can be kept.
 */
import fs from 'node:fs';
import path from 'node:path';
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext, type RouteOutcome } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { respond } from '../../core/routing/respond.ts';

/**
 * libxml2's output of a document without a declared encoding: characters beyond ASCII become
 * character references (`café` → `caf&#xE9;`), so the bytes are ASCII whatever the names are.
 */
function nonAscii(s: string): string {
  return s.replace(/[^\x00-\x7f]/gu, (c) => `&#x${c.codePointAt(0)!.toString(16).toUpperCase()};`);
}

/** libxml2's escaping of text content. */
function escapeText(s: string): string {
  return nonAscii(s.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;')));
}

/** libxml2's escaping of an attribute value. */
function escapeAttribute(s: string): string {
  return nonAscii(s.replace(/[&<>"\r\n\t]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\r': '&#13;', '\n': '&#10;', '\t': '&#9;' })[c]!));
}

const pad = (n: number): string => (n < 10 ? '0' + n : String(n));

/** strftime("%Y-%m-%dT%H:%M:%S", localtime(t)). */
function localIsoTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** strcmp() order of the names' bytes, as alphasort in the C locale. */
function byteOrder(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/** The XML listing of `dir`, or null when it is missing or not a directory. */
export async function xmlListing(dir: string, pathInfo: string): Promise<string | null> {
  let names: Buffer[];
  try {
    names = await fs.promises.readdir(dir, { encoding: 'buffer' });
  } catch {
    return null;
  }
  names.sort(byteOrder);
  let body = '';
  for (const raw of names) {
    const name = raw.toString('utf8');
    let st: fs.Stats;
    try {
      st = await fs.promises.lstat(path.join(dir, name));
    } catch {
      continue; // removed meanwhile
    }
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : null;
    if (!kind) continue;
    body += `  <${kind} size="${st.size}" mtime="${localIsoTime(st.mtimeMs)}">${escapeText(name)}</${kind}>\n`;
  }
  const open = `<index path="${escapeAttribute(pathInfo)}"`;
  return `<?xml version="1.0"?>\n${body === '' ? `${open}/>\n` : `${open}>\n${body}</index>\n`}`;
}

const xmldir: RouteActionDefinition = {
  name: 'xmldir',
  prepare(arg, origin) {
    if (arg.trim() === '') throw new RoutingError(`"xmldir:" needs a directory (e.g. xmldir:/srv/files\${PATH_INFO}) in --${origin.option} "${origin.value}"`);
    return async (ctx: RouteContext): Promise<RouteOutcome> => {
      const xml = await xmlListing(ctx.expand(arg), ctx.getVar('PATH_INFO') ?? '');
      if (xml === null) respond(ctx, 404, 'Not Found', ['Content-Type', 'text/plain', 'Content-Length', '9'], 'Not Found');
      else {
        const body = Buffer.from(xml, 'utf8');
        respond(ctx, 200, 'OK', ['Content-Type', 'application/xml', 'Content-Length', String(body.length)], body);
      }
      return 'break';
    };
  },
};

export default definePlugin({
  name: 'router_xmldir',
  apiVersion: PLUGIN_API_VERSION,
  description: 'internal routing: a directory listing as XML (xmldir)',
  routeActions: [xmldir],
});
