/**
 * The static file server's configuration, read once from the options by the master and sent
 * to every core worker (so it is plain data: regexps travel as source text). Bad values fail
 * start-up with TSUWSGI_E_INVALID_OPTION, as uWSGI refuses them at start-up too.
 */
import { InvalidOptionError } from '../errors.ts';
import type { ResolvedOptions } from '../options/resolved.ts';

export interface StaticMount {
  mountpoint: string;
  path: string;
}

export type ExpiresSubject = 'type' | 'filename' | 'uri' | 'path-info';

export interface ExpiresRule {
  subject: ExpiresSubject;
  /** Counted from the file's mtime instead of now. */
  mtime: boolean;
  /** A MIME type for 'type', else a regexp source. */
  match: string;
  seconds: number;
}

export type FileServeMode = 'body' | 'x-sendfile' | 'x-accel-redirect';

export interface StaticPlan {
  checkStatic: string[];
  checkDocroot: boolean;
  maps: StaticMount[];
  maps2: StaticMount[];
  index: string[];
  skipExt: string[];
  safe: string[];
  /** Extra mime.types files, merged after /etc/mime.types. */
  mimeFiles: string[];
  expires: ExpiresRule[];
  gzip: { all: boolean; regexps: string[]; prefixes: string[]; suffixes: string[] };
  serveMode: FileServeMode;
  honourRange: boolean;
  /** --disable-sendfile: copy bodies through user space even when the sendfile addon is there. */
  disableSendfile: boolean;
  /** --socket-timeout (seconds): how long a sendfile transfer waits for a client that reads nothing. */
  socketTimeout: number;
}

function mounts(options: ResolvedOptions, name: string): StaticMount[] {
  return options.all(name).map((v) => {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) {
      throw new InvalidOptionError(`option "${name}" needs MOUNTPOINT=PATH (e.g. /img=/srv/img), got "${v}"`);
    }
    return { mountpoint: v.slice(0, eq), path: v.slice(eq + 1) };
  });
}

function checkRegexp(name: string, source: string): void {
  try {
    new RegExp(source);
  } catch (err) {
    throw new InvalidOptionError(`option "${name}": invalid regexp "${source}" (${(err as Error).message}); fix the pattern`);
  }
}

function seconds(name: string, text: string, whole: string): number {
  if (!/^\d+$/.test(text.trim())) throw new InvalidOptionError(`option "${name}" needs a whole number of seconds, got "${whole}"`);
  return Number.parseInt(text.trim(), 10);
}

/** `MIME=SECS` (static-expires-type): split at the last '=' (MIME types contain none). */
function typeRules(options: ResolvedOptions, name: string, mtime: boolean): ExpiresRule[] {
  return options.all(name).map((v) => {
    const eq = v.lastIndexOf('=');
    if (eq <= 0) throw new InvalidOptionError(`option "${name}" needs MIME=SECS (e.g. text/css=3600), got "${v}"`);
    return { subject: 'type', mtime, match: v.slice(0, eq), seconds: seconds(name, v.slice(eq + 1), v) };
  });
}

/** `REGEXP SECS`: uWSGI splits regexp lists at the first space, so the regexp cannot hold one (use \s). */
function regexpRules(options: ResolvedOptions, name: string, subject: ExpiresSubject, mtime: boolean): ExpiresRule[] {
  return options.all(name).map((v) => {
    const sp = v.indexOf(' ');
    if (sp <= 0) throw new InvalidOptionError(`option "${name}" needs "REGEXP SECS" (e.g. "\\.jpg$ 3600"), got "${v}"`);
    const match = v.slice(0, sp);
    checkRegexp(name, match);
    return { subject, mtime, match, seconds: seconds(name, v.slice(sp + 1), v) };
  });
}

function serveMode(value: string | undefined): FileServeMode {
  if (value === undefined || value === '') return 'body';
  const v = value.trim().toLowerCase();
  if (v === 'x-sendfile' || v === 'xsendfile') return 'x-sendfile';
  if (v === 'x-accel-redirect' || v === 'xaccelredirect' || v === 'nginx') return 'x-accel-redirect';
  throw new InvalidOptionError(`option "file-serve-mode": unknown mode "${value}"; use x-sendfile (xsendfile) or x-accel-redirect (xaccelredirect, nginx)`);
}

/**
 * The plan, or null when no lookup source is configured (check-static, check-static-docroot,
 * static-map, static-map2): then requests never pay for static checks.
 */
export function staticPlanFrom(options: ResolvedOptions): StaticPlan | null {
  const plan = staticRulesFrom(options);
  const sources = plan.checkStatic.length + plan.maps.length + plan.maps2.length + (plan.checkDocroot ? 1 : 0);
  return sources > 0 ? plan : null;
}

/**
 * Every static option read into a plan, whether or not a lookup source is set: the routing
 * `static:` action serves files with the same rules (MIME, expires, gzip, ranges, serve mode,
 * index, skip-ext, static-safe) without any lookup option.
 */
export function staticRulesFrom(options: ResolvedOptions): StaticPlan {
  const plan: StaticPlan = {
    checkStatic: options.all('check-static'),
    checkDocroot: options.flag('check-static-docroot'),
    maps: mounts(options, 'static-map'),
    maps2: mounts(options, 'static-map2'),
    index: options.all('static-index'),
    skipExt: options.all('static-skip-ext'),
    safe: options.all('static-safe'),
    mimeFiles: options.all('mimefile'),
    expires: [
      // uWSGI's order: type, type-mtime, filename, filename-mtime, uri, uri-mtime, path-info, path-info-mtime.
      ...typeRules(options, 'static-expires-type', false),
      ...typeRules(options, 'static-expires-type-mtime', true),
      ...regexpRules(options, 'static-expires', 'filename', false),
      ...regexpRules(options, 'static-expires-mtime', 'filename', true),
      ...regexpRules(options, 'static-expires-uri', 'uri', false),
      ...regexpRules(options, 'static-expires-uri-mtime', 'uri', true),
      ...regexpRules(options, 'static-expires-path-info', 'path-info', false),
      ...regexpRules(options, 'static-expires-path-info-mtime', 'path-info', true),
    ],
    gzip: {
      all: options.flag('static-gzip-all'),
      regexps: options.all('static-gzip'),
      prefixes: options.all('static-gzip-dir'),
      suffixes: options.all('static-gzip-ext'),
    },
    serveMode: serveMode(options.string('file-serve-mode')),
    honourRange: options.flag('honour-range'),
    disableSendfile: options.flag('disable-sendfile'),
    socketTimeout: options.int('socket-timeout', 4),
  };
  for (const r of plan.gzip.regexps) checkRegexp('static-gzip', r);
  return plan;
}
