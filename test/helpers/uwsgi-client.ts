/**
 * A raw uwsgi protocol client for tests (spec/core.md §1). The encoder is written here on
 * purpose, from the spec, so the tests do not share a bug with the core's codec.
 *
 *   header: modifier1 (u8) | datasize (u16 LE) | modifier2 (u8)
 *   vars:   repeated { u16 LE keylen, key, u16 LE vallen, value }
 *   then CONTENT_LENGTH bytes of body.
 */
import net from 'node:net';

export type VarPairs = Array<[string, string | Buffer]>;
export type VarsInput = VarPairs | Record<string, string>;

/** The standard CGI vars of a GET (spec/core.md §0 STDVARS). */
export const STDVARS: Array<[string, string]> = [
  ['REQUEST_METHOD', 'GET'],
  ['REQUEST_URI', '/'],
  ['PATH_INFO', '/'],
  ['QUERY_STRING', ''],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['SERVER_NAME', 'localhost'],
  ['SERVER_PORT', '80'],
  ['REMOTE_ADDR', '127.0.0.1'],
  ['HTTP_HOST', 'localhost'],
];

/** STDVARS with some vars replaced/added (undefined removes a var). */
export function stdVars(overrides: Record<string, string | undefined> = {}): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of STDVARS) {
    if (k in overrides) {
      const o = overrides[k];
      if (o !== undefined) out.push([k, o]);
    } else out.push([k, v]);
  }
  for (const [k, v] of Object.entries(overrides)) if (!STDVARS.some(([s]) => s === k) && v !== undefined) out.push([k, v]);
  return out;
}

function toPairs(vars: VarsInput): VarPairs {
  return Array.isArray(vars) ? vars : Object.entries(vars);
}

function u16le(n: number): Buffer {
  const b = Buffer.alloc(2);
  b[0] = n & 0xff;
  b[1] = (n >> 8) & 0xff;
  return b;
}

/** Encode a vars block (keys/values as latin-1 when strings). */
export function encodeVars(vars: VarsInput): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of toPairs(vars)) {
    const kb = Buffer.from(k, 'latin1');
    const vb = typeof v === 'string' ? Buffer.from(v, 'latin1') : v;
    if (kb.length > 0xffff || vb.length > 0xffff) throw new Error(`var ${k} too long for a u16 size`);
    parts.push(u16le(kb.length), kb, u16le(vb.length), vb);
  }
  return Buffer.concat(parts);
}

/** The 4-byte packet header. */
export function encodeHeader(modifier1: number, datasize: number, modifier2: number): Buffer {
  return Buffer.from([modifier1 & 0xff, datasize & 0xff, (datasize >> 8) & 0xff, modifier2 & 0xff]);
}

export interface UwsgiRequestOptions {
  modifier1?: number;
  modifier2?: number;
  body?: Buffer | string;
  /** Use these bytes as the vars block instead of encoding `vars`. */
  rawVars?: Buffer;
  /** Announce this datasize instead of the vars block's real size. */
  datasize?: number;
  /** Half-close the write side after sending (default false, like nginx). */
  endWrite?: boolean;
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
}

export function uwsgiPacket(vars: VarsInput, opts: UwsgiRequestOptions = {}): Buffer {
  const block = opts.rawVars ?? encodeVars(vars);
  const header = encodeHeader(opts.modifier1 ?? 0, opts.datasize ?? block.length, opts.modifier2 ?? 0);
  const body = opts.body === undefined ? Buffer.alloc(0) : typeof opts.body === 'string' ? Buffer.from(opts.body, 'latin1') : opts.body;
  return Buffer.concat([header, block, body]);
}

export interface ExchangeResult {
  data: Buffer;
  /** How the connection ended: the server closed it (FIN), reset it, or we gave up waiting. */
  end: 'close' | 'reset' | 'timeout';
}

function connectOptions(addr: string): net.NetConnectOpts {
  if (addr.includes('/')) return { path: addr };
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  return { host, port: Number(addr.slice(i + 1)) };
}

/** Send bytes to a stream socket ("host:port" or a unix path) and collect everything until it closes. */
export function exchange(addr: string, bytes: Buffer, opts: { endWrite?: boolean; timeoutMs?: number } = {}): Promise<ExchangeResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const sock = net.connect(connectOptions(addr));
    const finish = (end: ExchangeResult['end']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(chunks), end });
    };
    const timer = setTimeout(() => finish('timeout'), opts.timeoutMs ?? 15000);
    sock.on('connect', () => {
      sock.write(bytes);
      if (opts.endWrite) sock.end();
    });
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => finish('close'));
    sock.on('close', () => finish('close'));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish('reset');
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

/**
 * One uwsgi request: resolves with every byte the server sent before closing the connection.
 * Rejects if the server does not close within the timeout (uwsgi is one request per connection).
 */
export async function uwsgiRequest(addr: string, vars: VarsInput, opts: UwsgiRequestOptions = {}): Promise<Buffer> {
  const r = await exchange(addr, uwsgiPacket(vars, opts), { endWrite: opts.endWrite, timeoutMs: opts.timeoutMs });
  if (r.end === 'timeout') {
    throw new Error(`uwsgi server at ${addr} did not close the connection within ${opts.timeoutMs ?? 15000} ms; got ${r.data.length} bytes: ${JSON.stringify(r.data.toString('latin1').slice(0, 300))}`);
  }
  return r.data;
}
