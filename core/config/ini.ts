/**
 * uWSGI's INI dialect, exactly as core/ini.c reads it (spec/core.md §4.4):
 * - the text is split on `\n`; every line is stripped of spaces, tabs and `\r` at both ends
 *   (so CRLF files read the same);
 * - `[name]` starts a section (the first and last characters are dropped, as in uWSGI);
 * - a line starting with `;` or `#` is a comment; there are NO inline comments:
 *   `logger = file:/tmp/x # note` keeps `# note` in the value;
 * - `key = value` splits on the first `=` (the value may contain `=`), both sides stripped;
 *   a line without `=` is a key with an empty value (`master` ≡ `master = true`);
 * - duplicate keys are kept, in order; no quoting, no continuation lines; keys are
 *   case-sensitive.
 * Magic variables were already substituted on the raw text by the caller (§4.7).
 */
import type { ConfigFormat, RawConfigLine } from './formats.ts';

const BLANK = new Set([' ', '\t', '\r']);

function strip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && BLANK.has(text[start] as string)) start++;
  while (end > start && BLANK.has(text[end - 1] as string)) end--;
  return text.slice(start, end);
}

export const DEFAULT_INI_SECTION = 'uwsgi';

export interface IniParseResult {
  lines: RawConfigLine[];
  /** False when no key line of the requested section was met (uWSGI then warns). */
  foundSection: boolean;
}

/** Parse INI text and keep the key lines of one section, in order, with line numbers. */
export function parseIni(text: string, section: string = DEFAULT_INI_SECTION): IniParseResult {
  const lines: RawConfigLine[] = [];
  let current = '';
  let foundSection = false;
  const raw = text.split('\n');
  // "a\n" has one line, not two: split leaves an empty last element that is no line.
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  raw.forEach((rawLine, index) => {
    const line = strip(rawLine);
    if (line === '') return;
    if (line.startsWith('[')) {
      current = line.slice(1, -1);
      return;
    }
    if (line.startsWith(';') || line.startsWith('#')) return;
    if (current !== section) return;
    foundSection = true;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : strip(line.slice(0, eq));
    const value = eq < 0 ? '' : strip(line.slice(eq + 1));
    lines.push({ key, value, line: index + 1 });
  });
  return { lines, foundSection };
}

export function iniLoadLogLine(file: string): string {
  return `[uWSGI] getting INI configuration from ${file}`;
}

export function missingSectionWarning(section: string, file: string): string {
  return `*** WARNING: Can't find section "${section}" in INI configuration file ${file} ***`;
}

export const iniFormat: ConfigFormat = {
  name: 'INI',
  extensions: ['.ini'],
  options: ['ini'],
  loadLogLine: iniLoadLogLine,
  parse(text, request) {
    const section = request.section === undefined || request.section === '' ? DEFAULT_INI_SECTION : request.section;
    const result = parseIni(text, section);
    // Not fatal in uWSGI: the file simply contributes nothing (§4.4).
    if (!result.foundSection) request.log(missingSectionWarning(section, request.file));
    return result.lines;
  },
};
