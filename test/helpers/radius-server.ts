/**
 * A small RADIUS server for tests (RFC 2865, PAP only), written independently of
 * plugins/router_radius so the two check each other: it decodes every Access-Request it gets,
 * recovers the User-Password with ITS shared secret (a client with another secret sends a
 * password that decodes to garbage, which is how a real server notices), and answers
 * Access-Accept or Access-Reject signed with its secret — or stays silent, for timeouts.
 *
 *   const radius = await startRadiusServer({ secret: 's3cret', users: { alice: 'wonderland' } });
 *   … server=127.0.0.1:${radius.port},secret=s3cret …
 *   radius.received   // every request, decoded
 *   await radius.close();
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';

export interface RadiusAttribute {
  type: number;
  value: Buffer;
}

export interface ReceivedRequest {
  code: number;
  identifier: number;
  authenticator: Buffer;
  /** The Length field; the datagram's size is `bytes`. */
  length: number;
  bytes: number;
  attributes: RadiusAttribute[];
  /** User-Name as text, '' when absent. */
  user: string;
  /** The hidden User-Password's size on the wire (a multiple of 16). */
  passwordWireLength: number;
  /** The password recovered with the server's secret, trailing NULs removed. */
  password: string;
  /** What the server did. */
  answer: 'accept' | 'reject' | 'silent';
}

export interface RadiusServerOptions {
  secret: string;
  users: Record<string, string>;
  /** Answer nothing at all (the client must time out). */
  silent?: boolean;
  /** Add a Reply-Message attribute (type 18) of this text to every Access-Accept. */
  replyMessage?: string;
}

export interface RadiusServer {
  readonly port: number;
  readonly received: ReceivedRequest[];
  /** Change the behaviour between requests (e.g. go silent). */
  options: RadiusServerOptions;
  close(): Promise<void>;
}

function attributesOf(packet: Buffer, length: number): RadiusAttribute[] {
  const out: RadiusAttribute[] = [];
  for (let at = 20; at + 2 <= length; ) {
    const type = packet[at]!;
    const len = packet[at + 1]!;
    if (len < 2 || at + len > length) throw new Error(`malformed attribute ${type} (length ${len}) at offset ${at}`);
    out.push({ type, value: Buffer.from(packet.subarray(at + 2, at + len)) });
    at += len;
  }
  return out;
}

/** RFC 2865 §5.2, reversed: c(i) XOR MD5(secret + c(i-1)), c(0) = the Request Authenticator. */
function revealPassword(hidden: Buffer, secret: Buffer, authenticator: Buffer): string {
  const out = Buffer.alloc(hidden.length);
  let previous = authenticator;
  for (let i = 0; i < hidden.length; i += 16) {
    const md5 = createHash('md5').update(secret).update(previous).digest();
    for (let j = 0; j < 16 && i + j < hidden.length; j++) out[i + j] = hidden[i + j]! ^ md5[j]!;
    previous = hidden.subarray(i, i + 16);
  }
  let end = out.length;
  while (end > 0 && out[end - 1] === 0) end--;
  return out.subarray(0, end).toString('utf8');
}

function reply(code: number, request: Buffer, attributes: Buffer, secret: Buffer): Buffer {
  const length = 20 + attributes.length;
  const head = Buffer.alloc(20);
  head[0] = code;
  head[1] = request[1]!;
  head.writeUInt16BE(length, 2);
  request.copy(head, 4, 4, 20);
  const authenticator = createHash('md5').update(head).update(attributes).update(secret).digest();
  authenticator.copy(head, 4);
  return Buffer.concat([head, attributes]);
}

export async function startRadiusServer(options: RadiusServerOptions): Promise<RadiusServer> {
  const socket = dgram.createSocket('udp4');
  const received: ReceivedRequest[] = [];
  const server = {
    port: 0,
    received,
    options,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, rinfo) => {
    const o = server.options;
    const secret = Buffer.from(o.secret);
    const length = msg.readUInt16BE(2);
    const attributes = attributesOf(msg, Math.min(length, msg.length));
    const get = (t: number): Buffer | undefined => attributes.find((a) => a.type === t)?.value;
    const user = get(1)?.toString('utf8') ?? '';
    const hidden = get(2) ?? Buffer.alloc(0);
    const authenticator = Buffer.from(msg.subarray(4, 20));
    const password = revealPassword(hidden, secret, authenticator);
    const ok = msg[0] === 1 && Object.prototype.hasOwnProperty.call(o.users, user) && o.users[user] === password;
    const answer: ReceivedRequest['answer'] = o.silent ? 'silent' : ok ? 'accept' : 'reject';
    received.push({ code: msg[0]!, identifier: msg[1]!, authenticator, length, bytes: msg.length, attributes, user, passwordWireLength: hidden.length, password, answer });
    if (answer === 'silent') return;
    let attrs = Buffer.alloc(0);
    if (answer === 'accept' && o.replyMessage !== undefined) {
      const text = Buffer.from(o.replyMessage);
      attrs = Buffer.concat([Buffer.from([18, text.length + 2]), text]);
    }
    socket.send(reply(answer === 'accept' ? 2 : 3, msg, attrs, secret), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  server.port = socket.address().port;
  return server;
}
