/**
 * uWSGI's gevent plugin: the `gevent` loop engine (`--gevent N` = `--async N --loop gevent`).
 * A Python worker serves N connections at once, each in a greenlet on gevent's hub; with
 * `--gevent-monkey-patch` the standard library (time.sleep, sockets…) becomes cooperative
 * before the apps load. Needs gevent for the bridge's interpreter (Debian: python3-gevent).
 * The Python bridge implements it (bridges/python/loops.py); docs/loop-engines.md.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';

export default definePlugin({
  name: 'gevent',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the gevent loop engine (greenlets on the gevent hub in each worker)',
  options: [
    {
      name: 'gevent',
      argument: 'required',
      kind: 'number',
      metavar: 'N',
      help: 'a shortcut enabling the gevent loop engine with N async cores per worker (--async N --loop gevent)',
    },
    {
      name: 'gevent-monkey-patch',
      argument: 'none',
      kind: 'flag',
      help: 'call gevent.monkey.patch_all() in each worker before the apps are loaded',
    },
    {
      name: 'gevent-early-monkey-patch',
      argument: 'none',
      kind: 'flag',
      help: 'call gevent.monkey.patch_all() before anything else is imported',
      accepted: 'the same as --gevent-monkey-patch, which in tsuwsgi already patches before the apps load',
    },
    {
      name: 'gevent-wait-for-hub',
      argument: 'none',
      kind: 'flag',
      help: "wait for the gevent hub's death instead of the control greenlet",
      accepted: 'on a graceful stop the bridge waits for the requests in progress, then exits',
    },
  ],
  loopEngines: [
    {
      name: 'gevent',
      description: 'each core a greenlet on the gevent hub (gevent >= 1.0 for the bridge interpreter; --gevent-monkey-patch)',
      cores: 'async',
      shortcut: 'gevent',
      // uWSGI: "the gevent loop engine requires async mode (--async <n>)" below 2 cores.
      minCores: 2,
      settings: (options) => ({ monkeyPatch: options.flag('gevent-monkey-patch') || options.flag('gevent-early-monkey-patch') }),
    },
  ],
});
