/**
 * The lua plugin (modifier1 6): Lua WSAPI apps hosted by bridges/lua/bridge.lua, run by the
 * interpreter the user names (--lua-bin, default Debian's /usr/bin/lua5.4; LuaJIT works
 * too). Option names are uWSGI's (spec/languages.md §10.1); docs/lua.md lists the ones not
 * implemented and why. Those do not exist here, so using one is an "unknown option" error,
 * never a silent no-op.
 *
 * The bridge needs LuaSocket (Debian lua-socket) for its sockets: Lua's standard library
 * has none. A Lua worker serves one request at a time (Lua has no threads), so the pool
 * never gets more than one thread per process: `--threads N` is ignored, with a warning.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION, type AppSpec } from '../../core/plugins/api.ts';
import type { ResolvedOptions } from '../../core/options/resolved.ts';

const BRIDGE_SCRIPT = fileURLToPath(new URL('../../bridges/lua/bridge.lua', import.meta.url));

/** Debian's Lua 5.4: the interpreter its lua-socket package is built for (among others). */
export const DEFAULT_LUA = '/usr/bin/lua5.4';

/** uWSGI's lua "magic": .lua and .ws (WSAPI) files. */
function looksLikeLuaApp(p: string): boolean {
  return /\.(lua|ws)$/.test(p);
}

/**
 * --lua-gc-freq: a whole number >= 0. N >= 1 runs a full collection every N requests (1:
 * after every request, uWSGI's default); 0, tsuwsgi's default, leaves it to Lua's
 * incremental collector (docs/lua.md, "Differences from uWSGI").
 */
function gcFrequency(options: ResolvedOptions): number {
  const raw = options.string('lua-gc-freq');
  if (raw === undefined || raw.trim() === '') return 0;
  if (!/^\d+$/.test(raw.trim())) {
    throw new InvalidOptionError(`--lua-gc-freq ${raw}: give a number of requests (N >= 1 runs a full Lua GC every N requests, 0 leaves it to Lua)`);
  }
  return Number(raw.trim());
}

/** Whether the options give this plugin an app to host (--lua or a .lua/.ws mount). */
function hostsApps(options: ResolvedOptions): boolean {
  if (options.has('lua')) return true;
  const mounted = [...options.all('mount').map((m) => m.slice(m.indexOf('=') + 1).trim()), ...options.all('__positional__')];
  return mounted.some(looksLikeLuaApp);
}

export default definePlugin({
  name: 'lua',
  apiVersion: PLUGIN_API_VERSION,
  description: 'Lua WSAPI apps in a Lua bridge',
  modifier1: 6,
  options: [
    { name: 'lua', argument: 'required', kind: 'path', metavar: 'FILE', help: 'load a Lua WSAPI app (the file returns the app function, or a table with a run function)' },
    { name: 'lua-load', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: 'run a Lua file in every worker before the apps are loaded' },
    {
      name: 'lua-gc-freq',
      argument: 'required',
      kind: 'number',
      metavar: 'N',
      help: 'run a full Lua garbage collection every N requests; 0 leaves it to Lua (uWSGI collects after every request by default, see docs/lua.md)',
      defaultValue: '0',
    },
    { name: 'lua-bin', argument: 'required', kind: 'path', metavar: 'PATH', help: 'Lua interpreter that runs the bridge, e.g. /usr/bin/luajit (tsuwsgi addition)', defaultValue: DEFAULT_LUA },
  ],
  bridge: {
    runtime: 'Lua',
    maxThreads: 1,
    apps(options): AppSpec[] {
      const file = options.string('lua');
      if (file === undefined) return [];
      if (file.trim() === '') throw new InvalidOptionError('--lua needs the path of a .lua (or .ws) WSAPI app file');
      return [{ mountpoint: '', load: { kind: 'wsapi', target: path.resolve(file) }, origin: `--lua ${file}` }];
    },
    claimMount(p: string) {
      return looksLikeLuaApp(p) ? { kind: 'wsapi', target: path.resolve(p) } : null;
    },
    command(options) {
      return { file: options.string('lua-bin') || DEFAULT_LUA, args: [BRIDGE_SCRIPT] };
    },
    settings(options) {
      return {
        load: options.all('lua-load').map((p) => path.resolve(p)),
        gcFreq: gcFrequency(options),
        // With --harakiri the bridge looks at its control channel while the app runs (a Lua
        // debug hook, which costs speed), so the stack dump shows the app's code.
        watchdog: options.int('harakiri', 0) > 0,
      };
    },
  },
  init(ctx) {
    const { options } = ctx;
    gcFrequency(options);
    if (options.all('lua-load').length > 0 && !hostsApps(options)) {
      // In uWSGI, --lua-load alone registers RPC functions and signal handlers for other
      // languages' apps; tsuwsgi has neither yet, so the files would run for nothing.
      throw new InvalidOptionError(
        '--lua-load without a Lua app (--lua or a .lua mount): its files would only register RPC functions or signal handlers, which tsuwsgi does not have yet (pending); load them from a Lua app instead',
      );
    }
    const threads = options.int('threads', 1);
    if (threads > 1 && hostsApps(options)) {
      ctx.log(`*** --threads ${threads} does not apply to Lua apps: each lua worker serves one request at a time (Lua has no threads); raise --processes instead ***`);
    }
  },
});
