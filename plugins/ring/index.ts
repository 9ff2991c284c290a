/**
 * The ring plugin: Clojure Ring handlers (`--ring-app namespace:function`, after the
 * `--ring-load` scripts), served by the jvm plugin's Java bridge as its modifier2 1 request
 * handler, as in uWSGI. It owns only its options; loading it loads jvm. Clojure comes from
 * the class path (--jvm-classpath); tsuwsgi adds Debian's /usr/share/java/clojure.jar at the
 * end when it exists. See docs/jvm.md.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';

export default definePlugin({
  name: 'ring',
  apiVersion: PLUGIN_API_VERSION,
  description: 'Clojure Ring apps on the jvm plugin (modifier1 8, modifier2 1)',
  requires: ['jvm'],
  options: [
    {
      name: 'ring-load',
      aliases: ['clojure-load'],
      argument: 'required',
      kind: 'path',
      multiple: true,
      metavar: 'FILE.clj',
      help: 'load the specified clojure script (a file, else a name on the class path)',
    },
    { name: 'ring-app', argument: 'required', kind: 'string', metavar: 'NS:FUNCTION', help: 'map the specified ring application (syntax namespace:function)' },
  ],
});
