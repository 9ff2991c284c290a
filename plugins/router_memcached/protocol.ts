/**
 * The two commands of memcached's text protocol router_memcached uses (memcached's
 * doc/protocol.txt): `get` and `set`, encoded, and their replies parsed for
 * core/routing/kv-client.ts.
 *
 *   get <key>\r\n                               → VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\nEND\r\n | END\r\n
 *   set <key> 0 <exptime> <bytes>\r\n<data>\r\n → STORED\r\n | NOT_STORED\r\n | SERVER_ERROR …\r\n
 *
 * uWSGI writes the expanded key as it is; a key with a space or a CR LF (from `$1` of a
 * request path) then turns into other commands on the server. Here such a key is refused
 * (keyProblem) before anything is sent.
 */
import type { ParsedReply } from '../../core/routing/kv-client.ts';

/** memcached's KEY_MAX_LENGTH. */
export const MAX_KEY_BYTES = 250;
/** Longest reply line accepted (a VALUE line with a 250-byte key is under 300 bytes). */
const MAX_LINE = 1024;

const CRLF = Buffer.from('\r\n');
const END = Buffer.from('END\r\n');

/** Why memcached cannot take `key` (text protocol: 1–250 bytes, no control characters nor spaces), or null. */
export function keyProblem(key: Buffer): string | null {
  if (key.length === 0) return 'the key is empty';
  if (key.length > MAX_KEY_BYTES) return `the key is ${key.length} bytes long (memcached takes at most ${MAX_KEY_BYTES})`;
  for (const b of key) {
    if (b <= 0x20 || b === 0x7f) return 'the key holds a space or a control character, which memcached keys cannot';
  }
  return null;
}

export function encodeGet(key: Buffer): Buffer {
  return Buffer.concat([Buffer.from('get ', 'latin1'), key, CRLF]);
}

/** `set`, flags 0, as uWSGI stores (expires: seconds, or a unix time beyond 30 days, 0 = never). */
export function encodeSet(key: Buffer, value: Buffer, expires: string): Buffer {
  return Buffer.concat([Buffer.from('set ', 'latin1'), key, Buffer.from(` 0 ${expires} ${value.length}\r\n`, 'latin1'), value, CRLF]);
}

/** The first reply line, or the bytes needed (0: more) while it is incomplete. */
function firstLine(buf: Buffer): { line: string; next: number } | number {
  const eol = buf.indexOf(CRLF);
  if (eol < 0) {
    if (buf.length > MAX_LINE) throw new Error(`memcached sent a reply line longer than ${MAX_LINE} bytes`);
    return 0;
  }
  return { line: buf.toString('latin1', 0, eol), next: eol + 2 };
}

function serverError(line: string): Error {
  // ERROR, CLIENT_ERROR <why>, SERVER_ERROR <why>, or anything else.
  return new Error(/^(ERROR|CLIENT_ERROR|SERVER_ERROR)\b/.test(line) ? `memcached answered "${line}"` : `memcached sent an unexpected reply "${line.slice(0, 80)}"`);
}

/** The reply to a `get`: the value (possibly empty), or null for a miss. */
export function parseGetReply(buf: Buffer): ParsedReply<Buffer | null> {
  const first = firstLine(buf);
  if (typeof first === 'number') return first;
  const { line, next } = first;
  if (line === 'END') return { value: null, used: next };
  const m = /^VALUE \S+ \d+ (\d+)(?: \d+)?$/.exec(line);
  if (!m) throw serverError(line);
  const size = Number(m[1]);
  if (!Number.isSafeInteger(size)) throw new Error(`memcached announced a value of ${m[1]} bytes`);
  const total = next + size + CRLF.length + END.length;
  if (buf.length < total) return total;
  if (!buf.subarray(next + size, next + size + 2).equals(CRLF) || !buf.subarray(next + size + 2, total).equals(END)) {
    throw new Error('memcached sent a value not followed by CR LF and END');
  }
  return { value: buf.subarray(next, next + size), used: total };
}

/** The reply to a `set`: its line (STORED, NOT_STORED…); error lines throw. */
export function parseStoreReply(buf: Buffer): ParsedReply<string> {
  const first = firstLine(buf);
  if (typeof first === 'number') return first;
  if (/^(ERROR|CLIENT_ERROR|SERVER_ERROR)\b/.test(first.line)) throw serverError(first.line);
  return { value: first.line, used: first.next };
}
