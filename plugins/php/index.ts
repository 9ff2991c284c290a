/**
 * The php plugin (modifier1 14): PHP scripts run by a pool of long-lived `php-cgi -b`
 * FastCGI processes that a Node bridge (bridges/php/bridge.mjs) supervises. At the hello the
 * bridge hands each core connection a php-cgi of its own, and the core worker speaks FastCGI
 * to it directly (docs/bridge-protocol.md §3.4), resolving the script with the adapter in
 * fastcgi-adapter.ts. PHP runs under a real SAPI: header(), setcookie(),
 * http_response_code(), the superglobals, php://input, uploads, sessions and output
 * buffering behave as under php-fpm. Option names and the script resolution rules are
 * uWSGI's (spec/languages.md §8); docs/php.md explains the design and lists what is left out.
 *
 * The plugin hosts one "app" (mountpoint ""): uWSGI's php plugin resolves every modifier1 14
 * request against the document root itself, so the bridge gets them all.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION, type AppSpec } from '../../core/plugins/api.ts';
import type { ResolvedOptions } from '../../core/options/resolved.ts';
import { PhpFastcgiAdapter } from './fastcgi-adapter.ts';

const BRIDGE_SCRIPT = fileURLToPath(new URL('../../bridges/php/bridge.mjs', import.meta.url));
/** Defines the uwsgi_*() functions, then includes the user's own auto_prepend_file if any. */
export const PREPEND_SCRIPT = fileURLToPath(new URL('../../bridges/php/uwsgi-prepend.php', import.meta.url));
export const DEFAULT_PHP_CGI = '/usr/bin/php-cgi';

export interface PhpSettings {
  /** php-cgi executable. */
  phpCgi: string;
  /** Extra php-cgi arguments: -c INI and -d KEY=VALUE. */
  phpArgs: string[];
  /** Files appended to the configuration (--php-ini-append), in order. */
  iniAppend: string[];
  /** The user's auto_prepend_file (from --php-set), run after the bridge's own prepend file. */
  userPrepend: string | null;
  /** realpath of --php-docroot, or null (request DOCUMENT_ROOT, else the cwd). */
  docroot: string | null;
  index: string[];
  allowedDocroot: string[];
  allowedExt: string[];
  allowedScript: string[];
  app: string | null;
  appQs: string | null;
  appBypass: string[];
  fallback: string | null;
  serverSoftware: string;
  vars: Array<[string, string]>;
  /** PHP_FCGI_MAX_REQUESTS for each php-cgi (0: never recycled). */
  maxRequests: number;
  dumpConfig: boolean;
}

/** Vars php-var may not set: they decide which file php-cgi runs. */
const PROTECTED_VARS = new Set(['SCRIPT_FILENAME', 'PATH_TRANSLATED', 'REDIRECT_URL', 'DOCUMENT_ROOT']);

function value(v: string, option: string, example: string): string {
  const s = v.trim();
  if (s === '' || s === 'true') throw new InvalidOptionError(`--${option} needs a value (e.g. --${option} ${example})`);
  return s;
}

function existingFile(v: string, option: string, what: string): string {
  const p = path.resolve(value(v, option, what));
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new InvalidOptionError(`--${option} ${v}: ${p} does not exist: give an existing ${what}`);
  }
  if (!st.isFile()) throw new InvalidOptionError(`--${option} ${v}: ${p} is not a regular file: give an existing ${what}`);
  return fs.realpathSync(p);
}

function existingDir(v: string, option: string): string {
  const p = path.resolve(value(v, option, '/var/www'));
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new InvalidOptionError(`--${option} ${v}: ${p} does not exist: give an existing directory`);
  }
  if (!st.isDirectory()) throw new InvalidOptionError(`--${option} ${v}: ${p} is not a directory`);
  return fs.realpathSync(p);
}

function keyValue(v: string, option: string, example: string): [string, string] {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new InvalidOptionError(`--${option} ${v}: give KEY=VALUE (e.g. --${option} ${example})`);
  const k = v.slice(0, eq).trim();
  if (k === '' || /[\s\0]/.test(k)) throw new InvalidOptionError(`--${option} ${v}: "${k}" is not a valid name (e.g. --${option} ${example})`);
  return [k, v.slice(eq + 1)];
}

export function phpSettings(options: ResolvedOptions): PhpSettings {
  const phpArgs: string[] = [];
  const ini = options.string('php-ini');
  if (ini !== undefined) phpArgs.push('-c', existingFile(ini, 'php-ini', 'php.ini file'));
  let userPrepend: string | null = null;
  for (const v of options.all('php-set')) {
    const [k, val] = keyValue(v, 'php-set', 'date.timezone=Europe/Rome');
    if (k === 'auto_prepend_file') {
      // The bridge's own prepend file includes this one (see bridges/php/uwsgi-prepend.php).
      userPrepend = val.trim() === '' || val.trim().toLowerCase() === 'none' ? null : path.resolve(val.trim());
      continue;
    }
    phpArgs.push('-d', `${k}=${val}`);
  }
  const iniAppend = options.all('php-ini-append').map((v) => existingFile(v, 'php-ini-append', 'ini file'));
  const vars = options.all('php-var').map((v) => {
    const kv = keyValue(v, 'php-var', 'APP_ENV=production');
    if (PROTECTED_VARS.has(kv[0])) throw new InvalidOptionError(`--php-var ${v}: ${kv[0]} cannot be set with --php-var: it decides which script php-cgi runs (use --php-docroot or --php-app)`);
    return kv;
  });
  for (const name of options.all('php-index')) {
    if (name.trim() === '' || name.includes('/') || name.trim() === 'true' || name.includes('\0')) throw new InvalidOptionError(`--php-index ${name}: give a file name (no "/"), e.g. --php-index index.php`);
  }
  const appBypass = options.all('php-app-bypass').map((re) => {
    try {
      new RegExp(re);
    } catch (err) {
      throw new InvalidOptionError(`--php-app-bypass ${re}: not a valid regular expression (${(err as Error).message})`);
    }
    return re;
  });
  const maxRaw = options.string('php-fcgi-max-requests');
  let maxRequests = 0;
  if (maxRaw !== undefined) {
    maxRequests = Number(maxRaw.trim());
    if (!Number.isInteger(maxRequests) || maxRequests < 0) throw new InvalidOptionError(`--php-fcgi-max-requests ${maxRaw}: give a whole number of requests (0: never recycle)`);
  }
  const docroot = options.string('php-docroot');
  const app = options.string('php-app');
  const fallback = options.string('php-fallback');
  return {
    phpCgi: options.string('php-cgi-bin') || DEFAULT_PHP_CGI,
    phpArgs,
    iniAppend,
    userPrepend,
    docroot: docroot === undefined ? null : existingDir(docroot, 'php-docroot'),
    index: options.all('php-index').map((s) => s.trim()),
    allowedDocroot: options.all('php-allowed-docroot').map((d) => existingDir(d, 'php-allowed-docroot')),
    allowedExt: options.all('php-allowed-ext').map((e) => value(e, 'php-allowed-ext', '.php')),
    allowedScript: options.all('php-allowed-script').map((s) => existingFile(s, 'php-allowed-script', 'PHP script')),
    app: app === undefined ? null : existingFile(app, 'php-app', 'PHP script (the front controller)'),
    appQs: options.string('php-app-qs') ?? null,
    appBypass,
    fallback: fallback === undefined ? null : existingFile(fallback, 'php-fallback', 'PHP script'),
    serverSoftware: options.string('php-server-software') ?? 'uWSGI',
    vars,
    maxRequests,
    dumpConfig: options.flag('php-dump-config'),
  };
}

/** The SAPI name php-cgi reports (`php-cgi -v`: "PHP 8.2.x (cgi-fcgi) ..."), or an error message. */
function checkPhpCgi(file: string): string | null {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    return `the php plugin runs PHP with php-cgi, but ${file} is missing or not executable: install it (apt-get install php-cgi) or name it with --php-cgi-bin`;
  }
  // Without CGI variables in its environment php-cgi runs as a command (else it expects a request).
  const env = { ...process.env };
  for (const k of ['REQUEST_METHOD', 'GATEWAY_INTERFACE', 'SERVER_SOFTWARE', 'SERVER_NAME', 'REDIRECT_STATUS']) delete env[k];
  const r = spawnSync(file, ['-n', '-v'], { encoding: 'utf8', timeout: 10000, env });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error || r.status !== 0) return `--php-cgi-bin ${file}: running "${file} -v" failed (${r.error?.message ?? `status ${r.status}`}): ${out.trim().split('\n')[0] ?? ''}`;
  if (!/\(cgi-fcgi\)/.test(out)) return `--php-cgi-bin ${file} is not PHP's CGI/FastCGI binary ("${out.trim().split('\n')[0] ?? ''}"): give php-cgi (e.g. /usr/bin/php-cgi), not the php command-line binary`;
  return null;
}

export default definePlugin({
  name: 'php',
  apiVersion: PLUGIN_API_VERSION,
  description: 'PHP scripts in a pool of php-cgi FastCGI processes, supervised by a Node bridge, spoken to directly by the core',
  modifier1: 14,
  options: [
    { name: 'php-ini', aliases: ['php-config'], argument: 'required', kind: 'path', metavar: 'FILE', help: 'use this php.ini instead of the one php-cgi finds by itself (php-cgi -c)' },
    { name: 'php-ini-append', aliases: ['php-config-append'], argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: 'load this ini file after the php.ini (and its conf.d); later files win' },
    { name: 'php-set', argument: 'required', kind: 'string', multiple: true, metavar: 'KEY=VALUE', help: 'set a php.ini directive (php-cgi -d), e.g. --php-set date.timezone=Europe/Rome' },
    { name: 'php-index', argument: 'required', kind: 'string', multiple: true, metavar: 'FILE', help: 'script run for a request naming a directory (with its trailing slash); first readable one wins' },
    { name: 'php-docroot', argument: 'required', kind: 'path', metavar: 'DIR', help: "serve scripts from DIR instead of the request's DOCUMENT_ROOT (default: the request's, else the current directory)" },
    { name: 'php-allowed-docroot', argument: 'required', kind: 'path', multiple: true, metavar: 'DIR', help: 'only scripts whose real path is under one of these directories may run (others: 403)' },
    { name: 'php-allowed-ext', argument: 'required', kind: 'string', multiple: true, metavar: 'EXT', help: 'only scripts ending in one of these suffixes may run, e.g. .php (others: 403)' },
    { name: 'php-allowed-script', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: 'only these scripts may run (others: 403)' },
    { name: 'php-server-software', argument: 'required', kind: 'string', metavar: 'NAME', help: "SERVER_SOFTWARE seen by PHP when the front end does not send one", defaultValue: 'uWSGI' },
    { name: 'php-app', argument: 'required', kind: 'path', metavar: 'FILE', help: 'run this script (a front controller) for every request; PATH_INFO is emptied' },
    { name: 'php-app-qs', argument: 'required', kind: 'string', metavar: 'PREFIX', help: 'with --php-app: QUERY_STRING becomes PREFIX + PATH_INFO (+ "&" + the original query string)' },
    { name: 'php-app-bypass', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP', help: 'with --php-app: requests whose REQUEST_URI matches REGEXP are resolved in the docroot as usual' },
    { name: 'php-fallback', argument: 'required', kind: 'path', metavar: 'FILE', help: 'run this script when the requested one does not exist (instead of 404)' },
    { name: 'php-var', argument: 'required', kind: 'string', multiple: true, metavar: 'KEY=VALUE', help: 'add or overwrite a $_SERVER variable on every request' },
    { name: 'php-dump-config', argument: 'none', kind: 'flag', help: 'log the php-cgi command line and the PHP configuration (ini files and directives) at startup' },
    { name: 'php-cgi-bin', argument: 'required', kind: 'path', metavar: 'PATH', help: 'the php-cgi executable that runs the scripts (tsuwsgi addition)', defaultValue: DEFAULT_PHP_CGI },
    { name: 'php-fcgi-max-requests', argument: 'required', kind: 'number', metavar: 'N', help: 'restart each php-cgi process after N requests, 0 never (PHP_FCGI_MAX_REQUESTS; tsuwsgi addition)', defaultValue: '0' },
  ],
  bridge: {
    runtime: 'PHP',
    apps(options): AppSpec[] {
      const target = options.string('php-app') ?? options.string('php-docroot') ?? 'DOCUMENT_ROOT';
      const origin = options.has('php-app') ? `--php-app ${target}` : options.has('php-docroot') ? `--php-docroot ${target}` : "the request's DOCUMENT_ROOT (php plugin)";
      return [{ mountpoint: '', load: { kind: 'php', target }, origin }];
    },
    command() {
      return { file: process.execPath, args: [BRIDGE_SCRIPT] };
    },
    settings(options) {
      return { ...phpSettings(options), prepend: PREPEND_SCRIPT };
    },
    fastcgi(settings) {
      return new PhpFastcgiAdapter(settings as unknown as PhpSettings);
    },
  },
  init(ctx) {
    const s = phpSettings(ctx.options);
    const problem = checkPhpCgi(s.phpCgi);
    if (problem) throw new InvalidOptionError(problem);
    if (!s.app) {
      for (const name of ['php-app-qs', 'php-app-bypass']) if (ctx.options.has(name)) ctx.log(`*** --${name} has no effect without --php-app ***`);
    }
    ctx.log(s.docroot ? `PHP document root: ${s.docroot}` : s.app ? `PHP front controller: ${s.app}` : "PHP document root: the request's DOCUMENT_ROOT, else the current directory");
  },
});
