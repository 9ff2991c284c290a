/**
 * `npm ci` / `npm install` (package.json "install"): build tsuwsgi's native parts with the
 * system C compiler. Each is optional at run time, so a failed build is reported and never
 * fails the install; the server says at start-up what it does without the part.
 */
import path from 'node:path';
import { buildSendfileAddon, ADDON_BUILD_PATH } from '../core/static/native/build.ts';
import { buildCgiForker, CGI_FORKER_BUILD_PATH } from '../bridges/cgi/native/build.ts';
import { buildXsltAddon, XSLT_ADDON_BUILD_PATH } from '../plugins/xslt/native/build.ts';
import { buildSpnegoAddon, SPNEGO_ADDON_BUILD_PATH } from '../plugins/router_spnego/native/build.ts';

const PARTS: Array<{ build: () => void; out: string; gives: string; without: string }> = [
  { build: () => buildSendfileAddon(), out: ADDON_BUILD_PATH, gives: 'zero-copy static files', without: 'static files will be sent without sendfile(2)' },
  { build: () => buildCgiForker(), out: CGI_FORKER_BUILD_PATH, gives: 'CGI scripts started with posix_spawn', without: 'CGI scripts will be started by bridges/cgi/forker.pl' },
  { build: () => buildXsltAddon(), out: XSLT_ADDON_BUILD_PATH, gives: 'the xslt plugin', without: 'the xslt plugin will refuse to load' },
  { build: () => buildSpnegoAddon(), out: SPNEGO_ADDON_BUILD_PATH, gives: 'the router_spnego plugin', without: 'the router_spnego plugin will refuse to load' },
];

for (const part of PARTS) {
  try {
    part.build();
    process.stdout.write(`tsuwsgi: built ${path.relative(process.cwd(), part.out)} (${part.gives})\n`);
  } catch (err) {
    process.stderr.write(`tsuwsgi: ${(err as Error).message}; ${part.without}\n`);
  }
}
