/**
 * JSON configs (spec/core.md §4.5), as Debian's uWSGI reads them (yajl):
 * - the top level is an object; the section (`uwsgi`, or `file.json:name`) must be an
 *   object, else `you must define a object named X in your JSON data` (fatal);
 * - strings are kept verbatim; `true` → `1`; `false` and `null` → `0`; numbers keep their
 *   source text (`1.50` stays `1.50`, `1e3` stays `1e3`);
 * - an array repeats the option once per element (strings, numbers, booleans, nulls);
 *   nested objects, in an array or as a value, are ignored;
 * - duplicate keys are kept in order (each one is an option line).
 *
 * JSON.parse cannot keep duplicate keys or a number's source text, so this module has its
 * own small parser (RFC 8259 grammar, nothing more). Errors say where, as line:column.
 */
import { ConfigError } from '../errors.ts';
import type { ConfigFormat, RawConfigLine } from './formats.ts';

export const DEFAULT_JSON_SECTION = 'uwsgi';

type JsonValue =
  | { type: 'string'; text: string; line: number }
  | { type: 'number'; text: string; line: number }
  | { type: 'literal'; text: 'true' | 'false' | 'null'; line: number }
  | { type: 'array'; items: JsonValue[]; line: number }
  | { type: 'object'; members: { key: string; value: JsonValue; line: number }[]; line: number };

class JsonSyntaxError extends Error {}

class JsonReader {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  constructor(private readonly text: string) {}

  fail(what: string): never {
    const column = this.pos - this.lineStart + 1;
    throw new JsonSyntaxError(`${what} at line ${this.line}, column ${column}`);
  }

  private skipBlanks(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const ch = t[this.pos];
      if (ch === '\n') {
        this.line++;
        this.lineStart = this.pos + 1;
      } else if (ch !== ' ' && ch !== '\t' && ch !== '\r') return;
      this.pos++;
    }
  }

  document(): JsonValue {
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1; // a UTF-8 byte order mark
    const value = this.value();
    this.skipBlanks();
    if (this.pos < this.text.length) this.fail('unexpected text after the JSON document');
    return value;
  }

  private value(): JsonValue {
    this.skipBlanks();
    const ch = this.text[this.pos];
    const line = this.line;
    if (ch === '{') return this.object();
    if (ch === '[') return this.array();
    if (ch === '"') return { type: 'string', text: this.string(), line };
    for (const literal of ['true', 'false', 'null'] as const) {
      if (this.text.startsWith(literal, this.pos)) {
        this.pos += literal.length;
        return { type: 'literal', text: literal, line };
      }
    }
    const number = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.pos, this.pos + 400));
    if (number) {
      this.pos += number[0].length;
      return { type: 'number', text: number[0], line };
    }
    this.fail(ch === undefined ? 'unexpected end of data' : `unexpected character ${JSON.stringify(ch)}`);
  }

  private object(): JsonValue {
    const line = this.line;
    this.pos++; // {
    const members: { key: string; value: JsonValue; line: number }[] = [];
    this.skipBlanks();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return { type: 'object', members, line };
    }
    for (;;) {
      this.skipBlanks();
      if (this.text[this.pos] !== '"') this.fail('invalid object key (must be a string)');
      const keyLine = this.line;
      const key = this.string();
      this.skipBlanks();
      if (this.text[this.pos] !== ':') this.fail('expected ":" after an object key');
      this.pos++;
      members.push({ key, value: this.value(), line: keyLine });
      this.skipBlanks();
      const next = this.text[this.pos];
      this.pos++;
      if (next === '}') return { type: 'object', members, line };
      if (next !== ',') {
        this.pos--;
        this.fail('expected "," or "}" in an object');
      }
    }
  }

  private array(): JsonValue {
    const line = this.line;
    this.pos++; // [
    const items: JsonValue[] = [];
    this.skipBlanks();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return { type: 'array', items, line };
    }
    for (;;) {
      items.push(this.value());
      this.skipBlanks();
      const next = this.text[this.pos];
      this.pos++;
      if (next === ']') return { type: 'array', items, line };
      if (next !== ',') {
        this.pos--;
        this.fail('expected "," or "]" in an array');
      }
    }
  }

  private string(): string {
    const start = this.pos;
    this.pos++; // opening quote
    let out = '';
    let chunk = this.pos;
    const t = this.text;
    for (;;) {
      if (this.pos >= t.length) {
        this.pos = start;
        this.fail('unterminated string');
      }
      const ch = t[this.pos] as string;
      if (ch === '"') {
        out += t.slice(chunk, this.pos);
        this.pos++;
        return out;
      }
      if (ch === '\n' || ch.charCodeAt(0) < 0x20) this.fail('control character inside a string (escape it)');
      if (ch === '\\') {
        out += t.slice(chunk, this.pos);
        const esc = t[this.pos + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (esc !== undefined && simple[esc] !== undefined) {
          out += simple[esc];
          this.pos += 2;
        } else if (esc === 'u' && /^[0-9a-fA-F]{4}$/.test(t.slice(this.pos + 2, this.pos + 6))) {
          out += String.fromCharCode(Number.parseInt(t.slice(this.pos + 2, this.pos + 6), 16));
          this.pos += 6;
        } else this.fail('invalid escape in a string');
        chunk = this.pos;
        continue;
      }
      this.pos++;
    }
  }
}

/** The text uWSGI gives an option for a scalar, or undefined for what it ignores. */
function scalarText(value: JsonValue): string | undefined {
  switch (value.type) {
    case 'string':
    case 'number':
      return value.text;
    case 'literal':
      return value.text === 'true' ? '1' : '0';
    default:
      return undefined;
  }
}

/** The option lines of one section of a JSON document. */
export function parseJsonConfig(text: string, section: string, file: string): RawConfigLine[] {
  let root: JsonValue;
  try {
    root = new JsonReader(text).document();
  } catch (err) {
    if (err instanceof JsonSyntaxError) {
      throw new ConfigError(`error parsing JSON data in ${file}: ${err.message}; fix the file (a JSON validator such as \`python3 -m json.tool ${file}\` shows the spot)`);
    }
    throw err;
  }
  const stanza = root.type === 'object' ? root.members.find((m) => m.key === section)?.value : undefined;
  if (!stanza || stanza.type !== 'object') {
    throw new ConfigError(
      `you must define a object named ${section} in your JSON data (${file}): write {"${section}": {"option": "value", …}}${section === DEFAULT_JSON_SECTION ? '' : ` or pick another object with ${file}:NAME`}`,
    );
  }
  const lines: RawConfigLine[] = [];
  for (const member of stanza.members) {
    const values = member.value.type === 'array' ? member.value.items : [member.value];
    for (const item of values) {
      const text = scalarText(item);
      if (text !== undefined) lines.push({ key: member.key, value: text, line: item.line });
    }
  }
  return lines;
}

export const jsonFormat: ConfigFormat = {
  name: 'JSON',
  extensions: ['.json', '.js'],
  options: ['json', 'js'],
  loadLogLine: (file) => `[uWSGI] getting JSON configuration from ${file}`,
  parse(text, request) {
    const section = request.section === undefined || request.section === '' ? DEFAULT_JSON_SECTION : request.section;
    return parseJsonConfig(text, section, request.file);
  },
};
