/**
 * Socket addresses (spec/core.md §2.1) and binding.
 *
 * The master binds every socket but never accepts on it: it holds a raw libuv handle that is
 * bound and not listening, and hands the file descriptor to whoever serves it (a core worker
 * for client sockets, the bridges of a pool for the pool's unix socket), which calls
 * listen() and accepts. A Node `net.Server` cannot do that — it always starts accepting —
 * hence the internal `tcp_wrap`/`pipe_wrap` bindings, used only in this file.
 */
import fs from 'node:fs';
import util from 'node:util';
import { BindError, InvalidOptionError } from '../errors.ts';

export type SocketProtocol = 'uwsgi' | 'http';

export type ParsedAddress =
  | { family: 'tcp'; host: string; port: number; ipv6: boolean }
  | { family: 'unix'; path: string; abstract: boolean }
  | { family: 'fd'; fd: number };

export interface BoundSocket {
  /** Index in declaration order (uWSGI's socket number). */
  index: number;
  protocol: SocketProtocol;
  /** Which option declared it ("socket", "http-socket", "http"): logs and modifiers differ. */
  option: string;
  /** The address as written by the user. */
  spec: string;
  /** The address after binding (real port when 0 was asked). */
  name: string;
  fd: number;
  family: 'tcp' | 'unix';
}

/** Parse a uWSGI socket address. The last ':' separates the port; no ':' means a unix path. */
export function parseAddress(spec: string): ParsedAddress {
  const s = spec.trim();
  if (s.startsWith('fd://')) {
    const fd = Number(s.slice(5));
    if (!Number.isInteger(fd) || fd < 0) throw new InvalidOptionError(`invalid socket address "${spec}": fd:// needs a descriptor number`);
    return { family: 'fd', fd };
  }
  if (s.startsWith('@')) {
    // Node's pipe binding (up to at least Node 20) pads an abstract name with NUL bytes to the
    // full sun_path length, so the socket would exist under a name no other program (nginx,
    // uwsgi clients) connects to. Refuse it rather than bind an unreachable socket.
    throw new InvalidOptionError(`abstract unix socket "${spec}" is not supported: Node pads abstract names, so clients could not connect; use a socket file path instead (e.g. /run/app.sock)`);
  }
  const colon = s.lastIndexOf(':');
  if (colon === -1) {
    if (s === '') throw new InvalidOptionError('empty socket address: use HOST:PORT, :PORT or a unix socket path');
    if (Buffer.byteLength(s) > 107) throw new InvalidOptionError(`invalid UNIX socket address "${spec}": the path is longer than 107 bytes`);
    return { family: 'unix', path: s, abstract: false };
  }
  let host = s.slice(0, colon);
  const portText = s.slice(colon + 1);
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    throw new InvalidOptionError(`invalid socket address "${spec}": the port must be a number from 0 to 65535`);
  }
  let ipv6 = false;
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    ipv6 = true;
  }
  if (host === '') host = '0.0.0.0';
  if (host === 'localhost') host = '127.0.0.1';
  return { family: 'tcp', host, port: Number(portText), ipv6 };
}

interface RawHandle {
  fd: number;
  bind(host: string, port: number): number;
  bind6(host: string, port: number, flags: number): number;
  getsockname(out: { address?: string; port?: number }): number;
  close(): void;
}
interface RawPipeHandle {
  fd: number;
  bind(path: string): number;
  close(): void;
}

type Bindings = {
  tcp: { TCP: new (type: number) => RawHandle; constants: { SERVER: number } };
  pipe: { Pipe: new (type: number) => RawPipeHandle; constants: { SERVER: number } };
};
let bindings: Bindings | null = null;
function rawBindings(): Bindings {
  if (!bindings) {
    // process.binding is deprecated for userland but remains the only way to bind a socket
    // without accepting on it.
    const binding = (process as unknown as { binding(name: string): unknown }).binding;
    bindings = {
      tcp: binding.call(process, 'tcp_wrap') as Bindings['tcp'],
      pipe: binding.call(process, 'pipe_wrap') as Bindings['pipe'],
    };
  }
  return bindings;
}

/** Handles stay referenced here so the descriptors stay open for the life of the process. */
const heldHandles: Array<RawHandle | RawPipeHandle> = [];

function errName(code: number): string {
  try {
    return util.getSystemErrorName(code);
  } catch {
    return String(code);
  }
}

function bindHint(code: string): string {
  if (code === 'EADDRINUSE') return 'another process is using it: stop it or choose another address';
  if (code === 'EACCES') return 'permission denied: ports below 1024 need root, unix paths need a writable directory';
  if (code === 'EADDRNOTAVAIL') return 'that address does not belong to this machine';
  return 'check the address';
}

/** Bind (without listening) and return the descriptor. */
export function bindAddress(addr: ParsedAddress, spec: string): { fd: number; name: string; family: 'tcp' | 'unix' } {
  if (addr.family === 'fd') return { fd: addr.fd, name: spec, family: 'tcp' };
  const b = rawBindings();
  if (addr.family === 'unix') {
    const h = new b.pipe.Pipe(b.pipe.constants.SERVER);
    const path = addr.abstract ? '\0' + addr.path : addr.path;
    if (!addr.abstract) {
      // uWSGI unlinks a stale socket file before binding.
      try {
        if (fs.lstatSync(addr.path).isSocket()) fs.unlinkSync(addr.path);
      } catch {
        /* does not exist */
      }
    }
    const err = h.bind(path);
    if (err) {
      const code = errName(err);
      throw new BindError(`cannot bind unix socket ${spec}: ${code} (${bindHint(code)})`);
    }
    heldHandles.push(h);
    return { fd: h.fd, name: addr.abstract ? '@' + addr.path : addr.path, family: 'unix' };
  }
  const h = new b.tcp.TCP(b.tcp.constants.SERVER);
  const err = addr.ipv6 ? h.bind6(addr.host, addr.port, 0) : h.bind(addr.host, addr.port);
  if (err) {
    const code = errName(err);
    throw new BindError(`cannot bind ${spec}: ${code} (${bindHint(code)})`);
  }
  const out: { address?: string; port?: number } = {};
  h.getsockname(out);
  // libuv defers EADDRINUSE from bind() to listen() (uv__tcp_bind's delayed_error), and
  // the master never listens: a socket left unbound (port 0 where a port was asked) is the
  // sign that the address is taken.
  if (addr.port !== 0 && !out.port) {
    h.close();
    throw new BindError(`cannot bind ${spec}: EADDRINUSE (${bindHint('EADDRINUSE')})`);
  }
  heldHandles.push(h);
  // Logged as written (":9090" stays ":9090", as uWSGI prints it), with the real port.
  const shownHost = spec.trim().slice(0, spec.trim().lastIndexOf(':'));
  return { fd: h.fd, name: `${shownHost}:${out.port ?? addr.port}`, family: 'tcp' };
}

/** Bind a private unix socket for an app pool. */
export function bindPoolSocket(path: string): number {
  return bindAddress({ family: 'unix', path, abstract: false }, path).fd;
}

/** Close a held handle by descriptor (an old pool generation's socket). */
export function closeBoundFd(fd: number): void {
  const i = heldHandles.findIndex((h) => h.fd === fd);
  if (i !== -1) {
    heldHandles[i]!.close();
    heldHandles.splice(i, 1);
  }
}
