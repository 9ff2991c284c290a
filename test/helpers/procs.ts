/**
 * Process bookkeeping for integration tests: every process a test starts (tsuwsgi, its
 * bridges and core workers, nginx) is tracked so that a test which stops a server can prove
 * nothing it spawned is still alive, and so that a failing test never leaves processes behind.
 *
 * Two complementary ways find a group's processes:
 *  - the parent chain: /proc/<pid>/stat ppid, walked while the root runs (polled), and
 *  - a tag: every group's root gets a unique TSUWSGI_TEST_TAG environment variable, which its
 *    descendants inherit; /proc/<pid>/environ finds them even after they were re-parented to
 *    init (the case that matters most: an orphaned bridge is exactly the leak we look for).
 *
 * A process is identified by pid + start time (field 22 of /proc/<pid>/stat), so a recycled
 * pid is never mistaken for one of ours. Zombies do not count as alive.
 */
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';

export interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  /** Start time in clock ticks since boot (identity together with the pid). */
  start: string;
  comm: string;
}

export function readProc(pid: number): ProcInfo | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return null;
  const comm = text.slice(open + 1, close);
  const rest = text.slice(close + 2).split(' ');
  // rest[0] = state (field 3), rest[1] = ppid (field 4), rest[19] = starttime (field 22)
  return { pid, ppid: Number(rest[1]), state: rest[0] ?? '?', start: rest[19] ?? '', comm };
}

export function listProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p) out.push(p);
  }
  return out;
}

export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

function environHas(pid: number, needle: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(needle);
  } catch {
    return false;
  }
}

/** Live (non-zombie) descendants of `root`, by the parent chain. */
export function descendantsOf(root: number, procs: ProcInfo[] = listProcs()): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = byParent.get(p.ppid) ?? [];
    list.push(p);
    byParent.set(p.ppid, list);
  }
  const out: ProcInfo[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const c of byParent.get(pid) ?? []) {
      if (c.state === 'Z' || c.state === 'X') continue;
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

interface Known {
  pid: number;
  start: string;
  comm: string;
  cmd: string;
}

function isAlive(k: { pid: number; start: string }): boolean {
  const p = readProc(k.pid);
  return !!p && p.start === k.start && p.state !== 'Z' && p.state !== 'X';
}

let tagCounter = 0;

/** One tracked process tree (a server, a one-shot tsuwsgi run, an nginx). */
export class ProcessGroup {
  readonly label: string;
  readonly tag: string;
  readonly root: ChildProcess;
  readonly known = new Map<string, Known>();
  /** Set once the test no longer expects the group to run (stop() called or the root exited). */
  finished = false;
  rootExited = false;
  private poll: NodeJS.Timeout | null = null;

  constructor(label: string, root: ChildProcess, tag: string) {
    this.label = label;
    this.root = root;
    this.tag = tag;
    this.scan();
    this.poll = setInterval(() => this.scan(), 100);
    this.poll.unref();
    root.once('exit', () => {
      this.rootExited = true;
      this.finished = true;
      if (this.poll) clearInterval(this.poll);
      this.poll = null;
      // Catch anything re-parented away from the root at the last moment.
      this.scanByTag();
    });
    groups.add(this);
  }

  static newTag(): string {
    tagCounter++;
    return `tsuwsgi-test-${process.pid}-${tagCounter}-${Math.random().toString(36).slice(2, 8)}`;
  }

  private remember(p: ProcInfo): void {
    const key = `${p.pid}:${p.start}`;
    if (!this.known.has(key)) this.known.set(key, { pid: p.pid, start: p.start, comm: p.comm, cmd: cmdline(p.pid) });
  }

  /** Record the root and its current descendants. */
  scan(): void {
    const pid = this.root.pid;
    if (pid === undefined) return;
    let procs: ProcInfo[];
    try {
      procs = listProcs();
    } catch {
      return;
    }
    const root = procs.find((p) => p.pid === pid);
    if (root && root.state !== 'Z') this.remember(root);
    for (const d of descendantsOf(pid, procs)) this.remember(d);
  }

  /** Record every process carrying this group's tag (finds re-parented orphans). */
  scanByTag(): void {
    const needle = `TSUWSGI_TEST_TAG=${this.tag}`;
    for (const p of listProcs()) {
      if (p.state === 'Z' || p.state === 'X') continue;
      if (p.pid === process.pid) continue;
      if (environHas(p.pid, needle)) this.remember(p);
    }
  }

  /** Processes of this group that are still alive (after a fresh scan). */
  alive(): Known[] {
    if (!this.rootExited) this.scan();
    this.scanByTag();
    return [...this.known.values()].filter(isAlive);
  }

  /** Live descendants of the root right now (parent chain only). */
  descendants(): Array<ProcInfo & { cmd: string }> {
    const pid = this.root.pid;
    if (pid === undefined) return [];
    return descendantsOf(pid).map((p) => ({ ...p, cmd: cmdline(p.pid) }));
  }

  killAll(signal: NodeJS.Signals = 'SIGKILL'): void {
    for (const k of this.alive()) {
      try {
        process.kill(k.pid, signal);
      } catch {
        /* gone */
      }
    }
  }

  dispose(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    groups.delete(this);
  }
}

const groups = new Set<ProcessGroup>();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function describe(k: Known): string {
  return `pid ${k.pid} (${k.comm}) ${k.cmd.slice(0, 200)}`;
}

/**
 * Every process started by a group that has been stopped (or exited) must be gone. Waits up
 * to `graceMs` for stragglers (a bridge notices its control channel's EOF asynchronously),
 * then kills what is left and throws, naming each leaked process.
 */
export async function assertNoLeakedProcesses(graceMs = 5000): Promise<void> {
  const finished = [...groups].filter((g) => g.finished);
  if (finished.length === 0) return;
  const deadline = Date.now() + graceMs;
  let leaks: Array<{ group: ProcessGroup; procs: Known[] }> = [];
  for (;;) {
    leaks = finished.map((group) => ({ group, procs: group.alive() })).filter((l) => l.procs.length > 0);
    if (leaks.length === 0 || Date.now() > deadline) break;
    await sleep(100);
  }
  for (const g of finished) if (!leaks.some((l) => l.group === g)) g.dispose();
  if (leaks.length === 0) return;
  const text = leaks.map((l) => `${l.group.label}:\n  ${l.procs.map(describe).join('\n  ')}`).join('\n');
  for (const l of leaks) {
    l.group.killAll('SIGKILL');
    l.group.dispose();
  }
  throw new Error(`leaked processes ${graceMs / 1000}s after the server stopped (now killed):\n${text}`);
}

/** Last resort: stop every group still running (SIGINT, then SIGKILL everything tracked). */
export async function killAllTracked(): Promise<string[]> {
  const left = [...groups];
  const notes: string[] = [];
  for (const g of left) {
    if (!g.rootExited) {
      notes.push(`${g.label} was still running at the end of the file: stopped`);
      try {
        g.root.kill('SIGINT');
      } catch {
        /* gone */
      }
    }
  }
  const deadline = Date.now() + 8000;
  while (left.some((g) => !g.rootExited) && Date.now() < deadline) await sleep(50);
  for (const g of left) {
    g.killAll('SIGKILL');
    g.dispose();
  }
  return notes;
}

let hooksInstalled = false;

/**
 * Register the leak check after every test and the clean-up after every file. Called when a
 * helper module is imported by a test file (Jest's hooks are globals there); a no-op elsewhere.
 */
export function installProcessGuards(): void {
  if (hooksInstalled) return;
  const g = globalThis as unknown as { afterEach?: typeof afterEach; afterAll?: typeof afterAll };
  if (typeof g.afterEach !== 'function' || typeof g.afterAll !== 'function') return;
  hooksInstalled = true;
  g.afterEach(async () => {
    await assertNoLeakedProcesses();
  }, 30000);
  // Jest runs hooks of one block in declaration order and this one is declared first (at
  // import): test files keep their servers in describe blocks, whose afterAll runs before it.
  g.afterAll(async () => {
    let leak: unknown = null;
    try {
      await assertNoLeakedProcesses();
    } catch (err) {
      leak = err;
    }
    const notes = await killAllTracked();
    for (const n of notes) process.stderr.write(`[test helpers] ${n}\n`);
    if (leak) throw leak;
  }, 30000);
}
