/**
 * uWSGI's default request line written straight into a file target's queue as bytes — the
 * same bytes as `formatDefaultLine(r) + "\n"` encoded as UTF-8, without making the string.
 *
 * Why: a request line as a string is paid for three times. V8 builds a template literal as
 * a tree of ~45 small strings, the target's batch join copies that tree flat, and the write
 * encodes it once more; all of it is garbage for the young-generation GC, and lines queued
 * for the file's 5 ms survive the scavenges that happen meanwhile. Measured on the benchmark
 * VM: the whole step (record, line, queue, write) ~0.80 µs per line through the string,
 * ~0.72 µs here, and in the server under load the bytes surviving scavenges fall from ~160
 * to ~94 per request (~91 with --disable-logging). Numbers and ASCII text are written by JS
 * loops into the queue's Buffer, constant parts copied from pre-encoded bytes, the date part
 * encoded once a second.
 *
 * Only the default line with nothing between it and the file (no --log-format, --log-json,
 * loggers, routes or encoders) takes this path; see RequestLogger.emit (worker-log.ts).
 */
import { ctime, VIA_SENDFILE, type RequestRecord } from './request-log.ts';

/** Writes a record into a Buffer that has at least `maxBytes(record)` bytes free. */
export interface RecordWriter<T> {
  /** Upper bound of the bytes `write` takes, or -1 when this record must take the string path. */
  maxBytes(x: T): number;
  /** Write at `off` (right after maxBytes() of the same record); returns the offset after the last byte. */
  write(x: T, buf: Buffer, off: number): number;
}

const ascii = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'latin1'));

const PID = ascii('[pid: ');
const APP = ascii('|app: ');
const REQ = ascii('|req: ');
const VARS_IN = ascii(' vars in ');
const GENERATED = ascii(' => generated ');
const BYTES_IN = ascii(' bytes in ');
const MSECS = ascii(' msecs ');
const MICROS = ascii(' micros ');
const VIA_SENDFILE_BYTES = ascii(VIA_SENDFILE);
const HEADERS_IN = ascii(' headers in ');
const BYTES_OPEN = ascii(' bytes (');
const SWITCHES_ON_CORE = ascii(' switches on core ');

/** The variable text of a line above this many UTF-16 units may need uWSGI's safe variant (a line of 4096+): the string path decides. */
const MAX_TEXT = 3000;
/** Every number and constant of a line together, with room to spare (15 numbers of at most 16 digits + 150 bytes of text). */
const FIXED_BYTES = 512;

export class DefaultLineWriter implements RecordWriter<RequestRecord> {
  private second = -1;
  /** `" bytes} [CTIME] "` of the current second, encoded. */
  private dateBytes: Uint8Array = new Uint8Array(0);
  /** The address and user of the record maxBytes() saw last (write() follows it; the user is looked up in the vars). */
  private addr = '';
  private user = '';

  constructor(
    private readonly micros: boolean,
    private readonly forwardedFor: boolean,
  ) {}

  maxBytes(r: RequestRecord): number {
    this.addr = this.forwardedFor && r.forwardedFor !== '' ? r.forwardedFor : r.remoteAddr;
    this.user = r.remoteUser;
    const text = this.addr.length + this.user.length + r.method.length + r.uri.length + r.protocol.length;
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    return text > MAX_TEXT ? -1 : text * 3 + FIXED_BYTES;
  }

  write(r: RequestRecord, buf: Buffer, off: number): number {
    const sec = Math.floor(r.startedAt / 1000);
    if (sec !== this.second) {
      this.dateBytes = ascii(` bytes} [${ctime(r.startedAt)}] `);
      this.second = sec;
    }
    let o = copy(buf, off, PID);
    o = digits(buf, o, r.pid);
    o = copy(buf, o, APP);
    o = digits(buf, o, r.app);
    o = copy(buf, o, REQ);
    o = digits(buf, o, r.appRequests);
    buf[o++] = 0x2f; // /
    o = digits(buf, o, r.workerRequests);
    buf[o++] = 0x5d; // ]
    buf[o++] = 0x20;
    o = text(buf, o, this.addr);
    buf[o++] = 0x20;
    buf[o++] = 0x28; // (
    o = text(buf, o, this.user);
    buf[o++] = 0x29; // )
    buf[o++] = 0x20;
    buf[o++] = 0x7b; // {
    o = digits(buf, o, r.varCount * 2);
    o = copy(buf, o, VARS_IN);
    o = digits(buf, o, r.packetSize);
    o = copy(buf, o, this.dateBytes);
    o = text(buf, o, r.method);
    buf[o++] = 0x20;
    o = text(buf, o, r.uri);
    o = copy(buf, o, GENERATED);
    o = digits(buf, o, r.bodyBytes);
    o = copy(buf, o, BYTES_IN);
    if (this.micros) {
      o = digits(buf, o, r.micros);
      o = copy(buf, o, MICROS);
    } else {
      o = digits(buf, o, Math.floor(r.micros / 1000));
      o = copy(buf, o, MSECS);
    }
    if (r.viaSendfile) o = copy(buf, o, VIA_SENDFILE_BYTES);
    buf[o++] = 0x28; // (
    o = text(buf, o, r.protocol);
    buf[o++] = 0x20;
    o = digits(buf, o, r.status);
    buf[o++] = 0x29; // )
    buf[o++] = 0x20;
    o = digits(buf, o, r.headerCount);
    o = copy(buf, o, HEADERS_IN);
    o = digits(buf, o, r.headerBytes);
    o = copy(buf, o, BYTES_OPEN);
    o = digits(buf, o, r.switches ?? 1);
    o = copy(buf, o, SWITCHES_ON_CORE);
    o = digits(buf, o, r.core);
    buf[o++] = 0x29; // )
    buf[o++] = 0x0a; // the line's newline
    return o;
  }
}

function copy(buf: Buffer, off: number, bytes: Uint8Array): number {
  const n = bytes.length;
  for (let i = 0; i < n; i++) buf[off + i] = bytes[i]!;
  return off + n;
}

/**
 * A request var's bytes (vars are byte strings: one char per byte, see varText in
 * request-log.ts): ASCII in a loop, anything else by Buffer.write as latin1, so a raw UTF-8
 * URI is written as the client sent it, as uWSGI writes it.
 */
function text(buf: Buffer, off: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return off + buf.write(s, off, 'latin1');
    buf[off + i] = c;
  }
  return off + n;
}

/** A number as `${n}` prints it: integers in decimal (a minus sign for negative ones, app -1). */
function digits(buf: Buffer, off: number, n: number): number {
  if (n >= 0 && n < 10) {
    buf[off] = 0x30 + n;
    return off + 1;
  }
  // Small integers (every field but a long-running server's request counters) in int32 arithmetic.
  if (n >= 10 && n <= 0x7fffffff && (n | 0) === n) {
    let len = 2;
    for (let d = (n / 100) | 0; d > 0; d = (d / 10) | 0) len++;
    let o = off + len;
    for (let d = n; o > off; ) {
      const q = (d / 10) | 0;
      buf[--o] = 0x30 + d - q * 10;
      d = q;
    }
    return off + len;
  }
  return off + buf.write(String(n), off, 'latin1');
}
