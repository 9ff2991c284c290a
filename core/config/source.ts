/**
 * Reading config sources (spec/core.md §4.6): a file path, `-` (stdin), `exec://CMD` (the
 * stdout of a shell command) and `fd://N`. The same reader serves config files and
 * `@(…)` values (§4.9), and `http://`/`https://` URLs. The binary-embedded schemes (`data://`,
 * `sym://`, `section://`, `call://`) have no meaning for a Node build and are refused.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.ts';

export interface SourceOptions {
  /** Base directory for relative paths. */
  cwd: string;
  /** Reads standard input (for `-`); defaults to reading fd 0. */
  readStdin?: () => string;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** True for `scheme://…` sources (uwsgi_check_scheme). */
export function isSchemeSource(name: string): boolean {
  return SCHEME.test(name);
}

/**
 * Split `FILE[:section]`. The section colon is the last `:` after the last `/` (uWSGI does
 * this only for URLs; doing it for paths too keeps `/srv/a:b/x.ini` readable, and a section
 * name never contains `/`). `file.ini:` asks for the default section.
 */
export function splitSection(spec: string): { file: string; section: string | undefined; sectionGiven: boolean } {
  const colon = spec.lastIndexOf(':');
  if (colon < 0 || colon < spec.lastIndexOf('/')) return { file: spec, section: undefined, sectionGiven: false };
  return { file: spec.slice(0, colon), section: spec.slice(colon + 1), sectionGiven: true };
}

/** "no such file or directory (ENOENT)" from a Node system error. */
export function describeError(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    const e = err as NodeJS.ErrnoException;
    const text = (e.message ?? '').replace(/^[A-Z0-9_]+: /, '').replace(/, \w+ '.*'$/, '');
    return `${text || 'error'} (${e.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Thrown by readSource; callers rewrap it with the context (config file, `@()` value). */
export class SourceReadError extends Error {
  readonly reason: string;
  constructor(reason: string, cause?: unknown) {
    super(reason, cause === undefined ? undefined : { cause });
    this.reason = reason;
  }
}

/** How long an http(s) config source may take before the load fails. */
const URL_TIMEOUT_MS = 15_000;

/**
 * GET an http(s) URL synchronously. Config loading is synchronous (uWSGI's is too, and
 * every option must be known before the next line is read), so a short-lived Node child
 * does the fetch and writes the body on stdout. uWSGI speaks plain HTTP only; https is a
 * free extra here. A status other than 2xx is an error, not a config.
 */
function fetchUrlSync(url: string): string {
  const script = `
    const url = process.argv[1];
    fetch(url, { redirect: 'follow' }).then(async (res) => {
      if (!res.ok) { process.stderr.write('HTTP status ' + res.status + ' ' + res.statusText); process.exit(2); }
      process.stdout.write(Buffer.from(await res.arrayBuffer()));
    }).catch((err) => { process.stderr.write(String(err && err.cause ? err.cause.message || err.cause : err)); process.exit(2); });`;
  const run = spawnSync(process.execPath, ['-e', script, url], { encoding: 'utf8', timeout: URL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  if (run.error) throw new SourceReadError(`cannot fetch ${url}: ${describeError(run.error)}`, run.error);
  if (run.signal) throw new SourceReadError(`cannot fetch ${url}: no answer within ${URL_TIMEOUT_MS / 1000} s`);
  if (run.status !== 0) throw new SourceReadError(`cannot fetch ${url}: ${run.stderr.trim() || `exit status ${run.status}`}`);
  return run.stdout;
}

function defaultReadStdin(): string {
  return fs.readFileSync(0, 'utf8');
}

/** The full text of a source. Throws SourceReadError with a human reason. */
export function readSource(name: string, options: SourceOptions): string {
  if (name === '-') {
    try {
      return (options.readStdin ?? defaultReadStdin)();
    } catch (err) {
      throw new SourceReadError(describeError(err), err);
    }
  }
  const scheme = SCHEME.exec(name);
  if (scheme) {
    const kind = (scheme[1] ?? '').toLowerCase();
    const rest = name.slice(scheme[0].length);
    if (kind === 'exec') {
      // uWSGI reads whatever the command prints, whatever its exit status.
      const run = spawnSync('/bin/sh', ['-c', rest], { cwd: options.cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      if (run.error) throw new SourceReadError(`cannot run "${rest}": ${describeError(run.error)}`, run.error);
      return run.stdout;
    }
    if (kind === 'fd') {
      const fd = Number.parseInt(rest, 10);
      if (!Number.isInteger(fd) || fd < 0) throw new SourceReadError(`invalid file descriptor "${rest}"`);
      try {
        return fs.readFileSync(fd, 'utf8');
      } catch (err) {
        throw new SourceReadError(describeError(err), err);
      }
    }
    if (kind === 'http' || kind === 'https') return fetchUrlSync(name);
    throw new SourceReadError(`${kind}:// config sources are not supported by tsuwsgi (supported: files, -, exec://, fd://, http://, https://)`);
  }
  try {
    return fs.readFileSync(path.resolve(options.cwd, name), 'utf8');
  } catch (err) {
    throw new SourceReadError(describeError(err), err);
  }
}

/** readSource for a config file: failures become `cannot read config file F: <reason>`. */
export function readConfigFile(name: string, options: SourceOptions): string {
  try {
    return readSource(name, options);
  } catch (err) {
    if (err instanceof SourceReadError) throw new ConfigError(`cannot read config file ${name}: ${err.reason}`, err);
    throw err;
  }
}
