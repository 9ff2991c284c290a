/**
 * core/routing/kv-client.ts: the connections of router_memcached / router_redis, against small
 * in-process servers that answer one line per request line, or misbehave on purpose.
 */
import net from 'node:net';
import { KvPool, type ParsedReply } from '../../core/routing/kv-client.ts';

/** A reply is one line. */
function line(buf: Buffer): ParsedReply<string> {
  const eol = buf.indexOf('\n');
  return eol < 0 ? 0 : { value: buf.toString('latin1', 0, eol), used: eol + 1 };
}

interface TestServer {
  port: number;
  addr: string;
  connections: number;
  close(): Promise<void>;
}

/** `answer(requestLine, nth request on this connection, socket)` writes the reply (or not). */
async function server(answer: (req: string, n: number, socket: net.Socket) => void): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const s: TestServer = { port: 0, addr: '', connections: 0, close: async () => undefined };
  const srv = net.createServer((socket) => {
    s.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let n = 0;
    let pending = '';
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      let eol: number;
      while ((eol = pending.indexOf('\n')) >= 0) {
        const req = pending.slice(0, eol);
        pending = pending.slice(eol + 1);
        answer(req, ++n, socket);
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  s.port = (srv.address() as net.AddressInfo).port;
  s.addr = `127.0.0.1:${s.port}`;
  s.close = () =>
    new Promise((resolve) => {
      for (const c of sockets) c.destroy();
      srv.close(() => resolve());
    });
  return s;
}

describe('KvPool', () => {
  const pool = new KvPool();
  const servers: TestServer[] = [];
  afterEach(async () => {
    pool.close();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const start = async (answer: Parameters<typeof server>[0]): Promise<TestServer> => {
    const s = await server(answer);
    servers.push(s);
    return s;
  };

  it('reuses one connection for exchanges one after the other', async () => {
    const s = await start((req, n, socket) => socket.write(`${req}#${n}\n`));
    expect(await pool.exchange(s.addr, Buffer.from('a\n'), line, 1000)).toBe('a#1');
    expect(await pool.exchange(s.addr, Buffer.from('b\n'), line, 1000)).toBe('b#2');
    expect(s.connections).toBe(1);
    expect(pool.idleCount(s.addr)).toBe(1);
  });

  it('opens a connection per concurrent exchange and keeps them idle after', async () => {
    const s = await start((req, _n, socket) => setTimeout(() => socket.write(`${req}\n`), 20));
    const replies = await Promise.all(['x', 'y', 'z'].map((k) => pool.exchange(s.addr, Buffer.from(`${k}\n`), line, 1000)));
    expect(replies).toEqual(['x', 'y', 'z']);
    expect(s.connections).toBe(3);
    expect(pool.idleCount(s.addr)).toBe(3);
  });

  it('retries once on a new connection when an idle one turns out closed', async () => {
    // The server drops every connection on its second request, without a reply.
    const s = await start((req, n, socket) => (n === 1 ? socket.write(`${req}\n`) : socket.destroy()));
    expect(await pool.exchange(s.addr, Buffer.from('a\n'), line, 1000)).toBe('a');
    expect(await pool.exchange(s.addr, Buffer.from('b\n'), line, 1000)).toBe('b');
    expect(s.connections).toBe(2);
  });

  it('a server that never answers: rejected after the timeout, the connection closed', async () => {
    const s = await start(() => undefined);
    const started = Date.now();
    await expect(pool.exchange(s.addr, Buffer.from('a\n'), line, 300)).rejects.toThrow('no reply within 0.3 seconds (--socket-timeout)');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(pool.idleCount(s.addr)).toBe(0);
  });

  it('a refused connection rejects with the system error', async () => {
    const s = await start(() => undefined);
    const addr = s.addr;
    await s.close();
    await expect(pool.exchange(addr, Buffer.from('a\n'), line, 1000)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a connection that closes halfway through a reply rejects, not retried', async () => {
    const s = await start((_req, _n, socket) => socket.end('partial'));
    await expect(pool.exchange(s.addr, Buffer.from('a\n'), line, 1000)).rejects.toThrow(/closed the connection before its reply was complete/);
    expect(s.connections).toBe(1);
  });

  it('bytes after the reply: the reply is used, the connection is not kept', async () => {
    const s = await start((req, _n, socket) => socket.write(`${req}\nextra\n`));
    expect(await pool.exchange(s.addr, Buffer.from('a\n'), line, 1000)).toBe('a');
    expect(pool.idleCount(s.addr)).toBe(0);
  });

  it('a reply the parser refuses rejects with its message and drops the connection', async () => {
    const s = await start((_req, _n, socket) => socket.write('garbage\n'));
    const strict = (buf: Buffer): ParsedReply<string> => {
      throw new Error(`bad reply ${JSON.stringify(buf.toString())}`);
    };
    await expect(pool.exchange(s.addr, Buffer.from('a\n'), strict, 1000)).rejects.toThrow('bad reply "garbage\\n"');
    expect(pool.idleCount(s.addr)).toBe(0);
  });

  it('a reply split over many chunks is assembled once the parser knows its size', async () => {
    const body = 'x'.repeat(100_000);
    const s = await start((_req, _n, socket) => {
      const msg = `${body.length}:${body}`;
      for (let i = 0; i < msg.length; i += 1000) socket.write(msg.slice(i, i + 1000));
    });
    let calls = 0;
    const sized = (buf: Buffer): ParsedReply<number> => {
      calls++;
      const colon = buf.indexOf(':');
      if (colon < 0) return 0;
      const total = colon + 1 + Number(buf.toString('latin1', 0, colon));
      return buf.length < total ? total : { value: total - colon - 1, used: total };
    };
    expect(await pool.exchange(s.addr, Buffer.from('a\n'), sized, 1000)).toBe(100_000);
    expect(calls).toBeLessThan(5);
  });
});
