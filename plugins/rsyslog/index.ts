/**
 * uWSGI's rsyslog plugin: `--logger rsyslog:HOST[:PORT][,IDENT]` sends every record to a
 * remote syslog server over UDP, in the RFC 3164 shape uWSGI writes:
 * `<29>Mmm dd hh:mm:ss IDENT: MESSAGE` (29 = daemon.notice; the trailing newline dropped;
 * IDENT defaults to "<hostname> uwsgi"; port 514). A datagram holds at most
 * --rsyslog-packet-size bytes (1024); longer records are cut, or sent in several datagrams
 * with --rsyslog-split-messages.
 */
import os from 'node:os';
import { LoggerError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { parseUdpAddress, resolveUdp, UdpTarget } from '../../core/logging/targets/udp.ts';
import type { LogRecord } from '../../core/logging/targets/queued.ts';
import { syslogTimestamp } from '../syslog/index.ts';

/** The rsyslog datagram(s) for one record. */
export function rsyslogPackets(record: string, ident: string, now: number, packetSize: number, split: boolean): string[] {
  const msg = record.endsWith('\n') ? record.slice(0, -1) : record;
  const head = `<29>${syslogTimestamp(now)} ${ident}: `;
  const room = packetSize - Buffer.byteLength(head);
  if (Buffer.byteLength(msg) <= room || room <= 0) return [(head + msg).slice(0, Math.max(packetSize, 0))];
  const bytes = Buffer.from(msg);
  if (!split) return [head + bytes.subarray(0, room).toString()];
  const out: string[] = [];
  for (let off = 0; off < bytes.length; off += room) out.push(head + bytes.subarray(off, off + room).toString());
  return out;
}

export default definePlugin({
  name: 'rsyslog',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the rsyslog logger (remote syslog over UDP, RFC 3164)',
  options: [
    { name: 'rsyslog-packet-size', argument: 'required', kind: 'number', help: 'largest rsyslog datagram in bytes', defaultValue: '1024' },
    { name: 'rsyslog-split-messages', argument: 'none', kind: 'flag', help: 'send records longer than a datagram in several datagrams instead of cutting them' },
  ],
  loggers: [
    {
      name: 'rsyslog',
      description: 'remote syslog over UDP: rsyslog:HOST[:PORT][,IDENT]',
      needsArgs: true,
      async open(args, ctx) {
        if (!args) throw new LoggerError('the rsyslog logger needs an address: --logger rsyslog:HOST:PORT[,IDENT], e.g. rsyslog:127.0.0.1:514');
        const comma = args.indexOf(',');
        const addrText = comma < 0 ? args : args.slice(0, comma);
        const ident = comma < 0 ? `${os.hostname()} uwsgi` : args.slice(comma + 1);
        const addr = parseUdpAddress(addrText.includes(':') ? addrText : `${addrText}:514`);
        if (!addr) throw new LoggerError(`rsyslog logger: "${addrText}" is not HOST[:PORT] (e.g. 127.0.0.1:514)`);
        const description = `rsyslog:${addrText}`;
        const r = await resolveUdp(addr, description);
        const packetSize = ctx.options.int('rsyslog-packet-size', 1024);
        if (packetSize < 64) throw new LoggerError('--rsyslog-packet-size must be at least 64 bytes');
        const split = ctx.options.flag('rsyslog-split-messages');
        const target = new UdpTarget({ description, limit: ctx.bufferBytes, address: r.address, family: r.family, port: addr.port });
        const write = target.write.bind(target);
        target.write = (rec: LogRecord, countLoss = true): void => {
          for (const p of rsyslogPackets(typeof rec === 'string' ? rec : rec.toString(), ident, Date.now(), packetSize, split)) write(p, countLoss);
        };
        return target;
      },
    },
  ],
});
