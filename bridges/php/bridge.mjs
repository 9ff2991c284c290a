#!/usr/bin/env node
/**
 * The PHP bridge (plugins/php, modifier1 14): docs/bridge-protocol.md on fd 3/4 towards the
 * core, FastCGI towards a pool of long-lived `php-cgi -b` processes (PHP_FCGI_CHILDREN=0:
 * each one a single PHP interpreter serving one request at a time). php-cgi is PHP's own
 * CGI/FastCGI SAPI, so header(), setcookie(), http_response_code(), exit(), the superglobals,
 * php://input, uploads, sessions and output buffering behave exactly as under php-fpm.
 *
 * Per request: resolve the script as uWSGI's php plugin does (spec/languages.md §8.2: the
 * document root walk, SCRIPT_NAME/PATH_INFO split, 301 to a trailing slash, index files,
 * fallback, front controller, the 403 rules, refusing ".." in the path), take an idle php-cgi
 * (spawning one up to the pool limit, else queue), send BEGIN_REQUEST + PARAMS + STDIN
 * (streamed as the body arrives), and stream STDOUT back to the core as an HTTP response:
 * CGI header block parsed (Status:, Location:), self-delimiting on persistent connections.
 * STDERR records (PHP's error log) go to the server log. docs/php.md has the details.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { STATUS_CODES } from 'node:http';
import { isUtf8 } from 'node:buffer';

const config = JSON.parse(process.env.TSUWSGI_BRIDGE_CONFIG ?? '{}');
const settings = {
  phpCgi: '/usr/bin/php-cgi',
  phpArgs: [],
  iniAppend: [],
  userPrepend: null,
  docroot: null,
  index: [],
  allowedDocroot: [],
  allowedExt: [],
  allowedScript: [],
  app: null,
  appQs: null,
  appBypass: [],
  fallback: null,
  serverSoftware: 'uWSGI',
  vars: [],
  maxRequests: 0,
  dumpConfig: false,
  prepend: null,
  ...(config.plugin ?? {}),
};
const THREADS = Math.max(1, Number(config.threads ?? 1));
/** Most php-cgi processes this bridge runs: the core never opens more connections than processes × threads in all. */
const MAX_WORKERS = Math.max(THREADS, THREADS * Math.max(1, Number(config.processes ?? 1)));
const APP_BYPASS = settings.appBypass.map((re) => new RegExp(re));

const control = new net.Socket({ fd: Number(process.env.TSUWSGI_CONTROL_FD ?? 4), readable: true, writable: true });
const send = (msg) => control.write(JSON.stringify(msg) + '\n');
const log = (msg) => process.stderr.write(`[php] ${msg}\n`);
let stopping = false;
let ready = false;
const connections = new Set();

// ---------------------------------------------------------------------------------------
// Lifecycle

/**
 * Private directory for the php-cgi sockets (and the ini scan directory of --php-ini-append),
 * removed when the bridge exits. A bridge stopped with SIGKILL (the core's non-graceful stop,
 * harakiri) cannot remove it, so each bridge first removes the directories of bridges that
 * are gone (named after their pid).
 */
const RUN_PREFIX = 'tsuwsgi-php-';
function sweepStaleRunDirs() {
  let names = [];
  try {
    names = fs.readdirSync(os.tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^tsuwsgi-php-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its bridge (or a process reusing the pid) is alive
    } catch (err) {
      if (err.code !== 'ESRCH') continue;
    }
    const dir = path.join(os.tmpdir(), name);
    try {
      const st = fs.lstatSync(dir);
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue;
      // Only our own layout: sockets and the ini.d directory.
      if (!fs.readdirSync(dir).every((f) => /^php-\d+\.sock$/.test(f) || f === 'ini.d')) continue;
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* another bridge got there first */
    }
  }
}
sweepStaleRunDirs();
const RUN_DIR = fs.mkdtempSync(path.join(os.tmpdir(), `${RUN_PREFIX}${process.pid}-`));

function cleanup() {
  for (const w of workers) w.kill();
  try {
    fs.rmSync(RUN_DIR, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
}

function exitNow(code) {
  cleanup();
  process.exit(code);
}

control.on('end', () => exitNow(0));
control.on('error', () => exitNow(0));
let pendingControl = '';
control.on('data', (d) => {
  pendingControl += d.toString();
  let nl;
  while ((nl = pendingControl.indexOf('\n')) !== -1) {
    let msg;
    try {
      msg = JSON.parse(pendingControl.slice(0, nl));
    } catch {
      msg = {};
    }
    pendingControl = pendingControl.slice(nl + 1);
    if (msg.cmd === 'stop' && !msg.graceful) exitNow(0);
    else if (msg.cmd === 'stop') {
      stopping = true;
      server.close();
      if (connections.size === 0) exitNow(0);
    } else if (msg.cmd === 'stack') {
      process.stderr.write(
        `php bridge ${process.pid}: ${workers.length} php-cgi process(es): ${workers.map((w) => `${w.pid ?? '-'} ${w.busy ? `busy on ${w.busy.what}` : 'idle'}`).join(', ')}; ${waiting.length} request(s) waiting\n`,
      );
    }
  }
});
process.on('SIGINT', () => {});
process.on('SIGTERM', () => exitNow(0));
process.on('exit', cleanup);

// ---------------------------------------------------------------------------------------
// php-cgi processes

/** The environment php-cgi inherits: the bridge's own minus the bridge contract's variables. */
const PHP_ENV = {};
for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TSUWSGI_')) PHP_ENV[k] = v;
PHP_ENV.PHP_FCGI_CHILDREN = '0';
PHP_ENV.PHP_FCGI_MAX_REQUESTS = String(settings.maxRequests);
if (settings.iniAppend.length) {
  // --php-ini-append: an extra ini scan directory after the compiled-in one (the leading ":"
  // keeps it), holding links to the files in order; scan directories are read after php.ini.
  const scan = path.join(RUN_DIR, 'ini.d');
  fs.mkdirSync(scan);
  settings.iniAppend.forEach((f, i) => fs.symlinkSync(f, path.join(scan, `zz-tsuwsgi-${String(i).padStart(3, '0')}.ini`)));
  PHP_ENV.PHP_INI_SCAN_DIR = `${process.env.PHP_INI_SCAN_DIR ?? ''}:${scan}`;
}

const PHP_ARGS = [
  // uWSGI sets PHP_SELF to SCRIPT_NAME and never lets PATH_TRANSLATED pick the script: keep
  // php-cgi's own path fixing on (it trusts SCRIPT_FILENAME, which the bridge resolved).
  '-d', 'cgi.fix_pathinfo=1',
  ...(settings.prepend ? ['-d', `auto_prepend_file=${settings.prepend}`] : []),
  '-d', `uwsgi.version=${config.version ?? ''}`,
  '-d', `uwsgi.worker_id=${config.workerId ?? 1}`,
  '-d', `uwsgi.masterpid=${config.masterPid ?? 0}`,
  ...(settings.userPrepend ? ['-d', `uwsgi.user_prepend=${settings.userPrepend}`] : []),
  ...settings.phpArgs,
];
/** setpriv --pdeathsig: php-cgi dies with the bridge even when the bridge is SIGKILLed (harakiri). */
const SETPRIV = fs.existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : null;

let workerSeq = 0;
const workers = [];
/** Requests waiting for a php-cgi: functions called with the worker. */
const waiting = [];

class PhpWorker {
  constructor() {
    this.n = workerSeq++;
    this.sockPath = path.join(RUN_DIR, `php-${this.n}.sock`);
    this.proc = null;
    this.pid = null;
    this.exited = false;
    /** The FastCGI connection (kept between requests with FCGI_KEEP_CONN). */
    this.conn = null;
    this.busy = null;
    /** Requests this php-cgi process has served (it exits by itself after --php-fcgi-max-requests). */
    this.served = 0;
    this.startedAt = 0;
    this.lastUsed = Date.now();
    /** Removed from the pool (idle extra process): not restarted when it exits. */
    this.removed = false;
  }

  /** The process is about to exit after its last allowed request: give it no more. */
  get retiring() {
    return settings.maxRequests > 0 && this.served >= settings.maxRequests;
  }

  start() {
    this.broken = false;
    try {
      fs.rmSync(this.sockPath, { force: true });
    } catch {
      /* not there */
    }
    const args = ['-b', this.sockPath, ...PHP_ARGS];
    const file = SETPRIV ?? settings.phpCgi;
    const argv = SETPRIV ? ['--pdeathsig', 'KILL', '--', settings.phpCgi, ...args] : args;
    this.startedAt = Date.now();
    this.exited = false;
    this.served = 0;
    this.proc = spawn(file, argv, { env: PHP_ENV, stdio: ['ignore', 'inherit', 'inherit'], cwd: process.cwd() });
    this.pid = this.proc.pid ?? null;
    this.proc.on('error', (err) => {
      log(`cannot run ${settings.phpCgi}: ${err.message}`);
    });
    this.proc.on('exit', (code, signal) => this.onExit(code, signal));
    if (settings.dumpConfig && this.n === 0) log(`php-cgi command line: ${[file, ...argv].join(' ')}${PHP_ENV.PHP_INI_SCAN_DIR ? ` (PHP_INI_SCAN_DIR=${PHP_ENV.PHP_INI_SCAN_DIR})` : ''}`);
  }

  onExit(code, signal) {
    this.exited = true;
    const how = signal ? `signal ${signal}` : `status ${code}`;
    if (this.conn) {
      this.conn.destroy();
      this.conn = null;
    }
    if (this.busy) this.busy.workerDied(`php-cgi ${this.pid} exited (${how}) during the request`);
    if (stopping || !ready || this.removed) return;
    const retired = this.retiring && code === 0;
    // A php-cgi that keeps dying right after its start is not restarted in a tight loop.
    const quick = !retired && Date.now() - this.startedAt < 1000;
    if (!retired) log(`php-cgi ${this.pid} exited (${how}); starting a new one`);
    setTimeout(() => {
      if (stopping) return;
      this.start();
      if (!this.busy) release(this);
    }, quick ? 1000 : 0).unref();
  }

  kill() {
    if (this.proc && !this.exited) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** Connect to php-cgi (retrying while it starts up). */
  connect(cb, deadline = Date.now() + 10000) {
    if (this.conn && !this.conn.destroyed) return cb(null, this.conn);
    const s = net.connect(this.sockPath);
    const onError = (err) => {
      s.destroy();
      // At start-up a php-cgi that exits is a configuration problem; later it is being restarted.
      if (this.exited && !ready) return cb(new Error(`php-cgi ${this.pid} is not running`));
      if (Date.now() > deadline) return cb(new Error(`php-cgi ${this.pid} does not accept connections on ${this.sockPath}: ${err.message}`));
      setTimeout(() => this.connect(cb, deadline), 10);
    };
    s.once('error', onError);
    s.once('connect', () => {
      s.off('error', onError);
      s.setNoDelay?.(true);
      this.conn = s;
      s.on('error', () => {});
      s.on('close', () => {
        if (this.conn === s) this.conn = null;
      });
      cb(null, s);
    });
  }
}

function spawnWorker() {
  const w = new PhpWorker();
  workers.push(w);
  w.start();
  return w;
}

/** Get an idle php-cgi (or spawn one up to MAX_WORKERS, or wait). */
function acquire(fn) {
  const idle = workers.find((w) => !w.busy && !w.exited && !w.retiring && !w.broken);
  if (idle) return fn(idle);
  if (workers.length < MAX_WORKERS) return fn(spawnWorker());
  waiting.push(fn);
}

function release(w) {
  w.busy = null;
  w.lastUsed = Date.now();
  if (w.exited || w.retiring || w.broken) return;
  const next = waiting.shift();
  if (next) next(w);
}

/**
 * php-cgi processes started beyond --threads (when more connections than threads came to this
 * bridge) are stopped after IDLE_EXTRA_MS without work, so the pool shrinks back.
 */
const IDLE_EXTRA_MS = 30000;
setInterval(() => {
  const now = Date.now();
  for (let i = workers.length - 1; i >= 0 && workers.length > THREADS; i--) {
    const w = workers[i];
    if (w.busy || w.exited || now - w.lastUsed < IDLE_EXTRA_MS) continue;
    w.removed = true;
    workers.splice(i, 1);
    w.conn?.destroy();
    w.kill();
  }
}, IDLE_EXTRA_MS / 3).unref();

// ---------------------------------------------------------------------------------------
// FastCGI records (https://fastcgi-archives.github.io/FastCGI_Specification.html)

const FCGI_BEGIN_REQUEST = 1;
const FCGI_END_REQUEST = 3;
const FCGI_PARAMS = 4;
const FCGI_STDIN = 5;
const FCGI_STDOUT = 6;
const FCGI_STDERR = 7;
const FCGI_RESPONDER = 1;
const FCGI_KEEP_CONN = 1;
const MAX_RECORD = 65535;

function record(type, content) {
  const h = Buffer.alloc(8);
  h[0] = 1;
  h[1] = type;
  h.writeUInt16BE(1, 2);
  h.writeUInt16BE(content.length, 4);
  return content.length ? [h, content] : [h];
}

/** BEGIN_REQUEST + PARAMS (whole pairs per record, as php-cgi parses them) + the empty PARAMS. */
function requestHead(params, keep) {
  // Sizes first, then one buffer: this runs for every request.
  const items = [];
  let total = 16 + 8; // BEGIN_REQUEST record + the final empty PARAMS record
  let recLen = 0;
  for (const [k, v] of params) {
    const klen = Buffer.byteLength(k, 'latin1');
    const vb = Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
    const len = (klen < 128 ? 1 : 4) + (vb.length < 128 ? 1 : 4) + klen + vb.length;
    if (len > MAX_RECORD) {
      log(`request variable ${k} too large for FastCGI (${vb.length} bytes): not passed to PHP`);
      continue;
    }
    if (recLen === 0 || recLen + len > MAX_RECORD) {
      total += 8; // a new PARAMS record header
      recLen = 0;
      items.push(null); // record boundary
    }
    recLen += len;
    total += len;
    items.push([k, klen, vb, len]);
  }
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  const header = (type, len) => {
    out[o] = 1;
    out[o + 1] = type;
    out.writeUInt16BE(1, o + 2);
    out.writeUInt16BE(len, o + 4);
    out[o + 6] = 0;
    out[o + 7] = 0;
    o += 8;
  };
  header(FCGI_BEGIN_REQUEST, 8);
  out.writeUInt16BE(FCGI_RESPONDER, o);
  out[o + 2] = keep ? FCGI_KEEP_CONN : 0;
  out.fill(0, o + 3, o + 8);
  o += 8;
  let recHeaderAt = -1;
  let recBytes = 0;
  const closeRecord = () => {
    if (recHeaderAt >= 0) out.writeUInt16BE(recBytes, recHeaderAt + 4);
  };
  for (const item of items) {
    if (item === null) {
      closeRecord();
      recHeaderAt = o;
      recBytes = 0;
      header(FCGI_PARAMS, 0);
      continue;
    }
    const [k, klen, vb, len] = item;
    if (klen < 128) out[o++] = klen;
    else {
      out.writeUInt32BE((klen | 0x80000000) >>> 0, o);
      o += 4;
    }
    if (vb.length < 128) out[o++] = vb.length;
    else {
      out.writeUInt32BE((vb.length | 0x80000000) >>> 0, o);
      o += 4;
    }
    o += out.write(k, o, 'latin1');
    o += vb.copy(out, o);
    recBytes += len;
  }
  closeRecord();
  header(FCGI_PARAMS, 0);
  return o === total ? out : out.subarray(0, o);
}

function stdinRecords(chunk) {
  const parts = [];
  for (let o = 0; o < chunk.length; o += MAX_RECORD) parts.push(...record(FCGI_STDIN, chunk.subarray(o, o + MAX_RECORD)));
  return Buffer.concat(parts);
}

const EMPTY_STDIN = Buffer.concat(record(FCGI_STDIN, Buffer.alloc(0)));

// ---------------------------------------------------------------------------------------
// uwsgi packets

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

/** Vars: name (latin-1) → raw bytes, in order. */
function parseVars(block) {
  const vars = new Map();
  let o = 0;
  while (o + 2 <= block.length) {
    const kl = block.readUInt16LE(o);
    if (o + 2 + kl + 2 > block.length) throw new Error('truncated uwsgi var block');
    const k = block.toString('latin1', o + 2, o + 2 + kl);
    o += 2 + kl;
    const vl = block.readUInt16LE(o);
    if (o + 2 + vl > block.length) throw new Error('truncated uwsgi var block');
    vars.set(k, block.subarray(o + 2, o + 2 + vl));
    o += 2 + vl;
  }
  return vars;
}

/** A var as text: UTF-8 when it is valid UTF-8 (file names then match the file system), else latin-1. */
function text(vars, name) {
  const b = vars.get(name);
  if (!b) return '';
  return isUtf8(b) ? b.toString('utf8') : b.toString('latin1');
}

// ---------------------------------------------------------------------------------------
// The response writer: self-delimiting on persistent connections (bridge-protocol.md §3.1)

class Response {
  constructor(conn, vars) {
    this.conn = conn;
    this.sock = conn.sock;
    this.proto = text(vars, 'SERVER_PROTOCOL') || 'HTTP/1.0';
    this.head = text(vars, 'REQUEST_METHOD') === 'HEAD';
    this.headersSent = false;
    this.finished = false;
    this.noBody = this.head;
    this.chunked = false;
    /** Bytes still allowed by the script's Content-Length (null: no length given). */
    this.left = null;
    this.status = 0;
  }

  /** A complete short response (errors, redirects), always with a Content-Length. */
  simple(status, body, extra = []) {
    const b = Buffer.from(body);
    let h = `${this.proto} ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\nContent-Type: text/plain\r\n`;
    for (const [k, v] of extra) h += `${k}: ${v}\r\n`;
    h += `Content-Length: ${b.length}\r\n\r\n`;
    this.status = status;
    this.headersSent = true;
    this.sock.write(this.head ? Buffer.from(h, 'latin1') : Buffer.concat([Buffer.from(h, 'latin1'), b]));
    this.finish(false);
  }

  /**
   * Send the status line and headers with the first body bytes. `complete` says the body is
   * all there (the script ended): a response without Content-Length then gets one instead of
   * being chunked.
   */
  start(statusLine, headerLines, firstChunk, complete) {
    const code = Number(statusLine.slice(0, 3));
    this.status = code;
    if ((code >= 100 && code < 200) || code === 204 || code === 304) this.noBody = true;
    let length = null;
    let scriptChunked = false;
    for (const line of headerLines) {
      const i = line.indexOf(':');
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      if (name === 'content-length' && /^\d+$/.test(value)) length = Number(value);
      if (name === 'transfer-encoding') scriptChunked = true;
    }
    const lines = [`${this.proto} ${statusLine}`, ...headerLines];
    if (!this.noBody) {
      if (length !== null && !scriptChunked) this.left = length;
      else if (complete && !scriptChunked) {
        // The whole body is here: say how long it is instead of chunking it.
        this.left = firstChunk ? firstChunk.length : 0;
        lines.push(`Content-Length: ${this.left}`);
      } else if (this.conn.persistent && !scriptChunked) {
        this.chunked = true;
        lines.push('Transfer-Encoding: chunked');
      }
    }
    const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
    this.headersSent = true;
    const body = this.encode(firstChunk);
    return this.sock.write(body ? Buffer.concat([head, ...body]) : head);
  }

  encode(chunk) {
    if (this.noBody || !chunk || chunk.length === 0) return null;
    if (this.left !== null) {
      if (this.left === 0) return null;
      if (chunk.length > this.left) chunk = chunk.subarray(0, this.left);
      this.left -= chunk.length;
      return [chunk];
    }
    if (this.chunked) return [Buffer.from(chunk.length.toString(16) + '\r\n'), chunk, Buffer.from('\r\n')];
    return [chunk];
  }

  write(chunk) {
    const parts = this.encode(chunk);
    if (!parts) return true;
    return this.sock.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  /** The body is complete. */
  end() {
    if (this.chunked) this.sock.write('0\r\n\r\n');
    // A script that promised more bytes than it wrote: the response cannot be completed on
    // a persistent connection, so close it (the client sees the truncation).
    const short = this.left !== null && this.left > 0 && !this.noBody;
    this.finish(short);
  }

  /** The response cannot be completed: close the connection after what was sent. */
  abort() {
    this.finish(true);
  }

  finish(close) {
    if (this.finished) return;
    this.finished = true;
    this.conn.requestDone(close);
  }
}

// ---------------------------------------------------------------------------------------
// Script resolution (spec/languages.md §8.2)

class HttpError extends Error {
  constructor(status, message, extra = []) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

function statOrNull(p) {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

function realpathOrNull(p) {
  try {
    // realpath(3): one system call, where fs.realpathSync walks the path in JavaScript.
    return fs.realpathSync.native(p);
  } catch {
    return null;
  }
}

function readable(p) {
  try {
    fs.accessSync(p, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

const CWD = realpathOrNull(process.cwd()) ?? process.cwd();

function isUnder(file, dir) {
  if (dir === '/') return true;
  return file === dir || file.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

function relativeName(file, docroot, fallbackName) {
  if (isUnder(file, docroot) && file !== docroot) return file.slice(docroot === '/' ? 0 : docroot.length);
  return fallbackName;
}

/** Checks every script passes before it runs (step 6). */
function checkAllowed(file) {
  if (settings.allowedExt.length && !settings.allowedExt.some((e) => file.endsWith(e))) {
    throw new HttpError(403, `PHP security error: ${file} does not end in an allowed extension (--php-allowed-ext ${settings.allowedExt.join(' ')})`);
  }
  if (settings.allowedScript.length && !settings.allowedScript.includes(file)) {
    throw new HttpError(403, `PHP security error: ${file} is not an allowed script (--php-allowed-script)`);
  }
}

function checkDocroot(file) {
  if (settings.allowedDocroot.length && !settings.allowedDocroot.some((d) => isUnder(file, d))) {
    throw new HttpError(403, `PHP security error: ${file} is not under an allowed docroot (--php-allowed-docroot ${settings.allowedDocroot.join(' ')})`);
  }
}

/**
 * Where the request goes: { script, docroot, scriptName, pathInfo, queryString }.
 * Throws HttpError for 301/403/404.
 */
function resolve(vars) {
  const reqPathInfo = text(vars, 'PATH_INFO');
  let queryString = text(vars, 'QUERY_STRING');
  if (reqPathInfo.includes('\0')) throw new HttpError(404, 'NUL byte in PATH_INFO');

  // 1. The document root.
  let docroot = settings.docroot;
  if (!docroot) {
    const reqRoot = text(vars, 'DOCUMENT_ROOT');
    if (reqRoot) {
      docroot = realpathOrNull(reqRoot);
      if (!docroot) throw new HttpError(404, `DOCUMENT_ROOT ${reqRoot} does not exist (set it in the front end, or use --php-docroot)`);
    } else docroot = CWD;
  }

  // 2. The front controller.
  if (settings.app && !APP_BYPASS.some((re) => re.test(text(vars, 'REQUEST_URI')))) {
    if (settings.appQs !== null && reqPathInfo !== '/' && reqPathInfo !== '') {
      queryString = settings.appQs + reqPathInfo + (queryString ? '&' + queryString : '');
    }
    checkAllowed(settings.app);
    return { script: settings.app, docroot, scriptName: relativeName(settings.app, docroot, '/' + path.basename(settings.app)), pathInfo: '', queryString };
  }

  // Path traversal: ".." never walks out of the document root (uWSGI relies on the front end).
  if (reqPathInfo.split('/').includes('..')) throw new HttpError(403, `PHP security error: ".." in the path ${reqPathInfo}`);

  const missing = (why) => {
    if (settings.fallback) {
      checkAllowed(settings.fallback);
      return { script: settings.fallback, docroot, scriptName: relativeName(settings.fallback, docroot, '/' + path.basename(settings.fallback)), pathInfo: '', queryString };
    }
    throw new HttpError(404, why);
  };

  // 3. Walk DOCUMENT_ROOT + PATH_INFO: the first component that is not a directory is the
  // script, the rest PATH_INFO (kept only when it is more than a lone "/").
  let full = docroot === '/' ? '' : docroot;
  let pathInfo = '';
  let urlScript = '';
  const parts = reqPathInfo.split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (i === 0 && part === '') continue;
    if (i === parts.length - 1) {
      if (part !== '') {
        full += '/' + part;
        urlScript += '/' + part;
      }
      break;
    }
    const candidate = full + '/' + part;
    const st = statOrNull(candidate);
    if (!st) return missing(`${candidate} does not exist`);
    full = candidate;
    urlScript += '/' + part;
    if (!st.isDirectory()) {
      const rest = '/' + parts.slice(i + 1).join('/');
      if (rest !== '/') pathInfo = rest;
      break;
    }
  }
  if (full === '') full = '/';

  // 4. realpath, allowed docroots.
  let real = realpathOrNull(full);
  if (!real) return missing(`${full} does not exist`);
  checkDocroot(real);

  // 5. Directories: redirect to the slash, then the index files.
  let st = statOrNull(real);
  if (!st) return missing(`${real} does not exist`);
  if (st.isDirectory()) {
    if (!reqPathInfo.endsWith('/')) {
      const location = encodeURI(reqPathInfo + '/') + (queryString ? '?' + queryString : '');
      throw new HttpError(301, `directory without trailing slash: redirect to ${location}`, [['Location', location]]);
    }
    let found = null;
    for (const name of settings.index) {
      const candidate = path.join(real, name);
      if (readable(candidate)) {
        found = candidate;
        urlScript = (urlScript.endsWith('/') ? urlScript : urlScript + '/') + name;
        break;
      }
    }
    if (!found) throw new HttpError(404, `${real} is a directory and no --php-index file is readable in it`);
    real = realpathOrNull(found);
    if (!real) throw new HttpError(404, `${found} does not exist`);
    checkDocroot(real);
    st = statOrNull(real);
    if (!st || st.isDirectory()) throw new HttpError(404, `index ${found} is not a file`);
  }

  // 6. Allowed extensions and scripts.
  checkAllowed(real);

  // 7. SCRIPT_NAME: the script relative to the document root (the URL's name for it when it
  // lives elsewhere through a symlink).
  return { script: real, docroot, scriptName: relativeName(real, docroot, urlScript || '/'), pathInfo, queryString };
}

// ---------------------------------------------------------------------------------------
// Running a request on php-cgi

const OVERRIDDEN = new Set(['PATH_INFO', 'QUERY_STRING', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'DOCUMENT_ROOT', 'PATH_TRANSLATED', 'PHP_SELF', 'UWSGI_APPID', 'REDIRECT_URL', 'ORIG_SCRIPT_FILENAME', 'ORIG_PATH_INFO', 'ORIG_PATH_TRANSLATED', 'ORIG_SCRIPT_NAME']);

function buildParams(vars, loc) {
  const params = [['SERVER_SOFTWARE', settings.serverSoftware]];
  for (const [k, v] of vars) {
    if (k === '' || OVERRIDDEN.has(k) || k === 'SERVER_SOFTWARE') continue;
    params.push([k, v]);
  }
  if (vars.has('SERVER_SOFTWARE')) params[0][1] = vars.get('SERVER_SOFTWARE');
  params.push(['REDIRECT_STATUS', '200']);
  params.push(['PATH_INFO', loc.pathInfo]);
  params.push(['QUERY_STRING', loc.queryString]);
  params.push(['SCRIPT_NAME', loc.scriptName]);
  params.push(['SCRIPT_FILENAME', loc.script]);
  params.push(['DOCUMENT_ROOT', loc.docroot]);
  params.push(['PATH_TRANSLATED', loc.pathInfo ? loc.docroot + loc.pathInfo : '']);
  for (const [k, v] of settings.vars) params.push([k, v]);
  return params;
}

/** Split the CGI header block (latin-1 text without the blank line) into a status and header lines. */
function parseHeaderBlock(textBlock) {
  const lines = textBlock.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  let status = null;
  let location = false;
  const out = [];
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) return { error: `header line without a name and ":" ${JSON.stringify(line.slice(0, 80))}` };
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    const lower = name.toLowerCase();
    if (lower === 'status') {
      if (status === null) {
        const m = /^(\d{3})(?:\s+(.*))?$/.exec(value);
        if (!m) return { error: `invalid Status header ${JSON.stringify(value.slice(0, 80))}` };
        status = `${m[1]} ${m[2] || STATUS_CODES[Number(m[1])] || 'Unknown'}`;
      }
      continue;
    }
    if (lower === 'location') location = true;
    out.push(`${name}: ${value}`);
  }
  return { status: status ?? (location ? '302 Found' : '200 OK'), headers: out };
}

/** Where the end of the CGI header block is: [end of headers, start of body] or null. */
function headerEnd(buf) {
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return [i, i + 2];
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return [i, i + 3];
  }
  return null;
}

/** The largest header block accepted from PHP. */
const MAX_HEADER_BYTES = Math.max(65536, Number(config.bufferSize ?? 0));

function run(conn, vars, loc, res, body) {
  const what = loc.script;
  const keep = body.length === 0;
  acquire((worker) => {
    const exchange = {
      what,
      done: false,
      workerDied: (why) => fail(why),
    };
    let sock = null;
    let headerBuf = null;
    let fbuf = Buffer.alloc(0);
    let pendingOut = [];
    let ended = false;
    worker.busy = exchange;
    if (conn.sock.destroyed) return finishExchange(false);
    worker.connect((err, s) => {
      if (exchange.done) return;
      if (err) return fail(err.message);
      begin(s);
    });

    function finishExchange(reuse) {
      if (exchange.done) return;
      exchange.done = true;
      if (sock) {
        sock.removeListener('data', onData);
        sock.removeListener('close', onClose);
        sock.removeListener('drain', onFcgiDrain);
        if (!reuse) {
          sock.destroy();
          if (worker.conn === sock) worker.conn = null;
        }
      }
      conn.onClose = null;
      if (sock) worker.served++;
      release(worker);
    }

    function fail(why) {
      if (exchange.done) return;
      log(`${what}: ${why}`);
      finishExchange(false);
      body.discard();
      if (!res.headersSent) res.simple(500, 'Internal Server Error');
      else res.abort();
    }

    function onFcgiDrain() {
      body.resume();
    }

    function onClose() {
      // php-cgi died (or is dying): its 'exit' may come later, so it must not take the next
      // request meanwhile. Killing it makes sure the exit handler restarts it.
      worker.broken = true;
      worker.kill();
      fail(`php-cgi ${worker.pid} closed the FastCGI connection before the end of the response`);
    }

    function onData(d) {
      fbuf = fbuf.length ? Buffer.concat([fbuf, d]) : d;
      let o = 0;
      while (fbuf.length - o >= 8) {
        const type = fbuf[o + 1];
        const len = fbuf.readUInt16BE(o + 4);
        const pad = fbuf[o + 6];
        if (fbuf.length - o < 8 + len + pad) break;
        const content = fbuf.subarray(o + 8, o + 8 + len);
        o += 8 + len + pad;
        if (type === FCGI_STDOUT) {
          if (len) pendingOut.push(content);
        } else if (type === FCGI_STDERR) {
          if (len) process.stderr.write(content);
        } else if (type === FCGI_END_REQUEST) {
          ended = true;
          break;
        }
      }
      fbuf = ended ? Buffer.alloc(0) : fbuf.subarray(o);
      flushOut();
    }

    function flushOut() {
      if (exchange.done) return;
      let out = pendingOut.length === 0 ? null : pendingOut.length === 1 ? pendingOut[0] : Buffer.concat(pendingOut);
      pendingOut = [];
      let ok = true;
      if (!res.headersSent) {
        if (out) headerBuf = headerBuf ? Buffer.concat([headerBuf, out]) : out;
        out = null;
        const he = headerBuf ? headerEnd(headerBuf) : null;
        if (!he) {
          if (headerBuf && headerBuf.length > MAX_HEADER_BYTES) return fail(`invalid response from PHP: no end of headers within ${MAX_HEADER_BYTES} bytes`);
          if (!ended) return;
          return fail(headerBuf ? 'invalid response from PHP: no end of the header block' : 'php-cgi sent no response');
        }
        const parsed = he[0] === 0 ? { status: '200 OK', headers: [] } : parseHeaderBlock(headerBuf.toString('latin1', 0, he[0]));
        if (parsed.error) return fail(`invalid response from PHP: ${parsed.error}`);
        const first = headerBuf.subarray(he[1]);
        headerBuf = null;
        ok = res.start(parsed.status, parsed.headers, first, ended);
      } else if (out) ok = res.write(out);
      if (ended) {
        finishExchange(keep);
        res.end();
        // The body may still be arriving: it is consumed and dropped.
        body.discard();
        return;
      }
      if (!ok) {
        sock.pause();
        conn.sock.once('drain', () => {
          if (!exchange.done) sock.resume();
        });
      }
    }

    function begin(s) {
      sock = s;
      sock.on('data', onData);
      sock.on('close', onClose);
      sock.on('drain', onFcgiDrain);
      sock.resume();
      const head = requestHead(buildParams(vars, loc), keep);
      // No body: the whole request in one write.
      if (keep) sock.write(Buffer.concat([head, EMPTY_STDIN]));
      else {
        sock.write(head);
        body.pipe(
          (chunk) => exchange.done || sock.write(stdinRecords(chunk)),
          () => {
            if (!exchange.done) sock.write(EMPTY_STDIN);
          },
        );
      }
      // The core's connection went away: nobody will read the output. Dropping the FastCGI
      // connection makes PHP's next write fail, so the script is aborted (ignore_user_abort).
      conn.onClose = () => {
        if (!exchange.done) finishExchange(false);
      };
    }
  });
}

// ---------------------------------------------------------------------------------------
// Connections

/** The request body as it arrives on the connection. */
class Body {
  constructor(conn, length) {
    this.conn = conn;
    this.length = length;
    this.left = length;
    this.write = null;
    this.onEnd = null;
    this.queued = [];
    this.discarding = false;
    this.paused = false;
    this.queuedBytes = 0;
  }
  pipe(write, onEnd) {
    this.write = write;
    this.onEnd = onEnd;
    const q = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    this.resume();
    for (const c of q) this.push(c);
    if (this.left === 0) this.onEnd();
  }
  discard() {
    this.discarding = true;
    this.queued = [];
    this.resume();
  }
  resume() {
    if (this.paused) {
      this.paused = false;
      this.conn.sock.resume();
    }
  }
  feed(chunk) {
    this.left -= chunk.length;
    if (this.discarding) return;
    if (!this.write) {
      // Waiting for a free php-cgi: keep at most ~1 MiB in memory, then stop reading.
      this.queued.push(chunk);
      this.queuedBytes += chunk.length;
      if (this.queuedBytes > 1 << 20 && !this.paused) {
        this.paused = true;
        this.conn.sock.pause();
      }
    } else {
      this.push(chunk);
      if (this.left === 0) this.onEnd();
    }
  }
  push(chunk) {
    if (this.discarding) return;
    if (!this.write(chunk)) {
      // Back-pressure: stop reading the connection until php-cgi has taken this in.
      this.paused = true;
      this.conn.sock.pause();
    }
  }
}

let coreSeq = 0;

function serve(sock) {
  connections.add(sock);
  const conn = {
    sock,
    persistent: false,
    current: null,
    onClose: null,
    closeAfterBody: false,
    requestDone(close) {
      const cur = conn.current;
      if (cur) cur.responded = true;
      if (close || !conn.persistent) {
        conn.closeAfterBody = true;
        if (close) {
          sock.end();
          setTimeout(() => sock.destroy(), 1000).unref();
        }
      }
      setImmediate(pump);
    },
  };
  let buf = Buffer.alloc(0);
  const core = coreSeq++;

  const pump = () => {
    for (;;) {
      if (sock.destroyed) return;
      const cur = conn.current;
      if (cur) {
        if (cur.body.left > 0 && buf.length > 0) {
          const n = Math.min(cur.body.left, buf.length);
          const piece = buf.subarray(0, n);
          buf = buf.subarray(n);
          cur.body.feed(piece);
        }
        if (cur.body.left > 0 || !cur.responded) return;
        conn.current = null;
        if (conn.closeAfterBody) {
          sock.end();
          return;
        }
      }
      if (buf.length < 4) return;
      const mod1 = buf[0];
      const size = buf.readUInt16LE(1);
      const mod2 = buf[3];
      if (buf.length < 4 + size) return;
      const block = buf.subarray(4, 4 + size);
      buf = buf.subarray(4 + size);
      if (mod1 === 99 && mod2 === 0) {
        conn.persistent = true;
        const reply = packVars([['pid', String(process.pid)], ['worker_id', String(config.workerId ?? 1)], ['core', String(core)], ['bridge_api', '1']]);
        const h = Buffer.from([99, 0, 0, 1]);
        h.writeUInt16LE(reply.length, 1);
        sock.write(Buffer.concat([h, reply]));
        continue;
      }
      let vars;
      try {
        vars = parseVars(block);
      } catch (err) {
        log(`bad uwsgi packet: ${err.message}; closing the connection`);
        sock.destroy();
        return;
      }
      const clRaw = text(vars, 'CONTENT_LENGTH');
      const cl = clRaw === '' ? 0 : Number(clRaw);
      if (!/^\d*$/.test(clRaw) || !Number.isSafeInteger(cl)) {
        log(`invalid CONTENT_LENGTH ${JSON.stringify(clRaw)}; closing the connection`);
        const res = new Response(conn, vars);
        conn.persistent = false;
        conn.current = { body: new Body(conn, 0), responded: false };
        res.simple(400, 'Bad Request');
        return;
      }
      const body = new Body(conn, cl);
      conn.current = { body, responded: false };
      handle(conn, vars, body);
    }
  };

  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    pump();
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    connections.delete(sock);
    conn.onClose?.();
    if (stopping && connections.size === 0) exitNow(0);
  });
}

function handle(conn, vars, body) {
  const res = new Response(conn, vars);
  let loc;
  try {
    loc = resolve(vars);
  } catch (err) {
    body.discard();
    if (!(err instanceof HttpError)) {
      log(`error resolving the PHP script for ${text(vars, 'PATH_INFO')}: ${err.stack ?? err}`);
      res.simple(500, 'Internal Server Error');
    } else {
      if (err.status !== 301) log(`${err.status} for ${text(vars, 'REQUEST_URI') || text(vars, 'PATH_INFO')}: ${err.message}`);
      res.simple(err.status, STATUS_CODES[err.status], err.extra);
    }
    return;
  }
  run(conn, vars, loc, res, body);
}

// ---------------------------------------------------------------------------------------
// Start-up: the php-cgi processes must accept connections before the bridge is ready.

const server = net.createServer(serve);

function loadFailed(message) {
  send({ event: 'load-failed', app: 0, message, details: message });
  log(message);
  cleanup();
  // Let the control message go out before exiting.
  control.end(() => process.exit(22));
  setTimeout(() => process.exit(22), 1000).unref();
}

async function startup() {
  if (settings.dumpConfig) {
    log(`PHP configuration: php-cgi ${settings.phpCgi}; directives: ${settings.phpArgs.join(' ') || '(none)'}; appended ini files: ${settings.iniAppend.join(', ') || '(none)'}${settings.userPrepend ? `; auto_prepend_file ${settings.userPrepend}` : ''}`);
  }
  for (let i = 0; i < THREADS; i++) spawnWorker();
  const results = await Promise.all(
    workers.map(
      (w) =>
        new Promise((resolveConn) =>
          w.connect((err, s) => {
            if (err) resolveConn(w.exited ? `php-cgi (${settings.phpCgi}) exited during start-up (see the messages above; check --php-ini/--php-set)` : err.message);
            else resolveConn(null);
          }, Date.now() + 15000),
        ),
    ),
  );
  const problem = results.find((r) => r !== null);
  if (problem) return loadFailed(problem);
  ready = true;
  server.listen({ fd: Number(process.env.TSUWSGI_LISTEN_FD ?? 3), backlog: config.listenBacklog ?? 100 }, () => {
    send({ event: 'ready', pid: process.pid, runtime: 'PHP', runtimeVersion: phpVersion, bridgeApi: 1, threads: THREADS, apps: (config.apps ?? []).map((a) => ({ id: a.id, mountpoint: a.mountpoint })) });
  });
}

let phpVersion = 'unknown';
execFile(settings.phpCgi, ['-n', '-v'], { timeout: 10000 }, (err, stdout) => {
  const m = /^PHP (\S+)/.exec(stdout ?? '');
  if (m) phpVersion = m[1];
});

startup().catch((err) => loadFailed(`php bridge start-up failed: ${err.stack ?? err}`));
