/**
 * A UDP log target: every record is one datagram (`--logto HOST:PORT`, `socket:HOST:PORT`,
 * `rsyslog:HOST:PORT`). The host is resolved once when the target opens; a name that does not
 * resolve is a start-up error. Nothing needs to listen: datagrams to a closed port are lost,
 * as with uWSGI, and never block or crash the server.
 */
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import net from 'node:net';
import { LoggerError } from '../../errors.ts';
import { QueuedTarget, type LogRecord } from './queued.ts';

export interface UdpAddress {
  host: string;
  port: number;
}

/** "HOST:PORT" / "[V6]:PORT" / ":PORT" (localhost); null when it is not of that shape. */
export function parseUdpAddress(text: string): UdpAddress | null {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export async function resolveUdp(addr: UdpAddress, what: string): Promise<{ address: string; family: 4 | 6 }> {
  if (net.isIP(addr.host)) return { address: addr.host, family: net.isIPv6(addr.host) ? 6 : 4 };
  try {
    const r = await dns.lookup(addr.host);
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (err) {
    throw new LoggerError(`${what}: cannot resolve "${addr.host}" (${(err as Error).message}); give an IP address or a name this machine can resolve`, err);
  }
}

export interface UdpTargetOptions {
  description: string;
  limit: number;
  address: string;
  family: 4 | 6;
  port: number;
  /** Turn a record into the datagram (rsyslog's header, socket's prefix); identity when absent. */
  frame?: (record: LogRecord) => LogRecord;
  /** Largest datagram; longer ones are cut (rsyslog's 1024-byte packet limit). */
  maxDatagram?: number;
}

export class UdpTarget extends QueuedTarget {
  private readonly socket: dgram.Socket;
  private readonly o: UdpTargetOptions;

  constructor(o: UdpTargetOptions) {
    super(o.description, o.limit);
    this.o = o;
    this.socket = dgram.createSocket(o.family === 6 ? 'udp6' : 'udp4');
    // Errors (e.g. ICMP unreachable reported on a later send) count as losses, never crash.
    this.socket.on('error', () => {});
    this.socket.unref();
  }

  override write(record: LogRecord, countLoss = true): void {
    let d = this.o.frame ? this.o.frame(record) : record;
    const max = this.o.maxDatagram;
    if (max && d.length > max) d = (typeof d === 'string' ? Buffer.from(d) : d).subarray(0, max);
    super.write(d, countLoss);
  }

  protected deliver(batch: LogRecord[], done: () => void): void {
    let left = batch.length;
    const one = (err: Error | null): void => {
      if (err) this.lost++;
      if (--left === 0) done();
    };
    for (const rec of batch) {
      try {
        this.socket.send(rec, this.o.port, this.o.address, one);
      } catch {
        one(new Error('send failed'));
      }
    }
  }

  async close(): Promise<void> {
    await this.drain(1000);
    this.closed = true;
    try {
      this.socket.close();
    } catch {
      /* already closed */
    }
  }
}
