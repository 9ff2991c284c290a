/**
 * The default uWSGI request log line (spec/core.md §5.2), byte for byte:
 *
 * [pid: PID|app: APPID|req: APPREQS/WORKERREQS] ADDR (USER) {VARS vars in PKTSIZE bytes} [CTIME]
 *   METHOD URI => generated RSIZE bytes in RT msecs (PROTO STATUS) NHDR headers in HSIZE bytes
 *   (SWITCHES switches on core CORE)
 *
 * plus `--log-format` with every %(var) of §5.3, the conditional re-enablers of
 * --disable-logging (--log-4xx, --log-5xx, --log-slow, --log-big, --log-zero,
 * --log-sendfile, --log-ioerror) and the JSON request record of --log-json.
 */
import fs from 'node:fs';
import { strftime } from './strftime.ts';

/** Everything a request line can show. Filled in by the pipeline when the response ends. */
export interface RequestRecord {
  pid: number;
  /** App index, -1 when no app handled the request. */
  app: number;
  appRequests: number;
  workerRequests: number;
  workerId: number;
  remoteAddr: string;
  remoteUser: string;
  /** Number of vars in the request packet (the line shows key + value slots: 2×). */
  varCount: number;
  packetSize: number;
  /** Request start, ms since epoch. */
  startedAt: number;
  /** Response time in microseconds. */
  micros: number;
  method: string;
  uri: string;
  protocol: string;
  status: number;
  bodyBytes: number;
  headerCount: number;
  headerBytes: number;
  core: number;
  modifier1: number;
  modifier2: number;
  host: string;
  userAgent: string;
  referer: string;
  contentLength: string;
  vars: ReadonlyArray<readonly [string, string]>;
  /** Errors reading the request body from the client / writing the response to it (%(rerr), %(werr)). */
  readErrors: number;
  writeErrors: number;
  /** The X-Forwarded-For request header ("" when absent), for --log-x-forwarded-for. */
  forwardedFor: string;
  /** Request logvars set by routing's `logvar:KEY=VALUE`, printed by `%(KEY)` in --log-format. */
  logvars?: ReadonlyMap<string, string>;
  /**
   * The body went out with sendfile(2) (a static file): the line says `via sendfile()` after
   * the time, as uWSGI's does, and --log-sendfile logs it even with --disable-logging.
   */
  viaSendfile?: boolean;
  /**
   * uWSGI's "switches" (async context switches of the request): 1 for an app's request, 0 for
   * one the server answered itself (static files), as uWSGI counts them. Absent: 1.
   */
  switches?: number;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const pad2 = (n: number): string => (n < 10 ? '0' + n : String(n));

let ctimeSecond = -1;
let ctimeText = '';

/** C's ctime() without the newline, in local time ("Wed Apr 17 09:06:58 2013"); cached per second. */
export function ctime(ms: number): string {
  const sec = Math.floor(ms / 1000);
  if (sec === ctimeSecond) return ctimeText;
  const d = new Date(sec * 1000);
  const day = d.getDate();
  ctimeText =
    `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${day < 10 ? ' ' + day : day} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${d.getFullYear()}`;
  ctimeSecond = sec;
  return ctimeText;
}

/** Apache-style local time "%d/%b/%Y:%H:%M:%S %z" for %(ltime). */
export function ltime(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return (
    `${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ` +
    `${sign}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`
  );
}

/** uWSGI writes a line longer than this as a safe minimal variant (no address, method or URI). */
const MAX_LINE = 4096;

let segmentSecond = -1;
let segmentText = '';

/** `" bytes} [CTIME] "` of the default line: built once a second instead of on every line. */
function bytesAndCtime(ms: number): string {
  const sec = Math.floor(ms / 1000);
  if (sec !== segmentSecond) {
    segmentText = ` bytes} [${ctime(ms)}] `;
    segmentSecond = sec;
  }
  return segmentText;
}

/**
 * Request vars are byte strings (each char one byte, as the uwsgi packet carries them: see
 * core/protocol/uwsgi-packet.ts), while a log line is text that targets encode as UTF-8. So a
 * var with bytes >= 0x80 (a UTF-8 URI sent raw, a UTF-8 user name) is decoded as UTF-8 here,
 * and the line carries the client's bytes again, as uWSGI writes them (bytes that are not
 * UTF-8 become U+FFFD). ASCII, by far the common case, is returned as it is. The default
 * line's byte path (line-writer.ts) writes the bytes themselves.
 */
export function varText(s: string): string {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.from(s, 'latin1').toString('utf8');
  return s;
}

/**
 * The default line. One template literal: every intermediate string (the line used to be
 * built from four parts) is an allocation, and the pieces of a line are what the file
 * target later copies, so fewer is cheaper both here and there.
 */
export function formatDefaultLine(r: RequestRecord, micros = false, forwardedFor = false): string {
  const addr = forwardedFor && r.forwardedFor !== '' ? r.forwardedFor : r.remoteAddr;
  const line =
    `[pid: ${r.pid}|app: ${r.app}|req: ${r.appRequests}/${r.workerRequests}] ${varText(addr)} (${varText(r.remoteUser)}) ` +
    `{${r.varCount * 2} vars in ${r.packetSize}${bytesAndCtime(r.startedAt)}${varText(r.method)} ${varText(r.uri)} => generated ${r.bodyBytes} bytes in ` +
    `${micros ? r.micros : Math.floor(r.micros / 1000)}${micros ? ' micros ' : ' msecs '}${r.viaSendfile ? VIA_SENDFILE : ''}(${varText(r.protocol)} ${r.status}) ` +
    `${r.headerCount} headers in ${r.headerBytes} bytes (${r.switches ?? 1} switches on core ${r.core})`;
  return line.length < MAX_LINE ? line : safeLine(r, micros);
}

/** uWSGI's marker between the time and the status of a response sent with sendfile(2). */
export const VIA_SENDFILE = 'via sendfile() ';

/** uWSGI's variant of a line too long for its buffer: `0.0.0.0 ()` and `- -` for method and URI. */
function safeLine(r: RequestRecord, micros: boolean): string {
  return (
    `[pid: ${r.pid}|app: ${r.app}|req: ${r.appRequests}/${r.workerRequests}] 0.0.0.0 () ` +
    `{${r.varCount * 2} vars in ${r.packetSize}${bytesAndCtime(r.startedAt)}- - => generated ${r.bodyBytes} bytes in ` +
    `${micros ? r.micros : Math.floor(r.micros / 1000)}${micros ? ' micros ' : ' msecs '}${r.viaSendfile ? VIA_SENDFILE : ''}(${r.protocol} ${r.status}) ` +
    `${r.headerCount} headers in ${r.headerBytes} bytes (${r.switches ?? 1} switches on core ${r.core})`
  );
}

type Chunk = string | ((r: RequestRecord) => string);

/** Virtual and resident memory of a process in bytes (Linux /proc), 0 when unknown. */
function memoryOf(pid: number): { vsz: number; rss: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    };
    return { vsz: kb('VmSize'), rss: kb('VmRSS') };
  } catch {
    return { vsz: 0, rss: 0 };
  }
}

/** Variables of --log-format (spec/core.md §5.3). Empty values print "-". */
const LOG_VARS: Record<string, (r: RequestRecord) => string | number> = {
  uri: (r) => varText(r.uri),
  method: (r) => varText(r.method),
  user: (r) => varText(r.remoteUser),
  addr: (r) => varText(r.remoteAddr),
  host: (r) => varText(r.host),
  proto: (r) => varText(r.protocol),
  uagent: (r) => varText(r.userAgent),
  referer: (r) => varText(r.referer),
  status: (r) => r.status,
  micros: (r) => r.micros,
  msecs: (r) => Math.floor(r.micros / 1000),
  time: (r) => Math.floor(r.startedAt / 1000),
  ctime: (r) => ctime(r.startedAt),
  epoch: () => Math.floor(Date.now() / 1000),
  ltime: (r) => ltime(r.startedAt),
  ftime: (r) => ltime(r.startedAt),
  size: (r) => r.bodyBytes + r.headerBytes,
  hsize: (r) => r.headerBytes,
  rsize: (r) => r.bodyBytes,
  cl: (r) => r.contentLength,
  pid: (r) => r.pid,
  wid: (r) => r.workerId,
  switches: (r) => r.switches ?? 1,
  vars: (r) => r.varCount * 2,
  headers: (r) => r.headerCount,
  core: (r) => r.core,
  pktsize: (r) => r.packetSize,
  modifier1: (r) => r.modifier1,
  modifier2: (r) => r.modifier2,
  tmsecs: (r) => Math.floor(r.startedAt),
  tmicros: (r) => Math.floor(r.startedAt * 1000),
  rerr: (r) => r.readErrors,
  werr: (r) => r.writeErrors,
  ioerr: (r) => r.readErrors + r.writeErrors,
  // The app worker (bridge) that served the request, as uWSGI reports its worker's memory.
  vsz: (r) => memoryOf(r.pid).vsz,
  rss: (r) => memoryOf(r.pid).rss,
  vszM: (r) => Math.floor(memoryOf(r.pid).vsz / 1048576),
  rssM: (r) => Math.floor(memoryOf(r.pid).rss / 1048576),
};

/** Every %(name) --log-format knows (besides var.NAME and metric.NAME). */
export const LOG_FORMAT_VARIABLES: readonly string[] = Object.keys(LOG_VARS);

export interface LogFormatOptions {
  /** --logformat-strftime with a --log-date FORMAT: %(ftime) uses that format (else it is %(ltime)). */
  ftimeFormat?: string | null;
}

function dash(v: string | number): string {
  const s = String(v);
  return s === '' ? '-' : s;
}

/**
 * Compile a --log-format template once. Only `%(name)` is special (as uWSGI's parser);
 * `%(var.NAME)` reads a request var; unknown names print "-".
 */
export function compileLogFormat(template: string, opts: LogFormatOptions = {}): (r: RequestRecord) => string {
  const chunks: Chunk[] = [];
  const re = /%\(([^)]+)\)/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > last) chunks.push(template.slice(last, m.index));
    const name = m[1]!;
    if (name.startsWith('var.')) {
      const key = name.slice(4);
      chunks.push((r) => {
        for (const [k, v] of r.vars) if (k === key) return dash(varText(v));
        return '-';
      });
    } else if (name.startsWith('metric.')) {
      // No metrics subsystem yet: every metric prints "-".
      chunks.push(() => '-');
    } else if (name === 'ftime' && opts.ftimeFormat) {
      const fmt = opts.ftimeFormat;
      chunks.push((r) => dash(strftime(fmt, new Date(r.startedAt))));
    } else {
      const fn = LOG_VARS[name];
      // Any other name may be a logvar (uWSGI looks them up last, so they cannot shadow built-ins).
      chunks.push(fn ? (r) => dash(fn(r)) : (r) => dash(varText(r.logvars?.get(name) ?? '')));
    }
    last = m.index + m[0].length;
  }
  if (last < template.length) chunks.push(template.slice(last));
  return (r) => {
    let out = '';
    for (const c of chunks) out += typeof c === 'string' ? c : c(r);
    return out;
  };
}

/** Which requests are logged: --disable-logging and its conditional re-enablers. */
export interface RequestLogFilter {
  /** --disable-logging. */
  disabled: boolean;
  /** --log-4xx, --log-5xx. */
  status4xx: boolean;
  status5xx: boolean;
  /** --log-slow MS (0 = off): requests that took at least MS milliseconds. */
  slowMs: number;
  /** --log-big BYTES (0 = off): responses of at least BYTES bytes (headers + body). */
  bigBytes: number;
  /** --log-zero: responses with an empty body. */
  zero: boolean;
  /** --log-sendfile: responses sent with sendfile() (static files over 32 KiB). */
  sendfile: boolean;
  /** --log-ioerror: requests with a read or write error. */
  ioError: boolean;
}

/**
 * The decision uWSGI makes when a request ends (core/utils.c log_request): with logging
 * enabled every request is logged; with --disable-logging only those a re-enabler selects.
 * Returns null when nothing can ever be logged (no record needs to be built at all).
 */
export function compileRequestFilter(f: RequestLogFilter): ((r: RequestRecord) => boolean) | null {
  if (!f.disabled) return () => true;
  const tests: Array<(r: RequestRecord) => boolean> = [];
  if (f.zero) tests.push((r) => r.bodyBytes === 0);
  if (f.slowMs > 0) tests.push((r) => r.micros / 1000 >= f.slowMs);
  if (f.status4xx) tests.push((r) => r.status >= 400 && r.status <= 499);
  if (f.status5xx) tests.push((r) => r.status >= 500 && r.status <= 599);
  if (f.bigBytes > 0) tests.push((r) => r.bodyBytes + r.headerBytes >= f.bigBytes);
  if (f.ioError) tests.push((r) => r.readErrors > 0 || r.writeErrors > 0);
  if (f.sendfile) tests.push((r) => r.viaSendfile === true);
  if (tests.length === 0) return null;
  return (r) => {
    for (const t of tests) if (t(r)) return true;
    return false;
  };
}

/** The fields of a request record in --log-json output (uWSGI's log variable names). */
export function requestFields(r: RequestRecord): Record<string, string | number> {
  return {
    pid: r.pid,
    wid: r.workerId,
    app: r.app,
    core: r.core,
    addr: varText(r.remoteAddr),
    user: varText(r.remoteUser),
    method: varText(r.method),
    uri: varText(r.uri),
    proto: varText(r.protocol),
    host: varText(r.host),
    uagent: varText(r.userAgent),
    referer: varText(r.referer),
    status: r.status,
    micros: r.micros,
    size: r.bodyBytes + r.headerBytes,
    rsize: r.bodyBytes,
    hsize: r.headerBytes,
    headers: r.headerCount,
    vars: r.varCount * 2,
    pktsize: r.packetSize,
    cl: r.contentLength,
    modifier1: r.modifier1,
    modifier2: r.modifier2,
    time: Math.floor(r.startedAt / 1000),
    rerr: r.readErrors,
    werr: r.writeErrors,
  };
}
