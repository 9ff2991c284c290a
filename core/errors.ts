/**
 * Every error a user can meet carries a stable code (TSUWSGI_E_*) and a message that
 * says what to do. One class per condition, in the style of undici's errors: callers
 * test `err.code`, never the message text.
 */
/**
 * A plugin built as its own file (uwsgiconfig.ts --plugin) carries its own copy of this
 * module, so `err instanceof TsuwsgiError` in the core must not depend on the class object:
 * every TsuwsgiError is branded with a process-wide symbol, and the base class tests it.
 */
const BRAND = Symbol.for('tsuwsgi.error');

export class TsuwsgiError extends Error {
  readonly code: string;
  /** Process exit status to use when this error ends the server (uWSGI uses 1 for config errors). */
  readonly exitCode: number;

  constructor(code: string, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TsuwsgiError';
    this.code = code;
    this.exitCode = options?.exitCode ?? 1;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses keep the ordinary prototype test; only the base class goes by the brand.
    if (this !== TsuwsgiError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** A command-line or config option that no plugin (loaded or available) defines. */
export class UnknownOptionError extends TsuwsgiError {
  constructor(message: string) {
    super('TSUWSGI_E_UNKNOWN_OPTION', message);
  }
}

/** An option value that cannot be used (bad number, bad address, missing argument). */
export class InvalidOptionError extends TsuwsgiError {
  constructor(message: string) {
    super('TSUWSGI_E_INVALID_OPTION', message);
  }
}

/** A config file that cannot be read or parsed. */
export class ConfigError extends TsuwsgiError {
  constructor(message: string, cause?: unknown) {
    super('TSUWSGI_E_CONFIG', message, { cause });
  }
}

/** A plugin that cannot be found, loaded, or whose descriptor is invalid. */
export class PluginError extends TsuwsgiError {
  constructor(message: string, cause?: unknown) {
    super('TSUWSGI_E_PLUGIN', message, { cause });
  }
}

/** An error thrown from inside a plugin hook, wrapped with the plugin and hook name (rollup style). */
export class PluginHookError extends TsuwsgiError {
  readonly plugin: string;
  readonly hook: string;
  constructor(plugin: string, hook: string, cause: unknown) {
    const inner = cause instanceof Error ? cause.message : String(cause);
    super('TSUWSGI_E_PLUGIN_HOOK', `plugin "${plugin}" failed in hook ${hook}: ${inner}`, { cause });
    this.plugin = plugin;
    this.hook = hook;
  }
}

/** A socket that cannot be bound (address in use, permission denied, bad path). */
export class BindError extends TsuwsgiError {
  constructor(message: string, cause?: unknown) {
    super('TSUWSGI_E_BIND', message, { cause });
  }
}

/**
 * An application that could not be loaded at startup. uWSGI exits with status 22
 * (UWSGI_FAILED_APP_CODE) in this case; tsuwsgi does the same, and always fails fast.
 */
export class AppLoadError extends TsuwsgiError {
  constructor(message: string) {
    super('TSUWSGI_E_APP_LOAD', message, { exitCode: 22 });
  }
}

/** A bridge process that could not be spawned or did not become ready in time. */
export class BridgeSpawnError extends TsuwsgiError {
  constructor(message: string, cause?: unknown) {
    super('TSUWSGI_E_BRIDGE_SPAWN', message, { cause, exitCode: 22 });
  }
}

/** Malformed bytes on a wire (uwsgi packet, HTTP response from a bridge). */
export class ProtocolError extends TsuwsgiError {
  constructor(message: string) {
    super('TSUWSGI_E_PROTOCOL', message);
  }
}

/** A logger, log route or log encoder that cannot be set up (unknown name, bad argument, unreachable target). */
export class LoggerError extends TsuwsgiError {
  constructor(message: string, cause?: unknown) {
    super('TSUWSGI_E_LOGGER', message, { cause });
  }
}

/**
 * A loop engine that cannot be used: unknown name, too few cores, combined with --threads,
 * not runnable by a plugin's bridge, or missing from the bridge's interpreter (gevent).
 */
export class LoopEngineError extends TsuwsgiError {
  constructor(message: string) {
    super('TSUWSGI_E_LOOP_ENGINE', message);
  }
}

/**
 * An internal-routing rule that cannot be used (unknown action or condition, missing colon,
 * bad regexp, bad argument): uWSGI refuses such a config at start-up, and so do we.
 */
export class RoutingError extends TsuwsgiError {
  constructor(message: string, cause?: unknown) {
    super('TSUWSGI_E_ROUTING', message, { cause });
  }
}
