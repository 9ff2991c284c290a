/**
 * Build the xslt plugin's addon (xslt.c: libxslt through Node-API, see there for why) into
 * build/tsuwsgi_xslt.node, where plugins/xslt/addon.ts loads it. `npm ci` builds it through
 * scripts/build-native.ts, which never fails the install: without libxslt's headers only the
 * xslt plugin is unavailable, and it says so when loaded (install libxslt1-dev, re-run npm ci).
 * uwsgiconfig.ts builds of the xslt plugin compile it too, and fail without it
 * (buildsys/assets.ts).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileC, NativeBuildError } from '../../../buildsys/compile-c.ts';
import { nodeIncludeDir } from '../../../core/static/native/build.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Where the checkout's addon goes (and where plugins/xslt/addon.ts loads it from). */
export const XSLT_ADDON_BUILD_PATH = path.join(HERE, 'build', 'tsuwsgi_xslt.node');

export const XSLT_BUILD_CODE = 'TSUWSGI_E_XSLT_BUILD';

/** `pkg-config --cflags --libs libxslt`, split into arguments; a NativeBuildError saying what to install without it. */
function libxsltFlags(): string[] {
  let out: string;
  try {
    out = execFileSync('pkg-config', ['--cflags', '--libs', 'libxslt'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'pkg-config is not installed' : 'pkg-config does not know libxslt';
    throw new NativeBuildError(`xslt addon: ${why}; install libxslt's headers (Debian: apt-get install pkg-config libxslt1-dev) and re-run npm ci`, XSLT_BUILD_CODE);
  }
  return out.trim().split(/\s+/).filter((f) => f !== '');
}

/** Compile xslt.c into `out` against the system's libxslt (atomically, by compileC). */
export function buildXsltAddon(out: string = XSLT_ADDON_BUILD_PATH): void {
  if (process.platform !== 'linux') throw new NativeBuildError(`xslt addon: Linux only (this is ${process.platform})`, XSLT_BUILD_CODE);
  const include = nodeIncludeDir();
  if (!include) {
    throw new NativeBuildError('xslt addon: Node headers (node_api.h) not found; install them (Debian: apt-get install libnode-dev) or set TSUWSGI_NODE_INCLUDE', XSLT_BUILD_CODE);
  }
  const flags = libxsltFlags();
  // compileC puts the source last: --no-as-needed keeps the libraries named before it (a linker
  // defaulting to --as-needed would drop them, and the addon would fail at load time instead).
  compileC(path.join(HERE, 'xslt.c'), out, ['-shared', '-fPIC', `-I${include}`, '-Wl,--no-as-needed', ...flags], 'xslt addon', XSLT_BUILD_CODE);
}
