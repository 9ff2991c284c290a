/**
 * Build the router_spnego plugin's addon (spnego.c: MIT krb5's GSS-API through Node-API, see
 * there for why) into build/tsuwsgi_spnego.node, where plugins/router_spnego/addon.ts loads it.
 * `npm ci` builds it through scripts/build-native.ts, which never fails the install: without
 * the Kerberos headers only the router_spnego plugin is unavailable, and it says so when loaded
 * (install libkrb5-dev, re-run npm ci). uwsgiconfig.ts builds of the router_spnego plugin
 * compile it too, and fail without it (buildsys/assets.ts).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNodeAddon } from '../../../buildsys/compile-c.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Where the checkout's addon goes (and where ../addon.ts loads it from). */
export const SPNEGO_ADDON_BUILD_PATH = path.join(HERE, 'build', 'tsuwsgi_spnego.node');

export function buildSpnegoAddon(out: string = SPNEGO_ADDON_BUILD_PATH): void {
  buildNodeAddon(path.join(HERE, 'spnego.c'), out, 'spnego addon', 'TSUWSGI_E_SPNEGO_BUILD', { module: 'krb5-gssapi', debian: 'libkrb5-dev' });
}
