/**
 * The php plugin's request preparation, run in the core worker for every modifier1 14 request
 * (docs/bridge-protocol.md §3.4): resolve the script as uWSGI's php plugin does
 * (spec/languages.md §8.2) and turn the request vars into the FastCGI params php-cgi gets.
 *
 * Resolution: the document root walk, the SCRIPT_NAME/PATH_INFO split, the 301 to a trailing
 * slash, index files, the fallback script, the front controller (--php-app, --php-app-qs,
 * --php-app-bypass), the 403 rules (--php-allowed-docroot/-ext/-script) and refusing ".." in
 * the path. The file system checks are synchronous system calls, as in uWSGI's worker and in
 * the core's static file lookups (docs/static-files.md): a stat is a few microseconds, a trip
 * through the thread pool several times that.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';
import type { FastcgiAdapter, FastcgiParam, FastcgiPlan, FastcgiRequestVars } from '../../core/plugins/api.ts';
import { getVar } from '../../core/protocol/uwsgi-packet.ts';
import type { PhpSettings } from './index.ts';

/** Where a request goes. */
interface ScriptLocation {
  script: string;
  docroot: string;
  scriptName: string;
  pathInfo: string;
  queryString: string;
}

/** A request PHP does not run: answered by the core with this status. */
class Refusal {
  constructor(
    readonly status: number,
    readonly why: string,
    readonly headers: Array<[string, string]> = [],
  ) {}
}

/** Vars the adapter sets itself (php-cgi must not see the client's or the front end's). */
const OVERRIDDEN = new Set([
  'PATH_INFO',
  'QUERY_STRING',
  'SCRIPT_NAME',
  'SCRIPT_FILENAME',
  'DOCUMENT_ROOT',
  'PATH_TRANSLATED',
  'PHP_SELF',
  'UWSGI_APPID',
  'REDIRECT_URL',
  'ORIG_SCRIPT_FILENAME',
  'ORIG_PATH_INFO',
  'ORIG_PATH_TRANSLATED',
  'ORIG_SCRIPT_NAME',
  'SERVER_SOFTWARE',
]);

/** Any character outside ASCII (then latin-1 and UTF-8 differ). */
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * A var as text: its bytes as UTF-8 when they are valid UTF-8 (file names then match the file
 * system), else as latin-1. Vars arrive decoded as latin-1; ASCII needs no conversion.
 */
function text(vars: FastcgiRequestVars, name: string): string {
  const v = getVar(vars, name);
  if (!v) return '';
  if (!NON_ASCII.test(v)) return v;
  const bytes = Buffer.from(v, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : v;
}

/** Text as a param value: strings go out as latin-1, so anything beyond ASCII goes as UTF-8 bytes. */
function wire(value: string): string | Buffer {
  return NON_ASCII.test(value) ? Buffer.from(value, 'utf8') : value;
}

function statOrNull(p: string): fs.Stats | null {
  return fs.statSync(p, { throwIfNoEntry: false }) ?? null;
}

function realpathOrNull(p: string): string | null {
  try {
    // realpath(3): one system call, where fs.realpathSync walks the path in JavaScript.
    return fs.realpathSync.native(p);
  } catch {
    return null;
  }
}

function readable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function isUnder(file: string, dir: string): boolean {
  if (dir === '/') return true;
  return file === dir || file.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

function relativeName(file: string, docroot: string, fallbackName: string): string {
  if (isUnder(file, docroot) && file !== docroot) return file.slice(docroot === '/' ? 0 : docroot.length);
  return fallbackName;
}

export class PhpFastcgiAdapter implements FastcgiAdapter {
  private readonly s: PhpSettings;
  private readonly appBypass: RegExp[];
  /** The working directory: the document root when neither --php-docroot nor DOCUMENT_ROOT says. */
  private readonly cwd: string;
  /** --php-fcgi-max-requests: php-cgi exits after that many requests (PHP_FCGI_MAX_REQUESTS). */
  readonly requestsPerResponder: number;

  /** --php-var pairs and --php-server-software, ready for the wire. */
  private readonly extraVars: FastcgiParam[];
  private readonly serverSoftware: string | Buffer;

  constructor(settings: PhpSettings) {
    this.s = settings;
    this.requestsPerResponder = settings.maxRequests;
    this.extraVars = settings.vars.map(([k, v]) => [k, wire(v)]);
    this.serverSoftware = wire(settings.serverSoftware);
    this.appBypass = settings.appBypass.map((re) => new RegExp(re));
    this.cwd = realpathOrNull(process.cwd()) ?? process.cwd();
  }

  prepare(vars: FastcgiRequestVars): FastcgiPlan {
    const location = this.resolve(vars);
    if (location instanceof Refusal) {
      // A redirect to the trailing slash is ordinary; refusals say why in the log.
      const log = location.status === 301 ? undefined : `${location.status} for ${text(vars, 'REQUEST_URI') || text(vars, 'PATH_INFO')}: ${location.why}`;
      return { answer: { status: location.status, headers: location.headers }, ...(log ? { log } : {}) };
    }
    return { params: this.params(vars, location) };
  }

  /** Checks every script passes before it runs (step 6). */
  private checkAllowed(file: string): Refusal | null {
    const s = this.s;
    if (s.allowedExt.length && !s.allowedExt.some((e) => file.endsWith(e))) {
      return new Refusal(403, `PHP security error: ${file} does not end in an allowed extension (--php-allowed-ext ${s.allowedExt.join(' ')})`);
    }
    if (s.allowedScript.length && !s.allowedScript.includes(file)) {
      return new Refusal(403, `PHP security error: ${file} is not an allowed script (--php-allowed-script)`);
    }
    return null;
  }

  private checkDocroot(file: string): Refusal | null {
    const s = this.s;
    if (s.allowedDocroot.length && !s.allowedDocroot.some((d) => isUnder(file, d))) {
      return new Refusal(403, `PHP security error: ${file} is not under an allowed docroot (--php-allowed-docroot ${s.allowedDocroot.join(' ')})`);
    }
    return null;
  }

  /** A script outside the walk (front controller, fallback), if it may run. */
  private fixedScript(script: string, docroot: string, queryString: string): ScriptLocation | Refusal {
    return this.checkAllowed(script) ?? { script, docroot, scriptName: relativeName(script, docroot, '/' + path.basename(script)), pathInfo: '', queryString };
  }

  /** Where the request goes (spec/languages.md §8.2), or why it does not run. */
  private resolve(vars: FastcgiRequestVars): ScriptLocation | Refusal {
    const s = this.s;
    const reqPathInfo = text(vars, 'PATH_INFO');
    let queryString = text(vars, 'QUERY_STRING');
    if (reqPathInfo.includes('\0')) return new Refusal(404, 'NUL byte in PATH_INFO');

    // 1. The document root.
    let docroot = s.docroot;
    if (!docroot) {
      const reqRoot = text(vars, 'DOCUMENT_ROOT');
      if (reqRoot) {
        docroot = realpathOrNull(reqRoot);
        if (!docroot) return new Refusal(404, `DOCUMENT_ROOT ${reqRoot} does not exist (set it in the front end, or use --php-docroot)`);
      } else docroot = this.cwd;
    }

    // 2. The front controller.
    if (s.app && !this.appBypass.some((re) => re.test(text(vars, 'REQUEST_URI')))) {
      if (s.appQs !== null && reqPathInfo !== '/' && reqPathInfo !== '') {
        queryString = s.appQs + reqPathInfo + (queryString ? '&' + queryString : '');
      }
      return this.fixedScript(s.app, docroot, queryString);
    }

    // Path traversal: ".." never walks out of the document root (uWSGI relies on the front end).
    if (reqPathInfo.split('/').includes('..')) return new Refusal(403, `PHP security error: ".." in the path ${reqPathInfo}`);

    const missing = (why: string): ScriptLocation | Refusal => (s.fallback ? this.fixedScript(s.fallback, docroot, queryString) : new Refusal(404, why));

    // 3. Walk DOCUMENT_ROOT + PATH_INFO: the first component that is not a directory is the
    // script, the rest PATH_INFO (kept only when it is more than a lone "/").
    let full = docroot === '/' ? '' : docroot;
    let pathInfo = '';
    let urlScript = '';
    const parts = reqPathInfo.split('/');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i === 0 && part === '') continue;
      if (i === parts.length - 1) {
        if (part !== '') {
          full += '/' + part;
          urlScript += '/' + part;
        }
        break;
      }
      const candidate = full + '/' + part;
      const st = statOrNull(candidate);
      if (!st) return missing(`${candidate} does not exist`);
      full = candidate;
      urlScript += '/' + part;
      if (!st.isDirectory()) {
        const rest = '/' + parts.slice(i + 1).join('/');
        if (rest !== '/') pathInfo = rest;
        break;
      }
    }
    if (full === '') full = '/';

    // 4. realpath, allowed docroots.
    let real = realpathOrNull(full);
    if (!real) return missing(`${full} does not exist`);
    const outside = this.checkDocroot(real);
    if (outside) return outside;

    // 5. Directories: redirect to the slash, then the index files.
    let st = statOrNull(real);
    if (!st) return missing(`${real} does not exist`);
    if (st.isDirectory()) {
      if (!reqPathInfo.endsWith('/')) {
        const location = encodeURI(reqPathInfo + '/') + (queryString ? '?' + queryString : '');
        return new Refusal(301, `directory without trailing slash: redirect to ${location}`, [['Location', location]]);
      }
      let found: string | null = null;
      for (const name of s.index) {
        const candidate = path.join(real, name);
        if (readable(candidate)) {
          found = candidate;
          urlScript = (urlScript.endsWith('/') ? urlScript : urlScript + '/') + name;
          break;
        }
      }
      if (!found) return new Refusal(404, `${real} is a directory and no --php-index file is readable in it`);
      real = realpathOrNull(found);
      if (!real) return new Refusal(404, `${found} does not exist`);
      const indexOutside = this.checkDocroot(real);
      if (indexOutside) return indexOutside;
      st = statOrNull(real);
      if (!st || st.isDirectory()) return new Refusal(404, `index ${found} is not a file`);
    }

    // 6. Allowed extensions and scripts.
    const refused = this.checkAllowed(real);
    if (refused) return refused;

    // 7. SCRIPT_NAME: the script relative to the document root (the URL's name for it when it
    // lives elsewhere through a symlink).
    return { script: real, docroot, scriptName: relativeName(real, docroot, urlScript || '/'), pathInfo, queryString };
  }

  /** The request vars as php-cgi gets them, with the resolved script's. */
  private params(vars: FastcgiRequestVars, loc: ScriptLocation): FastcgiParam[] {
    const params: FastcgiParam[] = [['SERVER_SOFTWARE', getVar(vars, 'SERVER_SOFTWARE') ?? this.serverSoftware]];
    for (const kv of vars) {
      if (kv[0] === '' || OVERRIDDEN.has(kv[0])) continue;
      params.push(kv);
    }
    params.push(
      ['REDIRECT_STATUS', '200'],
      ['PATH_INFO', wire(loc.pathInfo)],
      ['QUERY_STRING', wire(loc.queryString)],
      ['SCRIPT_NAME', wire(loc.scriptName)],
      ['SCRIPT_FILENAME', wire(loc.script)],
      ['DOCUMENT_ROOT', wire(loc.docroot)],
      ['PATH_TRANSLATED', loc.pathInfo ? wire(loc.docroot + loc.pathInfo) : ''],
    );
    for (const kv of this.extraVars) params.push(kv);
    return params;
  }
}
