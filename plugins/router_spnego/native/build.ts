/**
 * Build the router_spnego plugin's addon (spnego.c: MIT krb5's GSS-API through Node-API, see
 * there for why) into build/tsuwsgi_spnego.node, where plugins/router_spnego/addon.ts loads it.
 * `npm ci` builds it through scripts/build-native.ts, which never fails the install: without
 * the Kerberos headers only the router_spnego plugin is unavailable, and it says so when loaded
 * (install libkrb5-dev, re-run npm ci). uwsgiconfig.ts builds of the router_spnego plugin
 * compile it too, and fail without it (buildsys/assets.ts).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileC, NativeBuildError } from '../../../buildsys/compile-c.ts';
import { nodeIncludeDir } from '../../../core/static/native/build.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Where the checkout's addon goes (and where plugins/router_spnego/addon.ts loads it from). */
export const SPNEGO_ADDON_BUILD_PATH = path.join(HERE, 'build', 'tsuwsgi_spnego.node');

export const SPNEGO_BUILD_CODE = 'TSUWSGI_E_SPNEGO_BUILD';

/** `pkg-config --cflags --libs krb5-gssapi`, split into arguments; a NativeBuildError saying what to install without it. */
function gssapiFlags(): string[] {
  let out: string;
  try {
    out = execFileSync('pkg-config', ['--cflags', '--libs', 'krb5-gssapi'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'pkg-config is not installed' : 'pkg-config does not know krb5-gssapi';
    throw new NativeBuildError(`spnego addon: ${why}; install MIT Kerberos' headers (Debian: apt-get install pkg-config libkrb5-dev) and re-run npm ci`, SPNEGO_BUILD_CODE);
  }
  return out.trim().split(/\s+/).filter((f) => f !== '');
}

/** Compile spnego.c into `out` against the system's libgssapi_krb5 (atomically, by compileC). */
export function buildSpnegoAddon(out: string = SPNEGO_ADDON_BUILD_PATH): void {
  if (process.platform !== 'linux') throw new NativeBuildError(`spnego addon: Linux only (this is ${process.platform})`, SPNEGO_BUILD_CODE);
  const include = nodeIncludeDir();
  if (!include) {
    throw new NativeBuildError('spnego addon: Node headers (node_api.h) not found; install them (Debian: apt-get install libnode-dev) or set TSUWSGI_NODE_INCLUDE', SPNEGO_BUILD_CODE);
  }
  const flags = gssapiFlags();
  // compileC puts the source last: --no-as-needed keeps the libraries named before it (a linker
  // defaulting to --as-needed would drop them, and the addon would fail at load time instead).
  compileC(path.join(HERE, 'spnego.c'), out, ['-shared', '-fPIC', `-I${include}`, '-Wl,--no-as-needed', ...flags], 'spnego addon', SPNEGO_BUILD_CODE);
}
