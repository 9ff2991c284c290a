/**
 * FastCGI records, the requester's side (https://fastcgi-archives.github.io/FastCGI_Specification.html):
 * what the core writes to a FastCGI responder (php-cgi) it was handed by a bridge
 * (docs/bridge-protocol.md §3.4). One request at a time per connection, request id 1.
 */

export const FCGI_VERSION = 1;
export const FCGI_BEGIN_REQUEST = 1;
export const FCGI_END_REQUEST = 3;
export const FCGI_PARAMS = 4;
export const FCGI_STDIN = 5;
export const FCGI_STDOUT = 6;
export const FCGI_STDERR = 7;
const FCGI_RESPONDER = 1;
/** BEGIN_REQUEST flag: the responder keeps the connection open after the response. */
const FCGI_KEEP_CONN = 1;
/** Largest record content. */
export const FCGI_MAX_CONTENT = 65535;
export const FCGI_HEADER_SIZE = 8;

/**
 * One request param: name and value as bytes. A string holds one byte per character (latin-1,
 * as uwsgi vars are decoded everywhere in the core); text with other characters must be
 * given as a Buffer (e.g. UTF-8 file names).
 */
export type FastcgiParam = [string, Buffer | string];

function writeRecordHeader(out: Buffer, o: number, type: number, length: number): void {
  out[o] = FCGI_VERSION;
  out[o + 1] = type;
  out[o + 2] = 0; // request id 1 (big-endian u16)
  out[o + 3] = 1;
  out.writeUInt16BE(length, o + 4);
  out[o + 6] = 0; // no padding
  out[o + 7] = 0;
}

function lengthSize(n: number): number {
  return n < 128 ? 1 : 4;
}

/**
 * BEGIN_REQUEST + the PARAMS records (whole name-value pairs per record, as php-cgi parses
 * them) + the empty PARAMS record that ends them, in one buffer: this runs for every request.
 * `keepConn`: ask the responder to keep the connection for the next request. `noBody`: end
 * the (empty) STDIN stream too, so a request without a body is one write. Returns the bytes
 * and the names of params too large for a record (dropped; the caller logs them).
 */
export function encodeRequestHead(params: readonly FastcgiParam[], keepConn: boolean, noBody: boolean): { bytes: Buffer; dropped: string[] } {
  const sizes: number[] = new Array(params.length);
  const dropped: string[] = [];
  // BEGIN_REQUEST (header + body), the final empty PARAMS, and the empty STDIN
  let total = FCGI_HEADER_SIZE * 2 + 8 + (noBody ? FCGI_HEADER_SIZE : 0);
  let recordLen = 0;
  for (let i = 0; i < params.length; i++) {
    const [name, value] = params[i]!;
    const nameLen = name.length; // latin-1: one byte per char
    const valueLen = value.length; // a string is latin-1 too
    const size = lengthSize(nameLen) + lengthSize(valueLen) + nameLen + valueLen;
    if (size > FCGI_MAX_CONTENT) {
      dropped.push(name);
      sizes[i] = -1;
      continue;
    }
    sizes[i] = size;
    if (recordLen === 0 || recordLen + size > FCGI_MAX_CONTENT) {
      total += FCGI_HEADER_SIZE;
      recordLen = 0;
    }
    recordLen += size;
    total += size;
  }
  const out = Buffer.allocUnsafe(total);
  writeRecordHeader(out, 0, FCGI_BEGIN_REQUEST, 8);
  out.writeUInt16BE(FCGI_RESPONDER, 8);
  out[10] = keepConn ? FCGI_KEEP_CONN : 0;
  out.fill(0, 11, 16);
  let o = 16;
  let recordAt = -1;
  recordLen = 0;
  for (let i = 0; i < params.length; i++) {
    const size = sizes[i]!;
    if (size < 0) continue;
    if (recordAt < 0 || recordLen + size > FCGI_MAX_CONTENT) {
      if (recordAt >= 0) out.writeUInt16BE(recordLen, recordAt + 4);
      recordAt = o;
      writeRecordHeader(out, o, FCGI_PARAMS, 0);
      o += FCGI_HEADER_SIZE;
      recordLen = 0;
    }
    const [name, value] = params[i]!;
    if (name.length < 128) out[o++] = name.length;
    else {
      out.writeUInt32BE((name.length | 0x80000000) >>> 0, o);
      o += 4;
    }
    if (value.length < 128) out[o++] = value.length;
    else {
      out.writeUInt32BE((value.length | 0x80000000) >>> 0, o);
      o += 4;
    }
    o += out.write(name, o, 'latin1');
    o += typeof value === 'string' ? out.write(value, o, 'latin1') : value.copy(out, o);
    recordLen += size;
  }
  if (recordAt >= 0) out.writeUInt16BE(recordLen, recordAt + 4);
  writeRecordHeader(out, o, FCGI_PARAMS, 0);
  o += FCGI_HEADER_SIZE;
  if (noBody) {
    writeRecordHeader(out, o, FCGI_STDIN, 0);
    o += FCGI_HEADER_SIZE;
  }
  return { bytes: o === total ? out : out.subarray(0, o), dropped };
}

/** A piece of request body as STDIN records. */
export function encodeStdin(chunk: Buffer): Buffer {
  const records = Math.ceil(chunk.length / FCGI_MAX_CONTENT);
  const out = Buffer.allocUnsafe(chunk.length + records * FCGI_HEADER_SIZE);
  let o = 0;
  for (let at = 0; at < chunk.length; at += FCGI_MAX_CONTENT) {
    const piece = Math.min(FCGI_MAX_CONTENT, chunk.length - at);
    writeRecordHeader(out, o, FCGI_STDIN, piece);
    o += FCGI_HEADER_SIZE;
    o += chunk.copy(out, o, at, at + piece);
  }
  return out;
}

/** The empty STDIN record: the end of the request body. */
export const END_OF_STDIN: Buffer = (() => {
  const b = Buffer.alloc(FCGI_HEADER_SIZE);
  writeRecordHeader(b, 0, FCGI_STDIN, 0);
  return b;
})();
