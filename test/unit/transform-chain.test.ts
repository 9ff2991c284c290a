/**
 * The transformation chain (core/transform/chain.ts, spec/subsystems.md §7) against a fake
 * front-end sink: ordering, the streaming/buffering split, final passes, flush, Content-Length
 * framing, backpressure, failures, and the offload step's memory/file paths.
 */
import zlib from 'node:zlib';
import type { ResponseSink } from '../../core/bridge/pool-client.ts';
import type { PluginDescriptor } from '../../core/plugins/api.ts';
import type { ResponseHead } from '../../core/protocol/http-response-parser.ts';
import type { RouteContext } from '../../core/routing/api.ts';
import type { Transformation, TransformView } from '../../core/transform/api.ts';
import { getHeader, transformingSink } from '../../core/transform/chain.ts';
import { CORE_TRANSFORMATIONS } from '../../core/transform/core-transformations.ts';
import gzipPlugin from '../../plugins/transformation_gzip/index.ts';
import chunkedPlugin from '../../plugins/transformation_chunked/index.ts';
import { OffloadTransformation } from '../../plugins/transformation_offload/index.ts';

/** A front end that records what reaches the client; `accept` decides body()'s answer. */
class FakeSink implements ResponseSink {
  heads: ResponseHead[] = [];
  chunks: Buffer[] = [];
  ended = false;
  failed: { status: number; reason: string } | null = null;
  closed = false;
  accept = true;
  drains: Array<() => void> = [];
  abort: (() => void) | null = null;
  framesChunked?: boolean;
  /** Order of events as "head", "body:<text>", "end". */
  events: string[] = [];

  constructor(framesChunked = false) {
    if (framesChunked) this.framesChunked = true;
  }
  head(h: ResponseHead): void {
    this.heads.push(h);
    this.events.push('head');
  }
  body(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.events.push(`body:${chunk.toString('latin1')}`);
    return this.accept;
  }
  onDrain(cb: () => void): void {
    this.drains.push(cb);
  }
  end(): void {
    this.ended = true;
    this.events.push('end');
  }
  fail(status: number, reason: string): void {
    this.failed = { status, reason };
  }
  bindAbort(abort: () => void): void {
    this.abort = abort;
  }
  close(): void {
    this.closed = true;
  }
  /** The client catches up: run the drain callbacks. */
  drain(): void {
    this.accept = true;
    const d = this.drains;
    this.drains = [];
    for (const cb of d) cb();
  }
  get body_(): Buffer {
    return Buffer.concat(this.chunks);
  }
  header(name: string): string | undefined {
    return getHeader(this.heads[0]?.headers ?? [], name);
  }
}

function head(headers: string[] = ['Content-Type', 'text/plain'], statusCode = 200): ResponseHead {
  const cl = getHeader(headers, 'Content-Length');
  return { statusCode, reason: statusCode === 200 ? 'OK' : 'Not Found', headers, contentLength: cl === undefined ? -1 : Number(cl), chunked: false, headerBytes: 0, headerCount: headers.length / 2 };
}

/** Let promises and queued microtasks settle. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Wait for work on libuv's thread pool (zlib, fs) to show: poll `cond` for up to 5 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function streaming(name: string, f: (b: Buffer) => Buffer, extra: Partial<Transformation> = {}): Transformation & { seen: string[] } {
  const seen: string[] = [];
  return {
    name,
    streaming: true,
    seen,
    transform(b: Buffer) {
      seen.push(b.toString('latin1'));
      return f(b);
    },
    ...extra,
  };
}

function buffering(name: string, f: (b: Buffer, v: TransformView) => Buffer, extra: Partial<Transformation> = {}): Transformation & { seen: string[] } {
  const seen: string[] = [];
  return {
    name,
    streaming: false,
    seen,
    transform(b: Buffer, v: TransformView) {
      seen.push(b.toString('latin1'));
      return f(b, v);
    },
    ...extra,
  };
}

const suffix = (s: string) => (b: Buffer) => Buffer.concat([b, Buffer.from(s)]);
const upper = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').toUpperCase(), 'latin1');
const noLog = (): void => undefined;
/** A GET request's context: the core transformations only read REQUEST_METHOD from it. */
const ctx = { getVar: (name: string) => (name === 'REQUEST_METHOD' ? 'GET' : undefined) } as unknown as RouteContext;

function core(name: string): Transformation {
  const def = CORE_TRANSFORMATIONS.find((d) => d.name === name)!;
  return def.prepare('')(ctx);
}

function pluginStep(plugin: PluginDescriptor, name: string): Transformation {
  const action = plugin.routeActions!.find((a) => a.name === name)!;
  let t: Transformation | undefined;
  const fakeCtx = { addTransformation: (x: Transformation) => (t = x) } as unknown as RouteContext;
  void action.prepare('', { option: 'route-run', value: `${name}:` })(fakeCtx);
  return t!;
}

describe('transformation chain: order and the streaming/buffering split', () => {
  it('returns the sink itself when there is no transformation', () => {
    const sink = new FakeSink();
    expect(transformingSink(sink, [], { frontEndChunks: false, log: noLog })).toBe(sink);
  });

  it('runs streaming steps in order on each chunk and sends each chunk before the end', () => {
    const sink = new FakeSink();
    const a = streaming('a', suffix('a'));
    const b = streaming('b', suffix('b'));
    const chain = transformingSink(sink, [a, b], { frontEndChunks: false, log: noLog });
    chain.head(head());
    expect(sink.heads).toHaveLength(0); // held until the first transformed byte
    expect(chain.body(Buffer.from('x'))).toBe(true);
    expect(sink.events).toEqual(['head', 'body:xab']);
    chain.body(Buffer.from('y'));
    expect(sink.events).toEqual(['head', 'body:xab', 'body:yab']);
    expect(b.seen).toEqual(['xa', 'ya']);
    chain.end();
    return settle().then(() => {
      expect(sink.events).toEqual(['head', 'body:xab', 'body:yab', 'end']);
    });
  });

  it('skips empty chunks for streaming steps', () => {
    const sink = new FakeSink();
    const a = streaming('a', suffix('a'));
    const chain = transformingSink(sink, [a], { frontEndChunks: false, log: noLog });
    chain.head(head());
    chain.body(Buffer.alloc(0));
    expect(a.seen).toEqual([]);
  });

  it('accumulates from the first buffering step and runs the rest once at the end', async () => {
    const sink = new FakeSink();
    const a = streaming('a', upper);
    const buf = buffering('buf', (b) => Buffer.from(`[${b.toString()}]`));
    const after = streaming('after', suffix('!'));
    const chain = transformingSink(sink, [a, buf, after], { frontEndChunks: false, log: noLog });
    chain.head(head());
    chain.body(Buffer.from('one '));
    chain.body(Buffer.from('two'));
    // Streaming steps before the buffer still ran per chunk; nothing reached the client.
    expect(a.seen).toEqual(['one ', 'two']);
    expect(sink.events).toEqual([]);
    chain.end();
    await settle();
    expect(buf.seen).toEqual(['ONE TWO']);
    expect(after.seen).toEqual(['[ONE TWO]']);
    expect(sink.events).toEqual(['head', 'body:[ONE TWO]!', 'end']);
  });

  it('gives the buffering step the empty body of an empty response (fixcl answers 0)', async () => {
    const sink = new FakeSink();
    const chain = transformingSink(sink, [core('fixcl')], { frontEndChunks: false, log: noLog });
    chain.head(head());
    chain.end();
    await settle();
    expect(sink.header('Content-Length')).toBe('0');
    expect(sink.heads[0]!.contentLength).toBe(0);
    expect(sink.chunks).toEqual([]);
    expect(sink.ended).toBe(true);
  });

  it('runs finals in chain order, each through the later steps', async () => {
    const sink = new FakeSink();
    const a = streaming('a', (b) => b, { final: () => Buffer.from('<a-end>') });
    const b = streaming('b', upper, { final: () => Buffer.from('<b-end>') });
    const chain = transformingSink(sink, [a, b], { frontEndChunks: false, log: noLog });
    chain.head(head());
    chain.body(Buffer.from('x'));
    chain.end();
    await settle();
    // a's trailer goes through b (uppercased), then b's own trailer follows.
    expect(sink.body_.toString()).toBe('X<A-END><b-end>');
  });

  it('lets steps rewrite headers until the head is sent', async () => {
    const sink = new FakeSink();
    const setter = streaming('set', (b) => b);
    setter.transform = (b: Buffer, v: TransformView) => {
      if (!v.sent) v.headers.push('X-Step', 'yes');
      return b;
    };
    const chain = transformingSink(sink, [setter], { frontEndChunks: false, log: noLog });
    chain.head(head());
    chain.body(Buffer.from('x'));
    chain.body(Buffer.from('y'));
    chain.end();
    await settle();
    expect(sink.heads).toHaveLength(1);
    expect(sink.heads[0]!.headers.filter((h) => h === 'X-Step')).toHaveLength(1);
  });
});

describe('transformation chain: flush', () => {
  it('sends each chunk at once before a buffering step, which still gets the whole body', async () => {
    const sink = new FakeSink();
    const up = streaming('toupper', upper, { preservesLength: true });
    const store = buffering('store', (b) => Buffer.from(`stored:${b.toString()}`));
    const chain = transformingSink(sink, [up, core('flush'), store], { frontEndChunks: false, log: noLog });
    chain.head(head());
    chain.body(Buffer.from('ab'));
    expect(sink.events).toEqual(['head', 'body:AB']);
    chain.body(Buffer.from('cd'));
    expect(sink.events).toEqual(['head', 'body:AB', 'body:CD']);
    chain.end();
    await settle();
    expect(store.seen).toEqual(['ABCD']);
    // What the client got came from the flush; the buffering step's output is not sent again.
    expect(sink.events).toEqual(['head', 'body:AB', 'body:CD', 'end']);
  });

  it('keeps the app Content-Length when every step before the flush preserves length', async () => {
    const sink = new FakeSink();
    const chain = transformingSink(sink, [streaming('toupper', upper, { preservesLength: true }), core('flush'), buffering('x', (b) => Buffer.concat([b, b]))], { frontEndChunks: false, log: noLog });
    chain.head(head(['Content-Length', '2']));
    chain.body(Buffer.from('ab'));
    chain.end();
    await settle();
    expect(sink.header('Content-Length')).toBe('2');
    expect(sink.body_.toString()).toBe('AB');
  });
});

describe('transformation chain: Content-Length', () => {
  it('drops the app Content-Length when a step changes the length', async () => {
    const sink = new FakeSink();
    const chain = transformingSink(sink, [streaming('grow', suffix('!'))], { frontEndChunks: false, log: noLog });
    chain.head(head(['Content-Length', '1']));
    chain.body(Buffer.from('x'));
    chain.end();
    await settle();
    expect(sink.header('Content-Length')).toBeUndefined();
    expect(sink.heads[0]!.contentLength).toBe(-1);
  });

  it('keeps it when every step preserves length', async () => {
    const sink = new FakeSink();
    const chain = transformingSink(sink, [streaming('toupper', upper, { preservesLength: true })], { frontEndChunks: false, log: noLog });
    chain.head(head(['Content-Length', '1']));
    chain.body(Buffer.from('x'));
    chain.end();
    await settle();
    expect(sink.header('Content-Length')).toBe('1');
    expect(sink.heads[0]!.contentLength).toBe(1);
  });

  it('keeps it after a buffering chain when the final length happens to be equal', async () => {
    const sink = new FakeSink();
    const chain = transformingSink(sink, [buffering('rev', (b) => Buffer.from([...b].reverse()))], { frontEndChunks: false, log: noLog });
    chain.head(head(['Content-Length', '3']));
    chain.body(Buffer.from('abc'));
    chain.end();
    await settle();
    expect(sink.header('Content-Length')).toBe('3');
    expect(sink.body_.toString()).toBe('cba');
  });

  it('fixcl sets the final size after a length-changing step, forcecl too', async () => {
    for (const name of ['fixcl', 'forcecl']) {
      const sink = new FakeSink();
      const chain = transformingSink(sink, [streaming('grow', suffix('!!')), core(name)], { frontEndChunks: false, log: noLog });
      chain.head(head(['Content-Length', '2']));
      chain.body(Buffer.from('ab'));
      chain.body(Buffer.from('cd'));
      chain.end();
      await settle();
      expect(sink.header('Content-Length')).toBe('8');
      expect(sink.heads[0]!.contentLength).toBe(8);
      expect(sink.body_.toString()).toBe('ab!!cd!!');
    }
  });

  it('chunked replaces Content-Length and frames the body itself unless the front end does', async () => {
    const own = new FakeSink(false);
    const c1 = transformingSink(own, [pluginStep(chunkedPlugin, 'chunked')], { frontEndChunks: false, log: noLog });
    c1.head(head(['Content-Length', '5']));
    c1.body(Buffer.from('hello'));
    c1.end();
    await settle();
    expect(own.header('Content-Length')).toBeUndefined();
    expect(own.header('Transfer-Encoding')).toBe('chunked');
    expect(own.heads[0]!.chunked).toBe(true);
    expect(own.body_.toString()).toBe('5\r\nhello\r\n0\r\n\r\n');

    const framing = new FakeSink(true);
    const c2 = transformingSink(framing, [pluginStep(chunkedPlugin, 'chunked')], { frontEndChunks: true, log: noLog });
    c2.head(head());
    c2.body(Buffer.from('hello'));
    c2.end();
    await settle();
    expect(framing.header('Transfer-Encoding')).toBe('chunked');
    expect(framing.body_.toString()).toBe('hello');
  });

  it('gzip + chunked stream a decodable body, and gzip leaves an empty body alone', async () => {
    const sink = new FakeSink();
    const chain = transformingSink(sink, [pluginStep(gzipPlugin, 'gzip'), pluginStep(chunkedPlugin, 'chunked')], { frontEndChunks: false, log: noLog });
    chain.head(head(['Content-Length', '10']));
    chain.body(Buffer.from('hello '));
    // The first chunk goes out before the end (sync-flushed deflate).
    await until(() => sink.chunks.length > 0, 'the first gzip chunk');
    expect(sink.ended).toBe(false);
    chain.body(Buffer.from('world'));
    chain.end();
    await until(() => sink.ended, 'the end of the gzip response');
    expect(sink.header('Content-Encoding')).toBe('gzip');
    expect(sink.header('Content-Length')).toBeUndefined();
    const wire = sink.body_;
    expect(wire.subarray(-5).toString()).toBe('0\r\n\r\n');
    // De-chunk, then gunzip.
    const parts: Buffer[] = [];
    for (let pos = 0; ; ) {
      const eol = wire.indexOf('\r\n', pos);
      const size = parseInt(wire.toString('latin1', pos, eol), 16);
      if (size === 0) break;
      parts.push(wire.subarray(eol + 2, eol + 2 + size));
      pos = eol + 2 + size + 2;
    }
    expect(zlib.gunzipSync(Buffer.concat(parts)).toString()).toBe('hello world');

    const empty = new FakeSink();
    const c2 = transformingSink(empty, [pluginStep(gzipPlugin, 'gzip')], { frontEndChunks: false, log: noLog });
    c2.head(head(['Content-Length', '0']));
    c2.end();
    await until(() => empty.ended, 'the end of the empty response');
    expect(empty.header('Content-Encoding')).toBeUndefined();
    expect(empty.header('Content-Length')).toBe('0');
    expect(empty.chunks).toEqual([]);
  });
});

describe('transformation chain: backpressure', () => {
  it('passes the front end pause back to the producer and wakes it on drain', () => {
    const sink = new FakeSink();
    const chain = transformingSink(sink, [streaming('a', (b) => b)], { frontEndChunks: false, log: noLog });
    chain.head(head());
    sink.accept = false;
    expect(chain.body(Buffer.from('x'))).toBe(false);
    let woke = false;
    chain.onDrain(() => (woke = true));
    return settle().then(async () => {
      expect(woke).toBe(false);
      // Still paused: the next chunk is queued, not dropped.
      expect(chain.body(Buffer.from('y'))).toBe(false);
      sink.drain();
      await settle();
      expect(woke).toBe(true);
      expect(sink.body_.toString()).toBe('xy');
    });
  });

  it('reports not-ready while an asynchronous step runs, and wakes the producer after it', async () => {
    const sink = new FakeSink();
    let release: () => void = () => undefined;
    const slow: Transformation = {
      name: 'slow',
      streaming: true,
      transform: (b) => new Promise<Buffer>((r) => (release = () => r(b))),
    };
    const chain = transformingSink(sink, [slow], { frontEndChunks: false, log: noLog });
    chain.head(head());
    expect(chain.body(Buffer.from('x'))).toBe(false);
    let woke = false;
    chain.onDrain(() => (woke = true));
    await settle();
    expect(woke).toBe(false);
    release();
    await settle();
    expect(woke).toBe(true);
    expect(sink.body_.toString()).toBe('x');
  });

  it('TransformView.drained() waits for the front end', async () => {
    const sink = new FakeSink();
    let view: TransformView | null = null;
    const grab = streaming('grab', (b) => b);
    grab.transform = (b: Buffer, v: TransformView) => ((view = v), b);
    const chain = transformingSink(sink, [grab], { frontEndChunks: false, log: noLog });
    chain.head(head());
    sink.accept = false;
    chain.body(Buffer.from('x'));
    let done = false;
    void view!.drained().then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    sink.drain();
    await settle();
    expect(done).toBe(true);
  });
});

describe('transformation chain: failures', () => {
  it('a throwing step fails the response with 500, logs a coded line, cuts the app and disposes every step', async () => {
    const sink = new FakeSink();
    const lines: string[] = [];
    let disposed = 0;
    const boom: Transformation = {
      name: 'boom',
      streaming: true,
      transform: () => {
        throw new Error('kaput');
      },
      dispose: () => void disposed++,
    };
    const other = streaming('other', (b) => b, { dispose: () => void disposed++ });
    const chain = transformingSink(sink, [other, boom], { frontEndChunks: false, log: (l) => lines.push(l) });
    let aborted = false;
    chain.bindAbort(() => (aborted = true));
    chain.head(head());
    chain.body(Buffer.from('x'));
    await settle();
    expect(sink.failed?.status).toBe(500);
    expect(aborted).toBe(true);
    expect(disposed).toBe(2);
    expect(lines.join('\n')).toMatch(/\[TSUWSGI_E_TRANSFORM\] response transformation failed: kaput/);
    // Later calls are ignored.
    chain.body(Buffer.from('y'));
    chain.end();
    await settle();
    expect(sink.ended).toBe(false);
    expect(sink.chunks).toEqual([]);
  });

  it('a rejected promise from a buffering step fails the response the same way', async () => {
    const sink = new FakeSink();
    const lines: string[] = [];
    const bad: Transformation = { name: 'bad', streaming: false, transform: () => Promise.reject(new Error('disk full')) };
    const chain = transformingSink(sink, [bad], { frontEndChunks: false, log: (l) => lines.push(l) });
    chain.head(head());
    chain.body(Buffer.from('x'));
    chain.end();
    await settle();
    expect(sink.failed?.status).toBe(500);
    expect(lines.join('\n')).toMatch(/disk full/);
  });

  it('refuses a step that must be last when another follows it', async () => {
    const sink = new FakeSink();
    const lines: string[] = [];
    const chain = transformingSink(sink, [new OffloadTransformation(10), streaming('toupper', upper)], { frontEndChunks: false, log: (l) => lines.push(l) });
    chain.head(head());
    expect(sink.failed?.status).toBe(500);
    expect(lines.join('\n')).toMatch(/"offload:" must be the last transformation of the chain, but "toupper:" follows it/);
  });

  it('the client leaving disposes the steps and stops the chain', async () => {
    const sink = new FakeSink();
    let disposed = false;
    const chain = transformingSink(sink, [streaming('a', (b) => b, { dispose: () => (disposed = true) })], { frontEndChunks: false, log: noLog });
    let appCut = false;
    chain.bindAbort(() => (appCut = true));
    chain.head(head());
    chain.body(Buffer.from('x'));
    sink.abort!();
    expect(disposed).toBe(true);
    expect(appCut).toBe(true);
    chain.body(Buffer.from('y'));
    chain.end();
    await settle();
    expect(sink.body_.toString()).toBe('x');
    expect(sink.ended).toBe(false);
  });
});

describe('offload step', () => {
  const data = Buffer.from(Array.from({ length: 300 * 1024 }, (_, i) => (i * 7919) % 251));

  async function run(limit: number, accept: boolean): Promise<FakeSink> {
    const sink = new FakeSink();
    const chain = transformingSink(sink, [streaming('toupper', (b) => b, { preservesLength: true }), new OffloadTransformation(limit)], { frontEndChunks: false, log: noLog });
    chain.head(head(['Content-Length', String(data.length)]));
    for (let i = 0; i < data.length; i += 10000) {
      if (!chain.body(data.subarray(i, i + 10000))) await new Promise<void>((r) => chain.onDrain(r));
    }
    // Nothing goes out before the end.
    expect(sink.events).toEqual([]);
    sink.accept = accept;
    chain.end();
    const deadline = Date.now() + 5000;
    while (!sink.ended && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
      // A slow client: it takes one piece, then is full again.
      if (!accept && sink.drains.length > 0) {
        sink.drain();
        sink.accept = false;
      }
    }
    return sink;
  }

  it('holds the body in memory up to the limit and sends it at the end with its Content-Length', async () => {
    const sink = await run(1024 * 1024, true);
    expect(sink.ended).toBe(true);
    expect(sink.body_.equals(data)).toBe(true);
    expect(sink.header('Content-Length')).toBe(String(data.length));
  });

  it('spills past the limit to a temporary file and streams it back, waiting for a slow client', async () => {
    const sink = await run(1000, false);
    expect(sink.ended).toBe(true);
    expect(sink.body_.equals(data)).toBe(true);
    // Sent in pieces (one per drain), not as one buffer.
    expect(sink.chunks.length).toBeGreaterThan(1);
    expect(sink.header('Content-Length')).toBe(String(data.length));
  });

  it('sends nothing twice after a flush, whether it held the body in memory or in a file', async () => {
    for (const limit of [1024 * 1024, 1000]) {
      const sink = new FakeSink();
      const chain = transformingSink(sink, [core('flush'), new OffloadTransformation(limit)], { frontEndChunks: false, log: noLog });
      chain.head(head());
      for (let i = 0; i < data.length; i += 10000) {
        if (!chain.body(data.subarray(i, i + 10000))) await new Promise<void>((r) => chain.onDrain(r));
      }
      chain.end();
      await until(() => sink.ended, 'the end of the response');
      expect(sink.body_.equals(data)).toBe(true);
    }
  });
});
