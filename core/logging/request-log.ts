/**
 * The default uWSGI request log line (spec/core.md §5.2), byte for byte:
 *
 * [pid: PID|app: APPID|req: APPREQS/WORKERREQS] ADDR (USER) {VARS vars in PKTSIZE bytes} [CTIME]
 *   METHOD URI => generated RSIZE bytes in RT msecs (PROTO STATUS) NHDR headers in HSIZE bytes
 *   (SWITCHES switches on core CORE)
 *
 * plus `--log-format` with the common %(vars) (§5.3).
 */

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

export function formatDefaultLine(r: RequestRecord, micros = false): string {
  const time = micros ? `${r.micros} micros` : `${Math.floor(r.micros / 1000)} msecs`;
  return (
    `[pid: ${r.pid}|app: ${r.app}|req: ${r.appRequests}/${r.workerRequests}] ${r.remoteAddr} (${r.remoteUser}) ` +
    `{${r.varCount * 2} vars in ${r.packetSize} bytes} [${ctime(r.startedAt)}] ${r.method} ${r.uri} => ` +
    `generated ${r.bodyBytes} bytes in ${time} (${r.protocol} ${r.status}) ` +
    `${r.headerCount} headers in ${r.headerBytes} bytes (1 switches on core ${r.core})`
  );
}

type Chunk = string | ((r: RequestRecord) => string);

/** Variables of --log-format (spec/core.md §5.3). Empty values print "-". */
const LOG_VARS: Record<string, (r: RequestRecord) => string | number> = {
  uri: (r) => r.uri,
  method: (r) => r.method,
  user: (r) => r.remoteUser,
  addr: (r) => r.remoteAddr,
  host: (r) => r.host,
  proto: (r) => r.protocol,
  uagent: (r) => r.userAgent,
  referer: (r) => r.referer,
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
  switches: () => 1,
  vars: (r) => r.varCount * 2,
  headers: (r) => r.headerCount,
  core: (r) => r.core,
  pktsize: (r) => r.packetSize,
  modifier1: (r) => r.modifier1,
  modifier2: (r) => r.modifier2,
  tmsecs: (r) => Math.floor(r.startedAt),
  tmicros: (r) => Math.floor(r.startedAt * 1000),
};

function dash(v: string | number): string {
  const s = String(v);
  return s === '' ? '-' : s;
}

/**
 * Compile a --log-format template once. Only `%(name)` is special (as uWSGI's parser);
 * `%(var.NAME)` reads a request var; unknown names print "-".
 */
export function compileLogFormat(template: string): (r: RequestRecord) => string {
  const chunks: Chunk[] = [];
  const re = /%\(([^)]+)\)/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > last) chunks.push(template.slice(last, m.index));
    const name = m[1]!;
    if (name.startsWith('var.')) {
      const key = name.slice(4);
      chunks.push((r) => {
        for (const [k, v] of r.vars) if (k === key) return dash(v);
        return '-';
      });
    } else {
      const fn = LOG_VARS[name];
      chunks.push(fn ? (r) => dash(fn(r)) : () => '-');
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
