/**
 * The python plugin (modifier1 0): WSGI apps hosted by bridges/python/bridge.py, run by the
 * interpreter the user names (--python-bin, or the virtualenv's, or python3 on PATH).
 * Option names are uWSGI's (spec/languages.md §4.1).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { definePlugin, PLUGIN_API_VERSION, type AppSpec } from '../../core/plugins/api.ts';
import type { ResolvedOptions } from '../../core/options/resolved.ts';

const BRIDGE_SCRIPT = fileURLToPath(new URL('../../bridges/python/bridge.py', import.meta.url));

/** The interpreter to run: --python-bin, else the virtualenv's python, else python3 on PATH. */
export function pythonInterpreter(options: ResolvedOptions): string {
  const explicit = options.string('python-bin');
  if (explicit) return explicit;
  const home = options.string('home');
  if (home) {
    for (const candidate of ['bin/python3', 'bin/python']) {
      const p = path.resolve(home, candidate);
      if (fs.existsSync(p)) return p;
    }
  }
  return 'python3';
}

function looksLikePythonApp(p: string): boolean {
  return /\.(py|wsgi)$/.test(p);
}

export default definePlugin({
  name: 'python',
  apiVersion: PLUGIN_API_VERSION,
  description: 'Python WSGI apps (PEP 3333) in a Python bridge',
  modifier1: 0,
  options: [
    { name: 'wsgi-file', aliases: ['file'], argument: 'required', kind: 'path', help: 'load a WSGI app from a .py/.wsgi file' },
    { name: 'module', aliases: ['wsgi'], short: 'w', argument: 'required', kind: 'string', metavar: 'MODULE[:CALLABLE]', help: 'load a WSGI app by importing a module (module:callable, module:factory())' },
    { name: 'callable', argument: 'required', kind: 'string', help: 'name of the WSGI callable to look for', defaultValue: 'application' },
    { name: 'pythonpath', aliases: ['python-path', 'pp'], argument: 'required', kind: 'path', multiple: true, help: 'add a directory to sys.path' },
    { name: 'home', aliases: ['virtualenv', 'venv', 'pyhome'], short: 'H', argument: 'required', kind: 'path', help: 'virtualenv to use: its bin/python3 runs the bridge' },
    { name: 'python-bin', aliases: ['py-bin'], argument: 'required', kind: 'path', help: 'Python interpreter that runs the bridge (tsuwsgi addition)', defaultValue: 'python3' },
    { name: 'pyargv', argument: 'required', kind: 'string', help: 'value of sys.argv (split on spaces)' },
    { name: 'import', aliases: ['pyimport', 'py-import', 'python-import'], argument: 'required', kind: 'string', multiple: true, help: 'import a module before loading the apps' },
  ],
  bridge: {
    runtime: 'Python',
    // bridges/python/loops.py: the async engines on asyncio, gevent's hub; docs/loop-engines.md.
    loopEngines: ['simple', 'async', 'asyncio', 'gevent'],
    suspendEngines: ['greenlet'],
    apps(options): AppSpec[] {
      const callable = options.string('callable') ?? 'application';
      const apps: AppSpec[] = [];
      const file = options.string('wsgi-file');
      if (file) apps.push({ mountpoint: '', load: { kind: 'wsgi-file', target: path.resolve(file), callable }, origin: `--wsgi-file ${file}` });
      const mod = options.string('module');
      if (mod) apps.push({ mountpoint: '', load: { kind: 'module', target: mod, callable }, origin: `--module ${mod}` });
      return apps;
    },
    claimMount(p: string, context?: { bare: boolean }) {
      if (looksLikePythonApp(p)) return { kind: 'wsgi-file', target: path.resolve(p), callable: 'application' };
      // A bare argument is a module only as module:callable (uWSGI's magic).
      if (context?.bare && !p.includes(':')) return null;
      // module or module:callable (no slash, no other known extension)
      if (/^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*(\(\))?)?$/.test(p) && !/\.(pl|psgi|ru|rb|lua|ws|php)$/.test(p)) {
        return { kind: 'module', target: p, callable: 'application' };
      }
      return null;
    },
    command(options) {
      return {
        file: pythonInterpreter(options),
        args: [BRIDGE_SCRIPT],
        // Unbuffered: what the app prints reaches the log in order with the server's lines.
        env: { PYTHONUNBUFFERED: '1' },
      };
    },
    settings(options) {
      return {
        pythonpath: options.all('pythonpath').map((p) => path.resolve(p)),
        pyargv: options.string('pyargv') ?? null,
        imports: options.all('import'),
        callable: options.string('callable') ?? 'application',
      };
    },
  },
});
