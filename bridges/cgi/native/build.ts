/**
 * Build the CGI bridge's C forker (cgi-forker.c: why it exists) into build/cgi-forker, where
 * bridges/cgi/bridge.pl looks for it. `npm ci` builds it through scripts/build-native.ts;
 * without a compiler the bridge uses forker.pl (same behaviour, more CPU per script).
 * uwsgiconfig.ts builds of the cgi plugin compile it too (buildsys/assets.ts).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileC, NativeBuildError } from '../../../buildsys/compile-c.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Where bridge.pl runs it from: native/build/cgi-forker beside the bridge. */
export const CGI_FORKER_BUILD_PATH = path.join(HERE, 'build', 'cgi-forker');

export function buildCgiForker(out: string = CGI_FORKER_BUILD_PATH): void {
  const code = 'TSUWSGI_E_CGI_FORKER_BUILD';
  if (process.platform !== 'linux') throw new NativeBuildError(`CGI forker: Linux only (this is ${process.platform})`, code);
  compileC(path.join(HERE, 'cgi-forker.c'), out, [], 'CGI forker', code);
}
