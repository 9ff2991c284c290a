/**
 * Pre-compressed variants (`FILE.gz`, `FILE.br`) of static files: chosen when the client
 * accepts the encoding and the file matches a static-gzip* rule. `.br` is preferred over
 * `.gz`, as in uWSGI's branch head. The variant keeps the original file's MIME type.
 */
import fs from 'node:fs';
import type { StaticPlan } from './plan.ts';

export interface EncodedVariant {
  file: string;
  stat: fs.Stats;
  encoding: 'gzip' | 'br';
}

export class GzipRules {
  private readonly all: boolean;
  private readonly regexps: RegExp[];
  private readonly prefixes: string[];
  private readonly suffixes: string[];
  readonly enabled: boolean;

  constructor(g: StaticPlan['gzip']) {
    this.all = g.all;
    this.regexps = g.regexps.map((r) => new RegExp(r));
    this.prefixes = g.prefixes;
    this.suffixes = g.suffixes;
    this.enabled = g.all || g.regexps.length + g.prefixes.length + g.suffixes.length > 0;
  }

  private matches(file: string): boolean {
    if (this.all) return true;
    if (this.prefixes.some((p) => file.startsWith(p))) return true;
    if (this.suffixes.some((s) => file.endsWith(s))) return true;
    return this.regexps.some((re) => re.test(file));
  }

  /** The variant to serve instead of `file`, or null (a synchronous stat, as in lookup.ts). */
  variant(file: string, acceptEncoding: string | undefined): EncodedVariant | null {
    if (!this.enabled || !acceptEncoding || !this.matches(file)) return null;
    // "gzip;q=0" means "not gzip": such tokens are dropped.
    const tokens = acceptEncoding
      .toLowerCase()
      .split(',')
      .filter((t) => !/;\s*q\s*=\s*0(?:\.0*)?\s*$/.test(t))
      .map((t) => t.split(';')[0]!.trim());
    const candidates: Array<['br' | 'gzip', string]> = [];
    if (tokens.includes('br')) candidates.push(['br', '.br']);
    if (tokens.includes('gzip')) candidates.push(['gzip', '.gz']);
    for (const [encoding, ext] of candidates) {
      try {
        const st = fs.statSync(file + ext, { throwIfNoEntry: false });
        if (st?.isFile()) return { file: file + ext, stat: st, encoding };
      } catch {
        /* unreadable variant: try the next */
      }
    }
    return null;
  }
}
