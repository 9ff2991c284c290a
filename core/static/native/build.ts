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
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileC, NativeBuildError } from '../../../buildsys/compile-c.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = path.join(HERE, 'sendfile.c');

/** Where the checkout's addon goes (and where core/static/sendfile.ts loads it from). */
export const ADDON_BUILD_PATH = path.join(HERE, 'build', 'tsuwsgi_sendfile.node');

/** The directory holding node_api.h: TSUWSGI_NODE_INCLUDE, then beside the running node, then the usual places (plugins/xslt/native/build.ts uses it too). */
export function nodeIncludeDir(): string | null {
  const candidates = [
    process.env.TSUWSGI_NODE_INCLUDE,
    path.join(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  for (const dir of candidates) if (dir && fs.existsSync(path.join(dir, 'node_api.h'))) return dir;
  return null;
}

/** Compile sendfile.c into `out`. Throws a NativeBuildError (code TSUWSGI_E_SENDFILE_BUILD) saying what to install. */
export function buildSendfileAddon(out: string = ADDON_BUILD_PATH): void {
  const code = 'TSUWSGI_E_SENDFILE_BUILD';
  if (process.platform !== 'linux') throw new NativeBuildError(`sendfile addon: Linux only (this is ${process.platform})`, code);
  const include = nodeIncludeDir();
  if (!include) {
    throw new NativeBuildError('sendfile addon: Node headers (node_api.h) not found; install them (Debian: apt-get install libnode-dev) or set TSUWSGI_NODE_INCLUDE', code);
  }
  compileC(SOURCE, out, ['-shared', '-fPIC', `-I${include}`], 'sendfile addon', code);
}
