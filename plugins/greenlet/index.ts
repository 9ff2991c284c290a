/**
 * uWSGI's greenlet plugin: greenlet as the suspend/resume engine of the async engines
 * (`--async N --greenlet`, `--asyncio N --greenlet`). Each request runs in a greenlet, so
 * `uwsgi.suspend()` parks it from any call depth and uWSGI's greenlet idioms (switching to
 * the parent until a loop callback switches back) work. Needs the greenlet module for the
 * bridge's interpreter (Debian: python3-greenlet). docs/loop-engines.md.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';

export default definePlugin({
  name: 'greenlet',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the greenlet suspend engine for the async loop engines',
  options: [{ name: 'greenlet', argument: 'none', kind: 'flag', help: 'use greenlet as the suspend engine of the async loop engines' }],
  suspendEngines: [{ name: 'greenlet', description: 'each async request in a greenlet: uwsgi.suspend() works from any call depth', option: 'greenlet' }],
});
