/**
 * uWSGI's server-side include parser (plugins/ssi/ssi.c), byte for byte: what it copies, what
 * it takes as a directive and how it splits a directive's arguments, including its quirks,
 * because documents written against uWSGI rely on them:
 *
 * - A directive is `<!--#` … `-->`. Any other `<`, `<!`, `<!-`, `<!--` is copied as it is,
 *   but the character after it is copied too, unexamined (`<<!--#…` is text).
 * - Inside a directive, `-` and `--` not followed by `>` stay part of it; the first `-->` ends
 *   it (`var="-->"` cannot be written). An unterminated directive at the end of the file, or
 *   a `<`, `<!`… there, is dropped.
 * - The command is the first word (case-sensitive); the arguments are `key="value"` pairs:
 *   double quotes only, no space around `=`, no escapes. A malformed argument list, or 8
 *   arguments or more, makes the whole directive produce nothing; an unterminated last value
 *   is ignored. The first pair with a key wins.
 *
 * Where uWSGI's C reads out of bounds (a directive that is empty or only blanks, `<!--#-->`,
 * crashes its worker), this yields no command: the directive produces nothing.
 */

/** The commands uWSGI registers (uwsgi_ssi_init); any other directive produces nothing. */
export const SSI_COMMANDS = ['echo', 'printenv', 'include', 'cache'] as const;
export type SsiCommandName = (typeof SSI_COMMANDS)[number];

export interface SsiDirective {
  readonly command: SsiCommandName;
  /** key, value pairs in document order (values may be empty). */
  readonly args: ReadonlyArray<readonly [Buffer, Buffer]>;
}

/** uWSGI_SSI_MAX_ARGS: reaching it fails the directive. */
const MAX_ARGS = 8;

const LT = 0x3c; // <
const BANG = 0x21; // !
const DASH = 0x2d; // -
const HASH = 0x23; // #
const GT = 0x3e; // >
const QUOTE = 0x22; // "
const EQ = 0x3d; // =

/** C isspace() in the C locale. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** The text prefixes states 1..4 have seen (`<`, `<!`, `<!-`, `<!--`). */
const PREFIXES = [Buffer.from('<'), Buffer.from('<!'), Buffer.from('<!-'), Buffer.from('<!--')];
const NEXT_IN_OPENER = [BANG, DASH, DASH, HASH];

/**
 * Split a document into text (copied as it is) and directives (to run), in order. Text pieces
 * are views into `doc`.
 */
export function parseSsi(doc: Buffer): Array<Buffer | SsiDirective> {
  const out: Array<Buffer | SsiDirective> = [];
  let textStart = 0; // start of the pending run of plain text (state 0)
  let status = 0;
  let cmd = -1;
  let cmdLen = 0;
  const flushText = (end: number): void => {
    if (end > textStart) out.push(doc.subarray(textStart, end));
  };
  for (let i = 0; i < doc.length; i++) {
    const c = doc[i]!;
    switch (status) {
      case 0:
        if (c === LT) {
          flushText(i);
          status = 1;
        }
        break;
      case 1:
      case 2:
      case 3:
      case 4:
        if (c === NEXT_IN_OPENER[status - 1]) {
          status++;
        } else {
          // The prefix seen so far and this character, copied unexamined.
          out.push(PREFIXES[status - 1]!, doc.subarray(i, i + 1));
          status = 0;
          textStart = i + 1;
        }
        break;
      case 5:
        if (c === DASH) {
          status = 6;
          break;
        }
        if (cmd < 0) cmd = i;
        cmdLen++;
        break;
      case 6:
        status = 5;
        if (c === DASH) status = 7;
        else cmdLen += 2;
        break;
      case 7:
        status = 5;
        if (c === GT) {
          status = 0;
          const d = parseDirective(doc, cmd, cmdLen);
          if (d) out.push(d);
          cmd = -1;
          cmdLen = 0;
          textStart = i + 1;
        } else {
          cmdLen += 3;
        }
        break;
    }
  }
  if (status === 0) flushText(doc.length);
  return mergeText(out);
}

/** Join adjacent text pieces (the quirks above leave many one-byte pieces). */
function mergeText(parts: Array<Buffer | SsiDirective>): Array<Buffer | SsiDirective> {
  const out: Array<Buffer | SsiDirective> = [];
  let run: Buffer[] = [];
  for (const p of parts) {
    if (Buffer.isBuffer(p)) {
      if (p.length > 0) run.push(p);
      continue;
    }
    if (run.length > 0) out.push(run.length === 1 ? run[0]! : Buffer.concat(run));
    run = [];
    out.push(p);
  }
  if (run.length > 0) out.push(run.length === 1 ? run[0]! : Buffer.concat(run));
  return out;
}

/**
 * uwsgi_ssi_parse_command: `len` bytes from `start` (as the C pointer arithmetic has them,
 * clamped to the document), or null when the directive produces nothing.
 */
function parseDirective(doc: Buffer, start: number, len: number): SsiDirective | null {
  if (start < 0 || len === 0) return null; // uWSGI dereferences NULL here
  const buf = doc.subarray(start, Math.min(doc.length, start + len));
  let from = 0;
  while (from < buf.length && isSpace(buf[from]!)) from++;
  let to = buf.length;
  while (to > from && isSpace(buf[to - 1]!)) to--;
  if (from >= to) return null; // only blanks: uWSGI's length underflows
  const text = buf.subarray(from, to);
  let nameLen = 0;
  while (nameLen < text.length && !isSpace(text[nameLen]!)) nameLen++;
  const name = text.toString('latin1', 0, nameLen);
  if (!(SSI_COMMANDS as readonly string[]).includes(name)) return null;
  const command = name as SsiCommandName;
  if (nameLen === text.length) return { command, args: [] };
  let argsFrom = nameLen + 1;
  while (argsFrom < text.length && isSpace(text[argsFrom]!)) argsFrom++;
  const args = parseArgs(text.subarray(argsFrom));
  return args === null ? null : { command, args };
}

/** uwsgi_ssi_parse_args: null where uWSGI returns -1 (the directive then produces nothing). */
function parseArgs(buf: Buffer): Array<[Buffer, Buffer]> | null {
  const args: Array<[Buffer, Buffer]> = [];
  let status = 0;
  let keyStart = 0;
  let keyLen = 0;
  let valueStart = -1;
  let valueLen = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    switch (status) {
      case 0:
        if (c === EQ) status = 1;
        else keyLen++;
        break;
      case 1:
        if (c !== QUOTE) return null;
        status = 2;
        break;
      case 2:
        if (c === QUOTE) {
          status = 3;
          args.push([buf.subarray(keyStart, keyStart + keyLen), valueStart < 0 ? Buffer.alloc(0) : buf.subarray(valueStart, valueStart + valueLen)]);
          if (args.length >= MAX_ARGS) return null;
          keyLen = 0;
          valueStart = -1;
          valueLen = 0;
        } else {
          if (valueStart < 0) valueStart = i;
          valueLen++;
        }
        break;
      case 3:
        if (!isSpace(c)) {
          keyStart = i;
          keyLen = 1;
          status = 0;
        }
        break;
    }
  }
  return args;
}

/** uwsgi_ssi_get_arg: the value of the first argument named `key`, or null. */
export function ssiArg(d: SsiDirective, key: string): Buffer | null {
  for (const [k, v] of d.args) if (k.length === key.length && k.toString('latin1') === key) return v;
  return null;
}
