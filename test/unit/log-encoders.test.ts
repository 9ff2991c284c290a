/**
 * Log encoders byte for byte (spec/core.md §5.5), the msgpack encoder, logger/encoder spec
 * parsing, the rsyslog datagram shape, and the router's uWSGI routing rules with in-memory
 * targets.
 */
import zlib from 'node:zlib';
import { unpack } from 'msgpackr';
import type { LogEncoder, LogTarget } from '../../core/logging/api.ts';
import { CORE_ENCODERS, parseEncoderSpec, runChain } from '../../core/logging/encoders.ts';
import { LogRouter, type RoutedLogger } from '../../core/logging/router.ts';
import { parseLoggerSpec } from '../../core/logging/setup.ts';
import { QueuedTarget, type LogRecord } from '../../core/logging/targets/queued.ts';
import msgpackPlugin from '../../plugins/msgpack/index.ts';
import { rsyslogPackets } from '../../plugins/rsyslog/index.ts';

function enc(spec: string): LogEncoder {
  const s = parseEncoderSpec(spec);
  const def = CORE_ENCODERS.find((e) => e.name === s.name) ?? msgpackPlugin.logEncoders.find((e) => e.name === s.name);
  if (!def) throw new Error(`no encoder ${s.name}`);
  return def.create(s.args);
}
const chain = (specs: string[], msg: string | Buffer): Buffer => runChain(specs.map(enc), Buffer.isBuffer(msg) ? msg : Buffer.from(msg));

describe('core log encoders', () => {
  test('prefix, suffix and nl are byte-exact and chained in option order (uWSGI: suffix goes after the newline)', () => {
    expect(chain(['prefix P'], 'hello\n').toString()).toBe('Phello\n');
    expect(chain(['suffix S'], 'hello\n').toString()).toBe('hello\nS');
    expect(chain(['nl'], 'hello').toString()).toBe('hello\n');
    // The exact chain checked against uWSGI 2.0.21: format, prefix, nl, suffix.
    expect(chain(['format A${msg}B${nope}Z', 'prefix P', 'nl', 'suffix S'], 'hello\n').toString()).toBe('PAhelloBZ\nS');
    // Order matters: prefix before format is overwritten by the template's ${msg}.
    expect(chain(['prefix P', 'format [${msg}]'], 'x\n').toString()).toBe('[Px]');
  });

  test('format: ${msg} drops the newline, ${msgnl} keeps it, no newline is added', () => {
    expect(chain(['format <${msg}>'], 'line\n').toString()).toBe('<line>');
    expect(chain(['format <${msgnl}>'], 'line\n').toString()).toBe('<line\n>');
    expect(chain(['format ${msg}|${msg}'], 'ab').toString()).toBe('ab|ab');
  });

  test('format: ${unix}, ${millis}, ${micros} and ${strftime:…} are the current time', () => {
    const before = Date.now();
    const out = chain(['format ${unix} ${millis} ${micros} ${strftime:%Y-%m}'], 'x\n').toString();
    const [unix, millis, micros, ym] = out.split(' ');
    expect(Math.abs(Number(unix) - Math.floor(before / 1000))).toBeLessThanOrEqual(1);
    expect(Math.abs(Number(millis) - before)).toBeLessThan(2000);
    expect(micros).toMatch(/^\d{16}$/);
    const d = new Date();
    expect(ym).toBe(`${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`);
  });

  test('format without a template is an error that shows an example', () => {
    expect(() => enc('format')).toThrow(/needs a template, e\.g\./);
  });

  test('json escapes every value correctly (unlike uWSGI, which writes control characters raw)', () => {
    const nasty = 'say "hi" \\ tab\there \x01\x1f bell\x07 é ✓';
    const out = chain(['json {"unix":${unix},"msg":"${msg}"}'], nasty + '\n').toString();
    const parsed = JSON.parse(out) as { unix: number; msg: string };
    expect(parsed.msg).toBe(nasty);
    expect(Number.isInteger(parsed.unix)).toBe(true);
    expect(out).not.toMatch(/[\x00-\x1f]/);
    // The newline of ${msgnl} is escaped too.
    expect(JSON.parse(chain(['json {"m":"${msgnl}"}'], 'a\n').toString())).toEqual({ m: 'a\n' });
  });

  test('json without a template writes {"unix":…,"msg":"…"} (uWSGI writes nothing)', () => {
    const parsed = JSON.parse(chain(['json'], 'hello "x"\n').toString()) as Record<string, unknown>;
    expect(parsed.msg).toBe('hello "x"');
    expect(typeof parsed.unix).toBe('number');
  });

  test('spec §5.5: json, then prefix X, then nl → "X{…}\\n"; without nl records are not newline-terminated', () => {
    const out = chain(['json {"msg":"${msg}"}', 'prefix X', 'nl'], 'm\n').toString();
    expect(out).toBe('X{"msg":"m"}\n');
    expect(chain(['json {"msg":"${msg}"}'], 'm\n').toString()).toBe('{"msg":"m"}');
  });

  test('gzip and compress produce gzip / zlib streams of the record', () => {
    const g = chain(['gzip'], 'hello gzip\n');
    expect([g[0], g[1]]).toEqual([0x1f, 0x8b]);
    expect(zlib.gunzipSync(g).toString()).toBe('hello gzip\n');
    const z = chain(['compress'], 'hello zlib\n');
    expect(z[0]).toBe(0x78);
    expect(zlib.inflateSync(z).toString()).toBe('hello zlib\n');
    // Encoders after a binary one see the bytes unchanged.
    const pz = chain(['gzip', 'prefix >'], 'abc');
    expect(pz.subarray(0, 1).toString()).toBe('>');
    expect(zlib.gunzipSync(pz.subarray(1)).toString()).toBe('abc');
  });
});

describe('msgpack log encoder (plugin msgpack, msgpackr)', () => {
  test('a map with fixed and dynamic items, byte for byte', () => {
    const out = chain(['msgpack map:3|str:message|msg|str:n|int:5|str:ok|true'], 'hello\n');
    const expected = Buffer.concat([
      Buffer.from([0x83, 0xa7]), Buffer.from('message'), Buffer.from([0xa5]), Buffer.from('hello'),
      Buffer.from([0xa1]), Buffer.from('n'), Buffer.from([0x05]),
      Buffer.from([0xa2]), Buffer.from('ok'), Buffer.from([0xc3]),
    ]);
    expect(out.toString('hex')).toBe(expected.toString('hex'));
  });

  test('arrays, nil/false, floats, bin and msgbinnl; several top-level items are concatenated', () => {
    const out = chain(['msgpack array:4|nil|false|float:1.5|msgbinnl|str:tail'], 'ab\n');
    expect(out.subarray(0, 4).toString('hex')).toBe('94c0c2cb');
    // float64 1.5, then bin8 of "ab\n", then the second document "tail".
    expect(out.subarray(3, 12).toString('hex')).toBe('cb3ff8000000000000');
    expect(out.subarray(12, 17).toString('hex')).toBe('c403' + Buffer.from('ab\n').toString('hex'));
    expect(unpack(out.subarray(17))).toBe('tail');
    const doc = unpack(chain(['msgpack map:2|str:t|unix|str:m|msgnl'], 'x\n')) as Record<string, unknown>;
    expect(doc.m).toBe('x\n');
    expect(Math.abs((doc.t as number) - Date.now() / 1000)).toBeLessThan(2);
  });

  test('bad formats are errors that name the problem', () => {
    expect(() => enc('msgpack')).toThrow(/needs a format/);
    expect(() => enc('msgpack map:2|str:a|msg')).toThrow(/fewer items than it announces/);
    expect(() => enc('msgpack wat')).toThrow(/unknown item "wat"/);
    expect(() => enc('msgpack int:x')).toThrow(/int needs an integer/);
  });
});

describe('spec parsing', () => {
  test('--log-encoder NAME[:ID][ ARGS]', () => {
    expect(parseEncoderSpec('json:name {"a":"${msg}"}')).toMatchObject({ name: 'json', loggerId: 'name', args: '{"a":"${msg}"}' });
    expect(parseEncoderSpec('gzip:second')).toMatchObject({ name: 'gzip', loggerId: 'second', args: '' });
    expect(parseEncoderSpec('prefix [a b] ')).toMatchObject({ name: 'prefix', loggerId: null, args: '[a b] ' });
  });

  test('--logger [ID ]NAME[:ARGS]: the id must be alphanumeric, else the whole text is the logger (uWSGI)', () => {
    expect(parseLoggerSpec('file:/tmp/x.log')).toEqual({ id: null, name: 'file', args: '/tmp/x.log' });
    expect(parseLoggerSpec('errs file:/tmp/e.log')).toEqual({ id: 'errs', name: 'file', args: '/tmp/e.log' });
    expect(parseLoggerSpec('syslog')).toEqual({ id: null, name: 'syslog', args: null });
    expect(parseLoggerSpec('my-id file:/x')).toEqual({ id: null, name: 'my-id file', args: '/x' });
    expect(parseLoggerSpec('pipe:cat -u')).toEqual({ id: null, name: 'pipe', args: 'cat -u' });
  });

  test('rsyslog datagrams: <29>Mmm dd hh:mm:ss IDENT: MSG, newline dropped, cut or split at the packet size', () => {
    const [p] = rsyslogPackets('hello world\n', 'host uwsgi', new Date(2026, 0, 5, 7, 8, 9).getTime(), 1024, false);
    expect(p).toBe('<29>Jan  5 07:08:09 host uwsgi: hello world');
    const long = 'x'.repeat(300);
    const cut = rsyslogPackets(long, 'id', Date.now(), 100, false);
    expect(cut).toHaveLength(1);
    expect(Buffer.byteLength(cut[0]!)).toBe(100);
    const split = rsyslogPackets(long, 'id', Date.now(), 100, true);
    expect(split.length).toBeGreaterThan(3);
    for (const s of split) expect(s).toMatch(/^<29>\w{3} [ \d]\d \d\d:\d\d:\d\d id: x+$/);
    expect(split.map((s) => s.replace(/^.*?id: /, '')).join('')).toBe(long);
  });
});

/** An in-memory target; `stuck` makes deliveries never complete (a reader that stopped reading). */
class MemoryTarget extends QueuedTarget {
  readonly got: string[] = [];
  stuck = false;
  constructor(name: string, limit = 1 << 20) {
    super(name, limit);
  }
  protected deliver(batch: LogRecord[], done: () => void): void {
    if (this.stuck) return;
    for (const r of batch) this.got.push(r.toString());
    done();
  }
  async close(): Promise<void> {}
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('log router (uWSGI uwsgi_master_log rules)', () => {
  function router(opts: { named?: string[]; unnamed?: number; req?: boolean; routes?: Array<[string, RegExp]>; drains?: RegExp[]; filters?: RegExp[] }) {
    const def = new MemoryTarget('default');
    const loggers: RoutedLogger[] = [];
    for (let i = 0; i < (opts.unnamed ?? 0); i++) loggers.push({ id: null, target: new MemoryTarget(`u${i}`), encoders: [] });
    for (const id of opts.named ?? []) loggers.push({ id, target: new MemoryTarget(id), encoders: [] });
    const reqLoggers: RoutedLogger[] = opts.req ? [{ id: null, target: new MemoryTarget('req'), encoders: [] }] : [];
    const r = new LogRouter({
      defaultTarget: def,
      defaultEncoders: [],
      loggers,
      reqLoggers,
      routes: (opts.routes ?? []).map(([id, re]) => ({ re, logger: loggers.find((l) => l.id === id)! })),
      reqRoutes: [],
      drains: opts.drains ?? [],
      filters: opts.filters ?? [],
      touchRotate: [],
      touchReopen: [],
    });
    const got = (t: LogTarget): string[] => (t as MemoryTarget).got;
    return { r, def: got(def), l: (name: string) => got((loggers.find((x) => x.target.description === name) ?? reqLoggers[0]!).target) };
  }

  test('a routed line goes only to its logger; unrouted lines go to the unnamed loggers', async () => {
    const { r, def, l } = router({ unnamed: 1, named: ['errs'], routes: [['errs', / 500\)/]] });
    r.log('GET / (HTTP/1.1 500)');
    r.log('GET / (HTTP/1.1 200)');
    await tick();
    expect(l('errs')).toEqual(['GET / (HTTP/1.1 500)\n']);
    expect(l('u0')).toEqual(['GET / (HTTP/1.1 200)\n']);
    expect(def).toEqual([]);
    await r.close();
  });

  test('with only named loggers, unrouted lines go to the default log', async () => {
    const { r, def, l } = router({ named: ['a'], routes: [['a', /^A/]] });
    r.log('A line');
    r.log('B line');
    await tick();
    expect(l('a')).toEqual(['A line\n']);
    expect(def).toEqual(['B line\n']);
    await r.close();
  });

  test('drains drop, filters keep only matches; request lines take the req-logger path when there is one', async () => {
    const { r, def, l } = router({ drains: [/health/], filters: [/keep|GET/], req: true });
    r.log('GET /health');
    r.log('keep me');
    r.log('other');
    r.request('GET /x request line');
    await tick();
    expect(def).toEqual(['keep me\n']);
    expect(l('req')).toEqual(['GET /x request line\n']);
    await r.close();
  });

  test('a stuck target drops past its limit, counts the loss, and the router reports it elsewhere', async () => {
    const stuck = new MemoryTarget('stuck', 100);
    stuck.stuck = true;
    const other = new MemoryTarget('other');
    const r = new LogRouter({
      defaultTarget: other,
      defaultEncoders: [],
      loggers: [{ id: null, target: stuck, encoders: [] }, { id: null, target: other, encoders: [] }],
      reqLoggers: [],
      routes: [],
      reqRoutes: [],
      drains: [],
      filters: [],
      touchRotate: [],
      touchReopen: [],
    });
    for (let i = 0; i < 50; i++) r.log(`line ${i} ${'x'.repeat(20)}`);
    await tick();
    expect(stuck.lost).toBeGreaterThan(40);
    await r.close();
    await tick();
    expect(other.got.join('')).toContain(`*** ${stuck.lost} log lines lost (target stuck) ***`);
  });
});
