#!/usr/bin/env node
/**
 * The PHP bridge (plugins/php, modifier1 14): supervises a pool of long-lived `php-cgi -b`
 * processes (PHP_FCGI_CHILDREN=0: each one a single PHP interpreter serving one connection at
 * a time) and hands them to the core. php-cgi is PHP's own CGI/FastCGI SAPI, so header(),
 * setcookie(), http_response_code(), exit(), the superglobals, php://input, uploads, sessions
 * and output buffering behave exactly as under php-fpm.
 *
 * The FastCGI handoff (docs/bridge-protocol.md §3.4): the core's hello asks for it; the bridge
 * dedicates an idle php-cgi to that connection (spawning one up to the pool limit, else the
 * hello waits) and names its socket in the hello answer. The core worker then sends the
 * requests to php-cgi itself, with the script resolved by plugins/php/fastcgi-adapter.ts, so
 * no request crosses this process. The bridge connection stays open as the core's claim on
 * that php-cgi. This process keeps the lifecycle: the control channel, readiness, php-cgi
 * restarts (and PHP_FCGI_MAX_REQUESTS recycling), the stack report for harakiri.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

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
/**
 * Most php-cgi processes this bridge runs: the core never opens more connections than
 * processes × threads in all, and any of them may come to this bridge.
 */
const MAX_WORKERS = Math.max(THREADS, THREADS * Math.max(1, Number(config.processes ?? 1)));

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
    /** The core connection that owns this php-cgi, or null when idle. */
    this.busy = null;
    this.startedAt = 0;
    this.lastUsed = Date.now();
    /** Removed from the pool (idle extra process): not restarted when it exits. */
    this.removed = false;
    /** Killed on purpose to start a fresh one (see recycle()). */
    this.recycling = false;
  }

  start() {
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
    // The core's FastCGI connection broke with it: close the owner's bridge connection too,
    // so the core connects again (and gets the restarted one).
    const owner = this.busy;
    this.busy = null;
    owner?.workerDied();
    if (stopping || !ready || this.removed) return;
    // php-cgi exits by itself (status 0) after PHP_FCGI_MAX_REQUESTS requests, or was recycled.
    const retired = (settings.maxRequests > 0 && code === 0) || this.recycling;
    this.recycling = false;
    // A php-cgi that keeps dying right after its start is not restarted in a tight loop.
    const quick = !retired && Date.now() - this.startedAt < 1000;
    if (!retired) log(`php-cgi ${this.pid} exited (${how}); starting a new one`);
    setTimeout(() => {
      if (stopping) return;
      this.start();
      if (!this.busy) release(this);
    }, quick ? 1000 : 0).unref();
  }

  /** Replace this php-cgi with a fresh one (its request count starts again). */
  recycle() {
    this.busy = { what: 'recycling', workerDied() {} };
    this.recycling = true;
    this.kill();
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

  /**
   * Wait until php-cgi accepts connections (it binds its socket a moment after it starts),
   * then hang up: a php-cgi serves one connection at a time, so the probe must not keep it.
   */
  probe(cb, deadline = Date.now() + 10000) {
    const s = net.connect(this.sockPath);
    s.once('error', (err) => {
      s.destroy();
      // At start-up a php-cgi that exits is a configuration problem; later it is being restarted.
      if (this.exited && !ready) return cb(new Error(`php-cgi ${this.pid} is not running`));
      if (Date.now() > deadline) return cb(new Error(`php-cgi ${this.pid} does not accept connections on ${this.sockPath}: ${err.message}`));
      setTimeout(() => this.probe(cb, deadline), 10);
    });
    s.once('connect', () => {
      s.destroy();
      cb(null);
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
  const idle = workers.find((w) => !w.busy && !w.exited);
  if (idle) return fn(idle);
  if (workers.length < MAX_WORKERS) return fn(spawnWorker());
  waiting.push(fn);
}

function release(w) {
  w.busy = null;
  w.lastUsed = Date.now();
  if (w.exited) return;
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
    w.kill();
  }
}, IDLE_EXTRA_MS / 3).unref();

// ---------------------------------------------------------------------------------------
// The handoff (docs/bridge-protocol.md §3.4)

/** uwsgi vars: name → value (latin-1 text), in order. */
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
  const vars = new Map();
  let o = 0;
  while (o + 2 <= block.length) {
    const kl = block.readUInt16LE(o);
    if (o + 2 + kl + 2 > block.length) throw new Error('truncated uwsgi var block');
    const k = block.toString('latin1', o + 2, o + 2 + kl);
    o += 2 + kl;
    const vl = block.readUInt16LE(o);
    if (o + 2 + vl > block.length) throw new Error('truncated uwsgi var block');
    vars.set(k, block.toString('latin1', o + 2, o + 2 + vl));
    o += 2 + vl;
  }
  return vars;
}

/** The only answer to anything but the core's handoff hello: this bridge is not a uwsgi server. */
const NOT_A_UWSGI_SERVER = Buffer.from(
  'HTTP/1.0 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n' +
    'The tsuwsgi php bridge only hands php-cgi processes to the tsuwsgi core (docs/bridge-protocol.md 3.4); send requests to the server\'s own sockets.\n',
  'latin1',
);

let coreSeq = 0;

/**
 * One core connection: wait for the hello asking for the FastCGI handoff, dedicate an idle
 * php-cgi to the connection (spawning one up to the limit, else waiting for one), and name it
 * in the hello answer. The core then talks FastCGI to that php-cgi itself; this connection
 * only stays open to say the core still owns it. When it closes, the php-cgi goes back to the
 * pool; when the php-cgi exits, the connection is closed so the core connects again.
 */
function serve(sock) {
  connections.add(sock);
  const core = coreSeq++;
  let buf = Buffer.alloc(0);
  let owner = null;
  let helloSeen = false;

  const close = () => {
    if (!sock.destroyed) sock.destroy();
  };

  sock.on('data', (d) => {
    if (helloSeen) return; // nothing is expected after the hello
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    if (buf.length < 4) return;
    const mod1 = buf[0];
    const size = buf.readUInt16LE(1);
    const mod2 = buf[3];
    if (buf.length < 4 + size) return;
    helloSeen = true;
    let vars;
    try {
      vars = parseVars(buf.subarray(4, 4 + size));
    } catch {
      vars = new Map();
    }
    buf = Buffer.alloc(0);
    if (mod1 !== 99 || mod2 !== 0 || vars.get('handoff') !== 'fastcgi') {
      log('a connection sent something other than the core\'s FastCGI handoff hello: answered 502 and closed');
      sock.end(NOT_A_UWSGI_SERVER);
      return;
    }
    acquire((worker) => {
      if (sock.destroyed) return release(worker);
      owner = { what: `core connection ${core}`, workerDied: close };
      worker.busy = owner;
      worker.probe((err) => {
        if (worker.busy !== owner) return; // the php-cgi exited meanwhile (close was called)
        if (err) {
          log(err.message);
          close();
          return;
        }
        const reply = packVars([
          ['pid', String(process.pid)],
          ['worker_id', String(config.workerId ?? 1)],
          ['core', String(core)],
          ['bridge_api', '1'],
          ['fastcgi', worker.sockPath],
          ['fastcgi_pid', String(worker.pid ?? 0)],
        ]);
        const h = Buffer.from([99, 0, 0, 1]);
        h.writeUInt16LE(reply.length, 1);
        sock.write(Buffer.concat([h, reply]));
      });
    });
    sock.once('close', () => {
      // The core is done with the php-cgi (it closed its FastCGI connection first or now).
      for (const w of workers) {
        if (!owner || w.busy !== owner) continue;
        // With --php-fcgi-max-requests the core counts requests per connection, so the next
        // connection gets a fresh php-cgi (the old one may have served some already).
        if (settings.maxRequests > 0 && !w.exited) w.recycle();
        else release(w);
      }
    });
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    connections.delete(sock);
    if (stopping && connections.size === 0) exitNow(0);
  });
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
          w.probe((err) => {
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
