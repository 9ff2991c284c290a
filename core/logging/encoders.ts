/**
 * The core's log encoders (uWSGI core/logging.c): prefix, suffix, nl, gzip, compress,
 * format and json. Each turns one record into another; `--log-encoder` chains them in option
 * order. Template variables of format/json: ${msg} (the record without its trailing
 * newline), ${msgnl} (with it), ${unix}, ${micros}, ${millis}, ${strftime:FORMAT}; unknown
 * variables print nothing, as in uWSGI. Like uWSGI, format and json add no newline: chain
 * `nl` after them for line-oriented files.
 *
 * Difference from uWSGI: json escapes every value as JSON requires (uWSGI escapes only
 * quote, backslash and tab and writes other control characters raw), and json without a
 * template writes {"unix":…,"msg":"…"} instead of nothing.
 */
import zlib from 'node:zlib';
import { LoggerError } from '../errors.ts';
import type { LogEncoder, LogEncoderDefinition } from './api.ts';
import { strftime } from './strftime.ts';

const NL = Buffer.from('\n');

/** Microseconds since the epoch. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** The record without one trailing newline. */
export function stripNewline(record: Buffer): Buffer {
  return record.length > 0 && record[record.length - 1] === 0x0a ? record.subarray(0, record.length - 1) : record;
}

type Piece = Buffer | ((record: Buffer) => Buffer);

/** Compile a format/json template; `escape` wraps values that come from the record or a date. */
export function compileTemplate(template: string, escape: ((text: string) => string) | null): (record: Buffer) => Buffer {
  const pieces: Piece[] = [];
  const re = /\$\{([^}]*)\}/g;
  let last = 0;
  const text = (s: string): Buffer => Buffer.from(escape ? escape(s) : s);
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > last) pieces.push(Buffer.from(template.slice(last, m.index)));
    const name = m[1]!;
    if (name === 'msg') pieces.push(escape ? (r) => text(stripNewline(r).toString()) : (r) => stripNewline(r));
    else if (name === 'msgnl') pieces.push(escape ? (r) => text(r.toString()) : (r) => r);
    else if (name === 'unix') pieces.push(() => Buffer.from(String(Math.floor(Date.now() / 1000))));
    else if (name === 'micros') pieces.push(() => Buffer.from(String(nowMicros())));
    else if (name === 'millis') pieces.push(() => Buffer.from(String(Date.now())));
    else if (name.startsWith('strftime:')) {
      const fmt = name.slice('strftime:'.length);
      pieces.push(() => text(strftime(fmt, new Date())));
    }
    // Anything else prints nothing (uWSGI).
    last = m.index + m[0].length;
  }
  if (last < template.length) pieces.push(Buffer.from(template.slice(last)));
  return (record) => Buffer.concat(pieces.map((p) => (typeof p === 'function' ? p(record) : p)));
}

/** JSON string escaping (the text between the quotes). */
export function jsonEscape(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

export const CORE_ENCODERS: readonly LogEncoderDefinition[] = [
  {
    name: 'prefix',
    description: 'add TEXT before the record',
    create: (args) => {
      const p = Buffer.from(args);
      return (r) => Buffer.concat([p, r]);
    },
  },
  {
    name: 'suffix',
    description: 'add TEXT after the record (after its newline, as uWSGI)',
    create: (args) => {
      const s = Buffer.from(args);
      return (r) => Buffer.concat([r, s]);
    },
  },
  { name: 'nl', description: 'add a newline', create: () => (r) => Buffer.concat([r, NL]) },
  { name: 'gzip', description: 'gzip the record', create: () => (r) => zlib.gzipSync(r) },
  { name: 'compress', description: 'zlib-compress the record', create: () => (r) => zlib.deflateSync(r) },
  {
    name: 'format',
    description: 'rewrite the record with a template: ${msg} ${msgnl} ${unix} ${micros} ${millis} ${strftime:FMT}',
    create: (args) => {
      if (args === '') throw new LoggerError('log encoder "format" needs a template, e.g. --log-encoder "format [${strftime:%Y-%m-%d %H:%M:%S}] ${msgnl}"');
      return compileTemplate(args, null);
    },
  },
  {
    name: 'json',
    description: 'like format, with every value JSON-escaped (default template {"unix":${unix},"msg":"${msg}"})',
    create: (args) => compileTemplate(args === '' ? '{"unix":${unix},"msg":"${msg}"}' : args, jsonEscape),
  },
];

/** One `--log-encoder` value, parsed: `NAME[:LOGGERID][ ARGS]`. */
export interface EncoderSpec {
  name: string;
  /** Only records going to the logger with this id (uWSGI's "use_for"). */
  loggerId: string | null;
  args: string;
  /** The option value as written, for messages. */
  text: string;
}

export function parseEncoderSpec(text: string): EncoderSpec {
  const space = text.indexOf(' ');
  const head = space < 0 ? text : text.slice(0, space);
  const args = space < 0 ? '' : text.slice(space + 1);
  const colon = head.indexOf(':');
  return {
    name: colon < 0 ? head : head.slice(0, colon),
    loggerId: colon < 0 ? null : head.slice(colon + 1),
    args,
    text,
  };
}

/** Run a chain of encoders over one record. */
export function runChain(chain: readonly LogEncoder[], record: Buffer): Buffer {
  let r = record;
  for (const e of chain) r = e(r);
  return r;
}
