#!/usr/bin/env node
/**
 * The CGI bridge (plugins/cgi, modifier1 9): docs/bridge-protocol.md on fd 3/4, and for every
 * request one CGI/1.1 process (RFC 3875) started with child_process.spawn — never a shell, so
 * nothing in the URL can become a command. Script location, meta-variables and response
 * parsing follow uWSGI's cgi plugin (spec/languages.md §9); docs/cgi.md has the details.
 *
 * Per request: locate the script (mountpoint, directory walk, PATH_INFO split, index files,
 * allowed extensions, helpers, exec bit, realpath kept under the CGI directory), stream the
 * request body to its stdin, parse its header block (Status:, Location:), stream its stdout
 * to the connection (self-delimiting on persistent connections), kill it when it is silent
 * for --cgi-timeout seconds. Its stderr is the bridge's stderr: the server log.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { STATUS_CODES } from 'node:http';
import { isUtf8 } from 'node:buffer';

const config = JSON.parse(process.env.TSUWSGI_BRIDGE_CONFIG ?? '{}');
const settings = {
  mounts: [],
  helpers: [],
  fromDocroot: false,
  bufferSize: 65536,
  timeout: 60,
  index: [],
  allowedExt: [],
  unset: [],
  safe: [],
  pathInfo: false,
  doNotKillOnError: false,
  ...(config.plugin ?? {}),
};
const SERVER_SOFTWARE = `uWSGI/${config.version ?? '2.0'}`;
const control = new net.Socket({ fd: Number(process.env.TSUWSGI_CONTROL_FD ?? 4), readable: true, writable: true });
const send = (msg) => control.write(JSON.stringify(msg) + '\n');
const log = (msg) => process.stderr.write(`[cgi] ${msg}\n`);
let stopping = false;
const connections = new Set();
/** Running scripts: killed when the bridge is told to stop now or loses the core. */
const children = new Set();

/** The environment scripts inherit: the bridge's own, minus the bridge contract's variables. */
const BASE_ENV = {};
for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TSUWSGI_')) BASE_ENV[k] = v;

function killChild(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function exitNow(code) {
  for (const c of children) killChild(c);
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
      process.stderr.write(`cgi bridge ${process.pid}: ${children.size} script(s) running: ${[...children].map((c) => `${c.pid} ${c.scriptPath}`).join(', ') || 'none'}\n`);
    }
  }
});
process.on('SIGINT', () => {});

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

/**
 * Vars as strings. Process environments in Node are strings written out as UTF-8, so values
 * are decoded as UTF-8 when they are valid UTF-8 (file names in PATH_INFO then match the
 * file system) and as latin-1 otherwise.
 */
function decode(buf) {
  return isUtf8(buf) ? buf.toString('utf8') : buf.toString('latin1');
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
    vars.set(k, decode(block.subarray(o + 2, o + 2 + vl)));
    o += 2 + vl;
  }
  return vars;
}

// ---------------------------------------------------------------------------------------
// The response writer: self-delimiting on persistent connections (bridge-protocol.md §3.1)

class Response {
  constructor(conn, vars) {
    this.conn = conn;
    this.sock = conn.sock;
    this.proto = vars.get('SERVER_PROTOCOL') || 'HTTP/1.0';
    this.head = vars.get('REQUEST_METHOD') === 'HEAD';
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
    const text = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    const b = Buffer.from(body);
    let h = `${this.proto} ${text}\r\nContent-Type: text/plain\r\n`;
    for (const [k, v] of extra) h += `${k}: ${v}\r\n`;
    h += `Content-Length: ${b.length}\r\n\r\n`;
    this.status = status;
    this.headersSent = true;
    this.sock.write(this.head ? Buffer.from(h, 'latin1') : Buffer.concat([Buffer.from(h, 'latin1'), b]));
    this.finish(false);
  }

  /** Send the status line and headers (CGI header lines, latin-1 bytes), with the first body bytes. */
  start(statusLine, headerLines, firstChunk) {
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
      else if (this.conn.persistent && !scriptChunked) {
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

  /** The body is complete (the script closed its stdout). */
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
// Script location (spec/languages.md §9.2)

class HttpError extends Error {
  constructor(status, message, extra = []) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

const notFound = (why) => new HttpError(404, why);
const forbidden = (why) => new HttpError(403, why);

function statOrNull(p) {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

function realpathOrNull(p) {
  try {
    return fs.realpathSync(p);
  } catch {
    return null;
  }
}

function accessible(p, mode) {
  try {
    fs.accessSync(p, mode);
    return true;
  } catch {
    return false;
  }
}

function endsWithCi(s, suffix) {
  return s.length >= suffix.length && s.slice(s.length - suffix.length).toLowerCase() === suffix.toLowerCase();
}

function isUnder(file, dir) {
  if (dir === '/') return true;
  return file === dir || file.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

/** The longest `--cgi MOUNTPOINT=` prefixing PATH_INFO (at a "/" boundary), else the default entry. */
function chooseMount(pathInfo) {
  let best = null;
  let fallback = null;
  for (const m of settings.mounts) {
    if (m.mountpoint === '') {
      fallback = m; // uWSGI: the last entry without a mountpoint is the default
      continue;
    }
    const mp = m.mountpoint;
    if ((pathInfo === mp || pathInfo.startsWith(mp + '/')) && (!best || mp.length > best.mountpoint.length)) best = m;
  }
  return best ?? fallback;
}

/**
 * Where the request goes: { script, docroot, pathInfo (or null), scriptName, isFile, helper }.
 * Throws HttpError for 301/403/404.
 */
function locate(vars) {
  const reqPathInfo = vars.get('PATH_INFO') ?? '';
  if (reqPathInfo.includes('\0')) throw notFound(`NUL byte in PATH_INFO`);
  let docroot;
  let mountpoint = '';
  let isFile = false;
  if (settings.fromDocroot) {
    docroot = vars.get('DOCUMENT_ROOT') ?? '';
    if (!docroot) throw notFound('--cgi-from-docroot: the request has no DOCUMENT_ROOT');
    docroot = realpathOrNull(docroot);
    if (!docroot) throw notFound(`DOCUMENT_ROOT ${vars.get('DOCUMENT_ROOT')} does not exist`);
  } else {
    const m = chooseMount(reqPathInfo);
    if (!m) throw notFound(`no --cgi entry matches ${reqPathInfo} (and there is no default CGI directory)`);
    mountpoint = m.mountpoint;
    if (m.isFile === null) {
      docroot = realpathOrNull(m.path);
      const st = docroot && statOrNull(docroot);
      if (!st) throw notFound(`CGI path ${m.path} does not exist`);
      isFile = !st.isDirectory();
    } else {
      docroot = m.path;
      isFile = m.isFile;
    }
  }
  const rest = reqPathInfo.slice(mountpoint.length);

  if (isFile) {
    // A single script: it always runs; everything after the mountpoint is PATH_INFO.
    return { script: docroot, docroot, pathInfo: rest, scriptName: mountpoint, isFile: true, helper: helperFor(docroot) };
  }

  // Walk the path: the first component that is not a directory is the script; the rest is PATH_INFO.
  let full = docroot;
  let pathInfo = null;
  const parts = rest.split('/');
  if (settings.pathInfo) {
    full = docroot + (rest.startsWith('/') || rest === '' ? rest : '/' + rest);
  } else {
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (part === '' && i === 0) continue;
      const candidate = full === '/' ? '/' + part : full + '/' + part;
      if (i === parts.length - 1) {
        full = candidate;
        break;
      }
      const st = statOrNull(candidate);
      if (!st) throw notFound(`${candidate} does not exist`);
      full = candidate;
      if (!st.isDirectory()) {
        const remaining = '/' + parts.slice(i + 1).join('/');
        if (remaining !== '/') pathInfo = remaining;
        break;
      }
    }
  }

  let real = realpathOrNull(full);
  if (!real) throw notFound(`${full} does not exist`);
  const checkUnder = (p) => {
    if (!isUnder(p, docroot) && !settings.safe.some((s) => isUnder(p, s))) {
      throw forbidden(`CGI security error: ${p} is not under ${docroot}`);
    }
  };
  checkUnder(real);
  let st = statOrNull(real);
  if (!st) throw notFound(`${real} does not exist`);
  if (st.isDirectory()) {
    if (!reqPathInfo.endsWith('/')) {
      const qs = vars.get('QUERY_STRING') ?? '';
      const location = encodeURI(reqPathInfo + '/') + (qs ? '?' + qs : '');
      throw new HttpError(301, `directory without trailing slash: redirect to ${location}`, [['Location', location]]);
    }
    let found = null;
    for (const name of settings.index) {
      const candidate = path.join(real, name);
      if (accessible(candidate, fs.constants.R_OK)) {
        found = candidate;
        break;
      }
    }
    if (!found) throw notFound(`${real} is a directory and no --cgi-index file is readable in it`);
    real = realpathOrNull(found);
    if (!real) throw notFound(`${found} does not exist`);
    checkUnder(real);
    st = statOrNull(real);
    if (!st || st.isDirectory()) throw notFound(`index ${found} is not a file`);
  }
  if (settings.allowedExt.length && !settings.allowedExt.some((e) => endsWithCi(real, e))) {
    throw forbidden(`${real} does not end in an allowed extension (--cgi-allowed-ext ${settings.allowedExt.join(', ')})`);
  }
  const helper = helperFor(real);
  if (!helper && !accessible(real, fs.constants.X_OK)) throw forbidden(`${real} is not executable and no --cgi-helper matches it`);
  const relative = real === docroot ? '' : real.slice(docroot === '/' ? 0 : docroot.length);
  return { script: real, docroot, pathInfo: settings.pathInfo ? null : pathInfo, scriptName: mountpoint + relative, isFile: false, helper };
}

function helperFor(file) {
  for (const [ext, command] of settings.helpers) if (endsWithCi(file, ext)) return command;
  return null;
}

// ---------------------------------------------------------------------------------------
// Running a script

function buildEnv(vars, loc) {
  const env = { ...BASE_ENV };
  const ok = (s) => !s.includes('\0');
  for (const [k, v] of vars) {
    if (k === 'UWSGI_APPID' || k === '' || k.includes('=') || !ok(k) || !ok(v)) continue;
    env[k] = v;
  }
  const setDefault = (k, v) => {
    if (env[k] === undefined || env[k] === '') env[k] = v;
  };
  setDefault('GATEWAY_INTERFACE', 'CGI/1.1');
  setDefault('SERVER_SOFTWARE', SERVER_SOFTWARE);
  setDefault('REDIRECT_STATUS', '200');
  if (settings.pathInfo) {
    // --cgi-path-info: PATH_INFO as the client sent it.
  } else if (loc.pathInfo !== null) {
    env.PATH_INFO = loc.pathInfo;
    const root = vars.get('DOCUMENT_ROOT') || loc.docroot;
    env.PATH_TRANSLATED = root + loc.pathInfo;
  } else {
    delete env.PATH_INFO;
    delete env.PATH_TRANSLATED;
  }
  if (loc.isFile) {
    setDefault('DOCUMENT_ROOT', process.cwd());
    if (loc.scriptName.length > 1) env.SCRIPT_NAME = loc.scriptName;
  } else {
    setDefault('DOCUMENT_ROOT', loc.docroot);
    env.SCRIPT_NAME = loc.scriptName;
  }
  env.SCRIPT_FILENAME = loc.script;
  for (const k of settings.unset) delete env[k];
  return env;
}

/** RFC 3875 §4.4: a query string without "=" is split on "+" and URL-decoded into argv. */
function indexedArgs(qs) {
  if (!qs || qs.includes('=')) return [];
  return qs.split('+').map((a) => {
    try {
      return decodeURIComponent(a);
    } catch {
      return a;
    }
  }).filter((a) => !a.includes('\0'));
}

/** Split the script's header block (latin-1 text without the blank line) into lines. */
function parseHeaderBlock(text) {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  let status = null;
  let location = false;
  const out = [];
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) return { error: `header line without a name and ":" ${JSON.stringify(line.slice(0, 80))}` };
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (/[^!#$%&'*+.^_`|~0-9A-Za-z-]/.test(name)) return { error: `invalid header name ${JSON.stringify(name.slice(0, 80))}` };
    if (/[\r\0]/.test(value)) return { error: `invalid header value for ${name}` };
    const lower = name.toLowerCase();
    if (lower === 'status') {
      if (status === null) {
        const m = /^(\d{3})(?:\s+(.*))?$/.exec(value);
        if (!m || Number(m[1]) < 100) return { error: `invalid Status header ${JSON.stringify(value.slice(0, 80))}` };
        status = `${m[1]} ${m[2] || STATUS_CODES[Number(m[1])] || 'Unknown'}`;
      }
      continue;
    }
    if (lower === 'location') location = true;
    out.push(`${name}: ${value}`);
  }
  return { status: status ?? (location ? '302 Found' : '200 OK'), headers: out };
}

function run(conn, vars, loc, res, body) {
  const argv = indexedArgs(vars.get('QUERY_STRING') ?? '');
  const file = loc.helper ?? loc.script;
  const args = loc.helper ? [loc.script, ...argv] : argv;
  const env = buildEnv(vars, loc);
  let child;
  try {
    child = spawn(file, args, {
      cwd: path.dirname(loc.script),
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true, // its own process group: a timeout kills the script and what it started
      windowsHide: true,
    });
  } catch (err) {
    log(`unable to run ${file}: ${err.message}`);
    res.simple(500, 'Internal Server Error');
    body.discard();
    return;
  }
  child.scriptPath = loc.script;
  if (child.pid !== undefined) children.add(child);
  const what = loc.helper ? `${loc.helper} ${loc.script}` : loc.script;
  let headerBuf = Buffer.alloc(0);
  let done = false;
  let killed = false;
  let timer = null;

  const kill = (why) => {
    if (killed || child.pid === undefined) return;
    killed = true;
    if (settings.doNotKillOnError) {
      log(`${what}: ${why} (left running: --cgi-do-not-kill-on-error)`);
      child.stdout.destroy();
      child.stdin.destroy();
      return;
    }
    killChild(child);
  };

  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    child.stdout.removeAllListeners('data');
    if (!res.headersSent) {
      log(`invalid CGI response !!! ${what} ended without a complete header block`);
      res.simple(500, 'Internal Server Error');
    } else res.end();
  };

  const fail = (status, why) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    log(why);
    kill(why);
    if (!res.headersSent) res.simple(status, STATUS_CODES[status]);
    else res.abort();
  };

  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => fail(504, `CGI timeout !!! ${what} sent nothing and read nothing for ${settings.timeout} s: killed`), settings.timeout * 1000);
  };
  arm();

  // The request body, streamed to stdin (and consumed from the connection even if the
  // script does not read it).
  child.stdin.on('error', () => {});
  body.pipeTo(child.stdin, arm);

  child.stdout.on('data', (chunk) => {
    if (done) return;
    arm();
    if (!res.headersSent) {
      headerBuf = headerBuf.length ? Buffer.concat([headerBuf, chunk]) : chunk;
      // The header block ends at the first empty line (LF or CRLF).
      let end = -1;
      let bodyStart = -1;
      if (headerBuf[0] === 0x0a) {
        end = 0;
        bodyStart = 1;
      } else if (headerBuf[0] === 0x0d && headerBuf[1] === 0x0a) {
        end = 0;
        bodyStart = 2;
      } else {
        for (let i = headerBuf.indexOf(0x0a); i >= 0; i = headerBuf.indexOf(0x0a, i + 1)) {
          if (headerBuf[i + 1] === 0x0a) {
            end = i;
            bodyStart = i + 2;
            break;
          }
          if (headerBuf[i + 1] === 0x0d && headerBuf[i + 2] === 0x0a) {
            end = i;
            bodyStart = i + 3;
            break;
          }
        }
      }
      if (end < 0) {
        if (headerBuf.length > settings.bufferSize) fail(500, `invalid CGI response !!! ${what}: no end of headers within --cgi-buffer-size ${settings.bufferSize} bytes`);
        return;
      }
      if (end > settings.bufferSize) return fail(500, `invalid CGI response !!! ${what}: headers larger than --cgi-buffer-size ${settings.bufferSize} bytes`);
      const text = headerBuf.toString('latin1', 0, end);
      const parsed = end === 0 ? { error: 'no headers at all (the response starts with a blank line)' } : parseHeaderBlock(text);
      if (parsed.error) return fail(500, `invalid CGI response !!! ${what}: ${parsed.error}`);
      const first = headerBuf.subarray(bodyStart);
      headerBuf = Buffer.alloc(0);
      if (!res.start(parsed.status, parsed.headers, first)) pauseForDrain();
      return;
    }
    if (!res.write(chunk)) pauseForDrain();
  });

  const pauseForDrain = () => {
    child.stdout.pause();
    conn.sock.once('drain', () => child.stdout.resume());
  };

  child.stdout.on('end', finish);
  child.stdout.on('error', () => {});
  child.on('error', (err) => {
    if (done) return;
    fail(500, `unable to run ${what}: ${err.code === 'ENOENT' && loc.helper ? `helper "${loc.helper}" not found (check --cgi-helper)` : err.message}`);
  });
  child.on('close', (code, signal) => {
    children.delete(child);
    clearTimeout(timer);
    if (!killed && (code || signal)) log(`${what} exited with ${signal ? `signal ${signal}` : `status ${code}`}`);
    if (!done) finish();
  });
  // The connection to the core went away: nobody will read the output.
  conn.onClose = () => {
    if (!done) {
      done = true;
      clearTimeout(timer);
      kill('client connection closed');
    }
  };
}

// ---------------------------------------------------------------------------------------
// Connections

/** The request body as it arrives on the connection: forwarded to the script's stdin. */
class Body {
  constructor(conn, length) {
    this.conn = conn;
    this.left = length;
    this.target = null;
    this.onProgress = null;
    this.queued = [];
    this.waiting = false;
  }
  pipeTo(stream, onProgress) {
    this.target = stream;
    this.onProgress = onProgress;
    for (const q of this.queued) this.push(q);
    this.queued = [];
    if (this.left === 0) this.endTarget();
  }
  discard() {
    this.target = 'discard';
    this.queued = [];
  }
  /** Bytes of the body from the connection. */
  feed(chunk) {
    this.left -= chunk.length;
    if (this.target === null) this.queued.push(chunk);
    else this.push(chunk);
    if (this.left === 0 && this.target !== null) this.endTarget();
  }
  push(chunk) {
    if (this.target === 'discard' || this.target.destroyed || this.target.writableEnded) return;
    if (!this.target.write(chunk)) {
      // Back-pressure: stop reading the connection until the script has taken this in.
      this.conn.sock.pause();
      if (this.waiting) return;
      this.waiting = true;
      const resume = () => {
        if (!this.waiting) return;
        this.waiting = false;
        this.target.off('drain', resume);
        this.target.off('close', resume);
        this.onProgress?.();
        this.conn.sock.resume();
      };
      this.target.on('drain', resume);
      this.target.on('close', resume);
    } else this.onProgress?.();
  }
  endTarget() {
    if (this.target && this.target !== 'discard' && !this.target.destroyed && !this.target.writableEnded) this.target.end();
  }
}

const HELLO_REPLY_CORE = new Map();

function serve(sock) {
  connections.add(sock);
  const conn = {
    sock,
    persistent: false,
    /** The request being served: its body may still be arriving after its response. */
    current: null,
    onClose: null,
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
    closeAfterBody: false,
  };
  let buf = Buffer.alloc(0);
  const core = HELLO_REPLY_CORE.size;
  HELLO_REPLY_CORE.set(sock, core);

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
        conn.onClose = null;
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
      const clRaw = vars.get('CONTENT_LENGTH') ?? '';
      const cl = clRaw === '' ? 0 : Number(clRaw);
      if (!Number.isSafeInteger(cl) || cl < 0) {
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
    HELLO_REPLY_CORE.delete(sock);
    connections.delete(sock);
    conn.onClose?.();
    if (stopping && connections.size === 0) exitNow(0);
  });
}

function handle(conn, vars, body) {
  const res = new Response(conn, vars);
  let loc;
  try {
    loc = locate(vars);
  } catch (err) {
    if (!(err instanceof HttpError)) {
      log(`error locating the CGI script for ${vars.get('PATH_INFO')}: ${err.stack ?? err}`);
      res.simple(500, 'Internal Server Error');
    } else {
      if (err.status !== 301) log(`${err.status} for ${vars.get('REQUEST_URI') ?? vars.get('PATH_INFO')}: ${err.message}`);
      res.simple(err.status, err.status === 301 ? 'Moved Permanently' : STATUS_CODES[err.status], err.extra);
    }
    body.discard();
    return;
  }
  run(conn, vars, loc, res, body);
}

const server = net.createServer(serve);
server.listen({ fd: Number(process.env.TSUWSGI_LISTEN_FD ?? 3), backlog: config.listenBacklog ?? 100 }, () => {
  send({ event: 'ready', pid: process.pid, runtime: 'CGI', runtimeVersion: `node ${process.version}`, bridgeApi: 1, threads: config.threads ?? 1, apps: (config.apps ?? []).map((a) => ({ id: a.id, mountpoint: a.mountpoint })) });
});
