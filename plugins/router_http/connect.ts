/**
 * router_http's CONNECT tunnels: `httpconnect:ADDR` and `proxyhttpconnect:ADDR` (uWSGI 2.0's
 * plugins/router_http/router_http.c, custom flag 0x02). The action opens a TCP (or unix)
 * connection to ADDR, answers the client `200 Connection established`, and relays bytes both
 * ways until both sides are done: an HTTPS client behind a forward proxy, a `ssh -o
 * ProxyCommand`, any byte stream.
 *
 * What uWSGI 2.0.21 does, checked by hand: only `httpconnect` with --offload-threads works
 * (the offload engine answers the 200, then pipes both ways). Without offload threads, and
 * always for `proxyhttpconnect`, it sends no 200 and never forwards the client's bytes: the
 * client waits --socket-timeout seconds and gets a closed connection. Here both names are the
 * working tunnel (every relay runs on the event loop; no offload distinction to make). Also
 * unlike uWSGI, which answers 200 before connecting and then closes on a refused target, the
 * 200 goes out only once the target accepted: a target that is down gets the client a
 * `502 Bad Gateway` it can act on.
 */
import net from 'node:net';
import type { RouteActionDefinition, RouteContext, RouteOutcome } from '../../core/routing/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { connectOptions, isValidAddr } from '../../core/routing/proxy.ts';
import { respond } from '../../core/routing/respond.ts';
import { headerStats } from '../../core/routing/response-edits.ts';

const ESTABLISHED = 'Connection established';

function answer(ctx: RouteContext, status: number, reason: string, extra: string[] = []): void {
  respond(ctx, status, reason, ['Content-Type', 'text/plain', 'Content-Length', String(reason.length), ...extra], reason);
}

/**
 * Relay between the client and `addr`. Resolves when the tunnel is over (or was refused), so
 * the engine sees the request answered.
 */
export function openTunnel(ctx: RouteContext, addr: string): Promise<void> {
  return new Promise((resolve) => {
    const tunnel = ctx.tunnel!;
    const timeoutSeconds = ctx.options.int('socket-timeout', 4);
    const described = `${ctx.getVar('REQUEST_METHOD') ?? ''} ${ctx.getVar('REQUEST_URI') ?? ''}`;
    const target = net.createConnection({ ...connectOptions(addr), allowHalfOpen: true });
    let established = false;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve();
    };
    const refuse = (reason: string, status: number): void => {
      if (established || done) return;
      target.destroy();
      ctx.log(`error routing request to http server ${addr}: ${reason} (${described})`);
      answer(ctx, status, status === 504 ? 'Gateway Timeout' : 'Bad Gateway');
      finish();
    };
    // Only the connection attempt is timed: an established tunnel may stay idle for long
    // (a TLS session between two requests), as an offloaded uWSGI tunnel does.
    if (timeoutSeconds > 0) target.setTimeout(timeoutSeconds * 1000, () => refuse(`no connection after ${timeoutSeconds} seconds (raise --socket-timeout for slow targets)`, 504));
    target.once('error', (err) => refuse(err.message, 502));
    target.once('connect', () => {
      established = true;
      target.setTimeout(0);
      target.removeAllListeners('error');
      const { socket: client, head } = tunnel.take();
      if (client.destroyed) {
        // The client left while the target was being reached: nothing to relay.
        target.destroy();
        ctx.log(`tunnel to ${addr} not opened: the client closed the connection first (${described})`);
        finish();
        return;
      }
      const sink = ctx.response.sink();
      // The response goes through routing's header edits and the request log like any other;
      // the front end writes it raw now that the tunnel is taken.
      sink.head({ statusCode: 200, reason: ESTABLISHED, headers: [], contentLength: -1, chunked: false, ...headerStats(200, ESTABLISHED, []) });
      let sinkEnded = false;
      const endSink = (): void => {
        if (sinkEnded) return;
        sinkEnded = true;
        sink.end();
      };
      const cut = (why: string | null): void => {
        if (why !== null) ctx.log(`tunnel to ${addr} failed: ${why} (${described})`);
        target.destroy();
        if (!sinkEnded) {
          sinkEnded = true;
          if (why !== null) sink.fail(502, why);
          else sink.end();
        }
        client.destroy();
        finish();
      };
      sink.bindAbort(() => cut(null));
      if (head.length > 0) target.write(head);
      // client → target, with backpressure on the client's reads.
      client.on('data', (d: Buffer) => {
        if (!target.write(d)) {
          client.pause();
          target.once('drain', () => client.resume());
        }
      });
      client.on('end', () => target.end());
      client.on('error', (err) => cut(`client: ${err.message}`));
      client.on('close', () => {
        if (target.destroyed) return finish();
        // The client is gone both ways: nothing more can reach it; let the target's queued
        // bytes out, then close, and never wait more than --socket-timeout for it.
        target.end();
        target.setTimeout(Math.max(timeoutSeconds, 1) * 1000, () => target.destroy());
      });
      // target → client through the sink (bytes counted by the request log), with backpressure.
      target.on('data', (d: Buffer) => {
        if (!sink.body(d)) {
          target.pause();
          sink.onDrain(() => target.resume());
        }
      });
      target.on('end', endSink);
      target.on('error', (err) => cut(`target: ${err.message}`));
      target.on('close', () => {
        endSink();
        if (client.destroyed) finish();
        else client.once('close', finish);
      });
      client.resume();
    });
  });
}

/** `httpconnect:ADDR` / `proxyhttpconnect:ADDR`. uWSGI parses `addr[,host[,url]]` for every router_http action and ignores the rest for these. */
export function connectAction(name: string): RouteActionDefinition {
  return {
    name,
    prepare(arg, origin) {
      const addr = arg.split(',')[0]!.trim();
      if (addr === '') throw new RoutingError(`"${name}:" needs the address to connect to (e.g. ${name}:\${REQUEST_URI} for the CONNECT target, or ${name}:127.0.0.1:22) in --${origin.option} "${origin.value}"`);
      if (!addr.includes('$') && !isValidAddr(addr)) throw new RoutingError(`"${name}:" invalid address "${addr}" (HOST:PORT or a unix socket path) in --${origin.option} "${origin.value}"`);
      return async (ctx): Promise<RouteOutcome> => {
        if (!ctx.tunnel) {
          // A GET, or a request from the uwsgi protocol: its connection is framed by the
          // front end (keep-alive), so it cannot become a tunnel.
          ctx.log(`[router_http] ${name}: only a CONNECT request on an HTTP socket can be tunnelled, answered 405 (${ctx.getVar('REQUEST_METHOD') ?? ''} ${ctx.getVar('REQUEST_URI') ?? ''}); match the rule on the method: route-if = equal:\${REQUEST_METHOD};CONNECT ${name}:…`);
          answer(ctx, 405, 'Method Not Allowed', ['Allow', 'CONNECT']);
          return 'break';
        }
        await openTunnel(ctx, ctx.expand(addr));
        return 'break';
      };
    },
  };
}
