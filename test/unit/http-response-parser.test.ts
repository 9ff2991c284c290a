import { HttpResponseParser, type ResponseHead } from '../../core/protocol/http-response-parser.ts';

function collect(noBody = false) {
  const out = { head: null as ResponseHead | null, body: [] as Buffer[], ended: 0 };
  const p = new HttpResponseParser({
    onHead: (h) => (out.head = h),
    onBody: (b) => out.body.push(Buffer.from(b)),
    onEnd: () => out.ended++,
  });
  p.start(noBody);
  return { p, out, body: () => Buffer.concat(out.body).toString() };
}

/** Feed the input one byte at a time: framing must not depend on how TCP splits it. */
function feedBytewise(p: HttpResponseParser, s: string): void {
  const b = Buffer.from(s, 'latin1');
  for (let i = 0; i < b.length; i++) p.execute(b.subarray(i, i + 1));
}

describe('bridge response parser (docs/bridge-protocol.md §3.3)', () => {
  it('parses a Content-Length response and keeps raw header pairs', () => {
    const { p, out, body } = collect();
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\nHello World'));
    expect(out.head).toMatchObject({ statusCode: 200, reason: 'OK', contentLength: 11, chunked: false, headerCount: 2 });
    expect(out.head!.headers).toEqual(['Content-Type', 'text/html', 'Content-Length', '11']);
    expect(out.head!.headerBytes).toBe('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\n'.length);
    expect(body()).toBe('Hello World');
    expect(out.ended).toBe(1);
    expect(p.done).toBe(true);
  });

  it('decodes a chunked body split at every byte and drops the framing header', () => {
    const { p, out, body } = collect();
    feedBytewise(p, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n');
    expect(body()).toBe('hello world');
    expect(out.head!.headers).toEqual(['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
    expect(out.ended).toBe(1);
  });

  it('treats HEAD, 204 and 304 responses as bodiless', () => {
    for (const [status, head] of [['200 OK', true], ['204 No Content', false], ['304 Not Modified', false]] as const) {
      const { p, out } = collect(head);
      p.execute(Buffer.from(`HTTP/1.1 ${status}\r\nContent-Length: 10\r\n\r\n`));
      expect(out.ended).toBe(1);
    }
  });

  it('reads until close when the response has no framing', () => {
    const { p, out, body } = collect();
    p.execute(Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc'));
    p.execute(Buffer.from('def'));
    expect(p.endsAtClose).toBe(true);
    p.finish();
    expect(body()).toBe('abcdef');
    expect(out.ended).toBe(1);
  });

  it('reports a truncated response instead of completing it', () => {
    const { p } = collect();
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    expect(() => p.finish()).toThrow(/before the response was complete/);
  });

  it('rejects garbage with a protocol error, not a crash', () => {
    const { p } = collect();
    expect(() => p.execute(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/invalid status line/);
    const c = collect();
    expect(() => c.p.execute(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'))).toThrow(/invalid chunk size/);
  });
});

describe('bridge response parser: contract violations', () => {
  it('refuses bytes after a complete response (a broken bridge is cut off, not trusted)', () => {
    const { p } = collect();
    expect(() => p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA'))).toThrow(/bytes after the end of its response/);
  });
});
