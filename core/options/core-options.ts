/**
 * Options owned by the core (not by any plugin). Names, aliases and short letters are
 * uWSGI's (spec/core.md Appendix A); `accepted` marks options kept for compatibility whose
 * behaviour tsuwsgi always has (documented in docs/options.md).
 */
import { LOADER_OPTION_SPECS } from '../config/builtin-options.ts';
import type { OptionSpec } from './spec.ts';

const SERVER_OPTIONS: readonly OptionSpec[] = [
  // --- sockets and protocols -------------------------------------------------------------
  { name: 'socket', aliases: ['uwsgi-socket'], short: 's', argument: 'required', kind: 'address', multiple: true, metavar: 'ADDR', help: 'bind to the specified socket with the default protocol (uwsgi unless --protocol says otherwise)' },
  { name: 'http-socket', argument: 'required', kind: 'address', multiple: true, metavar: 'ADDR', help: 'bind to the specified address and speak HTTP/1.1 (keep-alive, pipelining, chunked) directly' },
  { name: 'protocol', aliases: ['socket-protocol'], argument: 'required', kind: 'string', metavar: 'uwsgi|http', help: 'the protocol of sockets declared with --socket', defaultValue: 'uwsgi' },
  { name: 'http-socket-modifier1', argument: 'required', kind: 'number', help: 'force modifier1 on HTTP sockets (they carry no uwsgi header)', defaultValue: '0' },
  { name: 'http-socket-modifier2', argument: 'required', kind: 'number', help: 'force modifier2 on HTTP sockets', defaultValue: '0' },
  { name: 'listen', short: 'l', argument: 'required', kind: 'number', help: 'socket listen queue size', defaultValue: '100' },
  { name: 'buffer-size', short: 'b', argument: 'required', kind: 'number', help: 'largest request header block (uwsgi vars or HTTP headers) accepted, in bytes; larger requests get 431 and a log line', defaultValue: '65535' },
  { name: 'max-vars', short: 'v', argument: 'required', kind: 'number', help: 'largest number of vars in a uwsgi packet', defaultValue: '64' },
  { name: 'socket-timeout', short: 'z', argument: 'required', kind: 'number', help: 'seconds a client may take to send the request header block', defaultValue: '4' },
  { name: 'limit-post', argument: 'required', kind: 'number', help: 'refuse request bodies larger than this many bytes (413 on HTTP sockets)' },
  { name: 'http-keepalive', argument: 'optional', kind: 'number', help: 'seconds an idle HTTP keep-alive connection stays open', defaultValue: '5' },
  { name: 'chmod-socket', short: 'C', argument: 'optional', kind: 'string', help: 'chmod unix sockets (default 666 when given without a value)' },

  // --- processes --------------------------------------------------------------------------
  { name: 'master', short: 'M', argument: 'none', kind: 'flag', help: 'run a master process that keeps the sockets open and respawns what dies' },
  { name: 'processes', aliases: ['workers'], short: 'p', argument: 'required', kind: 'number', help: 'number of app worker (bridge) processes per app pool', defaultValue: '1' },
  { name: 'threads', argument: 'required', kind: 'number', help: 'threads per app worker (each serves one request at a time)', defaultValue: '1' },
  { name: 'enable-threads', short: 'T', argument: 'none', kind: 'flag', help: 'allow app threads', accepted: 'app threads always work in tsuwsgi bridges' },
  { name: 'core-workers', argument: 'required', kind: 'number', help: 'number of Node processes running the request pipeline (more than 1 implies --master)', defaultValue: '1' },
  { name: 'lazy-apps', argument: 'none', kind: 'flag', help: 'load apps in each worker', accepted: 'every bridge loads its apps itself: tsuwsgi is always lazy-apps' },
  { name: 'lazy', argument: 'none', kind: 'flag', help: 'load apps in workers', accepted: 'every bridge loads its apps itself' },
  { name: 'need-app', argument: 'none', kind: 'flag', help: 'exit if no app can be loaded', accepted: 'tsuwsgi always fails fast when an app cannot load' },
  { name: 'harakiri', short: 't', argument: 'required', kind: 'number', help: 'seconds a request may run; then the client gets 504, the stack is dumped and the worker replaced' },
  { name: 'worker-reload-mercy', argument: 'required', kind: 'number', help: 'seconds a worker may take to finish its requests on reload/stop before it is killed', defaultValue: '60' },
  { name: 'die-on-term', argument: 'none', kind: 'flag', help: 'exit on SIGTERM', accepted: 'SIGTERM always stops gracefully in tsuwsgi' },
  { name: 'pidfile', argument: 'required', kind: 'path', help: 'write the master (or only) pid to this file' },
  { name: 'chdir', argument: 'required', kind: 'path', help: 'chdir to this directory before loading apps' },
  { name: 'env', argument: 'required', kind: 'string', multiple: true, metavar: 'NAME=VALUE', help: 'set an environment variable for apps' },
  { name: 'uid', argument: 'required', kind: 'string', help: 'setuid to this user (name or id) after binding sockets (when started as root)' },
  { name: 'gid', argument: 'required', kind: 'string', help: 'setgid to this group (name or id) after binding sockets (when started as root)' },
  { name: 'bridge-pipeline', argument: 'required', kind: 'number', help: 'requests without a body that may queue behind the one in progress on an app worker connection when all are busy (0 disables; see docs/ARCHITECTURE.md)', defaultValue: '4' },
  { name: 'bridge-ready-timeout', argument: 'required', kind: 'number', help: 'seconds an app worker may take to load its apps before start-up fails', defaultValue: '60' },
  { name: 'no-server', argument: 'none', kind: 'flag', help: 'initialise, then exit without serving' },

  // --- apps and dispatch -------------------------------------------------------------------
  { name: 'mount', argument: 'required', kind: 'string', multiple: true, metavar: 'MOUNTPOINT=APP', help: 'load APP (chosen by its file type) at MOUNTPOINT' },
  { name: 'manage-script-name', argument: 'none', kind: 'flag', help: 'split PATH_INFO on the mountpoint into SCRIPT_NAME and PATH_INFO' },
  { name: 'no-default-app', argument: 'none', kind: 'flag', help: 'do not fall back to the default app when no mountpoint matches' },
  { name: 'catch-exceptions', argument: 'none', kind: 'flag', help: 'send the traceback of an app exception to the client (development only)' },
  { name: 'allowed-modifiers', argument: 'required', kind: 'list', metavar: 'N[,N…]', help: 'serve only requests with these modifier1 values' },
  { name: 'remap-modifier', argument: 'required', kind: 'string', multiple: true, metavar: 'FROM:TO', help: 'serve requests arriving with modifier TO by the plugin at modifier FROM' },

  // --- plugins -----------------------------------------------------------------------------
  { name: 'plugins', aliases: ['plugin'], argument: 'required', kind: 'list', multiple: true, metavar: 'NAME[,NAME…]', help: 'load plugins by name (N:name binds the plugin to modifier1 N)' },
  { name: 'need-plugin', aliases: ['need-plugins'], argument: 'required', kind: 'list', multiple: true, help: 'load plugins by name and exit if one is missing' },
  { name: 'plugins-list', aliases: ['plugin-list'], argument: 'none', kind: 'flag', help: 'list the loaded and available plugins, then exit' },

  // --- config ------------------------------------------------------------------------------
  { name: 'ini', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE[:SECTION]', help: 'load config from an ini file' },
  { name: 'include', argument: 'required', kind: 'path', multiple: true, help: 'include a config file (type by extension) at this point' },
  { name: 'inherit', argument: 'required', kind: 'path', multiple: true, help: 'include a config file as a template (its values are not expanded)' },
  { name: 'set-placeholder', aliases: ['set-ph'], argument: 'required', kind: 'string', multiple: true, metavar: 'KEY=VALUE', help: 'define a placeholder usable as %(KEY)' },
  { name: 'set', short: 'S', argument: 'required', kind: 'string', multiple: true, metavar: 'KEY=VALUE', help: 'set any option (or placeholder) by name' },
  { name: 'strict', argument: 'none', kind: 'flag', help: 'refuse unknown config keys instead of treating them as placeholders' },
  { name: 'show-config', argument: 'none', kind: 'flag', help: 'log the final configuration as ini' },
  { name: 'get', argument: 'required', kind: 'string', multiple: true, help: 'print the value of an option and exit' },
  { name: 'print', argument: 'required', kind: 'string', multiple: true, help: 'print a message (after expansion)' },
  { name: 'version', argument: 'none', kind: 'flag', help: 'print the version and exit' },
  { name: 'help', aliases: ['usage'], short: 'h', argument: 'none', kind: 'flag', help: 'show this help and exit' },

  // --- logging -----------------------------------------------------------------------------
  { name: 'logto', argument: 'required', kind: 'path', help: 'log to a file instead of stderr' },
  { name: 'log-format', aliases: ['logformat'], argument: 'required', kind: 'string', help: 'request log line template with %(vars)' },
  { name: 'disable-logging', short: 'L', argument: 'none', kind: 'flag', help: 'do not log requests' },
  { name: 'log-micros', argument: 'none', kind: 'flag', help: 'report response times in microseconds' },
  { name: 'log-date', aliases: ['logdate'], argument: 'optional', kind: 'string', help: 'prefix server messages with the date' },
];

/**
 * The core's options: the server's own, plus the ones the config loader executes while
 * parsing (config logic, set-ph, declare-option…), so all of them appear in --help and
 * docs/options.md and are owned by "core" in the registry.
 */
export const CORE_OPTIONS: readonly OptionSpec[] = [
  ...SERVER_OPTIONS,
  ...LOADER_OPTION_SPECS.filter((spec) => !SERVER_OPTIONS.some((own) => own.name === spec.name)),
];
