/**
 * `UWSGI_*` environment variables as options (spec/core.md §4.3): `UWSGI_HTTP_SOCKET=:9090`
 * is `http-socket = :9090` — the name lower-cased with `_` → `-`, the value verbatim (no
 * magic variables). They are read after the embedded config and before the command line.
 */

/** Variables uWSGI uses for its own bookkeeping; never options. */
export const RESERVED_ENV_NAMES: ReadonlySet<string> = new Set([
  'UWSGI_RELOADS',
  'UWSGI_VASSALS_DIR',
  'UWSGI_EMPEROR_FD',
  'UWSGI_BROODLORD_NUM',
  'UWSGI_EMPEROR_FD_CONFIG',
  'UWSGI_EMPEROR_PROXY',
  'UWSGI_JAIL_PID',
  'UWSGI_ORIGINAL_PROC_NAME',
]);

export interface EnvOption {
  key: string;
  value: string;
  /** "env UWSGI_HTTP_SOCKET" */
  origin: string;
}

/** `HTTP_SOCKET` → `http-socket`. */
export function envNameToOption(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

/** The options given through the environment, in the environment's order. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): EnvOption[] {
  const out: EnvOption[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith('UWSGI_') || RESERVED_ENV_NAMES.has(name)) continue;
    const key = envNameToOption(name.slice('UWSGI_'.length));
    if (key === '') continue;
    out.push({ key, value, origin: `env ${name}` });
  }
  return out;
}
