/**
 * The stats server (`--stats ADDR`, spec/subsystems.md §30.5): every connection gets one JSON
 * document and is closed. With --stats-http the client's HTTP request is read first and the
 * document goes out as an HTTP/1.0 200 response, so curl and browsers can read it.
 *
 * It runs in the master (as uWSGI's does), which accepts on it itself: a stats client is not
 * client traffic, and the master is the one process that knows every worker.
 */
import fs from 'node:fs';
import net from 'node:net';
import { BindError, InvalidOptionError } from '../errors.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { parseAddress } from '../server/sockets.ts';
import type { StatsDocument } from './document.ts';
import { renderStats } from './render.ts';

export interface StatsServerOptions {
  /** The address as written (--stats). */
  address: string;
  http: boolean;
  minified: boolean;
  noCores: boolean;
  /** Build a fresh document (asks the core workers for their counters). */
  produce(): Promise<StatsDocument>;
  log: ServerLog;
}

type StatsAddress = { kind: 'tcp'; host: string; port: number; ipv6: boolean } | { kind: 'unix'; path: string };

/** uWSGI's answer head in --stats-http mode (uwsgi_send_http_stats). */
const HTTP_HEAD = 'HTTP/1.0 200 OK\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\n\r\n';
/** How long a --stats-http client may take to send its request head. */
const HTTP_HEAD_TIMEOUT_MS = 4000;
/** A request head longer than this is not waited for any further. */
const HTTP_HEAD_MAX = 8192;

/** Check a --stats address (before anything is bound, so a typo fails fast). */
export function parseStatsAddress(spec: string): StatsAddress {
  if (spec.trim().startsWith('@')) {
    // Node pads abstract names to the full sun_path length (see core/server/sockets.ts), so
    // uwsgitop and nc could never connect to the socket it would create.
    throw new InvalidOptionError(`--stats ${spec}: abstract unix sockets are not supported (Node pads the name, so no client could connect); use a socket file path (e.g. /run/app-stats.sock) or HOST:PORT`);
  }
  let addr;
  try {
    addr = parseAddress(spec);
  } catch (err) {
    throw new InvalidOptionError(`--stats ${spec}: ${(err as Error).message}`);
  }
  if (addr.family === 'fd') throw new InvalidOptionError(`--stats ${spec}: an inherited descriptor cannot be a stats server; use HOST:PORT or a unix socket path`);
  if (addr.family === 'unix') return { kind: 'unix', path: addr.path };
  return { kind: 'tcp', host: addr.host, port: addr.port, ipv6: addr.ipv6 };
}

function bindHint(code: string | undefined): string {
  if (code === 'EADDRINUSE') return 'another process is using it: stop it or choose another --stats address';
  if (code === 'EACCES') return 'permission denied: ports below 1024 need root, unix paths need a writable directory';
  if (code === 'EADDRNOTAVAIL') return 'that address does not belong to this machine: use 127.0.0.1:PORT to keep the stats private';
  if (code === 'ENOENT') return 'the directory of the socket path does not exist';
  return 'check the --stats address';
}

export class StatsServer {
  private readonly server: net.Server;
  private readonly o: StatsServerOptions;
  /** The address as clients reach it (the real port when :0 was asked). */
  readonly name: string;

  private constructor(server: net.Server, o: StatsServerOptions, name: string) {
    this.server = server;
    this.o = o;
    this.name = name;
    server.on('connection', (sock) => this.serve(sock));
  }

  /** Listen on the --stats address; rejects with a BindError that says what to do. */
  static start(o: StatsServerOptions): Promise<StatsServer> {
    const addr = parseStatsAddress(o.address);
    if (addr.kind === 'unix') {
      // As for every uWSGI unix socket: a stale socket file from a previous run is replaced.
      try {
        if (fs.lstatSync(addr.path).isSocket()) fs.unlinkSync(addr.path);
      } catch {
        // does not exist
      }
    }
    const server = net.createServer({ allowHalfOpen: false });
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new BindError(`cannot start the stats server on ${o.address}: ${err.code ?? err.message} (${bindHint(err.code)})`, err));
      });
      const onListening = (): void => {
        server.removeAllListeners('error');
        // A failing stats client must never take the master down.
        server.on('error', (err) => o.log.error(`stats server error: ${err.message}`));
        const a = server.address();
        let name = o.address;
        if (addr.kind === 'tcp' && a && typeof a === 'object') {
          const spec = o.address.trim();
          name = `${spec.slice(0, spec.lastIndexOf(':'))}:${a.port}`;
        }
        const s = new StatsServer(server, o, name);
        const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
        o.log.info(`*** Stats server enabled on ${name} fd: ${fd} ***`);
        resolve(s);
      };
      if (addr.kind === 'unix') server.listen(addr.path, onListening);
      else server.listen({ host: addr.host, port: addr.port, ipv6Only: false }, onListening);
    });
  }

  private serve(sock: net.Socket): void {
    sock.on('error', () => {
      // the client went away: nothing to report
    });
    if (!this.o.http) {
      // Whatever the client sends is read and ignored: unread bytes at close() would make the
      // kernel reset the connection, and the client could lose the end of the document.
      sock.resume();
      this.answer(sock, '');
      return;
    }
    let head = '';
    let answered = false;
    const timer = setTimeout(() => sock.destroy(), HTTP_HEAD_TIMEOUT_MS);
    const go = (): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      this.answer(sock, HTTP_HEAD);
    };
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      if (answered) return;
      head += d;
      if (head.includes('\r\n\r\n') || head.includes('\n\n') || head.length > HTTP_HEAD_MAX) go();
    });
    sock.on('end', go);
    sock.on('close', () => clearTimeout(timer));
  }

  private answer(sock: net.Socket, prefix: string): void {
    this.o
      .produce()
      .then((doc) => {
        if (!sock.destroyed) sock.end(prefix + renderStats(doc, { minified: this.o.minified, noCores: this.o.noCores }));
      })
      .catch((err: Error) => {
        this.o.log.error(`stats server: cannot build the stats document: ${err.message}`);
        sock.destroy();
      });
  }

  /** Stop accepting (a unix socket file is removed by the close). */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
