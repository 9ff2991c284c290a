/**
 * CONNECT tunnels (router_http's `httpconnect:` / `proxyhttpconnect:`, docs/routing.md): a
 * raw-socket client sends `CONNECT host:port` to tsuwsgi, which connects to a TCP echo server
 * in this process and relays both ways. Checked against uWSGI 2.0.21 (Debian's uwsgi-core):
 * the `200 Connection established` head byte for byte (uWSGI's working case, `httpconnect`
 * with --offload-threads), and a CONNECT no rule matches going to the app.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { fixture, freePort, startServer, withServerLog, type ServerHandle } from '../helpers/server.ts';

const ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

/**
 * The tunnel target: greets on connect (so target → client flows before the client sends
 * anything), echoes every byte, and on the client's half-close sends "BYE\n" and closes.
 */
interface EchoServer {
  port: number;
  /** Bytes received per connection, in accept order. */
  received: Buffer[];
  connections: number;
  /** Per connection (accept order): has it closed? */
  closed: boolean[];
  close(): Promise<void>;
}
async function startEcho(): Promise<EchoServer> {
  const sockets = new Set<net.Socket>();
  const state: EchoServer = { port: 0, received: [], connections: 0, closed: [], close: async () => undefined };
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    state.connections++;
    const index = state.received.push(Buffer.alloc(0)) - 1;
    state.closed.push(false);
    sock.on('close', () => {
      sockets.delete(sock);
      state.closed[index] = true;
    });
    sock.on('error', () => undefined);
    sock.write('HELLO\n');
    sock.on('data', (d: Buffer) => {
      state.received[index] = Buffer.concat([state.received[index]!, d]);
      if (!sock.write(d)) {
        sock.pause();
        sock.once('drain', () => sock.resume());
      }
    });
    sock.on('end', () => sock.end('BYE\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as net.AddressInfo).port;
  state.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return state;
}

/** A raw client connection that collects everything it receives. */
class RawClient {
  readonly socket: net.Socket;
  data = Buffer.alloc(0);
  ended = false;
  closed = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Wait until `ok()` holds; fails after `ms` with what was received. */
  async until(ok: () => boolean, what: string, ms = 10000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${this.data.length} bytes: ${JSON.stringify(this.data.toString('latin1').slice(0, 300))} ended=${this.ended} closed=${this.closed}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  text(): string {
    return this.data.toString('latin1');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function connectHead(target: string): string {
  return `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`;
}

describe('CONNECT tunnels (router_http httpconnect / proxyhttpconnect)', () => {
  let echo: EchoServer;
  let deadPort: number;
  let ts: ServerHandle;
  let uw: ForeignHandle | undefined;
  let uwPort: number;

  beforeAll(async () => {
    echo = await startEcho();
    deadPort = await freePort();
    // Through a master and a core worker child: the tunnel takes the socket of a process that
    // accepted it (no descriptor passing involved).
    ts = await startServer([
      '--master', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('connect_app.py'), '--socket-timeout', '2',
      // Only CONNECTs to 127.0.0.1 are tunnelled; others fall through to the app.
      '--route-if', 'startswith:${REQUEST_URI};127.0.0.1: goto:tunnel',
      '--route', '^/wrong-method httpconnect:127.0.0.1:1',
      '--route-run', 'last:',
      '--route-label', 'tunnel',
      '--route-if', 'equal:${REQUEST_METHOD};CONNECT addheader:X-Never: 1',
      '--route-if', 'equal:${HTTP_X_PROXY};1 proxyhttpconnect:${REQUEST_URI}',
      '--route-if', 'equal:${REQUEST_METHOD};CONNECT httpconnect:${REQUEST_URI}',
    ]);
    uwPort = await freePort();
    uw = await startForeign(
      UWSGI_BIN,
      ['--plugin', 'python3,router_http', '--http-socket', `127.0.0.1:${uwPort}`, '--wsgi-file', fixture('connect_app.py'), '--offload-threads', '1',
        '--route-if', 'startswith:${REQUEST_URI};127.0.0.1: httpconnect:${REQUEST_URI}'],
      /spawned uWSGI worker 1/,
    );
  }, 60000);

  afterAll(async () => {
    await Promise.all([ts?.stop(), uw?.stop(), echo?.close()]);
  });

  it('tunnels both ways: the target greets first, echoes, streams megabytes, and sees the client half-close', async () => {
    await withServerLog(ts, async () => {
      const before = echo.connections;
      const c = await RawClient.open(ts.port);
      // Bytes sent right after the head (in the same write) belong to the tunnel too.
      c.socket.write(connectHead(`127.0.0.1:${echo.port}`) + 'early;');
      await c.until(() => c.text().includes('HELLO\nearly;'), 'the 200, the greeting and the early bytes echoed');
      // Routing's header edits apply to the raw 200 head (the X-Never addheader rule ran first).
      expect(c.text()).toBe('HTTP/1.1 200 Connection established\r\nX-Never: 1\r\n\r\nHELLO\nearly;');
      c.data = Buffer.alloc(0);
      c.socket.write('ping 1\n');
      await c.until(() => c.text() === 'ping 1\n', 'the first echo');
      c.socket.write('ping 2\n');
      await c.until(() => c.text() === 'ping 1\nping 2\n', 'the second echo');
      // 4 MiB of random bytes out and back: backpressure both ways must not lose or reorder.
      const big = crypto.randomBytes(4 * 1024 * 1024);
      c.data = Buffer.alloc(0);
      c.socket.write(big);
      await c.until(() => c.data.length >= big.length, 'the 4 MiB echo', 30000);
      expect(crypto.createHash('sha256').update(c.data).digest('hex')).toBe(crypto.createHash('sha256').update(big).digest('hex'));
      // The client half-closes: the target gets EOF, answers BYE and closes; the client gets it all.
      c.data = Buffer.alloc(0);
      c.socket.end();
      await c.until(() => c.ended, 'the end of the tunnel');
      expect(c.text()).toBe('BYE\n');
      expect(echo.connections).toBe(before + 1);
      await ts.waitForLog(new RegExp(`CONNECT 127\\.0\\.0\\.1:${echo.port} => generated \\d+ bytes .*\\(HTTP/1\\.1 200\\)`));
      c.destroy();
    });
  }, 60000);

  it('the 200 head is uWSGI 2.0.21\'s, byte for byte (httpconnect with offload threads)', async () => {
    const heads: string[] = [];
    for (const port of [uwPort, ts.port]) {
      const c = await RawClient.open(port);
      c.socket.write(connectHead(`127.0.0.1:${echo.port}`));
      await c.until(() => c.text().includes('HELLO\n'), `the greeting through port ${port}`);
      heads.push(c.text().slice(0, c.text().indexOf('HELLO\n')));
      c.destroy();
    }
    // tsuwsgi's X-Never addheader rule is the one difference (uWSGI's table has no such rule).
    expect(heads[0]).toBe(ESTABLISHED);
    expect(heads[1]).toBe('HTTP/1.1 200 Connection established\r\nX-Never: 1\r\n\r\n');
  });

  it('proxyhttpconnect is the same tunnel (uWSGI 2.0.21 never relays it: not copied)', async () => {
    const c = await RawClient.open(ts.port);
    c.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\nX-Proxy: 1\r\n\r\n`);
    await c.until(() => c.text().includes('HELLO\n'), 'the greeting');
    expect(c.text().startsWith('HTTP/1.1 200 Connection established\r\n')).toBe(true);
    c.data = Buffer.alloc(0);
    c.socket.write('via proxyhttpconnect');
    await c.until(() => c.text() === 'via proxyhttpconnect', 'the echo');
    c.destroy();
  });

  it('a client that vanishes closes the target connection', async () => {
    const index = echo.connections;
    const c = await RawClient.open(ts.port);
    c.socket.write(connectHead(`127.0.0.1:${echo.port}`));
    await c.until(() => c.text().includes('HELLO\n'), 'the greeting');
    expect(echo.connections).toBe(index + 1);
    expect(echo.closed[index]).toBe(false);
    c.destroy();
    // The echo server sees EOF, answers BYE and closes; tsuwsgi must close its side too.
    const deadline = Date.now() + 10000;
    while (!echo.closed[index] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(echo.closed[index]).toBe(true);
  });

  it('a target that is down gets the client a 502 and a log line naming it', async () => {
    await withServerLog(ts, async () => {
      const c = await RawClient.open(ts.port);
      c.socket.write(connectHead(`127.0.0.1:${deadPort}`));
      // The answer, then the server's half of the connection closes (Connection: close).
      await c.until(() => c.ended, 'the answer and the end of the connection');
      expect(c.text()).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
      expect(c.text()).toMatch(/\r\nConnection: close\r\n/);
      expect(c.text().endsWith('\r\n\r\nBad Gateway')).toBe(true);
      await ts.waitForLog(new RegExp(`error routing request to http server 127\\.0\\.0\\.1:${deadPort}: connect ECONNREFUSED`));
    });
  });

  it('without a matching rule a CONNECT goes to the app, as in uWSGI 2.0.21', async () => {
    const envs: Array<Record<string, unknown>> = [];
    for (const port of [uwPort, ts.port]) {
      const c = await RawClient.open(port);
      c.socket.write(connectHead('example.invalid:443') + 'ignored');
      await c.until(() => c.closed || c.ended, `the app's answer through port ${port}`);
      const text = c.text();
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      expect(text).toMatch(/\r\nContent-Length: \d+\r\n/);
      envs.push(JSON.parse(body) as Record<string, unknown>);
      c.destroy();
    }
    for (const env of envs) {
      expect(env).toMatchObject({ REQUEST_METHOD: 'CONNECT', REQUEST_URI: 'example.invalid:443', PATH_INFO: 'example.invalid:443', QUERY_STRING: '' });
    }
    expect(envs[1]!['_pid']).toEqual(expect.any(Number));
  });

  it('httpconnect on a request that is not a CONNECT answers 405', async () => {
    await withServerLog(ts, async () => {
      const c = await RawClient.open(ts.port);
      c.socket.write('GET /wrong-method HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await c.until(() => c.closed || c.ended, 'the answer');
      expect(c.text()).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
      expect(c.text()).toMatch(/\r\nAllow: CONNECT\r\n/);
      await ts.waitForLog(/httpconnect: only a CONNECT request on an HTTP socket can be tunnelled/);
      c.destroy();
    });
  });
});
