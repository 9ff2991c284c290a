/**
 * Magic variables (`%d`, `%n`, `%p`…), spec/core.md §4.7.
 *
 * uWSGI substitutes them on the raw text of every config file at read time (comments
 * included), each file seeing its own values. The table is global and filled per file, as
 * in uWSGI's config_magic_table_fill(): later files overwrite the lower-case entries, and
 * the upper-case ones are set once, by the first file read through `ini`/`xml`/`yaml`/`json`
 * (a bare positional file, `include` and `inherit` never set them — the live reference
 * leaves `%N` empty for a bare argument, errata).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSchemeSource, splitSection } from './source.ts';

import { UWSGI_COMPAT_VERSION } from '../version.ts';

/** The uWSGI version tsuwsgi follows, shown by `%V` (defined once in core/version.ts). */
export { UWSGI_COMPAT_VERSION };

/** Per-file variables that have an upper-case twin pinned to the first `--ini` file. */
const UPPER_TWINS = ['o', 'd', 's', 'p', 'c', 'e', 'n', 'x', 'i', 'j'] as const;

export interface MagicEnvironment {
  /** Process working directory at startup: `%v`, and the base of relative config paths. */
  cwd: string;
  /** `%b` (binary path). */
  binaryPath?: string;
  /** Instance startup time in ms since the epoch (`%t`, `%T`); defaults to now. */
  startMs?: number;
}

/**
 * djb33x (h = h*33 ^ byte, 32-bit, bytes ≥ 0x80 sign-extended as C `char`) of the path,
 * printed as the hex of the hash's little-endian bytes, upper case: uWSGI's `%j`.
 */
export function djb33xHex(text: string): string {
  let hash = 5381;
  for (const byte of Buffer.from(text, 'utf8')) {
    const signed = byte >= 0x80 ? (byte | 0xffffff00) : byte;
    hash = ((hash * 33) >>> 0) ^ signed;
    hash >>>= 0;
  }
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(hash);
  return bytes.toString('hex').toUpperCase();
}

/** Group name of a gid from /etc/group (Node has no getgrgid); the gid itself when unknown. */
function groupName(gid: number): string {
  try {
    for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields.length >= 3 && fields[2] === String(gid) && fields[0]) return fields[0];
    }
  } catch {
    // no /etc/group: fall back to the number, as uWSGI does when getgrgid() fails
  }
  return String(gid);
}

export class MagicTable {
  private readonly vars = new Map<string, string>();
  private readonly staticVars: Record<string, () => string>;
  private readonly staticCache = new Map<string, string>();
  private upperSet = false;
  readonly cwd: string;

  constructor(env: MagicEnvironment) {
    this.cwd = env.cwd;
    const startMs = env.startMs ?? Date.now();
    const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
    const gid = typeof process.getgid === 'function' ? process.getgid() : 0;
    // Computed lazily: most configs use none of them, and %U/%G touch the system databases.
    this.staticVars = {
      v: () => env.cwd,
      V: () => UWSGI_COMPAT_VERSION,
      h: () => os.hostname(),
      t: () => String(Math.floor(startMs / 1000)),
      T: () => String(BigInt(Math.floor(startMs)) * 1000n),
      k: () => String(Math.max(1, os.cpus().length)),
      u: () => String(uid),
      U: () => {
        try {
          return os.userInfo().username || String(uid);
        } catch {
          return String(uid);
        }
      },
      g: () => String(gid),
      G: () => groupName(gid),
      b: () => env.binaryPath ?? process.argv[1] ?? '',
      '[': () => '\x1b',
      '%': () => '%',
      // `%(` survives: it starts a placeholder reference expanded later (§4.8).
      '(': () => '%(',
    };
  }

  /** The current value of `%<ch>`: undefined entries are the empty string (§4.7). */
  get(ch: string): string {
    const dynamic = this.vars.get(ch);
    if (dynamic !== undefined) return dynamic;
    const compute = this.staticVars[ch];
    if (!compute) return '';
    let cached = this.staticCache.get(ch);
    if (cached === undefined) {
      cached = compute();
      this.staticCache.set(ch, cached);
    }
    return cached;
  }

  /**
   * Fill the per-file variables for a config source given as `spec` (`FILE[:section]`,
   * `-`, `exec://…`). `setUpper` is false for bare positional files, `include` and
   * `inherit`; the upper-case variables are set by the first call that allows it.
   */
  fillForFile(spec: string, options: { setUpper: boolean }): void {
    this.vars.set('o', spec);
    // Scheme sources and stdin only get %o; the rest keeps the previous file's values.
    if (spec === '-' || isSchemeSource(spec)) return;
    const { file, section, sectionGiven } = splitSection(spec);
    if (!(sectionGiven && file === '')) this.fillPath(file);
    // `ini = :section` reuses the previous file's values, only %x changes.
    this.vars.set('x', section ?? '');
    if (options.setUpper && !this.upperSet) {
      for (const ch of UPPER_TWINS) this.vars.set(ch.toUpperCase(), this.get(ch));
      this.upperSet = true;
    }
  }

  private fillPath(file: string): void {
    const absolute = path.resolve(this.cwd, file);
    let isLink = false;
    try {
      isLink = fs.lstatSync(absolute).isSymbolicLink();
    } catch {
      isLink = false;
    }
    let full: string;
    if (isLink) {
      // The Emperor template trick: a symlink keeps its own name (not resolved), so
      // `9091.ini -> app.template` gives %n = 9091 (§4.7).
      full = file.startsWith('/') ? file : `${this.cwd}/${file}`;
    } else {
      try {
        full = fs.realpathSync(absolute);
      } catch {
        full = absolute; // the read that follows reports the missing file
      }
    }
    const slash = full.lastIndexOf('/');
    const base = full.slice(slash + 1);
    const dir = full.slice(0, slash + 1);
    const dirNoSlash = dir.endsWith('/') ? dir.slice(0, -1) : dir;
    const dot = base.lastIndexOf('.');
    this.vars.set('p', full);
    this.vars.set('s', base);
    this.vars.set('d', dir);
    this.vars.set('c', dirNoSlash.includes('/') ? dirNoSlash.slice(dirNoSlash.lastIndexOf('/') + 1) : '');
    this.vars.set('e', dot >= 0 ? base.slice(dot + 1) : '');
    this.vars.set('n', dot >= 0 ? base.slice(0, dot) : base);
    this.vars.set('j', djb33xHex(full));
    try {
      this.vars.set('i', fs.lstatSync(full, { bigint: true }).ino.toString());
    } catch {
      this.vars.set('i', '');
    }
    const parts = dir.split('/').filter((p) => p !== '');
    for (let k = 0; k <= 9; k++) this.vars.set(String(k), parts[k] ?? '');
  }

  /**
   * Substitute every `%X` of a file's raw text: `%` followed by any character becomes that
   * character's entry, so unknown sequences vanish (both characters); `%%` gives `%` and `%(`
   * is kept for placeholders (§4.7). A `%` at the very end stays.
   */
  substitute(text: string): string {
    if (!text.includes('%')) return text;
    let out = '';
    let i = 0;
    while (i < text.length) {
      const ch = text[i] as string;
      if (ch === '%' && i + 1 < text.length) {
        const next = String.fromCodePoint(text.codePointAt(i + 1) ?? 0);
        out += this.get(next);
        i += 1 + next.length;
        continue;
      }
      out += ch;
      i++;
    }
    return out;
  }
}

