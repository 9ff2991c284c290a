/**
 * uWSGI's asyncio plugin: the `asyncio` loop engine (`--asyncio N` = `--async N --loop asyncio`).
 * A Python worker runs its N cores as tasks of one asyncio event loop, which is the running
 * loop the app sees: `async def` WSGI callables, `yield uwsgi.async_sleep(n)` generators and
 * (with `--greenlet`) uWSGI's greenlet idioms all serve many slow requests in one process.
 * The Python bridge implements it (bridges/python/loops.py); docs/loop-engines.md.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';

export default definePlugin({
  name: 'asyncio',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the asyncio loop engine (Python asyncio event loop in each worker)',
  options: [
    {
      name: 'asyncio',
      argument: 'required',
      kind: 'number',
      metavar: 'N',
      help: 'a shortcut enabling the asyncio loop engine with N async cores per worker (--async N --loop asyncio)',
    },
  ],
  loopEngines: [
    {
      name: 'asyncio',
      description: "--async N cores as tasks of Python's asyncio event loop (async def apps, uwsgi async API, greenlet with --greenlet)",
      cores: 'async',
      shortcut: 'asyncio',
      // uWSGI: "the asyncio loop engine requires async mode (--async <n>)" below 2 cores.
      minCores: 2,
    },
  ],
});
