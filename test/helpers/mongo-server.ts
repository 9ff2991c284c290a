/**
 * A fake MongoDB server for the gridfs tests (Debian 12 ships no MongoDB): a TCP server on a
 * free port speaking the real wire protocol well enough for the official `mongodb` driver.
 *
 * - OP_QUERY `isMaster` on `admin.$cmd`, answered with OP_REPLY: the driver's first handshake
 *   on every connection (it only knows the server speaks OP_MSG once it has the answer);
 * - OP_MSG for everything after: hello/isMaster, ping, buildInfo, find, getMore,
 *   killCursors, endSessions, and saslStart (refused: see `rejectAuth`).
 *
 * It holds GridFS files seeded in memory (`seedFile`: an fs.files document and its fs.chunks,
 * per db and bucket) and answers `find` with filter (equality, $eq/$gt/$gte/$lt/$lte/$in),
 * sort, skip, limit, batchSize and singleBatch. Batches are capped at `batchLimit` documents so
 * tests reach getMore without megabytes of data (a real server caps them by size instead).
 *
 * Strict on purpose: an unknown command gets `{ok: 0, errmsg, code: 59}` and is recorded in
 * `unknownCommands`, so a driver surprise shows in the test output instead of passing silently.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { Binary, BSON, Long, ObjectId, type Document } from 'mongodb';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const MORE_TO_COME = 1 << 1;
const CHECKSUM_PRESENT = 1 << 0;

export interface SeedFile {
  filename: string;
  data: Buffer;
  chunkSize?: number;
  contentType?: string;
  uploadDate?: Date;
  /** Store the md5 field (hex of the data's MD5), as older GridFS writers did. Default true. */
  md5?: boolean;
  db?: string;
  bucket?: string;
}

export interface FakeMongoOptions {
  /** Most documents in one batch (firstBatch / nextBatch). Default 101, as mongod's first batch. */
  batchLimit?: number;
  /** Answer saslStart with AuthenticationFailed (code 18). Default true (no user exists). */
  rejectAuth?: boolean;
}

interface Cursor {
  ns: string;
  docs: Document[];
}

export class FakeMongoServer {
  readonly port: number;
  /** Every command name received, in order (handshakes included). */
  readonly commands: string[] = [];
  /** Commands it did not know (answered ok: 0). */
  readonly unknownCommands: string[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly collections = new Map<string, Document[]>();
  private readonly cursors = new Map<string, Cursor>();
  private readonly batchLimit: number;
  private readonly rejectAuth: boolean;
  private nextCursorId = 1000n;
  private nextRequestId = 1;

  private constructor(server: net.Server, port: number, opts: FakeMongoOptions) {
    this.server = server;
    this.port = port;
    this.batchLimit = opts.batchLimit ?? 101;
    this.rejectAuth = opts.rejectAuth ?? true;
  }

  static async start(opts: FakeMongoOptions = {}): Promise<FakeMongoServer> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const fake = new FakeMongoServer(server, (server.address() as net.AddressInfo).port, opts);
    server.on('connection', (s) => fake.accept(s));
    return fake;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Store a GridFS file: its fs.files document and its chunks. Returns the files document. */
  seedFile(f: SeedFile): Document {
    const db = f.db ?? 'test';
    const bucket = f.bucket ?? 'fs';
    const chunkSize = f.chunkSize ?? 255 * 1024;
    const id = new ObjectId();
    const doc: Document = {
      _id: id,
      length: f.data.length,
      chunkSize,
      uploadDate: f.uploadDate ?? new Date(),
      filename: f.filename,
    };
    if (f.md5 !== false) doc.md5 = crypto.createHash('md5').update(f.data).digest('hex');
    if (f.contentType) doc.contentType = f.contentType;
    this.coll(`${db}.${bucket}.files`).push(doc);
    const chunks = this.coll(`${db}.${bucket}.chunks`);
    for (let n = 0; n * chunkSize < f.data.length; n++) {
      chunks.push({ _id: new ObjectId(), files_id: id, n, data: new Binary(f.data.subarray(n * chunkSize, (n + 1) * chunkSize)) });
    }
    return doc;
  }

  /** Connections accepted since start. */
  connectionsAccepted = 0;

  /** Open client connections right now. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private coll(ns: string): Document[] {
    let c = this.collections.get(ns);
    if (!c) this.collections.set(ns, (c = []));
    return c;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    this.connectionsAccepted++;
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      while (buf.length >= 16) {
        const len = buf.readInt32LE(0);
        if (len < 16 || len > 48 * 1024 * 1024) {
          socket.destroy();
          return;
        }
        if (buf.length < len) break;
        const msg = buf.subarray(0, len);
        buf = buf.subarray(len);
        this.handle(socket, msg);
      }
    });
  }

  private handle(socket: net.Socket, msg: Buffer): void {
    const requestId = msg.readInt32LE(4);
    const opCode = msg.readInt32LE(12);
    if (opCode === OP_QUERY) {
      // flags, fullCollectionName, numberToSkip, numberToReturn, query
      const nsEnd = msg.indexOf(0, 20);
      const ns = msg.toString('utf8', 20, nsEnd);
      const queryStart = nsEnd + 1 + 8;
      const query = BSON.deserialize(msg.subarray(queryStart, queryStart + msg.readInt32LE(queryStart)));
      const reply = ns.endsWith('.$cmd') ? this.safeCommand(ns.slice(0, -5), query) : { ok: 0, errmsg: `OP_QUERY on ${ns} is not supported`, code: 352 };
      socket.write(this.opReply(requestId, reply));
      return;
    }
    if (opCode !== OP_MSG) {
      this.unknownCommands.push(`opCode ${opCode}`);
      socket.destroy();
      return;
    }
    const flags = msg.readUInt32LE(16);
    const end = flags & CHECKSUM_PRESENT ? msg.length - 4 : msg.length;
    let body: Document | null = null;
    let at = 20;
    while (at < end) {
      const kind = msg[at]!;
      at += 1;
      const size = msg.readInt32LE(at);
      if (kind === 0) body = BSON.deserialize(msg.subarray(at, at + size));
      else {
        // A document sequence (kind 1: inserts, updates): the gridfs plugin only reads, so any is a surprise.
        this.unknownCommands.push('OP_MSG document sequence');
      }
      at += size;
    }
    const reply = body ? this.safeCommand(String(body.$db ?? ''), body) : { ok: 0, errmsg: 'OP_MSG without a body section', code: 9 };
    if (flags & MORE_TO_COME) return;
    socket.write(this.opMsg(requestId, reply));
  }

  /** command(), with a surprise (an unimplemented filter operator…) answered as an error, not thrown. */
  private safeCommand(db: string, cmd: Document): Document {
    try {
      return this.command(db, cmd);
    } catch (err) {
      this.unknownCommands.push(`${Object.keys(cmd)[0] ?? ''}: ${(err as Error).message}`);
      return { ok: 0, errmsg: (err as Error).message, code: 2, codeName: 'BadValue' };
    }
  }

  private command(db: string, cmd: Document): Document {
    const name = Object.keys(cmd)[0] ?? '';
    this.commands.push(name);
    switch (name) {
      case 'isMaster':
      case 'ismaster':
      case 'hello':
        return {
          helloOk: true,
          isWritablePrimary: true,
          ismaster: true,
          maxBsonObjectSize: 16 * 1024 * 1024,
          maxMessageSizeBytes: 48 * 1000 * 1000,
          maxWriteBatchSize: 100000,
          localTime: new Date(),
          logicalSessionTimeoutMinutes: 30,
          connectionId: 1,
          minWireVersion: 0,
          maxWireVersion: 17,
          readOnly: false,
          ok: 1,
        };
      case 'ping':
        return { ok: 1 };
      case 'buildInfo':
      case 'buildinfo':
        return { version: '6.0.0', versionArray: [6, 0, 0, 0], maxBsonObjectSize: 16 * 1024 * 1024, ok: 1 };
      case 'endSessions':
        return { ok: 1 };
      case 'saslStart':
        if (this.rejectAuth) return { ok: 0, errmsg: 'Authentication failed.', code: 18, codeName: 'AuthenticationFailed' };
        break;
      case 'find':
        return this.find(db, cmd);
      case 'getMore':
        return this.getMore(db, cmd);
      case 'killCursors': {
        const ids = (cmd.cursors as unknown[]).map((x) => String(x));
        for (const id of ids) this.cursors.delete(id);
        return { cursorsKilled: cmd.cursors, cursorsNotFound: [], cursorsAlive: [], cursorsUnknown: [], ok: 1 };
      }
    }
    this.unknownCommands.push(name);
    return { ok: 0, errmsg: `no such command: '${name}'`, code: 59, codeName: 'CommandNotFound' };
  }

  private find(db: string, cmd: Document): Document {
    const ns = `${db}.${String(cmd.find)}`;
    let docs = this.coll(ns).filter((d) => matches(d, (cmd.filter as Document | undefined) ?? {}));
    if (cmd.sort) docs = sortDocs(docs, cmd.sort as Document);
    if (typeof cmd.skip === 'number') docs = docs.slice(cmd.skip);
    const limit = typeof cmd.limit === 'number' && cmd.limit !== 0 ? Math.abs(cmd.limit) : Infinity;
    docs = docs.slice(0, limit);
    const batch = this.batchSize(cmd.batchSize);
    const first = docs.slice(0, batch);
    const rest = docs.slice(batch);
    let id = 0n;
    if (rest.length > 0 && cmd.singleBatch !== true && limit !== 1) {
      id = this.nextCursorId++;
      this.cursors.set(String(id), { ns, docs: rest });
    }
    return { cursor: { firstBatch: first, id: Long.fromBigInt(id), ns }, ok: 1 };
  }

  private getMore(db: string, cmd: Document): Document {
    const key = String(cmd.getMore);
    const c = this.cursors.get(key);
    if (!c) return { ok: 0, errmsg: `cursor id ${key} not found`, code: 43, codeName: 'CursorNotFound' };
    const batch = this.batchSize(cmd.batchSize);
    const next = c.docs.splice(0, batch);
    let id = BigInt(key);
    if (c.docs.length === 0) {
      this.cursors.delete(key);
      id = 0n;
    }
    return { cursor: { nextBatch: next, id: Long.fromBigInt(id), ns: `${db}.${String(cmd.collection)}` }, ok: 1 };
  }

  private batchSize(asked: unknown): number {
    const n = typeof asked === 'number' && asked > 0 ? asked : Infinity;
    return Math.min(n, this.batchLimit);
  }

  private header(length: number, responseTo: number, opCode: number): Buffer {
    const h = Buffer.alloc(16);
    h.writeInt32LE(length, 0);
    h.writeInt32LE(this.nextRequestId++, 4);
    h.writeInt32LE(responseTo, 8);
    h.writeInt32LE(opCode, 12);
    return h;
  }

  private opReply(responseTo: number, doc: Document): Buffer {
    const body = BSON.serialize(doc);
    const fixed = Buffer.alloc(20); // responseFlags, cursorID (int64), startingFrom, numberReturned
    fixed.writeInt32LE(1, 16);
    return Buffer.concat([this.header(16 + 20 + body.length, responseTo, OP_REPLY), fixed, body]);
  }

  private opMsg(responseTo: number, doc: Document): Buffer {
    const body = BSON.serialize(doc);
    const fixed = Buffer.alloc(5); // flagBits 0, section kind 0
    return Buffer.concat([this.header(16 + 5 + body.length, responseTo, OP_MSG), fixed, body]);
  }
}

/** A listening TCP server that accepts connections and never answers: a hung MongoDB. */
export async function startSilentServer(): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** BSON-aware equality: ObjectId, Date, Binary and plain values compared by their canonical EJSON. */
function same(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return a === b;
  return BSON.EJSON.stringify(a as Document, { relaxed: false }) === BSON.EJSON.stringify(b as Document, { relaxed: false });
}

function order(a: unknown, b: unknown): number {
  const x = a instanceof Date ? a.getTime() : a;
  const y = b instanceof Date ? b.getTime() : b;
  if (x === y || same(x, y)) return 0;
  if (x === undefined) return -1;
  if (y === undefined) return 1;
  return (x as number) < (y as number) ? -1 : 1;
}

function matches(doc: Document, filter: Document): boolean {
  for (const [field, cond] of Object.entries(filter)) {
    const value = doc[field];
    const ops = typeof cond === 'object' && cond !== null && !(cond instanceof Date) && !('_bsontype' in cond) && Object.keys(cond).every((k) => k.startsWith('$')) && Object.keys(cond).length > 0;
    if (!ops) {
      if (!same(value, cond)) return false;
      continue;
    }
    for (const [op, arg] of Object.entries(cond as Document)) {
      const ok =
        op === '$eq' ? same(value, arg)
        : op === '$gt' ? value !== undefined && order(value, arg) > 0
        : op === '$gte' ? value !== undefined && order(value, arg) >= 0
        : op === '$lt' ? value !== undefined && order(value, arg) < 0
        : op === '$lte' ? value !== undefined && order(value, arg) <= 0
        : op === '$in' ? (arg as unknown[]).some((x) => same(value, x))
        : (() => {
            throw new Error(`fake mongo: filter operator ${op} is not implemented`);
          })();
      if (!ok) return false;
    }
  }
  return true;
}

function sortDocs(docs: Document[], sort: Document): Document[] {
  const keys = Object.entries(sort) as Array<[string, number]>;
  return [...docs].sort((a, b) => {
    for (const [k, dir] of keys) {
      const c = order(a[k], b[k]);
      if (c !== 0) return dir < 0 ? -c : c;
    }
    return 0;
  });
}
