/**
 * The hello that starts every bridge connection (docs/bridge-protocol.md §3.1) ends exactly
 * once: a bridge that answers it wrongly gets its connection destroyed, and the 'close' that
 * follows must not report the hello a second time (the pool counts connections being opened
 * by these reports).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BridgeConnection } from '../../core/bridge/pool-client.ts';
import { encodePacket } from '../../core/protocol/uwsgi-packet.ts';

function fakeBridge(sockPath: string, answer: Buffer): net.Server {
  return net.createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', () => sock.write(answer));
  }).listen(sockPath);
}

async function helloReports(answer: Buffer): Promise<Array<string | null>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hello-'));
  const sockPath = path.join(dir, 'bridge.sock');
  const server = fakeBridge(sockPath, answer);
  await new Promise((r) => server.once('listening', r));
  const reports: Array<string | null> = [];
  const conn = new BridgeConnection(sockPath);
  conn.onHello = (err) => reports.push(err ? err.message : null);
  await new Promise<void>((resolve) => conn.socket.once('close', () => setImmediate(resolve)));
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return reports;
}

describe('the bridge hello', () => {
  it('a wrong answer (modifiers) is reported once, though the connection then closes', async () => {
    expect(await helloReports(Buffer.from([99, 0, 0, 7]))).toEqual(['bridge answered the hello with modifier 99/7']);
  });

  it('an invalid vars block is reported once', async () => {
    expect(await helloReports(Buffer.from([99, 3, 0, 1, 9, 0, 0]))).toEqual(['bridge sent an invalid hello']);
  });

  it('a FastCGI pool whose bridge names no responder is reported once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hello-'));
    const sockPath = path.join(dir, 'bridge.sock');
    const server = fakeBridge(sockPath, encodePacket(99, [['pid', '1'], ['worker_id', '1'], ['core', '0']], 1));
    await new Promise((r) => server.once('listening', r));
    const reports: Array<string | null> = [];
    const conn = new BridgeConnection(sockPath, { prepare: () => ({ params: [] }) });
    conn.onHello = (err) => reports.push(err ? err.message : null);
    await new Promise<void>((resolve) => conn.socket.once('close', () => setImmediate(resolve)));
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
    expect(reports).toEqual(['the bridge did not hand off a FastCGI responder (no "fastcgi" in its hello)']);
  });
});
