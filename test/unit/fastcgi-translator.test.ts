/**
 * The FastCGI handoff's conversions (docs/bridge-protocol.md §3.4): uwsgi request → FastCGI
 * records, and a responder's CGI output → the self-delimiting HTTP response every bridge sends.
 */
import { encodeRequestHead, encodeStdin, END_OF_STDIN, FCGI_END_REQUEST, FCGI_STDERR, FCGI_STDOUT } from '../../core/bridge/fastcgi-records.ts';
import { FastcgiTranslator, type FastcgiAdapter, type FastcgiPlan, type FastcgiRequestVars } from '../../core/bridge/fastcgi-translator.ts';
import { encodePacket, getVar } from '../../core/protocol/uwsgi-packet.ts';

function record(type: number, content: string | Buffer, padding = 0): Buffer {
  const body = typeof content === 'string' ? Buffer.from(content, 'latin1') : content;
  const h = Buffer.from([1, type, 0, 1, body.length >> 8, body.length & 0xff, padding, 0]);
  return Buffer.concat([h, body, Buffer.alloc(padding)]);
}
const stdout = (s: string) => record(FCGI_STDOUT, s);
const END = record(FCGI_END_REQUEST, Buffer.alloc(8));

/** An adapter that passes the vars through, or answers the paths it is told to. */
class TestAdapter implements FastcgiAdapter {
  seen: FastcgiRequestVars[] = [];
  constructor(
    private readonly answers: Record<string, FastcgiPlan> = {},
    readonly requestsPerResponder = 0,
  ) {}
  prepare(vars: FastcgiRequestVars): FastcgiPlan {
    this.seen.push(vars);
    const p = getVar(vars, 'PATH_INFO') ?? '';
    return this.answers[p] ?? { params: vars };
  }
}

function setup(adapter: FastcgiAdapter = new TestAdapter()) {
  const fed: Buffer[] = [];
  const logs: string[] = [];
  const t = new FastcgiTranslator(adapter, { feed: (b) => fed.push(b), log: (l) => logs.push(l) });
  return { t, adapter, logs, http: () => Buffer.concat(fed).toString('latin1'), fed };
}

const get = (path: string, method = 'GET') =>
  encodePacket(14, [
    ['REQUEST_METHOD', method],
    ['PATH_INFO', path],
  ]);

/** Decode the PARAMS records of a request head into name → value. */
function paramsOf(head: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let o = 0;
  while (o < head.length) {
    const type = head[o + 1]!;
    const len = head.readUInt16BE(o + 4);
    const content = head.subarray(o + 8, o + 8 + len);
    o += 8 + len + head[o + 6]!;
    if (type !== 4) continue;
    let p = 0;
    while (p < content.length) {
      const size = () => {
        const b = content[p]!;
        if (b < 128) return (p++, b);
        const n = content.readUInt32BE(p) & 0x7fffffff;
        p += 4;
        return n;
      };
      const kl = size();
      const vl = size();
      out.set(content.toString('latin1', p, p + kl), content.toString('latin1', p + kl, p + kl + vl));
      p += kl + vl;
    }
  }
  return out;
}

describe('FastCGI records', () => {
  it('a bodyless request is BEGIN_REQUEST (responder, keep-conn) + PARAMS + empty PARAMS + empty STDIN, in one buffer', () => {
    const { bytes, dropped } = encodeRequestHead([['A', 'b']], true, true);
    expect(dropped).toEqual([]);
    expect([...bytes]).toEqual([
      ...[1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0], // BEGIN_REQUEST: role 1, FCGI_KEEP_CONN
      ...[1, 4, 0, 1, 0, 4, 0, 0, 1, 1, 0x41, 0x62], // PARAMS "A"="b"
      ...[1, 4, 0, 1, 0, 0, 0, 0], // end of PARAMS
      ...[1, 5, 0, 1, 0, 0, 0, 0], // end of STDIN
    ]);
  });

  it('long names and values use 4-byte lengths; a value too large for a record is dropped and named', () => {
    const long = 'x'.repeat(200);
    const { bytes, dropped } = encodeRequestHead(
      [
        ['LONG', long],
        ['HUGE', 'y'.repeat(70000)],
      ],
      false,
      false,
    );
    expect(dropped).toEqual(['HUGE']);
    expect(bytes[10]).toBe(0); // no FCGI_KEEP_CONN
    expect(paramsOf(bytes).get('LONG')).toBe(long);
    expect(bytes.subarray(-8)).toEqual(Buffer.from([1, 4, 0, 1, 0, 0, 0, 0])); // no STDIN end: a body follows
  });

  it('params beyond one record split on whole pairs', () => {
    const params: Array<[string, string]> = [];
    for (let i = 0; i < 10; i++) params.push([`V${i}`, 'z'.repeat(10000)]);
    const { bytes } = encodeRequestHead(params, true, true);
    const got = paramsOf(bytes);
    for (let i = 0; i < 10; i++) expect(got.get(`V${i}`)).toHaveLength(10000);
  });

  it('a body becomes STDIN records of at most 65535 bytes', () => {
    const body = Buffer.alloc(70000, 0x61);
    const out = encodeStdin(body);
    expect(out.length).toBe(70000 + 16);
    expect(out.readUInt16BE(4)).toBe(65535);
    expect(out.readUInt16BE(8 + 65535 + 4)).toBe(70000 - 65535);
    expect(END_OF_STDIN).toEqual(Buffer.from([1, 5, 0, 1, 0, 0, 0, 0]));
  });
});

describe('FastCGI responses become self-delimiting HTTP responses', () => {
  it('a response complete in one read gets a Content-Length; Status sets the status line', () => {
    const { t, http } = setup();
    expect(t.request(get('/a'), null, false, false)).not.toBeNull();
    t.onData(Buffer.concat([stdout('Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope'), END]));
    expect(http()).toBe('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope');
  });

  it('without Status: 200 OK, or 302 Found with a Location', () => {
    const { t, http } = setup();
    t.request(get('/a'), null, false, false);
    t.request(get('/b'), null, false, false);
    t.onData(Buffer.concat([stdout('X-A: 1\n\nok'), END, stdout('Location: /x\r\n\r\n'), END]));
    expect(http()).toBe('HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok' + 'HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n');
  });

  it('a streamed response is chunk-encoded, split anywhere between reads', () => {
    const { t, http } = setup();
    t.request(get('/a'), null, false, false);
    const wire = Buffer.concat([stdout('Content-Type: text/plain\r\n\r\nfirst'), stdout('second'), END]);
    t.onData(wire.subarray(0, 50));
    t.onData(wire.subarray(50, 51));
    t.onData(wire.subarray(51));
    expect(http()).toBe('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n');
  });

  it("the script's own Content-Length is kept, extra bytes cut; fewer bytes mean the connection must close", () => {
    const { t, http } = setup();
    t.request(get('/a'), null, false, false);
    t.onData(stdout('Content-Length: 3\r\n\r\nabcdef'));
    t.onData(END);
    expect(http()).toBe('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc');
    expect(t.mustClose).toBe(false);
    const short = setup();
    short.t.request(get('/a'), null, false, false);
    short.t.onData(Buffer.concat([stdout('Content-Length: 10\r\n\r\nabc'), END]));
    expect(short.t.mustClose).toBe(true);
  });

  it('HEAD, 204 and 304 responses get no framing and no body; a script Transfer-Encoding is dropped', () => {
    const { t, http } = setup();
    t.request(get('/a', 'HEAD'), null, false, true);
    t.request(get('/b'), null, false, false);
    t.request(get('/c'), null, false, false);
    t.onData(Buffer.concat([stdout('Content-Type: text/html\r\n\r\n'), END, stdout('Status: 304\r\n\r\n'), END, stdout('Transfer-Encoding: chunked\r\n\r\nhi'), END]));
    expect(http()).toBe('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n' + 'HTTP/1.1 304 Not Modified\r\n\r\n' + 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
  });

  it('an invalid header block or no output at all becomes a 500, and the rest of that output is dropped', () => {
    const { t, http, logs } = setup();
    t.request(get('/a'), null, false, false);
    t.request(get('/b'), null, false, false);
    t.onData(Buffer.concat([stdout('no colon here\r\n\r\nbody'), stdout('more'), END, END]));
    expect(http()).toBe(
      'HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\nInternal Server Error' +
        'HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\nInternal Server Error',
    );
    expect(logs[0]).toMatch(/header line without a name/);
    expect(logs[1]).toMatch(/sent no response/);
  });

  it('STDERR records go to the log; padding is skipped', () => {
    const { t, http, logs } = setup();
    t.request(get('/a'), null, false, false);
    t.onData(Buffer.concat([record(FCGI_STDERR, 'PHP Warning: x\n', 3), record(FCGI_STDOUT, 'A: b\r\n\r\nok', 5), END]));
    expect(logs).toEqual(['PHP Warning: x']);
    expect(http()).toBe('HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 2\r\n\r\nok');
  });

  it('a record with no request in progress is a broken stream (the connection closes)', () => {
    const { t } = setup();
    expect(() => t.onData(END)).toThrow(/no request in progress/);
  });
});

describe("the adapter's immediate answers keep request order", () => {
  const answers: Record<string, FastcgiPlan> = {
    '/dir': { answer: { status: 301, headers: [['Location', '/dir/']] } },
    '/secret': { answer: { status: 403 }, log: 'refused /secret' },
  };

  it('an answer with nothing before it comes on the next turn of the event loop', async () => {
    const { t, http, logs } = setup(new TestAdapter(answers));
    expect(t.request(get('/secret'), null, false, false)).toBeNull();
    expect(http()).toBe(''); // not from inside send()
    await new Promise((r) => setImmediate(r));
    expect(http()).toBe('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nForbidden');
    expect(logs).toEqual(['refused /secret']);
  });

  it('an answer queued behind a running request waits for its END_REQUEST', async () => {
    const { t, http } = setup(new TestAdapter(answers));
    t.request(get('/a'), null, false, false);
    t.request(get('/dir', 'HEAD'), null, false, true);
    t.request(get('/b'), null, false, false);
    await new Promise((r) => setImmediate(r));
    expect(http()).toBe('');
    t.onData(Buffer.concat([stdout('A: 1\r\n\r\none'), END]));
    t.onData(Buffer.concat([stdout('A: 2\r\n\r\ntwo'), END]));
    expect(http()).toBe(
      'HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 3\r\n\r\none' +
        'HTTP/1.1 301 Moved Permanently\r\nContent-Type: text/plain\r\nLocation: /dir/\r\nContent-Length: 17\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nA: 2\r\nContent-Length: 3\r\n\r\ntwo',
    );
  });

  it('an adapter that throws answers 500 and logs why', async () => {
    const { t, http, logs } = setup({
      prepare() {
        throw new Error('boom');
      },
    });
    expect(t.request(get('/a'), null, false, false)).toBeNull();
    await new Promise((r) => setImmediate(r));
    expect(http()).toMatch(/^HTTP\/1.1 500 Internal Server Error\r\n/);
    expect(logs[0]).toMatch(/boom/);
  });

  it('with a per-responder request limit the connection is exhausted after that many requests sent (answers do not count)', () => {
    const { t } = setup(new TestAdapter(answers, 2));
    t.request(get('/a'), null, false, false);
    t.request(get('/secret'), null, false, false);
    expect(t.exhausted).toBe(false);
    t.request(get('/b'), null, false, false);
    expect(t.exhausted).toBe(true);
  });

  it('requests with a body do not ask the responder to keep the connection', () => {
    const { t } = setup();
    const head = t.request(get('/a'), null, true, false)!;
    expect(head[10]).toBe(0);
    expect(head.subarray(-8)[1]).toBe(4); // ends with the empty PARAMS: the body follows
  });
});
