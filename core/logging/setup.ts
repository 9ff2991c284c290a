/**
 * From the options to the master's log: open the default target (--logto FILE or
 * HOST:PORT, --logto2, or stderr), the --logger / --req-logger targets through the logger
 * plugins, compile routes, drains, filters and encoder chains, and decide the mode:
 *
 * - direct (nothing but --logto / stderr): children inherit the log descriptor and write
 *   to it themselves — no copy through the master;
 * - log master (--log-master, or anything that needs a line-by-line decision: loggers,
 *   routes, encoders, drains, filters, --log-json, --log-maxsize, --touch-log*, --log-reopen,
 *   a UDP --logto): children's stdout/stderr are pipes the master reads, so what apps print is
 *   routed and encoded like every other line.
 *
 * Every failure is a LoggerError saying what to fix; targets opened before it are closed,
 * so a bad --log-route never leaves a pipe command running.
 */
import { LoggerError } from '../errors.ts';
import type { ResolvedOptions } from '../options/resolved.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { LogEncoder, LoggerContext, LogTarget } from './api.ts';
import { CORE_ENCODERS, parseEncoderSpec, type EncoderSpec } from './encoders.ts';
import { LogRouter, type LogRoute, type RoutedLogger } from './router.ts';
import { createServerLog, logDatePrefix, type LogSink, type ServerLog } from './server-log.ts';
import { FdTarget } from './targets/fd.ts';
import { FileTarget } from './targets/file.ts';
import { parseUdpAddress, resolveUdp, UdpTarget } from './targets/udp.ts';

/**
 * Options whose presence turns log-master mode on. --log-reopen is one: a reopened file is
 * the master's new descriptor, and a core worker child that inherited the old one would go on
 * writing request lines into the renamed file (uWSGI reopens on reload by re-exec, so every
 * process writes to the new file).
 */
const MASTER_TRIGGERS = [
  'log-master', 'logger', 'req-logger', 'log-route', 'log-req-route', 'log-encoder', 'log-req-encoder',
  'log-drain', 'log-filter', 'log-json', 'log-syslog', 'log-socket', 'touch-logrotate', 'touch-logreopen',
  'log-reopen',
];

export interface MasterLog extends ServerLog {
  /** Core worker children must pipe their output to the master (log-master mode). */
  readonly logMaster: boolean;
}

/** `[ID ]PLUGIN[:ARGS]` as uWSGI splits it: the ID must be alphanumeric, else the whole text is the logger spec. */
export function parseLoggerSpec(text: string): { id: string | null; name: string; args: string | null } {
  let id: string | null = null;
  // Leading blanks only: trailing ones may be part of ARGS (a socket logger's prefix).
  let rest = text.replace(/^\s+/, '');
  const space = rest.indexOf(' ');
  if (space > 0 && /^[A-Za-z0-9]+$/.test(rest.slice(0, space))) {
    id = rest.slice(0, space);
    rest = rest.slice(space + 1).replace(/^\s+/, '');
  }
  const colon = rest.indexOf(':');
  return { id, name: colon < 0 ? rest : rest.slice(0, colon), args: colon < 0 ? null : rest.slice(colon + 1) };
}

function compileRegex(pattern: string, option: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw new LoggerError(`--${option} "${pattern}": invalid regular expression (${(err as Error).message}); fix the pattern (JavaScript syntax, close to PCRE)`);
  }
}

function parseMode(text: string | undefined): number {
  if (text === undefined || text === '') return 0o640;
  if (!/^[0-7]{3,4}$/.test(text)) throw new LoggerError(`--logfile-chmod ${text}: use an octal mode such as 640`);
  return Number.parseInt(text, 8);
}

function bytesOption(options: ResolvedOptions, name: string, def: number): number {
  const n = options.int(name, def);
  if (n < 0) throw new LoggerError(`--${name} must not be negative`);
  return n;
}

/** Whether --logto's value names a UDP address rather than a file (uWSGI: it contains ":"). */
function isUdpLogto(value: string): boolean {
  return value.includes(':') && parseUdpAddress(value) !== null;
}

export async function createMasterLog(options: ResolvedOptions, registry: PluginRegistry): Promise<MasterLog> {
  const opened: LogTarget[] = [];
  const notices: string[] = [];
  let router: LogRouter | null = null;
  const warn = (message: string): void => {
    // Before the router exists, messages wait; after, they are notices to every target.
    if (router) router.notice(message);
    else notices.push(message);
  };
  const ctx: LoggerContext = {
    bufferBytes: bytesOption(options, 'log-buffer', 1048576),
    fileMode: parseMode(options.string('logfile-chmod')),
    truncate: options.flag('log-truncate'),
    warn,
    options,
  };
  try {
    const logto = options.string('logto');
    const logto2 = options.string('logto2');
    const maxSize = bytesOption(options, 'log-maxsize', 0);
    const logMaster = MASTER_TRIGGERS.some((k) => options.has(k)) || maxSize > 0 || (logto !== undefined && isUdpLogto(logto));

    // --- the default target ----------------------------------------------------------------
    const openDefault = async (value: string, option: string): Promise<LogTarget> => {
      if (isUdpLogto(value)) {
        const addr = parseUdpAddress(value)!;
        const r = await resolveUdp(addr, `--${option} ${value}`);
        return new UdpTarget({ description: value, limit: ctx.bufferBytes, address: r.address, family: r.family, port: addr.port });
      }
      return new FileTarget({ path: value, mode: ctx.fileMode, truncate: ctx.truncate, limit: ctx.bufferBytes, warn, maxSize, backupName: options.string('log-backupname'), description: value });
    };
    let defaultTarget: LogTarget = logto !== undefined ? await openDefault(logto, 'logto') : new FdTarget(2, 'stderr', ctx.bufferBytes, warn);
    opened.push(defaultTarget);
    if (maxSize > 0 && !(defaultTarget instanceof FileTarget)) {
      throw new LoggerError('--log-maxsize rotates the --logto file: add --logto FILE (or use --logger file:logfile=PATH,maxsize=BYTES)');
    }

    // --- loggers ------------------------------------------------------------------------------
    const openLogger = async (text: string, option: string): Promise<{ id: string | null; target: LogTarget }> => {
      const spec = parseLoggerSpec(text);
      const found = registry.logger(spec.name);
      if (!found) {
        const plugin = registry.unloadedLoggerPlugin(spec.name);
        if (plugin) throw new LoggerError(`--${option} ${text}: logger "${spec.name}" is provided by plugin "${plugin}": load it with --plugins ${plugin}`);
        const known = registry.loggers().map((l) => l.logger.name).sort().join(', ');
        throw new LoggerError(`--${option} ${text}: unable to find logger "${spec.name}"; available loggers: ${known} (a logger id must be alphanumeric: "ID NAME:ARGS")`);
      }
      if (found.logger.needsArgs && !spec.args) throw new LoggerError(`--${option} ${text}: logger "${spec.name}" needs arguments (${found.logger.description})`);
      let target: LogTarget;
      try {
        target = await found.logger.open(spec.args, ctx);
      } catch (err) {
        if (err instanceof LoggerError) throw err;
        throw new LoggerError(`--${option} ${text}: ${(err as Error).message}`, err);
      }
      opened.push(target);
      return { id: spec.id, target };
    };
    const loggerTexts = [
      ...options.all('logger'),
      ...options.all('log-syslog').map((v) => (v === '' || v === 'true' ? 'syslog' : `syslog:${v}`)),
      ...options.all('log-socket').map((v) => `socket:${v}`),
    ];
    const general: Array<{ id: string | null; target: LogTarget }> = [];
    for (const t of loggerTexts) general.push(await openLogger(t, 'logger'));
    const requests: Array<{ id: string | null; target: LogTarget }> = [];
    for (const t of options.all('req-logger')) requests.push(await openLogger(t, 'req-logger'));
    for (const list of [general, requests]) {
      const ids = list.map((l) => l.id).filter((x): x is string => x !== null);
      const dup = ids.find((id, i) => ids.indexOf(id) !== i);
      if (dup) throw new LoggerError(`two loggers are named "${dup}": give each --logger/--req-logger id a different name`);
    }

    // --- encoders ----------------------------------------------------------------------------
    const compileEncoders = (option: string): Array<{ spec: EncoderSpec; fn: LogEncoder }> =>
      options.all(option).map((text) => {
        const spec = parseEncoderSpec(text);
        const def = CORE_ENCODERS.find((e) => e.name === spec.name) ?? registry.logEncoder(spec.name);
        if (!def) {
          const plugin = registry.unloadedLogEncoderPlugin(spec.name);
          if (plugin) throw new LoggerError(`--${option} ${text}: log encoder "${spec.name}" is provided by plugin "${plugin}": load it with --plugins ${plugin}`);
          throw new LoggerError(`--${option} ${text}: log encoder "${spec.name}" not found; available: ${CORE_ENCODERS.map((e) => e.name).join(', ')} (msgpack with the msgpack plugin)`);
        }
        try {
          return { spec, fn: def.create(spec.args) };
        } catch (err) {
          throw new LoggerError(`--${option} ${text}: ${(err as Error).message}`, err);
        }
      });
    const encoders = compileEncoders('log-encoder');
    const reqEncoders = compileEncoders('log-req-encoder');
    const chainFor = (list: typeof encoders, id: string | null): LogEncoder[] =>
      list.filter((e) => e.spec.loggerId === null || e.spec.loggerId === id).map((e) => e.fn);
    for (const [list, loggers, option] of [[encoders, general, 'log-encoder'], [reqEncoders, requests, 'log-req-encoder']] as const) {
      for (const e of list) {
        if (e.spec.loggerId !== null && !loggers.some((l) => l.id === e.spec.loggerId)) {
          throw new LoggerError(`--${option} ${e.spec.text}: no ${option === 'log-encoder' ? '--logger' : '--req-logger'} is named "${e.spec.loggerId}"`);
        }
      }
    }
    const routedGeneral: RoutedLogger[] = general.map((l) => ({ id: l.id, target: l.target, encoders: chainFor(encoders, l.id) }));
    // Request lines without req-loggers take the general path, with the general encoders.
    const routedRequests: RoutedLogger[] = requests.map((l) => ({ id: l.id, target: l.target, encoders: chainFor(reqEncoders, l.id) }));

    // --- routes, drains, filters -----------------------------------------------------------
    const compileRoutes = (option: string, loggers: RoutedLogger[], kind: string): LogRoute[] =>
      options.all(option).map((text) => {
        const space = text.indexOf(' ');
        if (space <= 0) throw new LoggerError(`--${option} "${text}": use ID REGEX, e.g. --${option} "errors  5\\d\\d "`);
        const id = text.slice(0, space);
        const logger = loggers.find((l) => l.id === id);
        if (!logger) throw new LoggerError(`--${option} ${text}: no ${kind} is named "${id}" (name one with --${kind} ${id} PLUGIN:ARGS)`);
        return { re: compileRegex(text.slice(space + 1), option), logger };
      });

    router = new LogRouter({
      defaultTarget,
      defaultEncoders: chainFor(encoders, null),
      loggers: routedGeneral,
      reqLoggers: routedRequests,
      routes: compileRoutes('log-route', routedGeneral, 'logger'),
      reqRoutes: compileRoutes('log-req-route', routedRequests, 'req-logger'),
      drains: options.all('log-drain').map((p) => compileRegex(p, 'log-drain')),
      filters: options.all('log-filter').map((p) => compileRegex(p, 'log-filter')),
      touchRotate: options.all('touch-logrotate'),
      touchReopen: options.all('touch-logreopen'),
    });
    const r = router;
    if (reqEncoders.length && requests.length === 0) notices.push('*** --log-req-encoder has no effect without a --req-logger: request lines take the general path and its --log-encoder chain ***');

    const sink: LogSink = {
      server: (line) => r.log(line),
      request: (line) => r.request(line),
      requestWith: (w, x) => r.requestWith(w, x),
      flushSync: () => r.flushSync(),
      reopen: () => r.reopen(),
      close: () => r.close(),
    };
    const base = createServerLog({
      sink,
      datePrefix: logDatePrefix(options.has('log-date') ? options.string('log-date') : undefined),
      json: options.flag('log-json'),
      inheritFd: null,
      maxLine: bytesOption(options, 'log-master-bufsize', 8192) || 8192,
    });
    let inheritFd: number | null = logMaster ? null : (defaultTarget as FdTarget).descriptor;
    const log: MasterLog = {
      ...base,
      logMaster,
      get inheritFd() {
        return inheritFd;
      },
      openLate: logto2 === undefined
        ? undefined
        : () => {
            // --logto2: opened after privileges were dropped, so the file belongs to the new user.
            const t = new FileTarget({ path: logto2, mode: ctx.fileMode, truncate: ctx.truncate, limit: ctx.bufferBytes, warn, maxSize, backupName: options.string('log-backupname'), description: logto2 });
            const old = defaultTarget;
            r.setDefaultTarget(t);
            defaultTarget = t;
            if (!logMaster) inheritFd = t.descriptor;
            void old.close();
          },
    };
    for (const n of notices) log.warn(n);
    return log;
  } catch (err) {
    await Promise.all(opened.map((t) => t.close().catch(() => {})));
    throw err;
  }
}

/** `--logger-list`: the loggers of loaded plugins and every log encoder. */
export function formatLoggerList(registry: PluginRegistry): string {
  const lines = ['*** uWSGI loaded loggers ***'];
  for (const { logger, plugin } of registry.loggers()) lines.push(`${logger.name}  (plugin ${plugin}) ${logger.description}`);
  lines.push('*** end of the uWSGI loaded loggers list ***', '*** log encoders ***');
  for (const e of CORE_ENCODERS) lines.push(`${e.name}  (core) ${e.description}`);
  for (const d of registry.plugins()) for (const e of d.logEncoders ?? []) lines.push(`${e.name}  (plugin ${d.name}) ${e.description}`);
  return lines.join('\n') + '\n';
}
