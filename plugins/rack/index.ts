/**
 * The rack plugin (modifier1 7): Rack apps (config.ru) hosted by bridges/ruby/bridge.rb, run
 * by /usr/bin/ruby or the interpreter named with --ruby-bin. Option names are uWSGI's
 * (spec/languages.md §7.1); what is not implemented is listed in docs/rack.md, and those
 * options do not exist here (so using one is an "unknown option" error, never a silent no-op).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { definePlugin, PLUGIN_API_VERSION, type AppSpec } from '../../core/plugins/api.ts';
import { InvalidOptionError } from '../../core/errors.ts';
import type { ResolvedOptions } from '../../core/options/resolved.ts';

const BRIDGE_SCRIPT = fileURLToPath(new URL('../../bridges/ruby/bridge.rb', import.meta.url));

/** Debian's interpreter: the one its ruby-rack, ruby-sinatra and uWSGI's rack plugin are built for. */
export const DEFAULT_RUBY = '/usr/bin/ruby';

/** The interpreter that runs the bridge: --ruby-bin, else /usr/bin/ruby. */
export function rubyInterpreter(options: ResolvedOptions): string {
  return options.string('ruby-bin') || DEFAULT_RUBY;
}

/** uWSGI's rack "magic": .ru (rackup files) and .rb (a file defining the app constant). */
function looksLikeRackApp(p: string): boolean {
  return /\.(ru|rb)$/.test(p);
}

/** --ruby-gc-freq: a whole number >= 0 (0: leave garbage collection to Ruby). */
function gcFrequency(options: ResolvedOptions): number {
  const n = options.int('ruby-gc-freq', 0);
  if (n < 0) throw new InvalidOptionError(`--ruby-gc-freq ${n}: give a number of requests (N >= 1 runs GC.start every N requests, 0 leaves it to Ruby)`);
  return n;
}

export default definePlugin({
  name: 'rack',
  apiVersion: PLUGIN_API_VERSION,
  description: 'Ruby Rack apps (config.ru) in a Ruby bridge',
  modifier1: 7,
  options: [
    { name: 'rack', argument: 'required', kind: 'path', metavar: 'CONFIG.RU', help: 'load a Rack app from a rackup file (config.ru; a .rb file defining the app constant works too)' },
    {
      name: 'rb-require',
      aliases: ['ruby-require', 'rbrequire', 'rubyrequire', 'require'],
      argument: 'required',
      kind: 'string',
      multiple: true,
      help: 'require a Ruby library or script before loading the app (e.g. bundler/setup)',
    },
    {
      name: 'shared-rb-require',
      aliases: ['shared-ruby-require', 'shared-rbrequire', 'shared-rubyrequire', 'shared-require'],
      argument: 'required',
      kind: 'string',
      multiple: true,
      help: 'require a Ruby library or script first of all (tsuwsgi has no shared interpreter: every bridge requires it before the --rb-require ones)',
    },
    { name: 'rb-lib', aliases: ['ruby-lib'], argument: 'required', kind: 'path', multiple: true, help: 'add a directory to $LOAD_PATH' },
    {
      name: 'ruby-gc-freq',
      aliases: ['rb-gc-freq'],
      argument: 'required',
      kind: 'number',
      help: 'run a full Ruby GC (GC.start) every N requests; 0 leaves GC to Ruby (uWSGI runs it after every request by default, see docs/rack.md)',
      defaultValue: '0',
    },
    {
      name: 'rbthreads',
      aliases: ['rb-threads', 'rbthread', 'rb-thread', 'ruby-threads'],
      argument: 'optional',
      kind: 'string',
      help: 'serve with native Ruby threads',
      accepted: 'the Ruby bridge always serves --threads N with N native Ruby threads; give the count with --threads',
    },
    { name: 'ruby-bin', aliases: ['rb-bin'], argument: 'required', kind: 'path', help: 'Ruby interpreter that runs the bridge (tsuwsgi addition)', defaultValue: DEFAULT_RUBY },
  ],
  init(ctx) {
    const o = ctx.options;
    gcFrequency(o);
    // uWSGI's rack plugin took a thread count here; tsuwsgi's thread count is --threads.
    const rb = o.string('rbthreads');
    if (rb !== undefined && /^\d+$/.test(rb.trim()) && Number(rb) > 1 && o.int('threads', 1) !== Number(rb)) {
      throw new InvalidOptionError(`--rbthreads ${rb}: the number of Ruby threads is --threads in tsuwsgi; use --threads ${rb}`);
    }
  },
  bridge: {
    runtime: 'Ruby',
    apps(options): AppSpec[] {
      const file = options.string('rack');
      if (!file) return [];
      return [{ mountpoint: '', load: { kind: 'rackup', target: path.resolve(file) }, origin: `--rack ${file}` }];
    },
    claimMount(p: string) {
      return looksLikeRackApp(p) ? { kind: 'rackup', target: path.resolve(p) } : null;
    },
    command(options) {
      return { file: rubyInterpreter(options), args: [BRIDGE_SCRIPT] };
    },
    settings(options) {
      const postBuffering = options.has('post-buffering') ? options.int('post-buffering', 0) : 0;
      return {
        rbLib: options.all('rb-lib').map((p) => path.resolve(p)),
        rbRequire: options.all('rb-require'),
        sharedRbRequire: options.all('shared-rb-require'),
        gcFreq: gcFrequency(options),
        postBuffering,
      };
    },
  },
});
