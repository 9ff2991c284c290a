/**
 * A target that feeds a child process's stdin: `pipe:COMMAND` (uWSGI's logpipe) and the
 * unix-datagram sender used for `socket:/path` and `syslog`. The child runs in its own
 * session (as uWSGI's logpipe does) and is killed with its process group on close. A child
 * that stops reading only fills the queue (then records are dropped and counted); a child
 * that exits is reported once and started again on the next record, at most once a second.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { joinBatch, QueuedTarget, type LogRecord } from './queued.ts';

export interface ProcessTargetOptions {
  description: string;
  limit: number;
  file: string;
  args: string[];
  warn: (message: string) => void;
  /** Turn a batch into the bytes written to stdin (default: concatenated). */
  encode?: (batch: LogRecord[]) => string | Buffer;
  /** Lines the child prints on stdout (the datagram sender reports its losses there); absent: inherit. */
  onStdoutLine?: (line: string) => void;
}

export class ProcessTarget extends QueuedTarget {
  private readonly o: ProcessTargetOptions;
  private child: ChildProcess | null = null;
  private stdin: Writable | null = null;
  private lastStart = 0;
  private exitReported = false;
  private exitHook: (() => void) | null = null;

  constructor(o: ProcessTargetOptions) {
    super(o.description, o.limit);
    this.o = o;
    this.start();
  }

  /** Pid of the running child (tests, diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private start(): void {
    this.lastStart = Date.now();
    const child = spawn(this.o.file, this.o.args, {
      stdio: ['pipe', this.o.onStdoutLine ? 'pipe' : 'inherit', 'inherit'],
      detached: true,
    });
    this.child = child;
    this.stdin = child.stdin!;
    // EPIPE when the child exits: counted as losses by the write callback.
    child.stdin!.on('error', () => {});
    child.on('error', (err) => {
      this.o.warn(`log target ${this.description} cannot run: ${err.message}`);
    });
    if (this.o.onStdoutLine && child.stdout) {
      let buf = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          this.o.onStdoutLine!(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    }
    child.on('exit', (code, signal) => {
      if (this.child === child) {
        this.child = null;
        this.stdin = null;
      }
      if (!this.closed && !this.exitReported) {
        this.exitReported = true;
        this.o.warn(`log target ${this.description} exited (${signal ?? `status ${code}`}); it is started again for the next log line`);
      }
    });
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    // Whatever way the server ends (a start-up error exits at once), the command goes too.
    if (!this.exitHook) {
      this.exitHook = () => {
        if (this.child) killGroup(this.child, 'SIGTERM');
      };
      process.once('exit', this.exitHook);
    }
  }

  protected deliver(batch: LogRecord[], done: () => void): void {
    if (!this.stdin) {
      if (Date.now() - this.lastStart >= 1000) this.start();
      else {
        this.lost += batch.length;
        done();
        return;
      }
    }
    const data = this.o.encode ? this.o.encode(batch) : joinBatch(batch);
    this.stdin!.write(data, (err) => {
      if (err) this.lost += batch.length;
      else this.exitReported = false;
      done();
    });
  }

  async close(): Promise<void> {
    await this.drain(1000);
    this.closed = true;
    const child = this.child;
    if (!child) {
      if (this.exitHook) process.off('exit', this.exitHook);
      return;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    this.stdin?.end();
    const t = setTimeout(() => killGroup(child, 'SIGKILL'), 1000);
    // A reader that never reads (or ignores EOF) must not delay the stop.
    if (this.pending) killGroup(child, 'SIGTERM');
    const soft = setTimeout(() => killGroup(child, 'SIGTERM'), 300);
    await exited;
    clearTimeout(t);
    clearTimeout(soft);
    // The command's own children (sh -c "a | b") go with the group.
    killGroup(child, 'SIGTERM');
    if (this.exitHook) process.off('exit', this.exitHook);
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* gone */
  }
}
