/**
 * uwsgi ⇄ FastCGI on a handed-off connection (docs/bridge-protocol.md §3.4).
 *
 * A bridge whose runtime already is a FastCGI server (php-cgi) hands the core the address of
 * a responder it dedicates to the connection, and the core talks to it directly, saving the
 * bridge's process hop on every request. The rest of the core still sees a bridge
 * connection: requests go in as uwsgi packets, responses come out as the HTTP/1.1 bytes
 * every bridge sends (self-delimiting, §3.1), which the connection's HTTP response parser
 * reads as usual. This class does the two conversions:
 *
 * - request: the packet's vars → the plugin's FastcgiAdapter (which resolves the script and
 *   may answer at once: 301/403/404) → BEGIN_REQUEST + PARAMS; the body as STDIN records.
 * - response: STDOUT records carry a CGI response (header block with `Status:`, then the
 *   body) → status line, headers and framing: `Content-Length` when END_REQUEST came with the
 *   body, else the script's own Content-Length, else chunked; none for HEAD, 1xx, 204, 304.
 *   STDERR records (PHP's error log) go to the server log.
 *
 * Requests are answered strictly in order, so an adapter's immediate answer waits behind the
 * responses of requests sent before it (pipelining, §3.1).
 */
import { STATUS_CODES } from 'node:http';
import { decodeVars, isVarsError, type UwsgiVars } from '../protocol/uwsgi-packet.ts';
import {
  encodeRequestHead,
  encodeStdin,
  END_OF_STDIN,
  FCGI_END_REQUEST,
  FCGI_HEADER_SIZE,
  FCGI_STDERR,
  FCGI_STDOUT,
  type FastcgiParam,
} from './fastcgi-records.ts';

/**
 * The request vars as the adapter sees them: the uwsgi vars the core built, in order, names and
 * values decoded as latin-1 (one character per byte: `Buffer.from(v, 'latin1')` gives the bytes).
 */
export type FastcgiRequestVars = UwsgiVars;

/** What the adapter decided for one request. */
export type FastcgiPlan =
  | { params: FastcgiParam[] }
  | {
      /** Answer without running anything (redirect, refusal, not found). */
      answer: { status: number; headers?: Array<[string, string]> };
      /** Why, for the server log (omitted: nothing logged). */
      log?: string;
    };

/**
 * A plugin's request preparation for FastCGI (PluginDescriptor.bridge.fastcgi): runs in the
 * core worker for every request of the pool, so it must be cheap and must not throw for bad
 * input (answer 4xx instead).
 */
export interface FastcgiAdapter {
  prepare(vars: FastcgiRequestVars): FastcgiPlan;
  /**
   * Requests a responder serves before it exits by itself (php-cgi's PHP_FCGI_MAX_REQUESTS),
   * 0 or absent for no limit: the core sends no more than that on one connection and then
   * closes it, so no request is written to a responder that is about to exit. The bridge
   * gives each such connection a fresh responder.
   */
  readonly requestsPerResponder?: number;
}

/** Where the translated HTTP response bytes go, and where messages go. */
export interface FastcgiTranslatorHost {
  /** HTTP response bytes for the connection's parser, in order. */
  feed(http: Buffer): void;
  log(line: string): void;
}

/** The largest CGI header block accepted from the responder. */
const MAX_HEADER_BYTES = 65536;
const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/** Where the CGI header block ends: [end of the headers, start of the body], or null. */
function headerEnd(buf: Buffer): [number, number] | null {
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return [i, i + 2];
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return [i, i + 3];
  }
  return null;
}

interface CgiHead {
  /** "200 OK" */
  status: string;
  code: number;
  /** "Name: value" lines, Status and Transfer-Encoding removed. */
  lines: string[];
  /** The script's own Content-Length, or -1. */
  contentLength: number;
}

/** Parse a CGI header block (latin-1 text without the blank line). A string is the error. */
function parseCgiHead(text: string): CgiHead | string {
  let status: string | null = null;
  let location = false;
  let contentLength = -1;
  const lines: string[] = [];
  let start = 0;
  while (start <= text.length) {
    let nl = text.indexOf('\n', start);
    if (nl === -1) nl = text.length;
    const line = text.charCodeAt(nl - 1) === 13 ? text.slice(start, nl - 1) : text.slice(start, nl);
    start = nl + 1;
    const colon = line.indexOf(':');
    if (colon <= 0) return `header line without a name and ":" ${JSON.stringify(line.slice(0, 80))}`;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const lower = name.toLowerCase();
    if (lower === 'status') {
      if (status === null) {
        const m = /^(\d{3})(?:\s+(.*))?$/.exec(value);
        if (!m) return `invalid Status header ${JSON.stringify(value.slice(0, 80))}`;
        status = `${m[1]} ${m[2] || STATUS_CODES[Number(m[1])] || 'Unknown'}`;
      }
      continue;
    }
    // The core frames the body itself (the responder's output is never chunk-encoded).
    if (lower === 'transfer-encoding') continue;
    if (lower === 'location') location = true;
    if (lower === 'content-length' && /^\d+$/.test(value)) contentLength = Number(value);
    lines.push(`${name}: ${value}`);
  }
  status ??= location ? '302 Found' : '200 OK';
  return { status, code: Number(status.slice(0, 3)), lines, contentLength };
}

function simpleAnswer(status: number, extra: ReadonlyArray<[string, string]>, headOnly: boolean): Buffer {
  const reason = STATUS_CODES[status] ?? 'Unknown';
  let head = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\n`;
  for (const [k, v] of extra) head += `${k}: ${v}\r\n`;
  head += `Content-Length: ${reason.length}\r\n\r\n`;
  return Buffer.from(headOnly ? head : head + reason, 'latin1');
}

/** One request on the connection, in order. */
class QueuedRequest {
  /** An immediate answer (the adapter's), or null: the responder answers. */
  answer: Buffer | null;
  /** HEAD: the response has no body whatever the headers say. */
  readonly headOnly: boolean;
  /** STDOUT bytes received before the head was sent. */
  pending: Buffer[] = [];
  pendingBytes = 0;
  headSent = false;
  /** 0: no body, 1: the script's Content-Length (`left` bytes to go), 2: chunked. */
  framing = 0;
  left = 0;
  /** The response was replaced by a 500: the rest of the responder's output is dropped. */
  swallow = false;

  constructor(answer: Buffer | null, headOnly: boolean) {
    this.answer = answer;
    this.headOnly = headOnly;
  }
}

export class FastcgiTranslator {
  private readonly adapter: FastcgiAdapter;
  private readonly host: FastcgiTranslatorHost;
  private readonly queue: QueuedRequest[] = [];
  /** Bytes of an incomplete record. */
  private partial: Buffer | null = null;
  private readonly out: Buffer[] = [];
  private answerScheduled = false;
  /**
   * The connection must be closed after what was fed (a script sent fewer bytes than its
   * Content-Length: the response cannot end any other way).
   */
  mustClose = false;
  /** Requests sent to the responder on this connection (see FastcgiAdapter.requestsPerResponder). */
  private sent = 0;

  constructor(adapter: FastcgiAdapter, host: FastcgiTranslatorHost) {
    this.adapter = adapter;
    this.host = host;
    this.flushAnswers = this.flushAnswers.bind(this);
  }

  /**
   * Translate one uwsgi request (the packet, and its vars when the caller has them; `headOnly`
   * for HEAD, whose response has no body). Returns the FastCGI bytes to write, or
   * null when the request is answered without the responder (the answer is fed in turn).
   * The responder keeps the connection for the next request (FCGI_KEEP_CONN) only after a
   * request without a body: php-cgi may leave STDIN records of a body unread (a script that
   * never reads its input, a body over post_max_size), and a leftover record breaks the next
   * request on the connection. After a body the responder closes; the caller retires it.
   */
  request(packet: Buffer, given: UwsgiVars | null, hasBody: boolean, headOnly: boolean): Buffer | null {
    // The pipeline hands over the vars it encoded; decoding the packet again is the fallback.
    const decoded = given ?? decodeVars(packet.subarray(4));
    const vars = isVarsError(decoded) ? null : decoded;
    let plan: FastcgiPlan;
    if (!vars) plan = { answer: { status: 400 }, log: 'FastCGI: invalid uwsgi vars block' };
    else {
      try {
        plan = this.adapter.prepare(vars);
      } catch (err) {
        plan = { answer: { status: 500 }, log: `FastCGI request preparation failed: ${(err as Error).stack ?? err}` };
      }
    }
    if ('answer' in plan) {
      if (plan.log) this.host.log(plan.log);
      this.queue.push(new QueuedRequest(simpleAnswer(plan.answer.status, plan.answer.headers ?? [], headOnly), headOnly));
      if (this.queue.length === 1 && !this.answerScheduled) {
        // Not from inside the caller's send(): the answer completes the exchange.
        this.answerScheduled = true;
        setImmediate(this.flushAnswers);
      }
      return null;
    }
    this.queue.push(new QueuedRequest(null, headOnly));
    this.sent++;
    const head = encodeRequestHead(plan.params, !hasBody, !hasBody);
    if (head.dropped.length) this.host.log(`FastCGI: request variable(s) ${head.dropped.join(', ')} too large for a record: not passed`);
    return head.bytes;
  }

  /** The responder takes no more requests after the ones sent (the connection must retire). */
  get exhausted(): boolean {
    const limit = this.adapter.requestsPerResponder ?? 0;
    return limit > 0 && this.sent >= limit;
  }

  stdin(chunk: Buffer): Buffer {
    return encodeStdin(chunk);
  }

  get endOfStdin(): Buffer {
    return END_OF_STDIN;
  }

  /** Bytes from the responder. Throws on a broken record stream (the caller closes). */
  onData(d: Buffer): void {
    const buf = this.partial ? Buffer.concat([this.partial, d]) : d;
    this.partial = null;
    let o = 0;
    while (buf.length - o >= FCGI_HEADER_SIZE) {
      const type = buf[o + 1]!;
      const len = (buf[o + 4]! << 8) | buf[o + 5]!;
      const pad = buf[o + 6]!;
      if (buf.length - o < FCGI_HEADER_SIZE + len + pad) break;
      const content = buf.subarray(o + FCGI_HEADER_SIZE, o + FCGI_HEADER_SIZE + len);
      o += FCGI_HEADER_SIZE + len + pad;
      const r = this.queue[0];
      if (!r || r.answer) throw new Error(`FastCGI record type ${type} with no request in progress`);
      if (type === FCGI_STDOUT) {
        if (len > 0 && !r.swallow) this.stdout(r, content);
      } else if (type === FCGI_STDERR) {
        if (len > 0) this.host.log(content.toString('utf8').replace(/\n$/, ''));
      } else if (type === FCGI_END_REQUEST) {
        this.endResponse(r);
        this.queue.shift();
        this.takeAnswers();
      }
    }
    if (o < buf.length) this.partial = buf.subarray(o);
    const r = this.queue[0];
    if (r && !r.answer && !r.headSent && !r.swallow && r.pendingBytes > 0) this.sendHead(r, false);
    this.flush();
  }

  private stdout(r: QueuedRequest, content: Buffer): void {
    if (!r.headSent) {
      r.pending.push(content);
      r.pendingBytes += content.length;
      return;
    }
    this.body(r, content);
  }

  private body(r: QueuedRequest, chunk: Buffer): void {
    if (r.framing === 1) {
      if (r.left === 0) return;
      if (chunk.length > r.left) chunk = chunk.subarray(0, r.left);
      r.left -= chunk.length;
      this.out.push(chunk);
    } else if (r.framing === 2 && chunk.length > 0) {
      this.out.push(Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF);
    }
  }

  /**
   * The head, once the header block is complete: with a Content-Length of what arrived when
   * the response is already complete (`ended`), else streamed.
   */
  private sendHead(r: QueuedRequest, ended: boolean): void {
    const all = r.pending.length === 1 ? r.pending[0]! : Buffer.concat(r.pending);
    const he = headerEnd(all);
    if (!he) {
      if (ended) this.replaceWith500(r, all.length ? 'invalid response from PHP: no end of the header block' : 'the FastCGI responder sent no response');
      else if (all.length > MAX_HEADER_BYTES) this.replaceWith500(r, `invalid response from PHP: no end of headers within ${MAX_HEADER_BYTES} bytes`);
      else r.pending = [all];
      return;
    }
    const head = parseCgiHead(all.toString('latin1', 0, he[0]));
    if (typeof head === 'string') {
      this.replaceWith500(r, `invalid response from PHP: ${head}`);
      return;
    }
    r.pending = [];
    r.pendingBytes = 0;
    r.headSent = true;
    const body = all.subarray(he[1]);
    const noBody = r.headOnly || (head.code >= 100 && head.code < 200) || head.code === 204 || head.code === 304;
    let text = `HTTP/1.1 ${head.status}\r\n`;
    for (const line of head.lines) text += `${line}\r\n`;
    if (noBody) r.framing = 0;
    else if (head.contentLength >= 0) {
      r.framing = 1;
      r.left = head.contentLength;
    } else if (ended) {
      r.framing = 1;
      r.left = body.length;
      text += `Content-Length: ${body.length}\r\n`;
    } else {
      r.framing = 2;
      text += 'Transfer-Encoding: chunked\r\n';
    }
    this.out.push(Buffer.from(text + '\r\n', 'latin1'));
    if (body.length) this.body(r, body);
  }

  private replaceWith500(r: QueuedRequest, why: string): void {
    this.host.log(why);
    r.swallow = true;
    r.pending = [];
    r.pendingBytes = 0;
    this.out.push(simpleAnswer(500, [], r.headOnly));
  }

  private endResponse(r: QueuedRequest): void {
    if (r.swallow) return;
    if (!r.headSent) {
      this.sendHead(r, true);
      if (r.swallow) return;
    }
    if (r.framing === 2) this.out.push(LAST_CHUNK);
    else if (r.framing === 1 && r.left > 0) this.mustClose = true;
  }

  /** Immediate answers now at the head of the queue. */
  private takeAnswers(): void {
    while (this.queue[0]?.answer) this.out.push(this.queue.shift()!.answer!);
  }

  private flushAnswers(): void {
    this.answerScheduled = false;
    this.takeAnswers();
    this.flush();
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const bytes = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out.length = 0;
    this.host.feed(bytes);
  }
}
