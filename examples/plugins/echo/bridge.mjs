/**
 * The echo plugin's bridge: the tsuwsgi bridge contract (docs/bridge-protocol.md) in a few
 * lines of Node — fd 3 is the pool socket, fd 4 the control channel; a hello packet
 * (modifier1 99) makes a connection persistent; each response carries a Content-Length.
 */
import net from 'node:net';

const config = JSON.parse(process.env.TSUWSGI_BRIDGE_CONFIG ?? '{}');
const prefix = config.plugin?.prefix ?? 'echo';
const control = new net.Socket({ fd: 4, readable: true, writable: true });
control.on('end', () => process.exit(0));
control.on('error', () => process.exit(0));
control.on('data', (d) => {
  for (const line of d.toString().split('\n').filter(Boolean)) if (JSON.parse(line).cmd === 'stop') process.exit(0);
});

function vars(block) {
  const out = [];
  for (let o = 0; o < block.length; ) {
    const kl = block.readUInt16LE(o);
    const k = block.toString('latin1', o + 2, o + 2 + kl);
    o += 2 + kl;
    const vl = block.readUInt16LE(o);
    out.push([k, block.toString('latin1', o + 2, o + 2 + vl)]);
    o += 2 + vl;
  }
  return out;
}

function packet(modifier1, modifier2, pairs) {
  const body = Buffer.concat(
    pairs.flatMap(([k, v]) => {
      const kb = Buffer.from(k, 'latin1');
      const vb = Buffer.from(v, 'latin1');
      const kl = Buffer.alloc(2);
      const vl = Buffer.alloc(2);
      kl.writeUInt16LE(kb.length);
      vl.writeUInt16LE(vb.length);
      return [kl, kb, vl, vb];
    }),
  );
  const head = Buffer.from([modifier1, 0, 0, modifier2]);
  head.writeUInt16LE(body.length, 1);
  return Buffer.concat([head, body]);
}

net
  .createServer((sock) => {
    let buf = Buffer.alloc(0);
    let persistent = false;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 4) return;
        const size = buf.readUInt16LE(1);
        if (buf.length < 4 + size) return;
        const pairs = vars(buf.subarray(4, 4 + size));
        if (buf[0] === 99) {
          buf = buf.subarray(4 + size);
          persistent = true;
          sock.write(packet(99, 1, [['pid', String(process.pid)], ['worker_id', String(config.workerId)], ['core', '0'], ['bridge_api', '1']]));
          continue;
        }
        const env = Object.fromEntries(pairs);
        const length = Number(env.CONTENT_LENGTH || 0);
        if (buf.length < 4 + size + length) return;
        buf = buf.subarray(4 + size + length);
        const text = `${prefix}\n${pairs.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
        const body = env.REQUEST_METHOD === 'HEAD' ? '' : text;
        sock.write(`${env.SERVER_PROTOCOL || 'HTTP/1.0'} 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${body}`);
        if (!persistent) sock.end();
      }
    });
    sock.on('error', () => {});
  })
  .listen({ fd: 3, backlog: config.listenBacklog ?? 100 }, () => {
    control.write(JSON.stringify({ event: 'ready', pid: process.pid, runtime: 'node-echo', runtimeVersion: process.version, bridgeApi: 1, threads: 1, apps: config.apps ?? [] }) + '\n');
  });
