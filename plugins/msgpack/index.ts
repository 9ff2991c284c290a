/**
 * uWSGI's msgpack plugin: the `msgpack` log encoder. Its argument describes one msgpack
 * document as `|`-separated items, `type[:arg]`, exactly as uWSGI:
 *
 *   map:N array:N        a map of the next N key/value items, an array of the next N items
 *   str:S bin:S          a fixed string / binary
 *   int:N float:F        numbers (a float with an integral value is encoded as an integer by msgpackr)
 *   nil true false
 *   msg msgnl            the record as a string, without / with its newline
 *   msgbin msgbinnl      the record as binary, without / with its newline
 *   unix micros          the current time in seconds / microseconds
 *   strftime:FMT         the current local time, formatted
 *
 *   --log-encoder 'msgpack map:2|str:message|msg|str:ts|unix'
 *
 * Values are encoded with msgpackr.
 */
import { Packr } from 'msgpackr';
import { LoggerError } from '../../core/errors.ts';
import { nowMicros, stripNewline } from '../../core/logging/encoders.ts';
import { strftime } from '../../core/logging/strftime.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';

type Node =
  | { kind: 'map'; items: Node[] }
  | { kind: 'array'; items: Node[] }
  | { kind: 'value'; value: (record: Buffer) => unknown };

const packr = new Packr({ useRecords: false, variableMapSize: true });

function parseItems(format: string): Node[] {
  const tokens = format.split('|');
  let i = 0;
  const bad = (why: string): never => {
    throw new LoggerError(`log encoder msgpack: ${why} in "${format}" (items are type[:arg] separated by |, e.g. map:1|str:msg|msg)`);
  };
  const count = (arg: string | undefined, what: string): number => {
    if (arg === undefined || !/^\d+$/.test(arg)) bad(`${what} needs a number of items`);
    return Number(arg);
  };
  const one = (): Node => {
    if (i >= tokens.length) bad('a map or array has fewer items than it announces');
    const tok = tokens[i++]!;
    const colon = tok.indexOf(':');
    const type = colon < 0 ? tok : tok.slice(0, colon);
    const arg = colon < 0 ? undefined : tok.slice(colon + 1);
    switch (type) {
      case 'map': {
        const n = count(arg, 'map');
        const items: Node[] = [];
        for (let k = 0; k < 2 * n; k++) items.push(one());
        return { kind: 'map', items };
      }
      case 'array': {
        const n = count(arg, 'array');
        const items: Node[] = [];
        for (let k = 0; k < n; k++) items.push(one());
        return { kind: 'array', items };
      }
      case 'str': {
        const s = arg ?? '';
        return { kind: 'value', value: () => s };
      }
      case 'bin': {
        const b = Buffer.from(arg ?? '');
        return { kind: 'value', value: () => b };
      }
      case 'int': {
        if (arg === undefined || !/^-?\d+$/.test(arg)) bad(`int needs an integer, got "${arg ?? ''}"`);
        const n = Number(arg);
        return { kind: 'value', value: () => n };
      }
      case 'float': {
        const f = Number(arg);
        if (arg === undefined || Number.isNaN(f)) bad(`float needs a number, got "${arg ?? ''}"`);
        return { kind: 'value', value: () => f };
      }
      case 'nil':
        return { kind: 'value', value: () => null };
      case 'true':
        return { kind: 'value', value: () => true };
      case 'false':
        return { kind: 'value', value: () => false };
      case 'msg':
        return { kind: 'value', value: (r) => stripNewline(r).toString() };
      case 'msgnl':
        return { kind: 'value', value: (r) => r.toString() };
      case 'msgbin':
        return { kind: 'value', value: (r) => Buffer.from(stripNewline(r)) };
      case 'msgbinnl':
        return { kind: 'value', value: (r) => Buffer.from(r) };
      case 'unix':
        return { kind: 'value', value: () => Math.floor(Date.now() / 1000) };
      case 'micros':
        return { kind: 'value', value: () => nowMicros() };
      case 'strftime': {
        const fmt = arg ?? '';
        return { kind: 'value', value: () => strftime(fmt, new Date()) };
      }
      default:
        return bad(`unknown item "${tok}"`);
    }
  };
  const out: Node[] = [];
  while (i < tokens.length) out.push(one());
  return out;
}

function build(node: Node, record: Buffer): unknown {
  if (node.kind === 'value') return node.value(record);
  if (node.kind === 'array') return node.items.map((n) => build(n, record));
  const m = new Map<unknown, unknown>();
  for (let k = 0; k < node.items.length; k += 2) m.set(build(node.items[k]!, record), build(node.items[k + 1]!, record));
  return m;
}

export default definePlugin({
  name: 'msgpack',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the msgpack log encoder',
  logEncoders: [
    {
      name: 'msgpack',
      description: 'encode the record as a msgpack document described by |-separated items',
      create(args) {
        if (args.trim() === '') throw new LoggerError("log encoder msgpack needs a format, e.g. --log-encoder 'msgpack map:1|str:message|msg'");
        const nodes = parseItems(args);
        return (record) => (nodes.length === 1 ? packr.pack(build(nodes[0]!, record)) : Buffer.concat(nodes.map((n) => packr.pack(build(n, record)))));
      },
    },
  ],
});
