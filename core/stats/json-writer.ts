/**
 * The stats document's JSON text, written the way uWSGI 2.0's stats writer (core/stats.c)
 * writes it: tab indentation, no space after ':', list items of strings at column 0, an
 * object value indented again after its key (`"req_info":\t\t\t\t\t{`), empty lists and
 * objects on three lines, no final newline — or, with --stats-minified, no whitespace at
 * all. Parsers do not care, but people diff the output of tsuwsgi and uWSGI, and scripts
 * that grep the raw text (as some monitoring checks do) keep working.
 *
 * The writer is driven call by call in uWSGI's order (see document.ts), so every nesting
 * quirk comes out exactly where uWSGI puts it.
 */
export class StatsJsonWriter {
  private out = '';
  private tabs = 0;
  private readonly minified: boolean;

  constructor(minified: boolean) {
    this.minified = minified;
  }

  private indent(): void {
    if (!this.minified) this.out += '\t'.repeat(this.tabs);
  }

  private newline(): void {
    if (!this.minified) this.out += '\n';
  }

  /** `{` (indented) and a new level: uWSGI's uwsgi_stats_object_open. */
  objectOpen(): void {
    this.indent();
    this.out += '{';
    if (!this.minified) {
      this.out += '\n';
      this.tabs++;
    }
  }

  objectClose(): void {
    if (!this.minified) {
      this.out += '\n';
      this.tabs--;
      this.indent();
    }
    this.out += '}';
  }

  /** `[` right after its key: uWSGI's uwsgi_stats_list_open (the level is raised even when minified, as uWSGI does; it only matters for indentation). */
  listOpen(): void {
    this.tabs++;
    this.out += '[';
    this.newline();
  }

  listClose(): void {
    if (!this.minified) {
      this.out += '\n';
      this.tabs--;
      this.indent();
    } else this.tabs--;
    this.out += ']';
  }

  /** `"key":` at the current indentation, for a list or object value that follows. */
  key(name: string): void {
    this.indent();
    this.out += `${quote(name)}:`;
  }

  /** `"key":"value"`. */
  keyString(name: string, value: string): void {
    this.indent();
    this.out += `${quote(name)}:${quote(value)}`;
  }

  /** `"key":123` (uWSGI prints unsigned integers; negative or fractional values are clamped and truncated). */
  keyNumber(name: string, value: number): void {
    this.indent();
    this.out += `${quote(name)}:${unsigned(value)}`;
  }

  /** A string list item: uWSGI writes these without indentation. */
  string(value: string): void {
    this.out += quote(value);
  }

  comma(): void {
    this.out += ',';
    this.newline();
  }

  text(): string {
    return this.out;
  }
}

function quote(s: string): string {
  return JSON.stringify(s);
}

function unsigned(n: number): string {
  return Number.isFinite(n) && n > 0 ? String(Math.floor(n)) : '0';
}
