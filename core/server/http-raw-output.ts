/**
 * Raw output on an HTTP connection (routing's `send:`, `send-crnl:`, `disableheaders:`): bytes
 * written to the client socket as they are, around the framing Node's ServerResponse owns.
 *
 * Once raw output starts, the ServerResponse never writes again: a head given to it but not
 * yet on the wire (Node sends the head with the first body write) is written here instead, as
 * uWSGI writes headers (status line, the response's headers, blank line) — without the
 * `Date`/`Connection`/`Transfer-Encoding` lines Node would add, which would lie about a body
 * whose framing is now unknown. The response then never "finishes" for Node: the connection
 * ends with it (a keep-alive client could not tell where the response ends), and requests
 * the client pipelined behind it are dropped with the connection.
 *
 * A response queued behind an earlier one on the connection (pipelining) has no socket yet:
 * raw bytes wait for it, and go out after what the ServerResponse buffered before.
 */
import type http from 'node:http';
import type net from 'node:net';
import type { ResponseHead } from '../protocol/http-response-parser.ts';

/** The head as uWSGI writes it: status line, the headers as given, blank line. */
export function renderHead(protocol: string, h: ResponseHead): Buffer {
  let text = `${protocol} ${h.statusCode} ${h.reason}\r\n`;
  for (let i = 0; i < h.headers.length; i += 2) text += `${h.headers[i]}: ${h.headers[i + 1]}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}

export class HttpRawOutput {
  private socket: net.Socket | null;
  /** Bytes waiting for the socket (the response is queued behind another one). */
  private queue: Buffer[] | null = null;
  private ending = false;
  private readonly res: http.ServerResponse;
  private drainWaiters: Array<() => void> = [];

  /** `pendingHead`: given to the ServerResponse, not yet on the wire: it goes out first. */
  constructor(res: http.ServerResponse, pendingHead: ResponseHead | null) {
    this.res = res;
    this.socket = res.socket;
    if (this.socket === null) {
      this.queue = [];
      // The ServerResponse flushes what it buffered right after 'socket': ours goes after it.
      res.once('socket', (s: net.Socket) => process.nextTick(() => this.attach(s)));
    }
    if (pendingHead) this.write(renderHead(`HTTP/${res.req.httpVersion}`, pendingHead));
  }

  write(chunk: Buffer): boolean {
    if (this.queue !== null) {
      if (chunk.length > 0) this.queue.push(chunk);
      return false;
    }
    const s = this.socket!;
    if (s.destroyed || s.writableEnded) return true;
    return chunk.length === 0 ? true : s.write(chunk);
  }

  onDrain(cb: () => void): void {
    if (this.queue !== null) this.drainWaiters.push(cb);
    else if (this.socket!.writableNeedDrain) this.socket!.once('drain', cb);
    else queueMicrotask(cb);
  }

  /** The response is over: send what is written, then close the connection. */
  end(): void {
    if (this.queue !== null) {
      this.ending = true;
      return;
    }
    const s = this.socket!;
    if (!s.destroyed && !s.writableEnded) s.end();
  }

  /** The exchange failed after raw bytes: cutting the connection is the only signal left. */
  destroy(): void {
    if (this.socket) this.socket.destroy();
    else this.res.destroy();
  }

  private attach(s: net.Socket): void {
    this.socket = s;
    const queued = this.queue ?? [];
    this.queue = null;
    for (const b of queued) this.write(b);
    if (this.ending) this.end();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const cb of waiters) this.onDrain(cb);
  }
}
