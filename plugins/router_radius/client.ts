/**
 * One RADIUS exchange over UDP (node:dgram, never blocking the event loop): send the
 * Access-Request from a fresh connected socket, as uWSGI does with uwsgi_connect_udp(), and
 * wait up to the timeout (uWSGI: --socket-timeout) for the datagram that answers it. Like
 * uWSGI, the request is sent once: no retransmission.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { answers, type AccessRequest } from './packet.ts';

export interface RadiusServer {
  readonly host: string;
  readonly port: number;
}

export type ExchangeResult = { reply: Buffer } | { error: string; timeout: boolean };

export function exchange(server: RadiusServer, request: AccessRequest, timeoutMs: number): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (result: ExchangeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ error: `no answer within ${timeoutMs / 1000} seconds (--socket-timeout)`, timeout: true }), timeoutMs);
    // A reply to an earlier request (same socket never, but a confused server) is not ours:
    // keep waiting for the one that answers this request.
    socket.on('message', (msg) => {
      if (answers(msg, request)) finish({ reply: msg });
    });
    // ECONNREFUSED (ICMP port unreachable), EHOSTUNREACH, a name that does not resolve…
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ error: err.code ? `${err.code} (${err.message})` : err.message, timeout: false }));
    socket.connect(server.port, server.host, () => {
      if (done) return;
      socket.send(request.packet, (err) => {
        if (err) finish({ error: err.message, timeout: false });
      });
    });
  });
}
