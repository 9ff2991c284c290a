/**
 * Forwarding a request to another server from a route action (`uwsgi:` of router_uwsgi,
 * `http:` of router_http): connect, write the rebuilt request and the request body, and
 * stream the backend's HTTP response to the routing sink. The response is parsed with the
 * same HttpResponseParser the app pools use, so the head goes through routing's header edits
 * and the request log like an app response, and the body is re-framed for the client.
 *
 * Failures never hang or crash the worker: a backend that refuses the connection, closes
 * early or answers garbage gets the client a 502, one that stays silent for --socket-timeout
 * seconds (uWSGI's limit for its proxy loop, default 4) a 504; after the head has gone out the
 * client connection is cut instead (a short body is the only honest signal left). Each failure
 * is logged as uWSGI words it: `error routing request to <kind> server <addr>`.
 */
import net from 'node:net';
import type { ResponseSink } from '../bridge/pool-client.ts';
import { HttpResponseParser, type ResponseHead } from '../protocol/http-response-parser.ts';
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

export interface ProxyOptions {
  /** "uwsgi" or "http": names the backend in log lines, as uWSGI does. */
  kind: string;
  /**
   * Lower-cased response header names not passed to the client. The `http:` action drops the
   * backend's hop-by-hop headers (its `Connection: close` answers our HTTP/1.0 request, it is
   * not about the client's connection, which the front end manages).
   */
  dropResponseHeaders?: ReadonlySet<string>;
}

/** The parser's messages speak of "bridge" (its first user); here the peer is a backend. */
function backendWording(message: string): string {
  return message.replace(/\bbridge\b/g, 'backend');
}

function withoutHeaders(head: ResponseHead, drop: ReadonlySet<string>): ResponseHead {
  const headers: string[] = [];
  for (let i = 0; i < head.headers.length; i += 2) {
    if (!drop.has(head.headers[i]!.toLowerCase())) headers.push(head.headers[i]!, head.headers[i + 1]!);
  }
  return headers.length === head.headers.length ? head : { ...head, headers, headerCount: headers.length / 2 };
}

/**
 * Proxy the request. Resolves when the exchange is over (the engine then sees the head as
 * sent, so the action's `break` does not also close the connection).
 */
export function proxyRequest(ctx: RouteContext, addr: string, request: Buffer, opts: ProxyOptions): Promise<void> {
  return new Promise((resolve) => {
    const sink: ResponseSink = ctx.response.sink();
    const method = ctx.getVar('REQUEST_METHOD') ?? 'GET';
    const timeoutSeconds = ctx.options.int('socket-timeout', 4);
    let headSent = false;
    let finished = false;
    const socket = net.createConnection(connectOptions(addr));
    // The request body's writer, paused until the backend socket drains (see the 'connect' handler).
    let bodyWaiting: (() => void) | null = null;
    const finish = (error: string | null, status = 502): void => {
      if (finished) return;
      finished = true;
      socket.destroy();
      // A destroyed socket never drains: let the body writer go on, discarding the rest.
      const resume = bodyWaiting;
      bodyWaiting = null;
      resume?.();
      if (error !== null) {
        ctx.log(`error routing request to ${opts.kind} server ${addr}: ${backendWording(error)} (${method} ${ctx.getVar('REQUEST_URI') ?? ''})`);
        // Before a head the client can still get a proper answer; after one, only a cut.
        if (!headSent) {
          const text = status === 504 ? 'Gateway Timeout' : 'Bad Gateway';
          respond(ctx, status, text, ['Content-Type', 'text/plain', 'Content-Length', String(text.length)], text);
        } else sink.fail(status, error);
      }
      resolve();
    };
    let interim = false;
    const parser = new HttpResponseParser({
      onHead: (head) => {
        // 1xx interim answers (100 Continue, 103 Early Hints) are between us and the backend:
        // the client gets the final response only. 101 (an upgrade) cannot be relayed here.
        if (head.statusCode >= 100 && head.statusCode < 200 && head.statusCode !== 101) {
          interim = true;
          return;
        }
        headSent = true;
        sink.head(opts.dropResponseHeaders ? withoutHeaders(head, opts.dropResponseHeaders) : head);
      },
      onBody: (chunk) => {
        // Backpressure: stop reading the backend while the client is slow.
        if (!sink.body(chunk) && !finished) {
          socket.pause();
          sink.onDrain(() => {
            if (!finished) socket.resume();
          });
        }
      },
      onEnd: () => {
        if (interim) {
          // Called from inside execute(): the rest of the same chunk is parsed as the next response.
          interim = false;
          parser.start(method === 'HEAD');
          return;
        }
        sink.end();
        finish(null);
      },
    });
    parser.start(method === 'HEAD');
    sink.bindAbort(() => finish(null));
    socket.setNoDelay(true);
    if (timeoutSeconds > 0) {
      socket.setTimeout(timeoutSeconds * 1000, () => finish(`no data for ${timeoutSeconds} seconds (raise --socket-timeout for slow backends)`, 504));
    }
    socket.on('connect', () => {
      socket.write(request);
      const body = ctx.body;
      if (body) {
        body.pipe(
          // After the exchange ended the body is still read from the client (and dropped), so a
          // keep-alive connection stays in sync.
          (chunk) => (finished ? true : socket.write(chunk)),
          (cb) => {
            if (finished) return cb();
            bodyWaiting = cb;
            socket.once('drain', () => {
              const resume = bodyWaiting;
              bodyWaiting = null;
              resume?.();
            });
          },
          () => {
            /* the backend answers when it has read the body: nothing to do at its end */
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
        if (parser.done && headSent) finish(null);
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
