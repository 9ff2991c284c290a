/**
 * uWSGI's logsocket plugin: the `socket` logger sends every record as one datagram, to a UDP
 * address (multicast too) or a unix datagram socket, optionally prefixed:
 *
 *   --logger socket:127.0.0.1:1717
 *   --logger socket:225.1.1.1:1717,myapp:     (a prefix before every record)
 *   --logger socket:/run/collector.sock
 */
import { LoggerError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { openUnixDgram } from '../../core/logging/targets/unix-dgram.ts';
import { parseUdpAddress, resolveUdp, UdpTarget } from '../../core/logging/targets/udp.ts';
import type { LogRecord } from '../../core/logging/targets/queued.ts';

function prefixer(prefix: string | undefined): ((r: LogRecord) => LogRecord) | undefined {
  if (prefix === undefined) return undefined;
  const p = Buffer.from(prefix);
  return (r) => (typeof r === 'string' ? prefix + r : Buffer.concat([p, r]));
}

export default definePlugin({
  name: 'logsocket',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the socket logger (UDP or unix datagrams)',
  loggers: [
    {
      name: 'socket',
      description: 'one datagram per record: socket:HOST:PORT[,PREFIX] or socket:/unix/path[,PREFIX]',
      needsArgs: true,
      async open(args, ctx) {
        if (!args) throw new LoggerError('the socket logger needs an address: --logger socket:127.0.0.1:1717 or socket:/path/to/unix.sock');
        const comma = args.indexOf(',');
        const addrText = comma < 0 ? args : args.slice(0, comma);
        const frame = prefixer(comma < 0 ? undefined : args.slice(comma + 1));
        const description = `socket:${addrText}`;
        if (addrText.includes(':')) {
          const addr = parseUdpAddress(addrText);
          if (!addr) throw new LoggerError(`socket logger: "${addrText}" is not HOST:PORT (e.g. 127.0.0.1:1717)`);
          const r = await resolveUdp(addr, description);
          return new UdpTarget({ description, limit: ctx.bufferBytes, address: r.address, family: r.family, port: addr.port, frame });
        }
        return openUnixDgram({
          socketPath: addrText,
          description,
          limit: ctx.bufferBytes,
          warn: ctx.warn,
          frame,
          missingHint: 'start the receiving program first, or give HOST:PORT for UDP',
        });
      },
    },
  ],
});
