/**
 * The GSS-API addon (native/spnego.c) as the router_spnego plugin uses it: loaded once per
 * process, on first use (the catalog imports every plugin, so loading it at import time would
 * make every tsuwsgi need libgssapi_krb5), and a Promise per token.
 *
 * `npm ci` builds it (scripts/build-native.ts → native/build.ts); a build (uwsgiconfig.ts)
 * compiles it beside the plugin at the same relative place.
 */
import { fileURLToPath } from 'node:url';
import { loadAddon } from '../../core/native/load-addon.ts';

/** What native/spnego.c exports. */
interface SpnegoAddon {
  accept(service: string, token: Buffer, cb: (user: string | null, output: Buffer | null, messages: string) => void): void;
}

/**
 * One accepted (or refused) token: the client principal (a latin1 byte string, realm included)
 * and the token to send back for mutual authentication, or null; `messages` are GSS-API's
 * reports, one per line ("gss_accept_sec_context() error (major): …").
 */
export type AcceptResult = { ok: true; user: string; output: Buffer | null; messages: string } | { ok: false; messages: string };

export const SPNEGO_ADDON_PATH = fileURLToPath(new URL('./native/build/tsuwsgi_spnego.node', import.meta.url));

let addon: SpnegoAddon | null = null;

/** Load the addon (once); throws a TsuwsgiError (TSUWSGI_E_SPNEGO_ADDON) that says how to get it. */
export function loadSpnegoAddon(): SpnegoAddon {
  addon ??= loadAddon<SpnegoAddon>({ file: SPNEGO_ADDON_PATH, exports: ['accept'], what: "the router_spnego plugin's GSS-API addon", code: 'TSUWSGI_E_SPNEGO_ADDON', how: 'install MIT Kerberos\' GSS-API headers (Debian: apt-get install libkrb5-dev) and re-run "npm ci" (or "npx tsx scripts/build-native.ts")' });
  return addon;
}

/** Accept `token` as the host-based service `service` ("HTTP", "HTTP@host"), in libuv's thread pool. */
export function spnegoAccept(service: string, token: Buffer): Promise<AcceptResult> {
  const a = loadSpnegoAddon();
  return new Promise((resolve) => {
    a.accept(service, token, (user, output, messages) => {
      resolve(user === null ? { ok: false, messages } : { ok: true, user, output, messages });
    });
  });
}
