/**
 * Build the sendfile addon (sendfile.c, see there for why it exists) with the system C
 * compiler against Node's own headers — no node-gyp, no download: the headers come with Node
 * (`<prefix>/include/node`, /usr/include/node for Debian's nodejs).
 *
 * `npm ci` builds it through scripts/build-native.ts, which never fails the install: without a
 * compiler the server still works, copying file bytes through user space, and says why at
 * start-up (core/static/sendfile.ts). The build system (buildsys/assets.ts) calls
 * buildSendfileAddon() and does fail without one.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNodeAddon } from '../../../buildsys/compile-c.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = path.join(HERE, 'sendfile.c');

/** Where the checkout's addon goes (and where core/static/sendfile.ts loads it from). */
export const ADDON_BUILD_PATH = path.join(HERE, 'build', 'tsuwsgi_sendfile.node');

/** Compile sendfile.c into `out`. Throws a NativeBuildError (code TSUWSGI_E_SENDFILE_BUILD) saying what to install. */
export function buildSendfileAddon(out: string = ADDON_BUILD_PATH): void {
  buildNodeAddon(SOURCE, out, 'sendfile addon', 'TSUWSGI_E_SENDFILE_BUILD');
}
