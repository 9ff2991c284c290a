/**
 * Real memcached and redis servers for the router_memcached / router_redis tests, on free
 * ports, tracked like every foreign process (test/helpers/foreign.ts) and stopped by the
 * tests; plus tiny raw clients the tests use to put values in and read them back, written
 * independently of the plugins' codecs.
 *
 *   const mc = await startMemcached();   await mcSet(mc.port, 'k', 'v');
 *   const rd = await startRedis();       await redisCommand(rd.port, ['SET', 'k', 'v']);
 */
import net from 'node:net';
import { startForeign, type ForeignHandle } from './foreign.ts';
import { freePort } from './server.ts';

export const MEMCACHED_BIN = '/usr/bin/memcached';
export const REDIS_BIN = '/usr/bin/redis-server';

export interface KvServer {
  port: number;
  handle: ForeignHandle;
  stop(): Promise<void>;
}

export async function startMemcached(): Promise<KvServer> {
  const port = await freePort();
  // memcached refuses to run as root without -u; -vv logs "server listening" when it is up.
  const asRoot = process.getuid?.() === 0 ? ['-u', 'root'] : [];
  const handle = await startForeign(MEMCACHED_BIN, [...asRoot, '-l', '127.0.0.1', '-p', String(port), '-U', '0', '-vv'], /server listening/);
  return { port, handle, stop: () => handle.stop() };
}

export async function startRedis(): Promise<KvServer> {
  const port = await freePort();
  const handle = await startForeign(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], /Ready to accept connections/);
  return { port, handle, stop: () => handle.stop() };
}

/** Send `request`, read until `complete(received)` says the reply is whole. */
export function rawExchange(port: number, request: Buffer | string, complete: (buf: Buffer) => boolean, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete reply from 127.0.0.1:${port} within ${timeoutMs} ms (got ${JSON.stringify(buf.toString('latin1'))})`));
    }, timeoutMs);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (complete(buf)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(buf);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(request);
  });
}

const endsWith = (buf: Buffer, s: string): boolean => buf.length >= s.length && buf.subarray(buf.length - s.length).toString('latin1') === s;

export async function mcSet(port: number, key: string, value: Buffer | string, exptime = 0): Promise<void> {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value);
  const reply = await rawExchange(port, Buffer.concat([Buffer.from(`set ${key} 0 ${exptime} ${v.length}\r\n`), v, Buffer.from('\r\n')]), (b) => b.includes('\r\n'));
  if (reply.toString('latin1') !== 'STORED\r\n') throw new Error(`memcached set ${key}: ${reply.toString('latin1')}`);
}

/** The value under `key`, or null. */
export async function mcGet(port: number, key: string): Promise<Buffer | null> {
  const reply = await rawExchange(port, `get ${key}\r\n`, (b) => endsWith(b, 'END\r\n'));
  if (reply.toString('latin1') === 'END\r\n') return null;
  const eol = reply.indexOf('\r\n');
  return reply.subarray(eol + 2, reply.length - '\r\nEND\r\n'.length);
}

/** `stats`, as a map (curr_connections, total_connections…). */
export async function mcStats(port: number): Promise<Map<string, string>> {
  const reply = (await rawExchange(port, 'stats\r\n', (b) => endsWith(b, 'END\r\n'))).toString('latin1');
  return new Map([...reply.matchAll(/^STAT (\S+) (.*)\r$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** A redis reply: a bulk string (null for nil), a status or error line, an integer. */
export type RawRedisReply = Buffer | null | string | number;

/** One command, as a RESP array; arrays in the reply are not supported (not needed). */
export async function redisCommand(port: number, args: Array<string | Buffer>): Promise<RawRedisReply> {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  const whole = (b: Buffer): boolean => {
    const eol = b.indexOf('\r\n');
    if (eol < 0) return false;
    if (b[0] !== 0x24) return true;
    const n = Number(b.toString('latin1', 1, eol));
    return n < 0 || b.length >= eol + 2 + n + 2;
  };
  const reply = await rawExchange(port, Buffer.concat(parts), whole);
  const eol = reply.indexOf('\r\n');
  const line = reply.toString('latin1', 1, eol);
  switch (reply[0]) {
    case 0x24:
      return line === '-1' ? null : reply.subarray(eol + 2, eol + 2 + Number(line));
    case 0x3a:
      return Number(line);
    case 0x2d:
      return `-${line}`;
    default:
      return line;
  }
}
