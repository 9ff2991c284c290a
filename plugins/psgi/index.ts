/**
 * The psgi plugin (modifier1 5): Perl PSGI 1.1 apps hosted by bridges/perl/bridge.pl, run by
 * the perl the user names (--perl-bin, default /usr/bin/perl). Option names are uWSGI's
 * (spec/languages.md §6.1); docs/psgi.md lists the ones not implemented and why.
 *
 * A Perl worker serves one request at a time (Perl ithreads are not viable: most XS modules
 * are not thread-safe and each thread clones the interpreter), so the pool never gets more
 * than one thread per process: `--threads N` is ignored for Perl apps, with a warning.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION, type AppSpec } from '../../core/plugins/api.ts';
import type { ResolvedOptions } from '../../core/options/resolved.ts';

const BRIDGE_SCRIPT = fileURLToPath(new URL('../../bridges/perl/bridge.pl', import.meta.url));
export const DEFAULT_PERL = '/usr/bin/perl';

function looksLikePsgiApp(p: string): boolean {
  return /\.(pl|psgi)$/.test(p);
}

/** The app file of --psgi / --mount, refusing what uWSGI loads from elsewhere (http://, data://). */
function psgiTarget(value: string, origin: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new InvalidOptionError(`${origin}: loading a PSGI app from "${value}" (uWSGI's http:// and data:// schemes) is not supported: give a path to a .psgi or .pl file`);
  }
  return path.resolve(value);
}

function autoReloadSeconds(options: ResolvedOptions): number {
  const n = options.int('perl-auto-reload', 0);
  if (n < 0) throw new InvalidOptionError(`--perl-auto-reload ${n}: give the number of seconds between scans (0 or omitted turns it off)`);
  return n;
}

/** Whether the options give this plugin something to host (--psgi or a .pl/.psgi mount). */
function hostsApps(options: ResolvedOptions): boolean {
  if (options.has('psgi')) return true;
  const mounted = [...options.all('mount').map((m) => m.slice(m.indexOf('=') + 1).trim()), ...options.all('__positional__')];
  return mounted.some(looksLikePsgiApp);
}

export default definePlugin({
  name: 'psgi',
  apiVersion: PLUGIN_API_VERSION,
  description: 'Perl PSGI 1.1 apps in a Perl bridge',
  modifier1: 5,
  options: [
    { name: 'psgi', argument: 'required', kind: 'path', metavar: 'FILE', help: 'load a PSGI app from a .psgi/.pl file (its last expression is the app code reference)' },
    { name: 'perl-local-lib', argument: 'required', kind: 'path', metavar: 'DIR', help: 'use a local::lib directory (its lib/perl5 goes first in @INC)' },
    { name: 'perl-args', argument: 'required', kind: 'string', metavar: 'ARGS', help: 'add space-separated items to @ARGV' },
    { name: 'perl-arg', argument: 'required', kind: 'string', multiple: true, metavar: 'ITEM', help: 'add one item to @ARGV' },
    { name: 'perl-exec', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: 'run a Perl file in every worker before the apps are loaded' },
    { name: 'perl-exec-post-fork', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: 'run a Perl file in every worker after the apps are loaded' },
    { name: 'perl-no-die-catch', argument: 'none', kind: 'flag', help: 'do not install a $SIG{__DIE__} handler (no stack traces for app errors in the log)' },
    { name: 'perl-auto-reload', argument: 'required', kind: 'number', metavar: 'SECONDS', help: 'after a request, at most every SECONDS, check the files in %INC and reload the workers gracefully if one changed' },
    { name: 'perl-auto-reload-ignore', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: 'a file --perl-auto-reload does not check' },
    { name: 'perl-no-plack', argument: 'none', kind: 'flag', help: 'load apps with `do FILE` instead of Plack::Util::load_psgi (used when Plack is installed)' },
    { name: 'perl-bin', argument: 'required', kind: 'path', metavar: 'PATH', help: 'Perl interpreter that runs the bridge (tsuwsgi addition)', defaultValue: DEFAULT_PERL },
  ],
  bridge: {
    runtime: 'Perl',
    maxThreads: 1,
    apps(options): AppSpec[] {
      const file = options.string('psgi');
      if (file === undefined) return [];
      if (file.trim() === '') throw new InvalidOptionError('--psgi needs the path of a .psgi or .pl file');
      return [{ mountpoint: '', load: { kind: 'psgi', target: psgiTarget(file, '--psgi') }, origin: `--psgi ${file}` }];
    },
    claimMount(p: string) {
      if (!looksLikePsgiApp(p)) return null;
      return { kind: 'psgi', target: psgiTarget(p, `--mount ${p}`) };
    },
    command(options) {
      return { file: options.string('perl-bin') || DEFAULT_PERL, args: [BRIDGE_SCRIPT] };
    },
    settings(options) {
      const args = (options.string('perl-args') ?? '').split(/\s+/).filter(Boolean);
      const localLib = options.string('perl-local-lib');
      return {
        localLib: localLib ? path.resolve(localLib) : null,
        args: [...args, ...options.all('perl-arg')],
        exec: options.all('perl-exec').map((p) => path.resolve(p)),
        execPostFork: options.all('perl-exec-post-fork').map((p) => path.resolve(p)),
        noDieCatch: options.flag('perl-no-die-catch'),
        autoReload: autoReloadSeconds(options),
        autoReloadIgnore: options.all('perl-auto-reload-ignore').map((p) => path.resolve(p)),
        noPlack: options.flag('perl-no-plack'),
      };
    },
  },
  init(ctx) {
    const { options } = ctx;
    autoReloadSeconds(options);
    const threads = options.int('threads', 1);
    if (threads > 1 && hostsApps(options)) {
      ctx.log(`*** --threads ${threads} does not apply to Perl apps: each psgi worker serves one request at a time (Perl ithreads are not viable); raise --processes instead ***`);
    }
  },
});
