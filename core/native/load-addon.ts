/**
 * Loading a plugin's Node-API addon (plugins/xslt, plugins/router_spnego): once per process,
 * on first use (the plugin catalog imports every plugin, so loading at import time would make
 * every tsuwsgi need the addon's library), with one error that says how to get it.
 */
import os from 'node:os';
import { TsuwsgiError } from '../errors.ts';

export interface AddonSpec {
  /** The .node file. */
  file: string;
  /** Functions the addon must export (a stale or foreign file is refused). */
  exports: readonly string[];
  /** What it is, for messages: "the xslt plugin's libxslt addon". */
  what: string;
  /** The stable error code ("TSUWSGI_E_XSLT_ADDON"). */
  code: string;
  /** What to do without it: "install libxslt (…) and re-run npm ci". */
  how: string;
}

/** Load `spec.file`; throws a TsuwsgiError with `spec.code` saying what to do when it is missing or unusable. */
export function loadAddon<T>(spec: AddonSpec): T {
  const fail = (what: string, cause?: unknown): never => {
    throw new TsuwsgiError(spec.code, `[${spec.code}] ${spec.what} ${what}: ${spec.how}`, { cause });
  };
  if (process.platform !== 'linux') fail(`is built on Linux only (this is ${process.platform})`);
  const mod = { exports: {} as Record<string, unknown> };
  try {
    process.dlopen(mod, spec.file, os.constants.dlopen.RTLD_NOW);
  } catch (err) {
    const message = (err as Error).message;
    const missing = /cannot open shared object file|ENOENT/.test(message) && message.includes(spec.file.split('/').pop()!);
    fail(missing ? `${spec.file} is not built` : `${spec.file} cannot be loaded (${message})`, err);
  }
  for (const name of spec.exports) if (typeof mod.exports[name] !== 'function') fail(`${spec.file} is not the addon of this tsuwsgi`);
  return mod.exports as T;
}
