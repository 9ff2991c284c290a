/**
 * Start real tsuwsgi processes (`node bin/tsuwsgi.js <uWSGI options>`, cwd = the repository)
 * for integration tests, read their log, stop them, and prove nothing they spawned survives.
 *
 *   const srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py')]);
 *   await fetch(`http://127.0.0.1:${srv.port}/`);
 *   expect(await srv.stop()).toBe(0);
 *
 * Importing this module registers (through procs.ts) an afterEach that fails the test when a
 * stopped server left a process behind, and an afterAll that kills whatever is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installProcessGuards, ProcessGroup, type ProcInfo } from './procs.ts';

export { assertNoLeakedProcesses } from './procs.ts';

installProcessGuards();

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TSUWSGI_BIN = path.join(REPO_ROOT, 'bin', 'tsuwsgi.js');
export const PY_FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'python');
/** Debian's interpreter: the only one that can import the distribution's Flask and Django. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Absolute path of a Python fixture. */
export function fixture(name: string): string {
  return path.join(PY_FIXTURES, name);
}

/** A fresh temporary directory (removed by the OS; tests may remove it themselves). */
export function tmpDir(prefix = 'tsuwsgi-it-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The contents of a file an app writes as a marker (e.g. from close()), once it has any:
 * the app creates the file and then writes it, so an empty read means "not yet".
 */
export async function waitForFile(p: string, timeoutMs = 10000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = fs.readFileSync(p, 'utf8');
    } catch {
      text = '';
    }
    if (text !== '') return text;
    if (Date.now() > deadline) throw new Error(`${p} was not written within ${timeoutMs} ms`);
    await sleep(25);
  }
}

export interface StartOptions {
  cwd?: string;
  /** Extra environment variables (added to the test runner's). */
  env?: Record<string, string>;
  /** How long to wait for the ready line (default 30 s). */
  readyTimeoutMs?: number;
  /** Set false to get the handle as soon as the process is spawned. */
  waitReady?: boolean;
  /** An executable to run instead of the checkout's `node bin/tsuwsgi.js` (a build's bin/tsuwsgi). */
  command?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerHandle {
  readonly args: string[];
  readonly pid: number;
  /** Port of the first TCP socket (any kind). */
  readonly port: number;
  /** Socket index → address ("127.0.0.1:40123" or a unix path), in the order they were bound. */
  readonly sockets: string[];
  /** Everything printed so far: stdout and stderr interleaved, plus the --logto file if any. */
  logs(): string;
  /** Resolve with the first match of `re` in the log (waits for it). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Wait until `re` (made global) matches at least `count` times; resolves with all matches. */
  waitForLogCount(re: RegExp, count: number, timeoutMs?: number): Promise<RegExpMatchArray[]>;
  /** Send a signal, wait for the exit, return the exit status (128+n when killed by signal n). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number>;
  /** Send a signal to the server process (no waiting). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the server process exits. */
  readonly exited: Promise<ExitInfo>;
  readonly hasExited: boolean;
  /** Live descendants (bridges, core workers) right now. */
  descendants(): Array<ProcInfo & { cmd: string }>;
}

function logtoPath(args: string[], cwd: string): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--logto' && args[i + 1]) return path.resolve(cwd, args[i + 1]!);
    if (a.startsWith('--logto=')) return path.resolve(cwd, a.slice('--logto='.length));
  }
  return null;
}

function exitStatus(e: ExitInfo): number {
  if (e.code !== null) return e.code;
  const n = e.signal ? os.constants.signals[e.signal] : 0;
  return 128 + (n ?? 0);
}

function tail(text: string, lines = 60): string {
  const all = text.split('\n');
  return all.slice(Math.max(0, all.length - lines)).join('\n');
}

class Server implements ServerHandle {
  readonly args: string[];
  readonly group: ProcessGroup;
  readonly exited: Promise<ExitInfo>;
  hasExited = false;
  exitInfo: ExitInfo | null = null;
  private readonly proc: ChildProcess;
  private out = '';
  private readonly logFile: string | null;

  constructor(args: string[], opts: StartOptions) {
    this.args = args;
    const cwd = opts.cwd ?? REPO_ROOT;
    this.logFile = logtoPath(args, cwd);
    const tag = ProcessGroup.newTag();
    this.proc = spawn(opts.command ?? process.execPath, opts.command ? args : [TSUWSGI_BIN, ...args], {
      cwd,
      env: { ...process.env, ...opts.env, TSUWSGI_TEST_TAG: tag },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.group = new ProcessGroup(`tsuwsgi ${args.join(' ')}`, this.proc, tag);
    this.proc.stdout!.setEncoding('latin1');
    this.proc.stderr!.setEncoding('latin1');
    this.proc.stdout!.on('data', (d: string) => (this.out += d));
    this.proc.stderr!.on('data', (d: string) => (this.out += d));
    this.exited = new Promise<ExitInfo>((resolve) => {
      // 'close' waits for the pipes to drain, so logs() is complete when exited resolves.
      this.proc.once('close', (code, signal) => {
        this.hasExited = true;
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      this.proc.once('error', (err) => {
        this.out += `\n[test helper] spawn error: ${err.message}\n`;
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  logs(): string {
    if (!this.logFile) return this.out;
    let file = '';
    try {
      file = fs.readFileSync(this.logFile, 'latin1');
    } catch {
      /* not created yet */
    }
    return this.out ? `${file}${file.endsWith('\n') || !file ? '' : '\n'}${this.out}` : file;
  }

  get sockets(): string[] {
    const out: string[] = [];
    const re = /^(?:uwsgi socket (\d+) bound to (?:TCP|UNIX) address (\S+) fd \d+|uWSGI http bound on (\S+) fd \d+)/gm;
    for (const m of this.logs().matchAll(re)) {
      if (m[1] !== undefined) out[Number(m[1])] = m[2]!;
      else out.push(m[3]!);
    }
    return out.filter((s) => s !== undefined);
  }

  get port(): number {
    for (const s of this.sockets) {
      const m = /^(?:\[[^\]]*\]|[^/:]*):(\d+)$/.exec(s);
      if (m) return Number(m[1]);
    }
    throw new Error(`no TCP socket in the log of tsuwsgi ${this.args.join(' ')}:\n${tail(this.logs())}`);
  }

  async waitForLog(re: RegExp, timeoutMs = 15000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.logs().match(re);
      if (m) return m;
      if (this.hasExited) {
        throw new Error(`tsuwsgi exited (${JSON.stringify(this.exitInfo)}) without logging ${re}; log:\n${tail(this.logs())}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${re} in the log:\n${tail(this.logs())}`);
      await sleep(25);
    }
  }

  async waitForLogCount(re: RegExp, count: number, timeoutMs = 15000): Promise<RegExpMatchArray[]> {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = [...this.logs().matchAll(g)];
      if (all.length >= count) return all;
      if (this.hasExited) throw new Error(`tsuwsgi exited with ${all.length}/${count} matches of ${re}; log:\n${tail(this.logs())}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} matches of ${re} (got ${all.length}); log:\n${tail(this.logs())}`);
      await sleep(25);
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.hasExited) this.proc.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGINT', timeoutMs = 30000): Promise<number> {
    this.group.finished = true;
    if (this.hasExited) return exitStatus(this.exitInfo!);
    this.group.scan();
    this.proc.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const res = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (res === 'timeout') {
      this.group.killAll('SIGKILL');
      await this.exited;
      throw new Error(`tsuwsgi did not exit within ${timeoutMs} ms of ${signal} (killed); log:\n${tail(this.logs())}`);
    }
    return exitStatus(res);
  }

  descendants(): Array<ProcInfo & { cmd: string }> {
    return this.group.descendants();
  }

  async ready(timeoutMs: number): Promise<void> {
    try {
      await this.waitForLog(/^\*\*\* tsuwsgi is ready/m, timeoutMs);
    } catch (err) {
      this.group.finished = true;
      if (!this.hasExited) {
        this.group.killAll('SIGKILL');
        await this.exited;
      }
      const how = this.exitInfo?.signal ? `was killed by ${this.exitInfo.signal}` : `exited with status ${this.exitInfo?.code}`;
      throw new Error(
        `tsuwsgi ${this.args.join(' ')} did not become ready (${(err as Error).message.split('\n')[0]}); it ${how}.\nlog:\n${tail(this.logs(), 80)}`,
      );
    }
  }
}

/** Start tsuwsgi and wait for `*** tsuwsgi is ready` (rejects with the log if it exits first or after 30 s). */
export async function startServer(args: string[], opts: StartOptions = {}): Promise<ServerHandle> {
  const s = new Server(args, opts);
  if (opts.waitReady !== false) await s.ready(opts.readyTimeoutMs ?? 30000);
  return s;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  output: string;
}

/** Run tsuwsgi for a command expected to exit by itself (bad config, app load failure, --version…). */
export async function runTsuwsgi(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; command?: string } = {}): Promise<RunResult> {
  const tag = ProcessGroup.newTag();
  const proc = spawn(opts.command ?? process.execPath, opts.command ? args : [TSUWSGI_BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...opts.env, TSUWSGI_TEST_TAG: tag },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const group = new ProcessGroup(`tsuwsgi (one-shot) ${args.join(' ')}`, proc, tag);
  group.finished = true;
  let stdout = '';
  let stderr = '';
  let output = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => ((stdout += d), (output += d)));
  proc.stderr!.on('data', (d: string) => ((stderr += d), (output += d)));
  const timeoutMs = opts.timeoutMs ?? 60000;
  let timer: NodeJS.Timeout | undefined;
  const result = await new Promise<ExitInfo | 'timeout'>((resolve) => {
    proc.once('close', (code, signal) => resolve({ code, signal }));
    proc.once('error', (err) => {
      output += `\n[test helper] spawn error: ${err.message}\n`;
    });
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  clearTimeout(timer);
  if (result === 'timeout') {
    group.killAll('SIGKILL');
    throw new Error(`tsuwsgi ${args.join(' ')} did not exit within ${timeoutMs} ms (killed); output:\n${tail(output)}`);
  }
  return { code: result.code, signal: result.signal, stdout, stderr, output };
}

/** Pick a free TCP port on 127.0.0.1 (bind :0, read the port, close). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Fail with a clear message when a program the test needs is missing (never skip silently). */
export function requireExecutable(file: string, what: string): void {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new Error(`${what} is required by this test but ${file} is missing or not executable (install it, e.g. apt-get install ${path.basename(file)})`);
  }
}

/**
 * Run `f`; if it throws, rethrow with the tail of the server's log (and any extra logs) in
 * the message, so a failing behaviour shows what the server said about it.
 */
export async function withServerLog<T>(srv: ServerHandle | undefined, f: () => Promise<T>, extra?: () => string): Promise<T> {
  try {
    return await f();
  } catch (err) {
    const e = err as Error;
    let msg = e?.message ?? String(err);
    if (srv) msg += `\n--- tsuwsgi log (tail) ---\n${tail(srv.logs(), 40)}`;
    if (extra) msg += `\n${extra()}`;
    const wrapped = new Error(msg);
    wrapped.stack = `${msg}\n${(e?.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).join('\n')}`;
    throw wrapped;
  }
}
