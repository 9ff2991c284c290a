/**
 * The MIME table of static responses: extension → type, built from /etc/mime.types and any
 * --mimefile, in that order (a later file overrides an earlier one, so a user's file can fix
 * the system's choice). Read once at core worker start-up: lookups are one Map access.
 */
import fs from 'node:fs';

export const SYSTEM_MIME_FILE = '/etc/mime.types';

export class MimeTable {
  private readonly byExt = new Map<string, string>();

  /** Load the files; an unreadable file is reported through `warn` and skipped (uWSGI does the same). */
  static load(files: readonly string[], warn: (line: string) => void): MimeTable {
    const table = new MimeTable();
    for (const f of [SYSTEM_MIME_FILE, ...files.filter((x) => x !== SYSTEM_MIME_FILE)]) {
      let text: string;
      try {
        text = fs.readFileSync(f, 'latin1');
      } catch (err) {
        warn(`unable to read mime file ${f}: ${(err as Error).message} (static files of its types get no Content-Type)`);
        continue;
      }
      table.merge(text);
    }
    return table;
  }

  /** Merge mime.types text: `type ext ext…` per line, `#` comments. */
  merge(text: string): void {
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const fields = line.split(/\s+/);
      const type = fields[0]!;
      for (let i = 1; i < fields.length; i++) this.byExt.set(fields[i]!.toLowerCase(), type);
    }
  }

  /** The type for a file name, by the extension after its last '.'; undefined = send no Content-Type. */
  lookup(filename: string): string | undefined {
    const dot = filename.lastIndexOf('.');
    if (dot < 0 || dot < filename.lastIndexOf('/')) return undefined;
    return this.byExt.get(filename.slice(dot + 1).toLowerCase());
  }
}
