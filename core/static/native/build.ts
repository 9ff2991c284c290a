/**
 * Build the sendfile addon (sendfile.c, see there for why it exists) with the system C
 * compiler against Node's own headers — no node-gyp, no download: the headers come with Node
 * (`<prefix>/include/node`, /usr/include/node for Debian's nodejs).
 *
 *   tsx core/static/native/build.ts      run by `npm ci` / `npm install` (package.json "install")
 *
 * As a script it never fails the install: without a compiler the server still works, copying
 * file bytes through user space, and says why at start-up (core/static/sendfile.ts). The
 * build system (buildsys/assets.ts) calls buildSendfileAddon() and does fail without one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = path.join(HERE, 'sendfile.c');

/** Where the checkout's addon goes (and where core/static/sendfile.ts loads it from). */
export const ADDON_BUILD_PATH = path.join(HERE, 'build', 'tsuwsgi_sendfile.node');

/** The directory holding node_api.h: TSUWSGI_NODE_INCLUDE, then beside the running node, then the usual places. */
function nodeIncludeDir(): string | null {
  const candidates = [
    process.env.TSUWSGI_NODE_INCLUDE,
    path.join(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  for (const dir of candidates) if (dir && fs.existsSync(path.join(dir, 'node_api.h'))) return dir;
  return null;
}

export class AddonBuildError extends Error {
  readonly code = 'TSUWSGI_E_SENDFILE_BUILD';
}

/** Compile sendfile.c into `out` (atomically: a concurrent loader never sees half a file). */
export function buildSendfileAddon(out: string = ADDON_BUILD_PATH): void {
  if (process.platform !== 'linux') throw new AddonBuildError(`sendfile addon: Linux only (this is ${process.platform})`);
  const include = nodeIncludeDir();
  if (!include) {
    throw new AddonBuildError('sendfile addon: Node headers (node_api.h) not found; install them (Debian: apt-get install libnode-dev) or set TSUWSGI_NODE_INCLUDE');
  }
  // CC when set; else the first compiler driver installed (g++ alone can compile C with -x c).
  const compilers = process.env.CC ? [process.env.CC] : ['cc', 'gcc', 'clang', 'g++'];
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  for (const cc of compilers) {
    try {
      execFileSync(cc, ['-x', 'c', '-O2', '-Wall', '-Wextra', '-shared', '-fPIC', `-I${include}`, '-o', tmp, SOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
      fs.renameSync(tmp, out);
      return;
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === 'ENOENT') continue;
      throw new AddonBuildError(`sendfile addon: build failed (${cc}): ${e.stderr?.toString().trim() || e.message}`);
    }
  }
  throw new AddonBuildError(`sendfile addon: no C compiler found (tried ${compilers.join(', ')}); Debian: apt-get install gcc, or set CC`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    buildSendfileAddon();
    process.stdout.write(`tsuwsgi: built ${path.relative(process.cwd(), ADDON_BUILD_PATH)} (zero-copy static files)\n`);
  } catch (err) {
    // Not fatal: static files are then copied through user space (slower for large files).
    process.stderr.write(`tsuwsgi: ${(err as Error).message}; static files will be sent without sendfile(2)\n`);
  }
}
