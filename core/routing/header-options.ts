/**
 * The server-wide response header options of uWSGI 2.0 (core/uwsgi.c, spec/subsystems.md
 * §6.7) and the managed error pages, parsed once at start-up:
 *
 *   --add-header "Name: value"       added to every response
 *   --del-header / --rem-header Name dropped from every response
 *   --collect-header "Name VAR"      the response header's value becomes request var VAR
 *   --pull-header "Name VAR"         the same, and the header is not sent
 *   --error-page-403/404/500 FILE    the HTML body of tsuwsgi's own 403/404/500 answers
 */
import fs from 'node:fs';
import { RoutingError } from '../errors.ts';
import type { ResolvedOptions } from '../options/resolved.ts';
import type { HeaderOptions } from './response-edits.ts';

export const HEADER_OPTION_NAMES: readonly string[] = ['add-header', 'del-header', 'collect-header', 'pull-header', 'error-page-403', 'error-page-404', 'error-page-500'];

/** `Header VAR`, split at the first space as uWSGI does. */
function headerVar(option: string, value: string): [string, string] {
  const space = value.indexOf(' ');
  const name = space < 0 ? '' : value.slice(0, space).trim();
  const v = space < 0 ? '' : value.slice(space + 1).trim();
  if (name === '' || v === '') throw new RoutingError(`invalid --${option} "${value}": the syntax is <header> <var>, e.g. --${option} "Content-Type CT"`);
  return [name.toLowerCase(), v];
}

function addTo(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export function compileHeaderOptions(options: ResolvedOptions): HeaderOptions {
  const add: string[] = [];
  for (const value of options.all('add-header')) {
    const colon = value.indexOf(':');
    if (colon <= 0) throw new RoutingError(`invalid --add-header "${value}": write it as a header line, e.g. --add-header "X-Frame-Options: DENY"`);
    add.push(value.slice(0, colon).trim(), value.slice(colon + 1).trimStart());
  }
  const del = new Set<string>();
  for (const value of options.all('del-header')) {
    if (value.trim() === '') throw new RoutingError('--del-header needs a header name, e.g. --del-header X-Powered-By');
    del.add(value.trim().toLowerCase());
  }
  const collect = new Map<string, string[]>();
  for (const value of options.all('collect-header')) addTo(collect, ...headerVar('collect-header', value));
  const pull = new Map<string, string[]>();
  for (const value of options.all('pull-header')) addTo(pull, ...headerVar('pull-header', value));
  return { add, del, collect, pull };
}

/** --error-page-NNN: status → files in the order given (the first readable one is served). */
export function compileErrorPages(options: ResolvedOptions): Map<number, string[]> {
  const pages = new Map<number, string[]>();
  for (const status of [403, 404, 500]) {
    const files = options.all(`error-page-${status}`);
    if (files.length > 0) pages.set(status, files);
  }
  return pages;
}

/**
 * Start-up notes for error pages that cannot be read now. Not fatal: uWSGI looks the file up
 * on every error (so it may appear later) and answers in plain text meanwhile.
 */
export function errorPageWarnings(pages: ReadonlyMap<number, readonly string[]>): string[] {
  const out: string[] = [];
  for (const [status, files] of pages) {
    for (const f of files) {
      try {
        fs.accessSync(f, fs.constants.R_OK);
      } catch {
        out.push(`--error-page-${status} ${f}: the file cannot be read now; ${status} answers are plain text until it can`);
      }
    }
  }
  return out;
}
