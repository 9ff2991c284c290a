/**
 * The libxslt addon (native/xslt.c) as the xslt plugin uses it: loaded once per process, on
 * first use (the catalog imports every plugin, so loading it at import time would make every
 * tsuwsgi need libxslt), and a Promise per transformation.
 *
 * `npm ci` builds it (scripts/build-native.ts → native/build.ts); a build (uwsgiconfig.ts)
 * compiles it beside the plugin at the same relative place.
 */
import { fileURLToPath } from 'node:url';
import { loadAddon } from '../../core/native/load-addon.ts';

/** What native/xslt.c exports. */
interface XsltAddon {
  transform(doc: string | Buffer, stylesheet: string, params: string[], cb: (failed: FailedStage | null, output: Buffer | null, messages: string) => void): void;
  versions(): { libxml2: string; libxslt: number };
}

/** Where a transformation failed: reading the document, the stylesheet, applying it, or serializing the result. */
export type FailedStage = 'doc' | 'stylesheet' | 'transform' | 'output';

export type XsltResult = { ok: true; output: Buffer; messages: string } | { ok: false; failed: FailedStage; messages: string };

export const XSLT_ADDON_PATH = fileURLToPath(new URL('./native/build/tsuwsgi_xslt.node', import.meta.url));

let addon: XsltAddon | null = null;

/** Load the addon (once); throws a TsuwsgiError (TSUWSGI_E_XSLT_ADDON) that says how to get it. */
export function loadXsltAddon(): XsltAddon {
  addon ??= loadAddon<XsltAddon>({ file: XSLT_ADDON_PATH, exports: ['transform', 'versions'], what: "the xslt plugin's libxslt addon", code: 'TSUWSGI_E_XSLT_ADDON', how: 'install libxslt (Debian: apt-get install libxslt1-dev) and re-run "npm ci" (or "npx tsx scripts/build-native.ts")' });
  return addon;
}

/**
 * Transform `doc` (a file path, or the XML bytes) with the stylesheet at `stylesheet`, in
 * libuv's thread pool. `params` are [name, value, …] string parameters.
 */
export function xsltTransform(doc: string | Buffer, stylesheet: string, params: string[]): Promise<XsltResult> {
  const a = loadXsltAddon();
  return new Promise((resolve) => {
    a.transform(doc, stylesheet, params, (failed, output, messages) => {
      resolve(failed === null ? { ok: true, output: output!, messages } : { ok: false, failed, messages });
    });
  });
}

/**
 * uWSGI's params: `name=value` items separated by `&` (empty items skipped, items without `=`
 * ignored, the first `=` splits), taken as they are: no URL decoding, as uWSGI does not decode
 * the QUERY_STRING it passes either.
 */
export function parseXsltParams(text: string | null): string[] {
  if (text === null) return [];
  const out: string[] = [];
  for (const item of text.split('&')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    out.push(cText(item.slice(0, eq)), cText(item.slice(eq + 1)));
  }
  return out;
}

/**
 * Request vars and expansions are latin1 strings (one char per byte); libxml2 wants the bytes
 * themselves, which are UTF-8 in practice: decode them so the addon's UTF-8 encoding gives the
 * same bytes back. Text that is not such a byte string (a config's own Unicode) stays as it is.
 */
export function cText(text: string): string {
  if (/^[\x00-\x7f]*$/.test(text) || /[^\x00-\xff]/.test(text)) return text;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(text, 'latin1'));
  } catch {
    return text;
  }
}
