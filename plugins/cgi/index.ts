/**
 * The cgi plugin (modifier1 9): CGI/1.1 scripts (RFC 3875), one process per request, run by
 * bridges/cgi/bridge.pl, a Perl bridge that speaks the bridge contract on one side and starts
 * the scripts (fork + execve of an argument list, no shell) on the other, through a small
 * forker process (bridges/cgi/forker.pl). Perl because every request forks, and a fork costs
 * in proportion to the forking process's memory: docs/cgi.md ("How it runs") has the numbers.
 * Option names and rules are uWSGI's (spec/languages.md §9); docs/cgi.md lists the
 * differences and what is left out.
 *
 * The plugin hosts one "app" (mountpoint ""): uWSGI's CGI plugin does its own mountpoint
 * matching on PATH_INFO (the longest `--cgi MOUNTPOINT=...` prefix), so the bridge gets every
 * modifier1 9 request and picks the CGI directory or script itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION, type AppSpec } from '../../core/plugins/api.ts';
import type { ResolvedOptions } from '../../core/options/resolved.ts';
import { CGI_ROUTE_ACTIONS, ensureRouteToken, routesUseCgi } from './route-actions.ts';

const BRIDGE_SCRIPT = fileURLToPath(new URL('../../bridges/cgi/bridge.pl', import.meta.url));
/** perl-base is an essential package on Debian, and the bridge needs no module outside it. */
export const DEFAULT_CGI_PERL = '/usr/bin/perl';

export const DEFAULT_CGI_TIMEOUT = 60;
export const DEFAULT_CGI_BUFFER_SIZE = 65536;

/** One `--cgi` entry: a directory or a single script, with or without a mountpoint. */
export interface CgiMount {
  /** The URI prefix ("" for the default entry, given without `MOUNTPOINT=`). */
  mountpoint: string;
  /** Absolute path of the directory or script (realpath()ed with --cgi-optimize). */
  path: string;
  /** Only with --cgi-optimize: whether `path` is a file (else it is resolved per request). */
  isFile: boolean | null;
}

export interface CgiSettings {
  mounts: CgiMount[];
  helpers: Array<[string, string]>;
  fromDocroot: boolean;
  bufferSize: number;
  timeout: number;
  index: string[];
  allowedExt: string[];
  unset: string[];
  safe: string[];
  pathInfo: boolean;
  doNotKillOnError: boolean;
}

function positiveInt(options: ResolvedOptions, name: string, def: number, what: string): number {
  const raw = options.string(name);
  if (raw === undefined) return def;
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n <= 0) throw new InvalidOptionError(`--${name} ${raw}: give ${what} as a positive whole number`);
  return n;
}

function parseMount(value: string, optimize: boolean): CgiMount {
  const eq = value.indexOf('=');
  let mountpoint = eq < 0 ? '' : value.slice(0, eq).trim();
  const target = (eq < 0 ? value : value.slice(eq + 1)).trim();
  if (target === '' || target === 'true') throw new InvalidOptionError(`--cgi ${value}: give a directory of CGI scripts or one script, optionally as MOUNTPOINT=PATH (e.g. --cgi /cgi-bin=/usr/lib/cgi-bin)`);
  if (eq >= 0 && !mountpoint.startsWith('/')) throw new InvalidOptionError(`--cgi ${value}: the mountpoint "${mountpoint}" must start with "/" (e.g. --cgi /cgi-bin=${target})`);
  if (mountpoint.length > 1 && mountpoint.endsWith('/')) mountpoint = mountpoint.slice(0, -1);
  if (mountpoint === '/') mountpoint = '';
  const abs = path.resolve(target);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new InvalidOptionError(`--cgi ${value}: ${abs} does not exist: give an existing directory of CGI scripts or an executable script`);
  }
  if (!st.isDirectory() && !st.isFile()) throw new InvalidOptionError(`--cgi ${value}: ${abs} is neither a directory nor a regular file`);
  if (!optimize) return { mountpoint, path: abs, isFile: null };
  return { mountpoint, path: fs.realpathSync(abs), isFile: st.isFile() };
}

function parseHelper(value: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new InvalidOptionError(`--cgi-helper ${value}: invalid CGI helper syntax, must be EXT=COMMAND (e.g. --cgi-helper .pl=perl)`);
  const ext = value.slice(0, eq).trim();
  const command = value.slice(eq + 1).trim();
  if (command.startsWith('sym://')) throw new InvalidOptionError(`--cgi-helper ${value}: sym:// helpers call a C symbol loaded with --cgi-loadlib, which tsuwsgi does not support: name an executable instead (e.g. ${ext}=perl)`);
  return [ext, command];
}

function parseExt(value: string, option: string): string {
  const v = value.trim();
  if (v === '' || v === 'true') throw new InvalidOptionError(`--${option} needs an extension (e.g. --${option} .cgi)`);
  return v;
}

export function cgiSettings(options: ResolvedOptions): CgiSettings {
  const optimize = options.flag('cgi-optimize');
  const mounts = options.all('cgi').map((v) => parseMount(v, optimize));
  for (const name of options.all('cgi-index')) {
    if (name.trim() === '' || name.includes('/') || name === 'true') throw new InvalidOptionError(`--cgi-index ${name}: give a file name (no "/"), e.g. --cgi-index index.cgi`);
  }
  for (const v of options.all('cgi-unset')) {
    if (v.trim() === '' || v.includes('=') || v === 'true') throw new InvalidOptionError(`--cgi-unset ${v}: give the name of an environment variable, e.g. --cgi-unset HTTP_PROXY`);
  }
  return {
    mounts,
    helpers: options.all('cgi-map-helper').map(parseHelper),
    fromDocroot: options.flag('cgi-from-docroot'),
    bufferSize: positiveInt(options, 'cgi-buffer-size', DEFAULT_CGI_BUFFER_SIZE, 'the header buffer size in bytes'),
    timeout: positiveInt(options, 'cgi-timeout', DEFAULT_CGI_TIMEOUT, 'the timeout in seconds'),
    index: options.all('cgi-index').map((s) => s.trim()),
    allowedExt: options.all('cgi-allowed-ext').map((v) => parseExt(v, 'cgi-allowed-ext')),
    unset: options.all('cgi-unset').map((s) => s.trim()),
    safe: options.all('cgi-safe').map((p) => path.resolve(p)),
    pathInfo: options.flag('cgi-path-info'),
    doNotKillOnError: options.flag('cgi-do-not-kill-on-error'),
  };
}

function hostsScripts(options: ResolvedOptions): boolean {
  return options.has('cgi') || options.flag('cgi-from-docroot');
}

export default definePlugin({
  name: 'cgi',
  apiVersion: PLUGIN_API_VERSION,
  description: 'CGI/1.1 scripts, one process per request (no shell), from a Perl bridge',
  modifier1: 9,
  options: [
    { name: 'cgi', argument: 'required', kind: 'string', multiple: true, metavar: '[MOUNTPOINT=]PATH', help: 'add a CGI directory or a single script, optionally under a URI mountpoint; without a mountpoint it is the default CGI directory' },
    { name: 'cgi-map-helper', aliases: ['cgi-helper'], argument: 'required', kind: 'string', multiple: true, metavar: 'EXT=COMMAND', help: 'run scripts ending in EXT with COMMAND (argv: COMMAND script [args]); such scripts need no exec bit' },
    { name: 'cgi-from-docroot', argument: 'none', kind: 'flag', help: "blindly use the request's DOCUMENT_ROOT as the CGI directory" },
    { name: 'cgi-buffer-size', argument: 'required', kind: 'number', metavar: 'BYTES', help: 'largest CGI response header block; a script sending more headers gets a 500', defaultValue: String(DEFAULT_CGI_BUFFER_SIZE) },
    { name: 'cgi-timeout', argument: 'required', kind: 'number', metavar: 'SECONDS', help: 'kill a script that neither writes output nor reads its input for SECONDS (504 when nothing was sent yet)', defaultValue: String(DEFAULT_CGI_TIMEOUT) },
    { name: 'cgi-index', argument: 'required', kind: 'string', multiple: true, metavar: 'FILE', help: 'script run for a request naming a directory (with its trailing slash); first readable one wins' },
    { name: 'cgi-allowed-ext', argument: 'required', kind: 'string', multiple: true, metavar: 'EXT', help: 'only scripts ending in one of these extensions may run (case-insensitive); others get 403' },
    { name: 'cgi-unset', argument: 'required', kind: 'string', multiple: true, metavar: 'VAR', help: "remove VAR from the scripts' environment" },
    { name: 'cgi-safe', argument: 'required', kind: 'path', multiple: true, metavar: 'DIR', help: 'scripts whose real path is under DIR may live outside the CGI directory (symlinks)' },
    { name: 'cgi-optimize', aliases: ['cgi-optimized'], argument: 'none', kind: 'flag', help: 'resolve (realpath) the --cgi paths once at startup instead of on every request' },
    { name: 'cgi-path-info', argument: 'none', kind: 'flag', help: 'disable PATH_INFO management: the whole path names the script and PATH_INFO is passed as received' },
    { name: 'cgi-do-not-kill-on-error', argument: 'none', kind: 'flag', help: 'do not SIGKILL a script after an invalid response, a timeout or a client disconnect' },
    { name: 'cgi-perl-bin', argument: 'required', kind: 'path', metavar: 'PATH', help: 'Perl interpreter that runs the CGI bridge, the process that starts the scripts (tsuwsgi addition; any perl 5.10+, core modules only)', defaultValue: DEFAULT_CGI_PERL },
  ],
  bridge: {
    runtime: 'CGI',
    apps(options): AppSpec[] {
      if (!hostsScripts(options)) {
        // Only `cgi:`/`cgihelper:` rules: the bridge runs the commands they name (route-actions.ts).
        return routesUseCgi(options) ? [{ mountpoint: '', load: { kind: 'cgi', target: '' }, origin: 'cgi:/cgihelper: route actions' }] : [];
      }
      const targets = options.flag('cgi-from-docroot') ? ['DOCUMENT_ROOT', ...options.all('cgi')] : options.all('cgi');
      return [{ mountpoint: '', load: { kind: 'cgi', target: targets.join(' ') }, origin: targets.map((t) => (t === 'DOCUMENT_ROOT' ? '--cgi-from-docroot' : `--cgi ${t}`)).join(', ') }];
    },
    command(options) {
      return { file: options.string('cgi-perl-bin') || DEFAULT_CGI_PERL, args: [BRIDGE_SCRIPT] };
    },
    settings(options) {
      return { ...cgiSettings(options) };
    },
  },
  routeActions: CGI_ROUTE_ACTIONS,
  init(ctx) {
    const { options } = ctx;
    ensureRouteToken();
    if (!hostsScripts(options)) {
      for (const name of ['cgi-map-helper', 'cgi-index', 'cgi-allowed-ext', 'cgi-timeout']) {
        if (options.has(name) && !(name === 'cgi-timeout' && routesUseCgi(options))) ctx.log(`*** --${name} has no effect: no --cgi directory or script (and no --cgi-from-docroot) is configured ***`);
      }
      return;
    }
    const s = cgiSettings(options);
    for (const m of s.mounts) ctx.log(m.mountpoint ? `initialized CGI mountpoint: ${m.mountpoint} = ${m.path}` : `initialized CGI path: ${m.path}`);
  },
});
