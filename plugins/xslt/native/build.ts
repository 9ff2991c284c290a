/**
 * Build the xslt plugin's addon (xslt.c: libxslt through Node-API, see there for why) into
 * build/tsuwsgi_xslt.node, where plugins/xslt/addon.ts loads it. `npm ci` builds it through
 * scripts/build-native.ts, which never fails the install: without libxslt's headers only the
 * xslt plugin is unavailable, and it says so when loaded (install libxslt1-dev, re-run npm ci).
 * uwsgiconfig.ts builds of the xslt plugin compile it too, and fail without it
 * (buildsys/assets.ts).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNodeAddon } from '../../../buildsys/compile-c.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Where the checkout's addon goes (and where ../addon.ts loads it from). */
export const XSLT_ADDON_BUILD_PATH = path.join(HERE, 'build', 'tsuwsgi_xslt.node');

export function buildXsltAddon(out: string = XSLT_ADDON_BUILD_PATH): void {
  buildNodeAddon(path.join(HERE, 'xslt.c'), out, 'xslt addon', 'TSUWSGI_E_XSLT_BUILD', { module: 'libxslt', debian: 'libxslt1-dev' });
}
