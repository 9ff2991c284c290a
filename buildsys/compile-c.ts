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
