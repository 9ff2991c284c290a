/**
 * What the stats document reads from Linux's /proc when a stats client connects: a
 * process's memory (rss and vsz, from /proc/PID/statm as uWSGI reads them) and the accept
 * queue of a listening TCP socket (uWSGI reads it with TCP_INFO; /proc/net/tcp shows the same
 * number, sk_ack_backlog, in the rx_queue column of a LISTEN socket). Anything unreadable
 * (another OS, a process that just exited) counts as 0.
 */
import fs from 'node:fs';

let pageSize: number | null = null;

/** The kernel's page size, from the auxiliary vector (AT_PAGESZ); 4096 if it cannot be read. */
function systemPageSize(): number {
  if (pageSize !== null) return pageSize;
  pageSize = 4096;
  try {
    const auxv = fs.readFileSync('/proc/self/auxv');
    for (let off = 0; off + 16 <= auxv.length; off += 16) {
      const type = auxv.readBigUInt64LE(off);
      if (type === 0n) break;
      if (type === 6n) {
        pageSize = Number(auxv.readBigUInt64LE(off + 8));
        break;
      }
    }
  } catch {
    // not Linux: keep the common default
  }
  return pageSize;
}

/** rss and vsz of a process in bytes (uWSGI: statm's resident and size fields × page size). */
export function processMemory(pid: number): { rss: number; vsz: number } {
  try {
    const [size, resident] = fs.readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ').map(Number);
    const page = systemPageSize();
    return { rss: (resident ?? 0) * page, vsz: (size ?? 0) * page };
  } catch {
    return { rss: 0, vsz: 0 };
  }
}

/** Socket inode of one of this process's descriptors, or null. */
function socketInode(fd: number): string | null {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
    return m ? m[1]! : null;
  } catch {
    return null;
  }
}

/**
 * Accept queue length of each listening TCP socket descriptor (0 for unix sockets and
 * anything not found), read from /proc/net/tcp and tcp6 once for all of them.
 */
export function listenQueues(fds: readonly number[]): number[] {
  const inodes = fds.map(socketInode);
  const queueByInode = new Map<string, number>();
  if (inodes.some((i) => i !== null)) {
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text: string;
      try {
        text = fs.readFileSync(file, 'latin1');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        // sl local rem st tx_queue:rx_queue tr:tm retrnsmt uid timeout inode …
        const f = line.trim().split(/\s+/);
        if (f.length < 10 || f[3] !== '0A') continue;
        const rx = f[4]!.split(':')[1];
        queueByInode.set(f[9]!, rx ? Number.parseInt(rx, 16) : 0);
      }
    }
  }
  return inodes.map((i) => (i !== null ? (queueByInode.get(i) ?? 0) : 0));
}
