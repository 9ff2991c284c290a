/**
 * How the fd log target writes (core/logging/targets/fd.ts): synchronously where a write can
 * never wait for a reader, through the thread pool where it can.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { neverBlocks } from '../../core/logging/targets/fd.ts';

describe('neverBlocks', () => {
  it('a regular file and /dev/null are written synchronously', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fd-target-')), 'log');
    const fd = fs.openSync(file, 'a');
    const devnull = fs.openSync('/dev/null', 'w');
    try {
      expect(neverBlocks(fd)).toBe(true);
      expect(neverBlocks(devnull)).toBe(true);
    } finally {
      fs.closeSync(fd);
      fs.closeSync(devnull);
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });

  it('a pipe (a reader may stop reading) and a closed descriptor are not', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fd-target-'));
    const fifo = path.join(dir, 'fifo');
    try {
      execFileSync('mkfifo', [fifo]);
      // O_RDWR: opening a FIFO this way does not wait for the other end.
      const fd = fs.openSync(fifo, 'r+');
      expect(neverBlocks(fd)).toBe(false);
      fs.closeSync(fd);
      expect(neverBlocks(fd)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
