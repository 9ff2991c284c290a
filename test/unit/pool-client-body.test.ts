/**
 * A bridge may answer before the app read its request body (it drains the body afterwards).
 * The core must not write the next request on that connection until the whole body is
 * written, or the next packet lands in the middle of the body: the bridge then reads it as
 * body bytes and the next request is lost (seen under load with 3 MB unread uploads).
 *
 * A fake bridge on a unix socket answers every request at once, then consumes the body and
 * checks that it is exactly what the client sent.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PoolClient, type BodySource, type BridgeConnection, type ResponseSink } from '../../core/bridge/pool-client.ts';
import { decodeHeader, decodeVars, encodePacket, getVar, type UwsgiVars } from '../../core/protocol/uwsgi-packet.ts';

const BODY_CHUNK = Buffer.alloc(64 * 1024, 'a');
const BODY_CHUNKS = 20;

/** A body that arrives slowly, as a spooled upload read from disk does. */
function slowBody(): BodySource {
  return {
    pipe(write, _waitDrain, done) {
      let sent = 0;
      const next = (): void => {
        if (sent === BODY_CHUNKS) return done();
        write(BODY_CHUNK);
        sent++;
        setTimeout(next, 3);
      };
      next();
    },
  };
}

interface Seen {
  uri: string;
  bodyOk: boolean;
}

/** The fake bridge: answers first, then reads CONTENT_LENGTH bytes and checks they are all 'a'. */
function fakeBridge(sockPath: string, seen: Seen[]): net.Server {
  return net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let hello = true;
    let bodyLeft = 0;
    let bodyOk = true;
    let current: Seen | null = null;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, buf.length);
          if (take === 0) return;
          for (let i = 0; i < take; i++) if (buf[i] !== 0x61) bodyOk = false;
          buf = buf.subarray(take);
          bodyLeft -= take;
          if (bodyLeft === 0 && current) current.bodyOk = bodyOk;
          continue;
        }
        if (buf.length < 4) return;
        const h = decodeHeader(buf);
        if (buf.length < 4 + h.datasize) return;
        const vars = decodeVars(buf.subarray(4, 4 + h.datasize)) as UwsgiVars;
        buf = buf.subarray(4 + h.datasize);
        if (hello) {
          hello = false;
          sock.write(encodePacket(99, [['pid', '1'], ['worker_id', '1'], ['core', '0'], ['bridge_api', '1']], 1));
          continue;
        }
        current = { uri: getVar(vars, 'REQUEST_URI') ?? '?', bodyOk: true };
        seen.push(current);
        bodyLeft = Number(getVar(vars, 'CONTENT_LENGTH') ?? 0);
        bodyOk = true;
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
}

function request(pool: PoolClient, uri: string, body: BodySource | null, length: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sink: ResponseSink = {
      head: () => {},
      body: (c) => {
        chunks.push(c);
        return true;
      },
      onDrain: () => {},
      end: () => resolve(Buffer.concat(chunks).toString()),
      fail: (status, reason) => reject(new Error(`${status} ${reason}`)),
      bindAbort: () => {},
    };
    const vars: UwsgiVars = [['REQUEST_URI', uri], ['REQUEST_METHOD', body ? 'POST' : 'GET']];
    if (length) vars.push(['CONTENT_LENGTH', String(length)]);
    pool.acquire((err, conn: BridgeConnection | null) => {
      if (err || !conn) return reject(err ?? new Error('no connection'));
      conn.send(encodePacket(0, vars), body, false, sink, { bridge: conn.identity!, uri });
    }, body === null);
  });
}

test('the next request waits until an early-answered request body is fully written', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-pool-'));
  const sockPath = path.join(dir, 'bridge.sock');
  const seen: Seen[] = [];
  const server = fakeBridge(sockPath, seen);
  await new Promise<void>((r) => server.listen(sockPath, r));
  const pool = new PoolClient(sockPath, 1, 4);
  try {
    const first = request(pool, '/upload', slowBody(), BODY_CHUNK.length * BODY_CHUNKS);
    expect(await first).toBe('ok');
    // The response is complete while most of the body is still on its way.
    expect(await request(pool, '/next', null, 0)).toBe('ok');
    expect(await request(pool, '/third', null, 0)).toBe('ok');
    expect(seen).toEqual([
      { uri: '/upload', bodyOk: true },
      { uri: '/next', bodyOk: true },
      { uri: '/third', bodyOk: true },
    ]);
  } finally {
    pool.close();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 20000);
