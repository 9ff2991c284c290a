/**
 * Zero-copy static bodies: sendfile(2) from the file to the client socket through the small
 * native addon in native/ (sendfile.c says how it works and why it is native: Node has no
 * sendfile, and copying file → user space → socket made 1 MiB files 0.84x uWSGI).
 *
 * The addon is optional at run time: when it is missing (no compiler at install time, not
 * Linux) or `--disable-sendfile` is set, static files are copied as before, and the core
 * worker says once at start-up why sendfile is off (static-files.ts).
 *
 * Two levels:
 * - sendFileOnSocket(): the transfer on a connected plain socket (no TLS), after the bytes
 *   Node still holds for it; what a raw front end (the uwsgi protocol's) would use.
 * - sendFileOnResponse(): the HTTP front end's part — flush the head Node's ServerResponse
 *   holds, transfer the body behind Node's back, and let the caller end() the response so
 *   keep-alive carries on as after any body.
 */
import type http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

/** What native/sendfile.c exports. */
interface Transfer {
  readonly __tsuwsgiSendfileTransfer: unique symbol;
}
type Outcome = [error: string | null, sent: number];
interface SendfileAddon {
  send(socketFd: number, fileFd: number, offset: number, length: number, timeoutMs: number, cb: (error: string | null, sent: number) => void): Transfer | Outcome;
  cancel(transfer: Transfer): void;
}

/** native/build.ts builds it there (`npm ci`); a build (uwsgiconfig.ts) ships it at the same place. */
export const ADDON_PATH = fileURLToPath(new URL('./native/build/tsuwsgi_sendfile.node', import.meta.url));

export type SendfileStatus = { on: true } | { on: false; reason: string };

let addon: SendfileAddon | null | undefined;
let offReason = '';

function load(): SendfileAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux') {
    offReason = `sendfile(2) is only used on Linux (this is ${process.platform})`;
    return null;
  }
  const mod = { exports: {} as Partial<SendfileAddon> };
  try {
    process.dlopen(mod, ADDON_PATH, os.constants.dlopen.RTLD_NOW);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    offReason = /cannot open shared object file|ENOENT/.test(e.message)
      ? `the addon ${ADDON_PATH} is not built (build it with "npx tsx core/static/native/build.ts", which needs a C compiler and Node's headers; "npm ci" runs it)`
      : `the addon ${ADDON_PATH} could not be loaded (${e.message}); rebuild it with "npx tsx core/static/native/build.ts"`;
    return null;
  }
  if (typeof mod.exports.send !== 'function' || typeof mod.exports.cancel !== 'function') {
    offReason = `the addon ${ADDON_PATH} does not export send/cancel; rebuild it with "npx tsx core/static/native/build.ts"`;
    return null;
  }
  addon = mod.exports as SendfileAddon;
  return addon;
}

/** Whether sendfile(2) can be used in this process, and if not, why (for the start-up line). */
export function sendfileStatus(): SendfileStatus {
  return load() ? { on: true } : { on: false, reason: offReason };
}

/** A transfer that did not complete: `code` is the errno name (EPIPE, ECONNRESET…), ETIMEDOUT or EOF. */
export class SendfileError extends Error {
  readonly code: string;
  readonly sent: number;
  constructor(code: string, sent: number, length: number) {
    super(describe(code, sent, length));
    this.name = 'SendfileError';
    this.code = code;
    this.sent = sent;
  }
}

function describe(code: string, sent: number, length: number): string {
  const where = `after ${sent} of ${length} bytes`;
  if (code === 'EOF') return `the file shrank while being sent (${where})`;
  if (code === 'ETIMEDOUT') return `the client read nothing for --socket-timeout seconds (${where}): connection closed; raise --socket-timeout for slower clients`;
  if (code === 'EPIPE' || code === 'ECONNRESET') return `the client closed the connection (${code} ${where})`;
  return `sendfile failed with ${code} ${where}`;
}

export type SendfileDone = (err: SendfileError | null, sent: number) => void;
/** Stops a transfer in progress; `done` is then never called. Safe to call at any time. */
export type CancelSendfile = () => void;

/** The descriptor of a plain (not TLS) connected socket, or null. Node has no public API for it. */
function plainSocketFd(socket: net.Socket): number | null {
  if ((socket as { encrypted?: boolean }).encrypted) return null;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/**
 * Send `length` bytes of the open file `fileFd` from `offset` on `socket`, after whatever Node
 * still holds for it (a head just written waits in Node while the socket is corked or full):
 * writes complete in order, so an empty write's callback says when they are out. Nothing may
 * be written to the socket until `done`. Returns null, having done nothing, when the socket is
 * not a plain open one or sendfile is off. `done` may be called before this returns (a client
 * that keeps up gets the whole body in the first call). The caller keeps `fileFd` open until
 * `done` or cancel.
 */
export function sendFileOnSocket(socket: net.Socket, fileFd: number, offset: number, length: number, timeoutMs: number, done: SendfileDone): CancelSendfile | null {
  const a = load();
  const sockFd = a !== null && !socket.destroyed && socket.writable ? plainSocketFd(socket) : null;
  if (a === null || sockFd === null) return null;
  if (socket.writableLength === 0) return start(a, sockFd, fileFd, offset, length, timeoutMs, done);
  let cancelled = false;
  let cancelTransfer: CancelSendfile | null = null;
  socket.write(EMPTY, (err) => {
    if (cancelled) return;
    const fd = err || socket.destroyed ? null : plainSocketFd(socket);
    if (fd === null) done(new SendfileError('EPIPE', 0, length), 0);
    else cancelTransfer = start(a, fd, fileFd, offset, length, timeoutMs, done);
  });
  return () => {
    cancelled = true;
    cancelTransfer?.();
  };
}

const EMPTY = Buffer.alloc(0);

function start(a: SendfileAddon, sockFd: number, fileFd: number, offset: number, length: number, timeoutMs: number, done: SendfileDone): CancelSendfile {
  let transfer: Transfer | null = null;
  const r = a.send(sockFd, fileFd, offset, length, Math.max(1, Math.round(timeoutMs)), (error, sent) => {
    transfer = null;
    done(error === null ? null : new SendfileError(error, sent, length), sent);
  });
  if (Array.isArray(r)) {
    const [error, sent] = r;
    done(error === null ? null : new SendfileError(error, sent, length), sent);
    return noop;
  }
  transfer = r;
  return () => {
    if (transfer === null) return;
    const t = transfer;
    transfer = null;
    a.cancel(t);
  };
}

function noop(): void {}

/**
 * The HTTP front end's sendfile: the head given to `res` (writeHead, with a Content-Length:
 * Node must not frame the body) goes out first, then the body with sendfile on the response's
 * socket. The caller then calls res.end() on success (Node writes nothing more, and the next
 * keep-alive request proceeds) or destroys the response on an error.
 *
 * Returns null, having sent nothing, when this response cannot use it — sendfile off, TLS, a
 * chunked response, or a response still queued behind a pipelined one (no socket yet) — and
 * the caller writes the body as usual.
 */
export function sendFileOnResponse(res: http.ServerResponse, fileFd: number, offset: number, length: number, timeoutMs: number, done: SendfileDone): CancelSendfile | null {
  const socket = res.socket;
  if (load() === null || socket === null || socket.destroyed || !socket.writable || res.writableEnded) return null;
  if (res.chunkedEncoding || plainSocketFd(socket) === null) return null;
  res.flushHeaders();
  return sendFileOnSocket(socket, fileFd, offset, length, timeoutMs, done) ?? failNow(done, length);
}

/** The head is out but the socket went away under us: report it as the client leaving. */
function failNow(done: SendfileDone, length: number): CancelSendfile {
  done(new SendfileError('EPIPE', 0, length), 0);
  return noop;
}

/**
 * The capability a front end's ResponseSink may have (the HTTP front end's, over
 * sendFileOnResponse): after head(), send `length` bytes of `fd` from `offset` as the whole
 * body instead of body() calls, then the caller calls end() (or fail() on an error) as usual.
 * Null means "not for this response": nothing was sent and the caller copies the body.
 * Wrappers that change body bytes (transformations) must not pass it on; ForwardingSink
 * does not, so only wrappers that opt in do.
 */
export interface FileSendingSink {
  sendFile(fd: number, offset: number, length: number, timeoutMs: number, done: SendfileDone): CancelSendfile | null;
}

export function canSendFile<T extends object>(sink: T): sink is T & FileSendingSink {
  return typeof (sink as Partial<FileSendingSink>).sendFile === 'function';
}
