/**
 * The part of redis's protocol (RESP2) router_redis uses: commands as arrays of bulk strings,
 * and the replies GET and SET give (bulk string, nil, simple string, error, integer), parsed
 * for core/routing/kv-client.ts.
 *
 *   *2\r\n$3\r\nGET\r\n$3\r\nkey\r\n   → $5\r\nhello\r\n | $-1\r\n | -ERR …\r\n
 *   *5\r\n$3\r\nSET\r\n…$2\r\nEX\r\n…  → +OK\r\n | -ERR …\r\n
 *
 * uWSGI sends the lookup as the inline command `get <key>\r\n`, so a key with a space is read
 * by redis as two arguments (an error, seen as a miss) and a key with CR LF as two commands.
 * A RESP array is binary-safe: every key reaches redis as it is.
 */
import type { ParsedReply } from '../../core/routing/kv-client.ts';

export type RedisReply =
  | { type: 'bulk'; value: Buffer | null }
  | { type: 'simple'; value: string }
  | { type: 'error'; value: string }
  | { type: 'integer'; value: number };

const MAX_LINE = 1024;
const CRLF = Buffer.from('\r\n');

/** A command as redis reads it from clients: an array of bulk strings. */
export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`, 'latin1')];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'latin1') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`, 'latin1'), b, CRLF);
  }
  return Buffer.concat(parts);
}

/** `GET key`. */
export function encodeGet(key: Buffer): Buffer {
  return encodeCommand(['GET', key]);
}

/**
 * `SET key value [EX seconds]`: uWSGI sends SET then `EXPIRE key seconds` (when expires is not
 * "0"); one SET with EX does the same in one atomic step, with no moment where the key lives
 * without its expiry.
 */
export function encodeSet(key: Buffer, value: Buffer, expires: string): Buffer {
  return encodeCommand(expires === '0' ? ['SET', key, value] : ['SET', key, value, 'EX', expires]);
}

/** One reply (arrays, which GET and SET never answer, are refused). */
export function parseReply(buf: Buffer): ParsedReply<RedisReply> {
  const eol = buf.indexOf(CRLF);
  if (eol < 0) {
    if (buf.length > MAX_LINE) throw new Error(`redis sent a reply line longer than ${MAX_LINE} bytes`);
    return 0;
  }
  const line = buf.toString('latin1', 1, eol);
  const next = eol + 2;
  switch (buf[0]) {
    case 0x2b: // +
      return { value: { type: 'simple', value: line }, used: next };
    case 0x2d: // -
      return { value: { type: 'error', value: line }, used: next };
    case 0x3a: // :
      if (!/^-?\d+$/.test(line)) break;
      return { value: { type: 'integer', value: Number(line) }, used: next };
    case 0x24: {
      // $
      if (line === '-1') return { value: { type: 'bulk', value: null }, used: next };
      if (!/^\d+$/.test(line)) break;
      const size = Number(line);
      const total = next + size + 2;
      if (buf.length < total) return total;
      if (!buf.subarray(next + size, total).equals(CRLF)) throw new Error('redis sent a bulk string not followed by CR LF');
      return { value: { type: 'bulk', value: buf.subarray(next, next + size) }, used: total };
    }
  }
  throw new Error(`redis sent an unexpected reply "${buf.toString('latin1', 0, Math.min(eol, 80))}"`);
}
