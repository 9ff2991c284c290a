/**
 * XML configs (spec/core.md §4.5), as Debian's uWSGI (libxml2) reads them, checked on the
 * live reference:
 * - the stanza is the root element when it is `<uwsgi>`; otherwise a `<uwsgi>` child of
 *   the root: the one with `id="NAME"` for `file.xml:NAME`, else the first one;
 * - each child element is an option, its text the value, verbatim (entities decoded,
 *   CDATA kept as text, surrounding blanks kept); an empty element (`<master/>`) is `1`;
 * - the legacy `<app mountpoint="/p">path</app>` is `mount = /p=path`;
 * - comments, processing instructions and text between elements are ignored.
 * Deliberate differences: a requested id that no stanza has is an error (uWSGI silently
 * uses the last stanza), a nested element is an error (uWSGI crashes), and the `mode`
 * attribute is ignored like uWSGI 2.0.21 does (the docs say it filters by --mode; the
 * reference applies every element).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ConfigError } from '../errors.ts';
import type { ConfigFormat, RawConfigLine } from './formats.ts';

/** A node of fast-xml-parser's ordered output: `{ tag: children, ':@': attributes }` or text. */
type OrderedNode = Record<string, unknown>;

const ATTRS = ':@';
const TEXT = '#text';
const CDATA = '#cdata';
const COMMENT = '#comment';

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  cdataPropName: CDATA,
  commentPropName: COMMENT,
  processEntities: true,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

function tagOf(node: OrderedNode): string | undefined {
  return Object.keys(node).find((k) => k !== ATTRS && k !== TEXT && k !== CDATA && k !== COMMENT && !k.startsWith('?'));
}

function childrenOf(node: OrderedNode, tag: string): OrderedNode[] {
  const children = node[tag];
  return Array.isArray(children) ? (children as OrderedNode[]) : [];
}

function attribute(node: OrderedNode, name: string): string | undefined {
  const attrs = node[ATTRS] as Record<string, unknown> | undefined;
  const value = attrs?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** The text content of an option element: text and CDATA children, in order. */
function textOf(children: OrderedNode[]): string {
  let out = '';
  for (const child of children) {
    if (typeof child[TEXT] === 'string' || typeof child[TEXT] === 'number') out += String(child[TEXT]);
    else if (Array.isArray(child[CDATA])) out += textOf(child[CDATA] as OrderedNode[]);
  }
  return out;
}

/** 1-based line of the next `<tag` in the source (elements are met in order), to point messages at a line. */
function makeLineFinder(text: string, start: number): (tag: string) => number {
  let cursor = Math.max(0, start);
  return (tag) => {
    const at = text.indexOf(`<${tag}`, cursor);
    if (at < 0) return 0;
    cursor = at + 1;
    let line = 1;
    for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) line++;
    return line;
  };
}

export function parseXmlConfig(text: string, id: string | undefined, file: string, log: (line: string) => void): RawConfigLine[] {
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new ConfigError(`could not parse file ${file}: ${valid.err.msg} at line ${valid.err.line}, column ${valid.err.col}; fix the XML (xmllint ${file} shows the spot)`);
  }
  const top = (parser.parse(text) as OrderedNode[]).filter((n) => tagOf(n) !== undefined);
  const root = top[0];
  const rootTag = root ? tagOf(root) : undefined;
  if (!root || !rootTag) throw new ConfigError(`invalid xml root element in ${file}, <uwsgi> expected`);

  let stanza: OrderedNode | undefined;
  if (id !== undefined && id !== '') log(`[uWSGI] using xml uwsgi id: ${id}`);
  if (rootTag === 'uwsgi') {
    stanza = root;
    const rootId = attribute(root, 'id');
    if (id && rootId !== undefined && rootId !== id) {
      throw new ConfigError(`${file} has no <uwsgi id="${id}"> (its root is <uwsgi id="${rootId}">); use ${file}:${rootId} or fix the id`);
    }
  } else {
    const candidates = childrenOf(root, rootTag).filter((n) => tagOf(n) === 'uwsgi');
    stanza = id ? candidates.find((n) => attribute(n, 'id') === id) : candidates[0];
    if (!stanza) {
      if (candidates.length === 0) throw new ConfigError(`invalid xml root element in ${file}, <uwsgi> expected (found <${rootTag}> with no <uwsgi> inside)`);
      const ids = candidates.map((n) => attribute(n, 'id')).filter((v): v is string => v !== undefined);
      throw new ConfigError(`${file} has no <uwsgi id="${id}">${ids.length ? `; its stanzas are: ${ids.join(', ')}` : ''}`);
    }
  }

  const stanzaStart = id ? Math.max(text.indexOf(`id="${id}"`), text.indexOf(`id='${id}'`)) : text.indexOf('<uwsgi');
  const lineOf = makeLineFinder(text, stanzaStart);
  const lines: RawConfigLine[] = [];
  for (const element of childrenOf(stanza, 'uwsgi')) {
    const tag = tagOf(element);
    if (!tag) continue;
    const line = lineOf(tag);
    const children = childrenOf(element, tag);
    const nested = children.find((c) => tagOf(c) !== undefined);
    if (nested) {
      throw new ConfigError(`<${tag}> in ${file} (line ${line}) contains the element <${tagOf(nested)}>: an option element holds text only`);
    }
    const value = textOf(children);
    const mountpoint = tag === 'app' ? attribute(element, 'mountpoint') : undefined;
    if (mountpoint !== undefined) {
      lines.push({ key: 'mount', value: `${mountpoint}=${value}`, line });
      continue;
    }
    lines.push({ key: tag, value: children.length === 0 ? '1' : value, line });
  }
  return lines;
}

export const xmlFormat: ConfigFormat = {
  name: 'XML',
  extensions: ['.xml'],
  options: ['xml', 'xmlconfig'],
  loadLogLine: (file) => `[uWSGI] parsing config file ${file}`,
  parse(text, request) {
    return parseXmlConfig(text, request.section, request.file, request.log);
  },
};
