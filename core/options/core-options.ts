/**
 * Options owned by the core (not by any plugin). Names, aliases and short letters are
 * uWSGI's (spec/core.md Appendix A); `accepted` marks options kept for compatibility whose
 * behaviour tsuwsgi always has (documented in docs/options.md).
 */
import { LOADER_OPTION_SPECS } from '../config/builtin-options.ts';
import type { OptionSpec } from './spec.ts';
import { STATIC_OPTION_SPECS } from '../static/options.ts';
import { ROUTING_CHAIN_OPTION_SPECS } from '../routing/options.ts';

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
  { name: 'post-buffering', argument: 'required', kind: 'number', help: 'buffer request bodies larger than N bytes in a temporary file instead of memory before the app runs (the rack bridge always buffers the body, as Rack needs a rewindable rack.input; other bridges stream it)' },
  { name: 'http-keepalive', argument: 'optional', kind: 'number', help: 'seconds an idle HTTP keep-alive connection stays open', defaultValue: '5' },
  { name: 'chmod-socket', short: 'C', argument: 'optional', kind: 'string', help: 'chmod unix sockets (default 666 when given without a value)' },

  // --- processes --------------------------------------------------------------------------
  { name: 'master', short: 'M', argument: 'none', kind: 'flag', help: 'run a master process that keeps the sockets open and respawns what dies' },
  { name: 'processes', aliases: ['workers'], short: 'p', argument: 'required', kind: 'number', help: 'number of app worker (bridge) processes per app pool', defaultValue: '1' },
  { name: 'threads', argument: 'required', kind: 'number', help: 'threads per app worker (each serves one request at a time)', defaultValue: '1' },
  { name: 'offload-threads', argument: 'required', kind: 'number', metavar: 'N', help: 'enable the offload: transformation when N > 0 (without it offload: breaks the request, as in uWSGI). tsuwsgi starts no threads: the core already writes every response from its event loop, and offload: frees the app worker by buffering the response in the core (docs/transformations.md)', defaultValue: '0' },
  { name: 'async', argument: 'required', kind: 'number', metavar: 'N', help: 'async cores per app worker: requests one worker serves at once, cooperatively (selects the async loop engine when N > 1; docs/loop-engines.md)' },
  { name: 'loop', argument: 'required', kind: 'string', metavar: 'NAME', help: 'select the loop engine: simple, async, or one a plugin provides (asyncio, gevent); --loop-list shows them' },
  { name: 'loop-list', aliases: ['loops-list'], argument: 'none', kind: 'flag', help: 'list the loop engines (and suspend engines), then exit' },
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

  // --- internal routing (request chain; docs/routing.md) ------------------------------------
  // All of them are one ordered list: rules run in the order given, whatever the option name.
  { name: 'route', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP ACTION:ARGS', help: 'add a request routing rule matching PATH_INFO' },
  { name: 'route-host', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP ACTION:ARGS', help: 'add a request routing rule matching HTTP_HOST' },
  { name: 'route-uri', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP ACTION:ARGS', help: 'add a request routing rule matching REQUEST_URI' },
  { name: 'route-qs', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP ACTION:ARGS', help: 'add a request routing rule matching QUERY_STRING' },
  { name: 'route-remote-addr', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP ACTION:ARGS', help: 'add a request routing rule matching REMOTE_ADDR' },
  { name: 'route-user-agent', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP ACTION:ARGS', help: 'add a request routing rule matching HTTP_USER_AGENT' },
  { name: 'route-remote-user', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP ACTION:ARGS', help: 'add a request routing rule matching REMOTE_USER' },
  { name: 'route-referer', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP ACTION:ARGS', help: 'add a request routing rule matching HTTP_REFERER' },
  { name: 'route-label', argument: 'required', kind: 'string', multiple: true, metavar: 'LABEL', help: 'define a routing label (a goto target)' },
  { name: 'route-if', argument: 'required', kind: 'string', multiple: true, metavar: 'COND:ARGS ACTION:ARGS', help: 'add a request routing rule run when the condition is true' },
  { name: 'route-if-not', argument: 'required', kind: 'string', multiple: true, metavar: 'COND:ARGS ACTION:ARGS', help: 'add a request routing rule run when the condition is false' },
  { name: 'route-run', argument: 'required', kind: 'string', multiple: true, metavar: 'ACTION:ARGS', help: 'add an unconditional request routing rule' },
  { name: 'router-list', aliases: ['routers-list'], argument: 'none', kind: 'flag', help: 'list the routing actions, conditions and route vars (and their plugins), then exit' },

  // --- plugins -----------------------------------------------------------------------------
  { name: 'plugins', aliases: ['plugin'], argument: 'required', kind: 'list', multiple: true, metavar: 'NAME[,NAME…]', help: 'load plugins by name (N:name binds the plugin to modifier1 N)' },
  { name: 'need-plugin', aliases: ['need-plugins'], argument: 'required', kind: 'list', multiple: true, help: 'load plugins by name and exit if one is missing' },
  { name: 'build-plugin', argument: 'required', kind: 'string', metavar: 'DIR [NAME]', help: 'build an out-of-tree plugin against this core into ./<name>_plugin.cjs, then exit' },
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

  // --- stats server (docs/stats.md) ---------------------------------------------------------
  { name: 'stats', aliases: ['stats-server'], argument: 'required', kind: 'address', metavar: 'ADDR', help: 'run the stats server on HOST:PORT or a unix socket path: every connection gets the JSON document of the instance (uWSGI 2.0 layout, for uwsgitop) and is closed' },
  { name: 'stats-http', argument: 'none', kind: 'flag', help: 'answer stats clients with an HTTP/1.0 200 response (Content-Type: application/json), so curl and browsers can read it' },
  { name: 'stats-minified', aliases: ['stats-min'], argument: 'none', kind: 'flag', help: 'send the stats document without whitespace' },
  { name: 'stats-no-cores', argument: 'none', kind: 'flag', help: 'leave the cores of every worker out of the stats document' },
  { name: 'stats-no-metrics', argument: 'none', kind: 'flag', help: 'leave metrics out of the stats document', accepted: 'tsuwsgi has no metrics subsystem yet, so the document never has a "metrics" key' },

  // --- logging -----------------------------------------------------------------------------
  { name: 'logto', argument: 'required', kind: 'path', metavar: 'FILE|HOST:PORT', help: 'log to a file (appended) or, for HOST:PORT, to UDP datagrams instead of stderr' },
  { name: 'logto2', argument: 'required', kind: 'path', metavar: 'FILE|HOST:PORT', help: 'like --logto, opened after privileges are dropped (--uid/--gid)' },
  { name: 'log-format', aliases: ['logformat'], argument: 'required', kind: 'string', help: 'request log line template with %(vars) (docs/logging.md)' },
  { name: 'logformat-strftime', aliases: ['log-format-strftime'], argument: 'none', kind: 'flag', help: '%(ftime) in --log-format uses the --log-date strftime format' },
  { name: 'disable-logging', short: 'L', argument: 'none', kind: 'flag', help: 'do not log requests (the --log-4xx… options re-enable some)' },
  { name: 'log-micros', argument: 'none', kind: 'flag', help: 'report response times in microseconds' },
  { name: 'log-date', aliases: ['logdate', 'log-prefix'], argument: 'optional', kind: 'string', metavar: '[STRFTIME]', help: 'prefix server messages with the date (ctime, or a strftime format)' },
  { name: 'log-4xx', argument: 'none', kind: 'flag', help: 'log requests answered 4xx even with --disable-logging' },
  { name: 'log-5xx', argument: 'none', kind: 'flag', help: 'log requests answered 5xx even with --disable-logging' },
  { name: 'log-slow', argument: 'required', kind: 'number', metavar: 'MSECS', help: 'log requests slower than MSECS even with --disable-logging' },
  { name: 'log-big', argument: 'required', kind: 'number', metavar: 'BYTES', help: 'log responses of at least BYTES even with --disable-logging' },
  { name: 'log-zero', argument: 'none', kind: 'flag', help: 'log responses with an empty body even with --disable-logging' },
  // uWSGI declares it with a required argument (and ignores the value): `--log-sendfile 1`.
  { name: 'log-sendfile', argument: 'required', kind: 'flag', metavar: 'BOOL', help: 'log responses sent with sendfile() (static files over 32 KiB) even with --disable-logging; takes a value as in uWSGI (--log-sendfile 1)' },
  // Like --log-sendfile, uWSGI declares it with a required argument: `--log-ioerror 1`.
  { name: 'log-ioerror', argument: 'required', kind: 'flag', metavar: 'BOOL', help: 'log requests with a client read/write error even with --disable-logging; takes a value as in uWSGI (--log-ioerror 1)' },
  { name: 'log-x-forwarded-for', argument: 'none', kind: 'flag', help: 'show the X-Forwarded-For header instead of REMOTE_ADDR in the request line' },
  { name: 'logger', argument: 'required', kind: 'string', multiple: true, metavar: '[ID ]NAME[:ARGS]', help: 'send log lines to a logger plugin (file, fd, stdio, socket, syslog, rsyslog, pipe); an ID names it for --log-route' },
  { name: 'req-logger', aliases: ['logger-req'], argument: 'required', kind: 'string', multiple: true, metavar: '[ID ]NAME[:ARGS]', help: 'send request lines to a logger plugin (and only there)' },
  { name: 'logger-list', aliases: ['loggers-list'], argument: 'none', kind: 'flag', help: 'list the available loggers and log encoders, then exit' },
  { name: 'log-route', argument: 'required', kind: 'string', multiple: true, metavar: 'ID REGEX', help: 'send lines matching REGEX to logger ID only' },
  { name: 'log-req-route', argument: 'required', kind: 'string', multiple: true, metavar: 'ID REGEX', help: 'send request lines matching REGEX to req-logger ID only' },
  { name: 'log-drain', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEX', help: 'drop log lines matching REGEX' },
  { name: 'log-filter', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEX', help: 'keep only log lines matching REGEX' },
  { name: 'log-encoder', argument: 'required', kind: 'string', multiple: true, metavar: 'NAME[:ID][ ARGS]', help: 'encode log lines (prefix, suffix, nl, gzip, compress, format, json, msgpack), chained in order; :ID limits it to one logger' },
  { name: 'log-req-encoder', argument: 'required', kind: 'string', multiple: true, metavar: 'NAME[:ID][ ARGS]', help: 'encode request lines going to --req-logger loggers' },
  { name: 'log-json', argument: 'none', kind: 'flag', help: 'structured logs: every server message and request line is a pino JSON record (tsuwsgi)' },
  { name: 'log-master', argument: 'none', kind: 'flag', help: "route app workers' output through the master's log (implied by loggers, routes, encoders, rotation)" },
  { name: 'log-master-bufsize', argument: 'required', kind: 'number', help: 'longest line read from app workers before it is cut', defaultValue: '8192' },
  { name: 'threaded-logger', argument: 'none', kind: 'flag', help: 'offload log writes to a thread', accepted: 'log writes never block in tsuwsgi: every target is written asynchronously' },
  { name: 'log-buffer', argument: 'required', kind: 'number', metavar: 'BYTES', help: 'bytes a slow log target may queue before lines are dropped (and the loss reported) (tsuwsgi)', defaultValue: '1048576' },
  { name: 'log-reopen', argument: 'none', kind: 'flag', help: 'reopen log files on reload (SIGHUP)' },
  { name: 'log-truncate', argument: 'none', kind: 'flag', help: 'truncate log files when opening them' },
  { name: 'log-maxsize', argument: 'required', kind: 'number', metavar: 'BYTES', help: 'rotate the --logto file when it grows past BYTES' },
  { name: 'log-backupname', argument: 'required', kind: 'path', help: 'name of the rotated log file (default: FILE.<unix time>)' },
  { name: 'touch-logrotate', argument: 'required', kind: 'path', multiple: true, help: 'rotate log files when this file is touched' },
  { name: 'touch-logreopen', argument: 'required', kind: 'path', multiple: true, help: 'reopen log files when this file is touched' },
  { name: 'logfile-chmod', argument: 'required', kind: 'string', metavar: 'MODE', help: 'octal mode of log files created', defaultValue: '640' },
  { name: 'log-syslog', argument: 'optional', kind: 'string', multiple: true, metavar: '[IDENT[,FACILITY]]', help: 'log to the local syslog (the syslog logger)' },
  { name: 'log-socket', argument: 'required', kind: 'address', multiple: true, help: 'log to a UDP or unix datagram socket (the socket logger)' },
];

/**
 * The core's options: the server's own, plus the ones the config loader executes while
 * parsing (config logic, set-ph, declare-option…), so all of them appear in --help and
 * docs/options.md and are owned by "core" in the registry.
 */
export const CORE_OPTIONS: readonly OptionSpec[] = [
  ...SERVER_OPTIONS,
  ...ROUTING_CHAIN_OPTION_SPECS,
  ...STATIC_OPTION_SPECS,
  ...LOADER_OPTION_SPECS.filter((spec) => !SERVER_OPTIONS.some((own) => own.name === spec.name)),
];
