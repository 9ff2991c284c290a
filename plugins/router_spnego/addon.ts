/**
 * The GSS-API addon (native/spnego.c) as the router_spnego plugin uses it: loaded once per
 * process, on first use (the catalog imports every plugin, so loading it at import time would
 * make every tsuwsgi need libgssapi_krb5), and a Promise per token.
 *
 * `npm ci` builds it (scripts/build-native.ts → native/build.ts); a build (uwsgiconfig.ts)
 * compiles it beside the plugin at the same relative place.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { TsuwsgiError } from '../../core/errors.ts';

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

/** The addon is missing or unusable: the plugin refuses to load. */
export class SpnegoAddonError extends TsuwsgiError {
  constructor(message: string, cause?: unknown) {
    super('TSUWSGI_E_SPNEGO_ADDON', message, { cause });
  }
}

let addon: SpnegoAddon | null = null;

/** Load the addon (once); throws a SpnegoAddonError that says how to get it. */
export function loadSpnegoAddon(): SpnegoAddon {
  if (addon) return addon;
  const how = 'install MIT Kerberos\' GSS-API headers (Debian: apt-get install libkrb5-dev) and re-run "npm ci" (or "npx tsx scripts/build-native.ts")';
  if (process.platform !== 'linux') throw new SpnegoAddonError(`[TSUWSGI_E_SPNEGO_ADDON] the router_spnego plugin's GSS-API addon is built on Linux only (this is ${process.platform})`);
  const mod = { exports: {} as Partial<SpnegoAddon> };
  try {
    process.dlopen(mod, SPNEGO_ADDON_PATH, os.constants.dlopen.RTLD_NOW);
  } catch (err) {
    const e = err as Error;
    const what = /cannot open shared object file|ENOENT/.test(e.message) && e.message.includes('tsuwsgi_spnego') ? 'is not built' : `cannot be loaded (${e.message})`;
    throw new SpnegoAddonError(`[TSUWSGI_E_SPNEGO_ADDON] the router_spnego plugin's GSS-API addon ${SPNEGO_ADDON_PATH} ${what}: ${how}`, err);
  }
  if (typeof mod.exports.accept !== 'function') {
    throw new SpnegoAddonError(`[TSUWSGI_E_SPNEGO_ADDON] ${SPNEGO_ADDON_PATH} is not the router_spnego addon of this tsuwsgi: ${how}`);
  }
  addon = mod.exports as SpnegoAddon;
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
