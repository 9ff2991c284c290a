/**
 * HTTP at the byte level for tests: write exactly the bytes a test wants on one TCP
 * connection (pipelining, malformed requests, HTTP/1.0, Expect: 100-continue, chunked
 * uploads) and parse exactly what comes back, response by response. Plus a small
 * `httpRequest` on node:http for the ordinary cases.
 */
import http from 'node:http';
import net from 'node:net';

export interface RawResponse {
  statusLine: string;
  httpVersion: string;
  status: number;
  reason: string;
  /** Headers in wire order, names as sent. */
  headers: Array<[string, string]>;
  /** First value of a header (case-insensitive). */
  header(name: string): string | undefined;
  /** Every value of a header (case-insensitive), in order. */
  headerAll(name: string): string[];
  /** The body, de-chunked when Transfer-Encoding: chunked. */
  body: Buffer;
  /** Whether the body was chunk-encoded on the wire. */
  chunked: boolean;
  /** The response's raw bytes. */
  raw: Buffer;
}

function makeResponse(statusLine: string, headers: Array<[string, string]>, body: Buffer, chunked: boolean, raw: Buffer): RawResponse {
  const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  return {
    statusLine,
    httpVersion: m[1]!,
    status: Number(m[2]),
    reason: m[3] ?? '',
    headers,
    header: (n) => headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1],
    headerAll: (n) => headers.filter(([k]) => k.toLowerCase() === n.toLowerCase()).map(([, v]) => v),
    body,
    chunked,
    raw,
  };
}

/**
 * Parse one response from the start of `buf`. Returns null when more bytes are needed.
 * `eof` says the peer closed (a body without length ends there). `head` = the request was HEAD.
 */
export function parseResponse(buf: Buffer, opts: { head?: boolean; eof?: boolean } = {}): { response: RawResponse; consumed: number } | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (opts.eof && buf.length) throw new Error(`connection closed inside a response head: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`);
    return null;
  }
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const statusLine = lines.shift()!;
  const headers: Array<[string, string]> = lines.map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()];
  });
  const get = (n: string): string | undefined => headers.find(([k]) => k.toLowerCase() === n)?.[1];
  const status = Number(statusLine.split(' ')[1]);
  let pos = end + 4;
  const noBody = opts.head || (status >= 100 && status < 200) || status === 204 || status === 304;
  if (noBody) return { response: makeResponse(statusLine, headers, Buffer.alloc(0), false, buf.subarray(0, pos)), consumed: pos };
  const te = get('transfer-encoding');
  if (te && /chunked/i.test(te)) {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos);
      if (lineEnd < 0) return incomplete(opts.eof, buf);
      const size = Number.parseInt(buf.toString('latin1', pos, lineEnd).split(';')[0]!, 16);
      if (Number.isNaN(size)) throw new Error(`bad chunk size line: ${JSON.stringify(buf.toString('latin1', pos, lineEnd))}`);
      pos = lineEnd + 2;
      if (size === 0) {
        // trailers (none expected) end with an empty line
        const trailerEnd = buf.indexOf('\r\n', pos);
        if (trailerEnd < 0) return incomplete(opts.eof, buf);
        if (trailerEnd !== pos) {
          const te2 = buf.indexOf('\r\n\r\n', pos);
          if (te2 < 0) return incomplete(opts.eof, buf);
          pos = te2 + 4;
        } else pos = trailerEnd + 2;
        const body = Buffer.concat(parts);
        return { response: makeResponse(statusLine, headers, body, true, buf.subarray(0, pos)), consumed: pos };
      }
      if (buf.length < pos + size + 2) return incomplete(opts.eof, buf);
      parts.push(buf.subarray(pos, pos + size));
      pos += size + 2;
    }
  }
  const cl = get('content-length');
  if (cl !== undefined) {
    const n = Number(cl);
    if (buf.length < pos + n) return incomplete(opts.eof, buf);
    return { response: makeResponse(statusLine, headers, buf.subarray(pos, pos + n), false, buf.subarray(0, pos + n)), consumed: pos + n };
  }
  // No framing: the body runs to the end of the connection.
  if (!opts.eof) return null;
  return { response: makeResponse(statusLine, headers, buf.subarray(pos), false, buf), consumed: buf.length };
}

function incomplete(eof: boolean | undefined, buf: Buffer): null {
  if (eof) throw new Error(`connection closed inside a response body (${buf.length} bytes received): ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`);
  return null;
}

/** One TCP connection driven byte by byte. */
export class RawHttpConnection {
  readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  /** The server closed (or reset) the connection. */
  closed = false;
  reset = false;
  /** Arrival time (ms) and size of every data event, for streaming checks. */
  readonly arrivals: Array<{ at: number; bytes: number }> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.arrivals.push({ at: Date.now(), bytes: d.length });
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.wake();
    });
    socket.on('end', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {
      this.reset = true;
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host });
      s.setNoDelay(true);
      s.once('connect', () => resolve(new RawHttpConnection(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async waitData(deadline: number, what: string): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}; unconsumed bytes: ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Bytes received and not yet consumed by readResponse(). */
  get pending(): Buffer {
    return this.buf;
  }

  /** Read the next complete response (an interim 1xx counts as one). */
  async readResponse(opts: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (opts.timeoutMs ?? 15000);
    for (;;) {
      const parsed = parseResponse(this.buf, { head: opts.head, eof: this.closed });
      if (parsed) {
        this.buf = this.buf.subarray(parsed.consumed);
        return parsed.response;
      }
      if (this.closed) throw new Error(`connection closed before a response${this.buf.length ? '' : ' (no bytes)'}`);
      await this.waitData(deadline, 'a response');
    }
  }

  /** Wait until the unconsumed bytes contain `text`. */
  async readUntil(text: string, timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.buf.includes(text)) {
      if (this.closed) throw new Error(`connection closed before ${JSON.stringify(text)} arrived; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await this.waitData(deadline, JSON.stringify(text));
    }
  }

  /** Wait for the server to close the connection; true if it did within the time. */
  async waitClosed(timeoutMs = 10000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() >= deadline) return false;
      await this.waitData(deadline, 'close').catch(() => undefined);
    }
    return true;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Send raw bytes on a fresh connection and collect the reply until the server closes it
 * or nothing arrives for `idleMs` (for a server that keeps the connection open).
 */
export async function rawHttp(port: number, data: string | Buffer, opts: { idleMs?: number; timeoutMs?: number } = {}): Promise<{ data: Buffer; closed: boolean }> {
  const c = await RawHttpConnection.connect(port);
  await c.write(data);
  const deadline = Date.now() + (opts.timeoutMs ?? 15000);
  const idle = opts.idleMs ?? 2000;
  let lastLen = -1;
  let lastChange = Date.now();
  while (!c.closed && Date.now() < deadline) {
    if (c.pending.length !== lastLen) {
      lastLen = c.pending.length;
      lastChange = Date.now();
    } else if (lastLen > 0 && Date.now() - lastChange > idle) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const out = { data: Buffer.from(c.pending), closed: c.closed };
  c.close();
  return out;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  /** node:http reused a kept-alive socket for this request. */
  reusedSocket: boolean;
  /** Local port of the client socket (identifies the connection). */
  localPort: number | undefined;
}

export interface HttpRequestOptions {
  method?: string;
  path?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: Buffer | string;
  agent?: http.Agent | false;
  host?: string;
  timeoutMs?: number;
}

/** A plain HTTP request with node:http (keep-alive when given a keep-alive agent). */
export function httpRequest(port: number, o: HttpRequestOptions = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: o.host ?? '127.0.0.1',
        port,
        method: o.method ?? 'GET',
        path: o.path ?? '/',
        headers: o.headers,
        agent: o.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks),
            reusedSocket: req.reusedSocket,
            localPort: req.socket?.localPort,
          });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`HTTP ${o.method ?? 'GET'} ${o.path ?? '/'} timed out after ${o.timeoutMs ?? 30000} ms`)), o.timeoutMs ?? 30000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    if (o.body !== undefined) req.end(o.body);
    else req.end();
  });
}

/** Build a request's bytes: `GET /x HTTP/1.1` + Host + the given headers + blank line + body. */
export function rawRequest(method: string, target: string, headers: Record<string, string> = {}, body?: string | Buffer, version = 'HTTP/1.1'): Buffer {
  let head = `${method} ${target} ${version}\r\n`;
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'host')) head += 'Host: localhost\r\n';
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (body !== undefined && !Object.keys(headers).some((k) => /^(content-length|transfer-encoding)$/i.test(k))) {
    head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  }
  head += '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), body === undefined ? Buffer.alloc(0) : Buffer.from(body)]);
}

/** Chunk-encode a body (Transfer-Encoding: chunked) in pieces of `size` bytes. */
export function chunkEncode(body: Buffer, size = 1000): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const piece = body.subarray(i, i + size);
    parts.push(Buffer.from(piece.length.toString(16) + '\r\n'), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}
