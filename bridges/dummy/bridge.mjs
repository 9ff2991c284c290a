#!/usr/bin/env node
/**
 * The dummy bridge: a minimal, dependency-free implementation of docs/bridge-protocol.md in
 * Node, so core tests (supervision, framing, harakiri, reload) need no language runtime, and
 * so the contract has a second, independent implementation to check the core against.
 *
 * Its one "app" answers by path:
 *   /sleep?ms=N   wait N ms, then 200 "done"
 *   /echo         the request body
 *   /pid          the bridge's pid
 *   /chunked      a body without Content-Length, in three pieces
 *   /crash        exit the process mid-request (status 3)
 *   anything else "Hello World"
 */
import net from 'node:net';

const config = JSON.parse(process.env.TSUWSGI_BRIDGE_CONFIG ?? '{}');
const control = new net.Socket({ fd: Number(process.env.TSUWSGI_CONTROL_FD ?? 4), readable: true, writable: true });
const send = (msg) => control.write(JSON.stringify(msg) + '\n');
let stopping = false;
const connections = new Set();

// EOF on the control channel: the core is gone, so are we.
control.on('end', () => process.exit(0));
control.on('error', () => process.exit(0));
let pending = '';
control.on('data', (d) => {
  pending += d.toString();
  let nl;
  while ((nl = pending.indexOf('\n')) !== -1) {
    const msg = JSON.parse(pending.slice(0, nl));
    pending = pending.slice(nl + 1);
    if (msg.cmd === 'stop' && !msg.graceful) process.exit(0);
    if (msg.cmd === 'stop') {
      // Stop accepting; keep serving the connections we have (the core closes them once it
      // has moved on, so nothing it already sent is lost), and exit when they are gone.
      stopping = true;
      server.close();
      if (connections.size === 0) process.exit(0);
    }
    if (msg.cmd === 'stack') process.stderr.write(`dummy bridge ${process.pid} stack: ${new Error('stack dump').stack}\n`);
  }
});
process.on('SIGINT', () => {});

function packVars(pairs) {
  const parts = [];
  for (const [k, v] of pairs) {
    const kb = Buffer.from(k, 'latin1');
    const vb = Buffer.from(v, 'latin1');
    const h = Buffer.alloc(2);
    h.writeUInt16LE(kb.length);
    const hv = Buffer.alloc(2);
    hv.writeUInt16LE(vb.length);
    parts.push(h, kb, hv, vb);
  }
  return Buffer.concat(parts);
}

function parseVars(block) {
  const vars = {};
  let o = 0;
  while (o < block.length) {
    const kl = block.readUInt16LE(o);
    const k = block.toString('latin1', o + 2, o + 2 + kl);
    o += 2 + kl;
    const vl = block.readUInt16LE(o);
    vars[k] = block.toString('latin1', o + 2, o + 2 + vl);
    o += 2 + vl;
  }
  return vars;
}

function respond(sock, persistent, vars, status, body, chunks) {
  const proto = vars.SERVER_PROTOCOL || 'HTTP/1.0';
  const head = vars.REQUEST_METHOD === 'HEAD';
  if (chunks && persistent) {
    let out = `${proto} ${status}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`;
    if (!head) for (const c of chunks) out += `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`;
    sock.write(out + (head ? '' : '0\r\n\r\n'));
    return;
  }
  const payload = chunks ? Buffer.from(chunks.join('')) : Buffer.from(body);
  const headers = `${proto} ${status}\r\nContent-Type: text/plain\r\n${chunks ? '' : `Content-Length: ${payload.length}\r\n`}\r\n`;
  sock.write(head ? headers : Buffer.concat([Buffer.from(headers), payload]));
}

function serve(sock) {
  connections.add(sock);
  sock.busy = false;
  let buf = Buffer.alloc(0);
  let persistent = false;
  let core = 0;
  /** Bytes the next step needs in `buf` (header, vars, then the body). */
  let needed = 4;
  let pieces = [];
  let piecesLength = 0;
  const step = () => {
    if (pieces.length) {
      buf = Buffer.concat([buf, ...pieces]);
      pieces = [];
      piecesLength = 0;
    }
    needed = 4;
    if (sock.busy || buf.length < 4) return;
    const mod1 = buf[0];
    const size = buf.readUInt16LE(1);
    needed = 4 + size;
    if (buf.length < 4 + size) return;
    const block = buf.subarray(4, 4 + size);
    if (mod1 === 99) {
      buf = buf.subarray(4 + size);
      persistent = true;
      const reply = packVars([['pid', String(process.pid)], ['worker_id', String(config.workerId)], ['core', String(core)], ['bridge_api', '1']]);
      const h = Buffer.from([99, 0, 0, 1]);
      h.writeUInt16LE(reply.length, 1);
      sock.write(Buffer.concat([h, reply]));
      return step();
    }
    const vars = parseVars(block);
    const cl = Number(vars.CONTENT_LENGTH || 0);
    needed = 4 + size + cl;
    if (buf.length < needed) return;
    const body = buf.subarray(4 + size, 4 + size + cl);
    buf = buf.subarray(4 + size + cl);
    sock.busy = true;
    const done = () => {
      sock.busy = false;
      if (!persistent) sock.end();
      else step();
    };
    const path = vars.PATH_INFO || '/';
    const query = new URLSearchParams(vars.QUERY_STRING || '');
    if (path === '/sleep') {
      setTimeout(() => {
        respond(sock, persistent, vars, '200 OK', 'done');
        done();
      }, Number(query.get('ms') || 1000));
      return;
    }
    if (path === '/crash') process.exit(3);
    if (path === '/echo') respond(sock, persistent, vars, '200 OK', body);
    else if (path === '/pid') respond(sock, persistent, vars, '200 OK', String(process.pid));
    else if (path === '/chunked') respond(sock, persistent, vars, '200 OK', null, ['one ', 'two ', 'three']);
    else respond(sock, persistent, vars, '200 OK', 'Hello World');
    done();
  };
  // Bytes arrive in pieces; join them only once enough is there for the next step (joining
  // on every piece would be quadratic for large bodies).
  sock.on('data', (d) => {
    pieces.push(d);
    piecesLength += d.length;
    if (buf.length + piecesLength >= needed) step();
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    connections.delete(sock);
    if (stopping && connections.size === 0) process.exit(0);
  });
}

const server = net.createServer(serve);
server.listen({ fd: Number(process.env.TSUWSGI_LISTEN_FD ?? 3), backlog: config.listenBacklog ?? 100 }, () => {
  send({ event: 'ready', pid: process.pid, runtime: 'node-dummy', runtimeVersion: process.version, bridgeApi: 1, threads: config.threads ?? 1, apps: config.apps ?? [] });
});
