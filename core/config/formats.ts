/**
 * Config file formats. The loader reads the source, substitutes magic variables and hands
 * the text to a format, which returns the option lines of the requested section in order;
 * the loader then applies them one by one (so `ini =`, `plugins =` and config logic stay
 * immediate whatever the format). Adding a format = one module exporting a ConfigFormat,
 * listed in FORMATS.
 */
import { iniFormat } from './ini.ts';
import { jsonFormat } from './json.ts';
import { xmlFormat } from './xml.ts';
import { yamlFormat } from './yaml.ts';

/** One `key = value` of a config file, with its 1-based line (or item) number. */
export interface RawConfigLine {
  key: string;
  value: string;
  line: number;
}

export interface ParseRequest {
  /** The file as given (for messages). */
  file: string;
  /** The section/stanza asked with `FILE:section`, if any ('' when `FILE:`). */
  section: string | undefined;
  log: (line: string) => void;
}

export interface ConfigFormat {
  /** Human name used in log lines: "INI", "YAML"… */
  readonly name: string;
  /** File extensions that select it for `include`, `inherit` and bare arguments. */
  readonly extensions: readonly string[];
  /** Options that force it (`--ini`, `--yaml`…), canonical names and aliases. */
  readonly options: readonly string[];
  loadLogLine(file: string): string;
  parse(text: string, request: ParseRequest): RawConfigLine[];
}

export const FORMATS: readonly ConfigFormat[] = [iniFormat, xmlFormat, yamlFormat, jsonFormat];

/**
 * The format selected by the end of a source name, as uWSGI's uwsgi_endswith(): the whole
 * string counts, so `app.ini:section` selects nothing (the live reference refuses a bare
 * `file.ini:section` argument too).
 */
export function formatForName(name: string): ConfigFormat | undefined {
  return FORMATS.find((f) => f.extensions.some((ext) => name.endsWith(ext)));
}

export function formatForOption(option: string): ConfigFormat | undefined {
  return FORMATS.find((f) => f.options.includes(option));
}

export function isFormatOption(option: string): boolean {
  return formatForOption(option) !== undefined;
}
