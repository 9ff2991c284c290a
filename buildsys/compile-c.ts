/**
 * Compile one C file with the system compiler: the native parts of tsuwsgi (the sendfile addon,
 * the CGI forker, …) are single C files built at `npm ci` and by uwsgiconfig.ts builds, with
 * no node-gyp and no download.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export class NativeBuildError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/**
 * Compile `source` into `out` with `flags` (atomically: a concurrent loader never sees half a
 * file). CC when set; else the first compiler driver installed (g++ alone can compile C with
 * -x c). `what` names the part in errors; `code` is the error's stable code.
 */
export function compileC(source: string, out: string, flags: readonly string[], what: string, code: string): void {
  const compilers = process.env.CC ? [process.env.CC] : ['cc', 'gcc', 'clang', 'g++'];
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  for (const cc of compilers) {
    try {
      execFileSync(cc, ['-x', 'c', '-O2', '-Wall', '-Wextra', ...flags, '-o', tmp, source], { stdio: ['ignore', 'pipe', 'pipe'] });
      fs.renameSync(tmp, out);
      return;
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === 'ENOENT') continue;
      throw new NativeBuildError(`${what}: build failed (${cc}): ${e.stderr?.toString().trim() || e.message}`, code);
    }
  }
  throw new NativeBuildError(`${what}: no C compiler found (tried ${compilers.join(', ')}); Debian: apt-get install gcc, or set CC`, code);
}

/** The directory holding node_api.h: TSUWSGI_NODE_INCLUDE, then beside the running node, then the usual places. */
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

/** A library an addon links, as pkg-config names it, and the Debian packages that provide it. */
export interface PkgConfigLibrary {
  module: string;
  debian: string;
}

/** `pkg-config --cflags --libs MODULE`, split into arguments; a NativeBuildError saying what to install without it. */
function pkgConfigFlags(lib: PkgConfigLibrary, what: string, code: string): string[] {
  let out: string;
  try {
    out = execFileSync('pkg-config', ['--cflags', '--libs', lib.module], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'pkg-config is not installed' : `pkg-config does not know ${lib.module}`;
    throw new NativeBuildError(`${what}: ${why}; install its headers (Debian: apt-get install pkg-config ${lib.debian}) and re-run npm ci`, code);
  }
  return out.trim().split(/\s+/).filter((f) => f !== '');
}

/**
 * Compile a one-file Node-API addon (Linux, against Node's own headers, linking `lib` when
 * given) into `out`. Throws a NativeBuildError with `code` that says what to install.
 */
export function buildNodeAddon(source: string, out: string, what: string, code: string, lib?: PkgConfigLibrary): void {
  if (process.platform !== 'linux') throw new NativeBuildError(`${what}: Linux only (this is ${process.platform})`, code);
  const include = nodeIncludeDir();
  if (!include) {
    throw new NativeBuildError(`${what}: Node headers (node_api.h) not found; install them (Debian: apt-get install libnode-dev) or set TSUWSGI_NODE_INCLUDE`, code);
  }
  // compileC puts the source last: --no-as-needed keeps the libraries named before it (a linker
  // defaulting to --as-needed would drop them, and the addon would fail at load time instead).
  const libFlags = lib ? ['-Wl,--no-as-needed', ...pkgConfigFlags(lib, what, code)] : [];
  compileC(source, out, ['-shared', '-fPIC', `-I${include}`, ...libFlags], what, code);
}
