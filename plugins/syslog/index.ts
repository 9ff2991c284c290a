/**
 * uWSGI's syslog plugin: `--logger syslog[:IDENT[,FACILITY]]` (or `--log-syslog [IDENT]`)
 * sends every record to the local syslog daemon as glibc's syslog(LOG_INFO|facility) would:
 * `<PRI>Mmm dd hh:mm:ss IDENT: MESSAGE` as one unix datagram to /dev/log. Defaults as
 * uWSGI: ident "uwsgi", facility daemon. The trailing newline is not sent.
 * `--syslog-socket PATH` (tsuwsgi) names another socket (/var/run/syslog on macOS, tests).
 */
import { LoggerError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { ctime } from '../../core/logging/request-log.ts';
import { openUnixDgram } from '../../core/logging/targets/unix-dgram.ts';

/** syslog.h facility numbers (the code is the number × 8). */
export const FACILITIES: Readonly<Record<string, number>> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, security: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};
const LOG_INFO = 6;

/** "Mmm dd hh:mm:ss" of now, local time (glibc's and rsyslog's RFC 3164 timestamp). */
export function syslogTimestamp(ms: number): string {
  return ctime(ms).slice(4, 19);
}

export default definePlugin({
  name: 'syslog',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the syslog logger (local syslog daemon over /dev/log)',
  options: [
    { name: 'syslog-socket', argument: 'required', kind: 'path', help: 'unix datagram socket of the local syslog daemon (tsuwsgi)', defaultValue: '/dev/log' },
  ],
  loggers: [
    {
      name: 'syslog',
      description: 'local syslog: syslog[:IDENT[,FACILITY]] (default uwsgi, daemon)',
      needsArgs: false,
      open(args, ctx) {
        let ident = 'uwsgi';
        let facility = FACILITIES.daemon!;
        if (args) {
          const comma = args.indexOf(',');
          ident = comma < 0 ? args : args.slice(0, comma);
          if (comma >= 0) {
            const name = args.slice(comma + 1);
            const f = FACILITIES[name];
            // uWSGI silently keeps "daemon" for an unknown name; a typo should be visible.
            if (f === undefined) throw new LoggerError(`syslog logger: unknown facility "${name}"; use one of ${Object.keys(FACILITIES).join(', ')}`);
            facility = f;
          }
        }
        const head = `<${facility * 8 + LOG_INFO}>`;
        const tail = ` ${ident}: `;
        const socketPath = ctx.options.string('syslog-socket') ?? '/dev/log';
        return openUnixDgram({
          socketPath,
          description: `syslog:${args ?? ''}`.replace(/:$/, ''),
          limit: ctx.bufferBytes,
          warn: ctx.warn,
          frame: (r) => {
            const text = typeof r === 'string' ? r : r.toString();
            return head + syslogTimestamp(Date.now()) + tail + (text.endsWith('\n') ? text.slice(0, -1) : text);
          },
          missingHint: 'no syslog daemon listens there (in a container use --logger rsyslog:HOST:PORT or the default stderr log; --syslog-socket names another socket)',
        });
      },
    },
  ],
});
