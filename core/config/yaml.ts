/**
 * YAML configs (spec/core.md §4.5 and its errata): Debian's uWSGI reads YAML with libyaml,
 * walking the token stream, so tsuwsgi follows a real YAML parser (the `yaml` package)
 * and then maps the document the way uWSGI's token walk does, as checked on the live
 * reference:
 * - the section is a top-level key (`uwsgi`, or `file.yaml:name`) whose value is a mapping;
 * - every scalar is text, never typed (failsafe schema): `true`, `~`, `0x1F`, `1.50` are
 *   kept as written; quotes are removed and escapes decoded; `#` starts a comment only
 *   where YAML says so (`foo: a#b` keeps `a#b`);
 * - a key without a value (`master:`) sets nothing — write `master: true`; `foo: ""` sets
 *   the empty string;
 * - a sequence repeats the option once per item (`socket: [a, b]` or a `- item` list);
 * - a nested mapping contributes its own keys (uWSGI flattens it: `x: {a: 1}` sets `a`);
 * - duplicate keys are kept in order (each one is an option line);
 * - later documents (`---`) are read only if the section is not in an earlier one.
 * Deliberate differences: anchors and aliases work (uWSGI stops reading at the first
 * anchor with "unsupported YAML token"), and a syntax error is fatal with its line
 * (uWSGI keeps whatever it read before the error).
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import { ConfigError } from '../errors.ts';
import type { ConfigFormat, RawConfigLine } from './formats.ts';

export const DEFAULT_YAML_SECTION = 'uwsgi';

/** Resolve aliases (bounded: an alias may point at another alias). */
function deref(node: unknown, doc: Document): unknown {
  let current = node;
  for (let i = 0; i < 32 && isAlias(current); i++) current = current.resolve(doc);
  return current;
}

/** A scalar's text, or undefined for a key written without a value. */
function scalarText(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  const text = String(node.value ?? '');
  if (text === '' && node.type === 'PLAIN') return undefined;
  return text;
}

export function parseYamlConfig(text: string, section: string, file: string, log: (line: string) => void): RawConfigLine[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { schema: 'failsafe', uniqueKeys: false, lineCounter, prettyErrors: true });
  const docList = Array.isArray(docs) ? docs : [];
  const lineOf = (node: Node | null | undefined): number => (node?.range ? lineCounter.linePos(node.range[0]).line : 0);

  for (const doc of docList) {
    const error = doc.errors[0];
    if (error) {
      // prettyErrors puts "at line L, column C" in the message's first line.
      const reason = (error.message.split('\n')[0] ?? '').replace(/:$/, '');
      throw new ConfigError(`error parsing YAML file ${file}: ${reason}; fix the file (tsuwsgi reads YAML 1.2 with every scalar as text)`);
    }
  }
  for (const doc of docList) {
    const root = doc.contents;
    if (!isMap(root)) continue;
    const pair = root.items.find((item) => scalarText(item.key) === section && isMap(deref(item.value, doc)));
    if (!pair) continue;
    const lines: RawConfigLine[] = [];
    const walk = (map: unknown, depth: number): void => {
      if (!isMap(map) || depth > 32) return;
      for (const item of map.items) {
        const key = scalarText(item.key);
        const value = deref(item.value, doc);
        if (isMap(value)) {
          walk(value, depth + 1);
          continue;
        }
        if (key === undefined) continue;
        const values = isSeq(value) ? value.items.map((v) => deref(v, doc)) : [value];
        for (const v of values) {
          if (isMap(v)) {
            walk(v, depth + 1);
            continue;
          }
          const text = scalarText(v);
          if (text !== undefined) lines.push({ key, value: text, line: lineOf((isScalar(v) ? v : item.key) as Node) });
        }
      }
    };
    walk(deref(pair.value, doc), 0);
    return lines;
  }
  // uWSGI loads nothing without a word; say it, as for INI sections.
  log(`*** WARNING: Can't find section "${section}" in YAML configuration file ${file} ***`);
  return [];
}

export const yamlFormat: ConfigFormat = {
  name: 'YAML',
  extensions: ['.yaml', '.yml'],
  options: ['yaml', 'yml', 'yal'],
  loadLogLine: (file) => `[uWSGI] getting YAML configuration from ${file}`,
  parse(text, request) {
    const section = request.section === undefined || request.section === '' ? DEFAULT_YAML_SECTION : request.section;
    return parseYamlConfig(text, section, request.file, request.log);
  },
};
