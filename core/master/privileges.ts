/**
 * --uid / --gid: drop privileges after the sockets are bound (so ports below 1024 work) and
 * before any app code runs. Only root can switch; asking a non-root server to become
 * another user is an error, not a silent no-op.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { InvalidOptionError } from '../errors.ts';
import type { ServerLog } from '../logging/server-log.ts';
import type { ResolvedOptions } from '../options/resolved.ts';

export function dropPrivileges(options: ResolvedOptions, runDir: string, log: ServerLog): void {
  const uid = options.string('uid');
  const gid = options.string('gid');
  if (!uid && !gid) return;
  if (process.getuid?.() !== 0) {
    const sameUid = !uid || uid === String(process.getuid?.());
    const sameGid = !gid || gid === String(process.getgid?.());
    if (sameUid && sameGid) return;
    throw new InvalidOptionError('--uid/--gid need the server to be started as root (it drops privileges after binding)');
  }
  try {
    if (gid) {
      process.setgid!(gid);
      log.info(`setgid() to ${gid}`);
    }
    if (uid) {
      // The master binds pool sockets in runDir after the drop: the new user must own it.
      const numeric = /^\d+$/.test(uid) ? Number(uid) : Number(execFileSync('id', ['-u', uid], { encoding: 'utf8' }).trim());
      fs.chownSync(runDir, numeric, process.getgid!());
      process.setuid!(numeric);
      log.info(`setuid() to ${uid}`);
    }
  } catch (err) {
    throw new InvalidOptionError(`cannot drop privileges (--uid ${uid ?? ''} --gid ${gid ?? ''}): ${(err as Error).message}`);
  }
}
