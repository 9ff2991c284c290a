/**
 * The uwsgi binary protocol (spec/core.md §1.1–1.2), one codec for the public `--socket`
 * and for the bridges.
 *
 *   header: modifier1 (u8) | datasize (u16 little-endian) | modifier2 (u8)
 *   vars:   repeated { u16 keylen, key, u16 vallen, val }   (little-endian, no padding)
 *
 * For request packets datasize counts the vars block only; the HTTP body follows with
 * CONTENT_LENGTH bytes.
 */
import { ProtocolError } from '../errors.ts';

export const UWSGI_HEADER_SIZE = 4;
/** datasize is a u16: no vars block can be larger. */
export const UWSGI_MAX_PACKET = 65535;

/** modifier1 values the core itself uses. */
export const Modifier1 = {
  WSGI: 0,
  PSGI: 5,
  LUA: 6,
  RACK: 7,
  JVM: 8,
  CGI: 9,
  PHP: 14,
  /** "request configuration data": the bridge hello (docs/bridge-protocol.md §3.1). */
  CONFIG: 99,
  PING: 100,
  ECHO: 101,
} as const;

export interface PacketHeader {
  modifier1: number;
  datasize: number;
  modifier2: number;
}

/** Request vars in wire order. Duplicate keys are possible on the wire and are kept. */
export type UwsgiVars = Array<[string, string]>;

export function encodeHeader(h: PacketHeader): Buffer {
  const b = Buffer.allocUnsafe(UWSGI_HEADER_SIZE);
  b[0] = h.modifier1;
  b.writeUInt16LE(h.datasize, 1);
  b[3] = h.modifier2;
  return b;
}

export function decodeHeader(b: Buffer, offset = 0): PacketHeader {
  return { modifier1: b[offset]!, datasize: b.readUInt16LE(offset + 1), modifier2: b[offset + 3]! };
}

/**
 * Encode a whole packet (header + vars) in one buffer. Strings are written as latin-1 so
 * any byte value round-trips (HTTP header bytes are not UTF-8 by contract); values that came
 * from Node's HTTP parser are already latin-1 "binary" strings.
 */
export function encodePacket(modifier1: number, vars: UwsgiVars, modifier2 = 0): Buffer {
  let size = 0;
  for (const [k, v] of vars) size += 4 + k.length + v.length;
  if (size > UWSGI_MAX_PACKET) {
    throw new ProtocolError(`uwsgi vars block of ${size} bytes exceeds the protocol maximum of ${UWSGI_MAX_PACKET}`);
  }
  const b = Buffer.allocUnsafe(UWSGI_HEADER_SIZE + size);
  b[0] = modifier1;
  b.writeUInt16LE(size, 1);
  b[3] = modifier2;
  let o = UWSGI_HEADER_SIZE;
  for (const [k, v] of vars) {
    b.writeUInt16LE(k.length, o);
    o += 2;
    o += b.write(k, o, 'latin1');
    b.writeUInt16LE(v.length, o);
    o += 2;
    o += b.write(v, o, 'latin1');
  }
  return b;
}

/** Why a vars block was refused; the messages are uWSGI's own log lines. */
export type VarsError =
  | { kind: 'null-key' }
  | { kind: 'truncated'; offset: number }
  | { kind: 'too-many'; max: number };

export function describeVarsError(e: VarsError): string {
  switch (e.kind) {
    case 'null-key':
      return 'uwsgi key cannot be null. skip this var.';
    case 'truncated':
      return `invalid uwsgi request (current strsize: ${e.offset}). skip.`;
    case 'too-many':
      return `max vec size reached (${e.max} vars). skip this var.`;
  }
}

/**
 * Decode a vars block. Returns the vars or the reason it is invalid (uWSGI drops the whole
 * request on any of these).
 */
export function decodeVars(block: Buffer, maxVars = Infinity): UwsgiVars | VarsError {
  const out: UwsgiVars = [];
  let o = 0;
  const end = block.length;
  while (o < end) {
    if (o + 2 > end) return { kind: 'truncated', offset: o };
    const kl = block.readUInt16LE(o);
    o += 2;
    if (kl === 0) return { kind: 'null-key' };
    if (o + kl + 2 > end) return { kind: 'truncated', offset: o };
    const key = block.toString('latin1', o, o + kl);
    o += kl;
    const vl = block.readUInt16LE(o);
    o += 2;
    if (o + vl > end) return { kind: 'truncated', offset: o };
    const val = block.toString('latin1', o, o + vl);
    o += vl;
    if (out.length >= maxVars) return { kind: 'too-many', max: maxVars };
    out.push([key, val]);
  }
  return out;
}

export function isVarsError(v: UwsgiVars | VarsError): v is VarsError {
  return !Array.isArray(v);
}

/** First value of a var, or undefined. */
export function getVar(vars: UwsgiVars, key: string): string | undefined {
  for (const [k, v] of vars) if (k === key) return v;
  return undefined;
}

/** Replace (or append) a var in place. */
export function setVar(vars: UwsgiVars, key: string, value: string): void {
  for (const pair of vars) {
    if (pair[0] === key) {
      pair[1] = value;
      return;
    }
  }
  vars.push([key, value]);
}

/** Size in bytes of the vars block these vars encode to (the request log's "N bytes"). */
export function varsBlockSize(vars: UwsgiVars): number {
  let size = 0;
  for (const [k, v] of vars) size += 4 + k.length + v.length;
  return size;
}
