/**
 * A unix-datagram log target (`socket:/path`, `syslog` to /dev/log). Node has no AF_UNIX
 * SOCK_DGRAM sockets and a native addon is not worth it for this, so a tiny perl-base
 * helper (unix-dgram-sender.pl, beside this file) sends the datagrams: the core writes
 * length-prefixed frames to its stdin. perl-base is part of every Debian/Ubuntu system.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoggerError } from '../../errors.ts';
import { ProcessTarget } from './process.ts';
import type { LogRecord } from './queued.ts';

const SENDER = fileURLToPath(new URL('./unix-dgram-sender.pl', import.meta.url));

/** An executable found on PATH, or null. */
export function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export interface UnixDgramOptions {
  /** The socket path. */
  socketPath: string;
  description: string;
  limit: number;
  warn: (message: string) => void;
  /** Turn a record into the datagram (syslog's header, socket's prefix). */
  frame?: (record: LogRecord) => LogRecord;
  /** What to tell the user when the socket does not exist. */
  missingHint: string;
}

export function openUnixDgram(o: UnixDgramOptions): ProcessTarget {
  let st: fs.Stats;
  try {
    st = fs.statSync(o.socketPath);
  } catch {
    throw new LoggerError(`${o.description}: ${o.socketPath} does not exist; ${o.missingHint}`);
  }
  if (!st.isSocket()) throw new LoggerError(`${o.description}: ${o.socketPath} is not a unix socket; ${o.missingHint}`);
  const perl = findExecutable('perl');
  if (!perl) throw new LoggerError(`${o.description}: sending to a unix datagram socket needs perl (perl-base), which is not on PATH; install it or use a UDP logger (socket:HOST:PORT, rsyslog:HOST:PORT)`);
  let helperLost = 0;
  const frame = o.frame;
  const target: ProcessTarget = new ProcessTarget({
    description: o.description,
    limit: o.limit,
    file: perl,
    args: [SENDER, o.socketPath],
    warn: o.warn,
    encode: (batch) => {
      const parts: Buffer[] = [];
      for (const r of batch) {
        const rec = frame ? frame(r) : r;
        const body = typeof rec === 'string' ? Buffer.from(rec) : rec;
        const head = Buffer.allocUnsafe(4);
        head.writeUInt32BE(body.length, 0);
        parts.push(head, body);
      }
      return Buffer.concat(parts);
    },
    onStdoutLine: (line) => {
      const m = /^lost (\d+)$/.exec(line);
      if (m) {
        const n = Number(m[1]);
        target.lost += n - helperLost;
        helperLost = n;
      }
    },
  });
  return target;
}
