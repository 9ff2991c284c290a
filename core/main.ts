/**
 * The command-line entry: parse the configuration, answer introspection options, then run
 * the server (core/master/master.ts). Errors end the process with their code and a message
 * that says what to do; they never print a Node stack trace.
 */
import { loadConfig } from './config/loader.ts';
import { formatShowConfig, getValues } from './config/introspect.ts';
import { TsuwsgiError } from './errors.ts';
import { createServerLog, type ServerLog } from './logging/server-log.ts';
import { runCoreWorkerChild, runServer } from './master/master.ts';
import { CORE_OPTIONS } from './options/core-options.ts';
import { formatHelp } from './options/help.ts';
import { ResolvedOptions } from './options/resolved.ts';
import { defaultPluginSource } from './plugins/catalog.ts';
import { PluginRegistry } from './plugins/registry.ts';
import { UWSGI_COMPAT_VERSION } from './version.ts';
import { ctime } from './logging/request-log.ts';
import { strftime } from './logging/strftime.ts';

function fail(err: unknown, log?: ServerLog): never {
  if (err instanceof TsuwsgiError) {
    const line = `tsuwsgi: error ${err.code}: ${err.message}`;
    if (log) {
      log.error(line);
      log.flushSync();
    } else process.stderr.write(line + '\n');
    process.exit(err.exitCode);
  }
  process.stderr.write(`tsuwsgi: internal error (please report it): ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
}

/** --log-date: ctime() + " - " without a value (uWSGI), else strftime(VALUE) + " - ". */
function logDatePrefix(options: ResolvedOptions): ((now: Date) => string) | undefined {
  if (!options.has('log-date')) return undefined;
  const format = options.string('log-date') ?? '';
  if (format === '' || format === 'true') return (now) => `${ctime(now.getTime())} - `;
  return (now) => `${strftime(format, now)} - `;
}

async function main(): Promise<void> {
  if (process.env.TSUWSGI_ROLE === 'core-worker') {
    runCoreWorkerChild(createServerLog());
    return;
  }
  const registry = new PluginRegistry(CORE_OPTIONS, defaultPluginSource());
  // The same sources are read again on SIGHUP (uWSGI re-reads its config on a reload).
  const argv = process.argv.slice(2);
  const startCwd = process.cwd();
  const readConfig = (): ResolvedOptions =>
    new ResolvedOptions(
      loadConfig({ argv, env: process.env, cwd: startCwd, lookup: registry, log: (line) => process.stderr.write(line + '\n') }).entries,
    );
  let options: ResolvedOptions;
  try {
    options = readConfig();
  } catch (err) {
    fail(err);
  }

  if (options.flag('version')) {
    process.stdout.write(UWSGI_COMPAT_VERSION + '\n');
    process.exit(0);
  }
  if (options.flag('help')) {
    process.stdout.write(formatHelp(registry.allOptions(), (o) => o === 'core' || registry.isLoaded(o)));
    process.exit(0);
  }
  if (options.has('get')) {
    for (const key of options.all('get')) for (const v of getValues(options.entries, key)) process.stdout.write(v + '\n');
    process.exit(0);
  }
  if (options.flag('plugins-list')) {
    for (const name of registry.availableNames().sort()) process.stdout.write(`${name}${registry.isLoaded(name) ? ' (loaded)' : ''}\n`);
    process.exit(0);
  }

  const log = createServerLog({ file: options.string('logto'), datePrefix: logDatePrefix(options) });
  for (const msg of options.all('print')) log.info(msg);
  if (options.flag('show-config')) log.info(formatShowConfig(options.entries).replace(/\n$/, ''));
  if (options.flag('no-server')) {
    log.info('no-server mode requested. Goodbye.');
    log.flushSync();
    process.exit(0);
  }
  try {
    const { done } = await runServer(options, registry, log, readConfig);
    const code = await done;
    log.flushSync();
    process.exit(code);
  } catch (err) {
    fail(err, log);
  }
}

void main();
