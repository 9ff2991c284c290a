/**
 * A log file (`--logto FILE`, the `file:` logger): opened O_APPEND|O_CREAT (mode 0640 unless
 * --logfile-chmod), O_TRUNC with --log-truncate. With a maximum size it rotates as uWSGI
 * does: when the file grows past `maxSize` it writes
 * `logsize: N, triggering rotation to NAME...`, renames the file to NAME (--log-backupname,
 * default `<file>.<unix time>`) and opens a new one. `reopen()` (--log-reopen,
 * --touch-logreopen) closes and reopens the path, so an external logrotate works too.
 */
import fs from 'node:fs';
import { LoggerError } from '../../errors.ts';
import { FdTarget } from './fd.ts';

export interface FileTargetOptions {
  path: string;
  mode: number;
  truncate: boolean;
  limit: number;
  warn: (message: string) => void;
  /** Rotate when the file grows past this many bytes (0 = never). */
  maxSize?: number;
  /** Name of the rotated file (default `<path>.<unix time>`). */
  backupName?: string;
  /** How the target is named in messages (default `file:PATH`). */
  description?: string;
}

function openLog(path: string, mode: number, truncate: boolean): number {
  const c = fs.constants;
  try {
    return fs.openSync(path, c.O_WRONLY | c.O_APPEND | c.O_CREAT | (truncate ? c.O_TRUNC : 0), mode);
  } catch (err) {
    throw new LoggerError(`cannot open log file ${path}: ${(err as Error).message} (check that the directory exists and is writable)`, err);
  }
}

export class FileTarget extends FdTarget {
  readonly path: string;
  private readonly mode: number;
  private readonly maxSize: number;
  private readonly backupName: string | undefined;
  private size: number;

  constructor(o: FileTargetOptions) {
    const fd = openLog(o.path, o.mode, o.truncate);
    super(fd, o.description ?? `file:${o.path}`, o.limit, o.warn, true);
    this.path = o.path;
    this.mode = o.mode;
    this.maxSize = o.maxSize ?? 0;
    this.backupName = o.backupName;
    this.size = fs.fstatSync(fd).size;
  }

  protected override written(bytes: number): void {
    this.size += bytes;
    if (this.maxSize > 0 && this.size > this.maxSize) this.rotate();
  }

  rotate(): void {
    const target = this.backupName ?? `${this.path}.${Math.floor(Date.now() / 1000)}`;
    const marker = `logsize: ${this.size}, triggering rotation to ${target}...\n`;
    try {
      fs.writeSync(this.fd, marker);
    } catch {
      /* the marker is best effort */
    }
    try {
      fs.renameSync(this.path, target);
    } catch (err) {
      this.warn(`cannot rotate log file ${this.path} to ${target}: ${(err as Error).message}`);
      // Do not retry on every write.
      this.size = 0;
      return;
    }
    this.swap();
  }

  reopen(): void {
    this.swap();
    try {
      fs.writeSync(this.fd, `[${Math.floor(Date.now() / 1000)}] ${this.path} reopened.\n`);
    } catch {
      /* best effort */
    }
  }

  private swap(): void {
    let fd: number;
    try {
      fd = openLog(this.path, this.mode, false);
    } catch (err) {
      this.warn((err as Error).message);
      return;
    }
    const old = this.fd;
    this.fd = fd;
    this.size = fs.fstatSync(fd).size;
    try {
      fs.closeSync(old);
    } catch {
      /* already closed */
    }
  }
}
