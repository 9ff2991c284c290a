/**
 * The jwsgi plugin: JWSGI apps (`--jwsgi Class:method`), served by the jvm plugin's Java
 * bridge as its modifier2 0 request handler, as in uWSGI (where jwsgi registers itself in
 * the jvm plugin). It owns only its option; loading it loads jvm (`--plugins jvm,jwsgi`, as
 * uWSGI spells it, or just `--plugins jwsgi`). See docs/jvm.md.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';

export default definePlugin({
  name: 'jwsgi',
  apiVersion: PLUGIN_API_VERSION,
  description: 'JWSGI apps (Java, Groovy, Scala…) on the jvm plugin (modifier1 8, modifier2 0)',
  requires: ['jvm'],
  options: [
    {
      name: 'jwsgi',
      argument: 'required',
      kind: 'string',
      metavar: 'CLASS:METHOD',
      help: 'load the specified JWSGI application (syntax class:method; the method defaults to application)',
    },
  ],
});
