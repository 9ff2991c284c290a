/**
 * Forwarding a request to another server from a route action (`uwsgi:` of router_uwsgi,
 * `http:` of router_http): connect, write the rebuilt request and the request body, and
 * stream the backend's HTTP response to the routing sink. The response is parsed with the
 * same HttpResponseParser the app pools use, so the head goes through routing's header edits
 * and the request log like an app response, and the body is re-framed for the client.
 */
import net from 'node:net';
import type { ResponseSink } from '../bridge/pool-client.ts';
import { HttpResponseParser } from '../protocol/http-response-parser.ts';
import type { RouteContext } from './api.ts';
import { respond } from './respond.ts';

/** Where the backend is: `host:port` is TCP (IPv6 as `[::1]:port`), anything else a unix socket path. */
export function connectOptions(addr: string): net.NetConnectOpts {
  const colon = addr.lastIndexOf(':');
  if (colon > 0 && !addr.includes('/')) {
    let host = addr.slice(0, colon);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    const port = Number(addr.slice(colon + 1));
    if (Number.isInteger(port) && port > 0 && port < 65536) return { host: host || '127.0.0.1', port };
  }
  return { path: addr };
}

/** True when `addr` names something connectOptions can use (checked at start-up when it is literal). */
export function isValidAddr(addr: string): boolean {
  if (addr === '') return false;
  const colon = addr.lastIndexOf(':');
  if (colon > 0 && !addr.includes('/')) {
    const port = Number(addr.slice(colon + 1));
    return Number.isInteger(port) && port > 0 && port < 65536;
  }
  return true;
}

/**
 * Proxy the request. Resolves when the exchange is over (the engine then sees the head as
 * sent, so a `break` does not also close the connection). A backend that cannot be reached
 * or answers garbage before any head gets the client a 502.
 */
export function proxyRequest(ctx: RouteContext, addr: string, request: Buffer, what: string): Promise<void> {
  return new Promise((resolve) => {
    const sink: ResponseSink = ctx.response.sink();
    const method = ctx.getVar('REQUEST_METHOD') ?? 'GET';
    let headSent = false;
    let finished = false;
    const socket = net.createConnection(connectOptions(addr));
    const finish = (error: string | null): void => {
      if (finished) return;
      finished = true;
      socket.destroy();
      if (error !== null) {
        ctx.log(`${what}: error proxying ${method} ${ctx.getVar('REQUEST_URI') ?? ''} to ${addr}: ${error}`);
        // Before a head the client can still get a proper answer; after one, only a cut.
        if (!headSent) respond(ctx, 502, 'Bad Gateway', ['Content-Type', 'text/plain', 'Content-Length', '11'], 'Bad Gateway');
        else sink.fail(502, error);
      }
      resolve();
    };
    const parser = new HttpResponseParser({
      onHead: (head) => {
        headSent = true;
        sink.head(head);
      },
      onBody: (chunk) => {
        // Backpressure: stop reading the backend while the client is slow.
        if (!sink.body(chunk) && !finished) {
          socket.pause();
          sink.onDrain(() => socket.resume());
        }
      },
      onEnd: () => {
        sink.end();
        finish(null);
      },
    });
    parser.start(method === 'HEAD');
    sink.bindAbort(() => finish(null));
    socket.setNoDelay(true);
    socket.on('connect', () => {
      socket.write(request);
      const body = ctx.body;
      if (body) {
        body.pipe(
          (chunk) => (finished ? true : socket.write(chunk)),
          (cb) => (finished ? cb() : socket.once('drain', cb)),
          () => {
            /* the response may only start after the whole body: nothing to do here */
          },
        );
      }
    });
    socket.on('data', (d: Buffer) => {
      if (finished) return;
      try {
        parser.execute(d);
      } catch (err) {
        // Bytes after a complete response (a backend that does not close) are ignored.
        if (parser.done) finish(null);
        else finish((err as Error).message);
      }
    });
    socket.on('error', (err) => finish(err.message));
    socket.on('close', () => {
      if (finished) return;
      try {
        // An HTTP/1.0-style body (no length, not chunked) ends when the backend closes.
        parser.finish();
      } catch (err) {
        finish((err as Error).message);
      }
    });
  });
}
