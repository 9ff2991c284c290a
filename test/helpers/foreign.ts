/**
 * Foreign servers for integration tests: a real uWSGI (Debian's uwsgi-core and its plugins,
 * the reference implementation) or any other program (python3 -m http.server) started as a
 * tracked process group, so a failing test never leaves it behind.
 *
 *   const uw = await startForeign(UWSGI_BIN, ['--plugin', 'python3', '--socket', addr, ...], /spawned uWSGI worker 1/);
 *   ...
 *   await uw.stop();
 */
import { spawn } from 'node:child_process';
import { installProcessGuards, ProcessGroup } from './procs.ts';
import { requireExecutable, sleep } from './server.ts';

installProcessGuards();

export const UWSGI_BIN = process.env.TSUWSGI_REFERENCE_UWSGI ?? '/usr/bin/uwsgi';

export interface ForeignHandle {
  readonly pid: number;
  logs(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGINT to the whole process group, SIGKILL after 10 s; resolves when it is gone. */
  stop(): Promise<void>;
}

/**
 * Start `cmd args` in its own process group (uWSGI forks a master and workers) and wait for
 * `ready` in its output. Rejects with the output when it exits or does not get ready in 20 s.
 */
export async function startForeign(cmd: string, args: string[], ready: RegExp, opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<ForeignHandle> {
  requireExecutable(cmd, cmd);
  const tag = ProcessGroup.newTag();
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env, TSUWSGI_TEST_TAG: tag }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const group = new ProcessGroup(`${cmd} ${args.join(' ')}`, proc, tag);
  let out = '';
  proc.stdout!.setEncoding('latin1');
  proc.stderr!.setEncoding('latin1');
  proc.stdout!.on('data', (d: string) => (out += d));
  proc.stderr!.on('data', (d: string) => (out += d));
  let exited = false;
  const closed = new Promise<void>((resolve) => {
    proc.once('close', () => {
      exited = true;
      resolve();
    });
    proc.once('error', (err) => {
      out += `\n[test] spawn error: ${err.message}\n`;
      exited = true;
      resolve();
    });
  });
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (proc.pid !== undefined) process.kill(-proc.pid, signal);
    } catch {
      /* already gone */
    }
  };
  const handle: ForeignHandle = {
    pid: proc.pid ?? -1,
    logs: () => out,
    async waitForLog(re, timeoutMs = 20000) {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(out)) {
        if (exited) throw new Error(`${cmd} exited before logging ${re}:\n${out.split('\n').slice(-40).join('\n')}`);
        if (Date.now() > deadline) throw new Error(`${cmd} did not log ${re} within ${timeoutMs} ms:\n${out.split('\n').slice(-40).join('\n')}`);
        await sleep(25);
      }
    },
    async stop() {
      group.finished = true;
      if (exited) return;
      killGroup('SIGINT');
      const timer = setTimeout(() => killGroup('SIGKILL'), 10000);
      await closed;
      clearTimeout(timer);
    },
  };
  try {
    await handle.waitForLog(ready);
  } catch (err) {
    group.finished = true;
    killGroup('SIGKILL');
    await closed;
    throw err;
  }
  return handle;
}
