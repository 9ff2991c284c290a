/**
 * The default request line (spec/core.md §5.2) as the formatter builds it: field by field
 * against the reference shape below, which is the line test/integration/uwsgi-request-line
 * compares with real uWSGI, for plain, --log-micros, --log-x-forwarded-for and over-long
 * lines (uWSGI's safe variant), across a change of second (the cached date part); the same
 * line written as bytes (line-writer.ts) byte for byte, and a file target mixing byte and
 * text records.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DefaultLineWriter } from '../../core/logging/line-writer.ts';
import { compileLogFormat, ctime, formatDefaultLine, type RequestRecord } from '../../core/logging/request-log.ts';
import { FileTarget } from '../../core/logging/targets/file.ts';
import { LogRouter } from '../../core/logging/router.ts';
import { createServerLog } from '../../core/logging/server-log.ts';
import { compileRequestLogger, type RequestLogSettings } from '../../core/logging/worker-log.ts';
import { jest } from '@jest/globals';

/** The line spelled out piece by piece, as uWSGI's log_request writes it. */
function reference(r: RequestRecord, micros = false, forwardedFor = false): string {
  const time = micros ? `${r.micros} micros` : `${Math.floor(r.micros / 1000)} msecs`;
  const addr = forwardedFor && r.forwardedFor !== '' ? r.forwardedFor : r.remoteAddr;
  const head = `[pid: ${r.pid}|app: ${r.app}|req: ${r.appRequests}/${r.workerRequests}] `;
  const vars = `{${r.varCount * 2} vars in ${r.packetSize} bytes} [${ctime(r.startedAt)}] `;
  const tail = ` => generated ${r.bodyBytes} bytes in ${time} (${r.protocol} ${r.status}) ${r.headerCount} headers in ${r.headerBytes} bytes (1 switches on core ${r.core})`;
  // Vars are byte strings; the line is text (their UTF-8 decoded).
  const text = (v: string): string => Buffer.from(v, 'latin1').toString('utf8');
  const line = `${head}${text(addr)} (${text(r.remoteUser)}) ${vars}${text(r.method)} ${text(r.uri)}${tail}`;
  return line.length < 4096 ? line : `${head}0.0.0.0 () ${vars}- -${tail}`;
}

/** `text`'s UTF-8 bytes as a byte string, the way request vars hold them. */
function bytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

function record(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    pid: 4242, app: 0, appRequests: 1, workerRequests: 7, workerId: 1, remoteAddr: '127.0.0.1', remoteUser: '',
    varCount: 14, packetSize: 288, startedAt: new Date(2026, 10, 23, 7, 10, 9, 500).getTime(), micros: 6789,
    method: 'GET', uri: '/x?y=1', protocol: 'HTTP/1.1', status: 200, bodyBytes: 11, headerCount: 2, headerBytes: 64,
    core: 0, modifier1: 0, modifier2: 0, host: 'localhost', userAgent: '', referer: '', contentLength: '', vars: [],
    readErrors: 0, writeErrors: 0, forwardedFor: '', ...over,
  };
}

describe('default request line', () => {
  test('uWSGI shape, byte for byte', () => {
    const r = record();
    expect(formatDefaultLine(r)).toBe(
      `[pid: 4242|app: 0|req: 1/7] 127.0.0.1 () {28 vars in 288 bytes} [${ctime(r.startedAt)}] GET /x?y=1 => generated 11 bytes in 6 msecs (HTTP/1.1 200) 2 headers in 64 bytes (1 switches on core 0)`,
    );
    expect(ctime(r.startedAt)).toBe('Mon Nov 23 07:10:09 2026');
  });

  test('every option and field combination matches the reference', () => {
    const cases: Array<Partial<RequestRecord>> = [
      {},
      { remoteUser: 'alice', app: -1, status: 499, bodyBytes: 0, headerCount: 0, headerBytes: 0 },
      { micros: 999, core: 3, pid: 1, appRequests: 123456789, workerRequests: 987654321 },
      { forwardedFor: '10.0.0.1, 10.0.0.2' },
      { method: 'POST', uri: bytes('/caf\u00e9?q=\u00ff'), protocol: 'HTTP/1.0' },
      { uri: '/' + 'a'.repeat(5000) },
    ];
    for (const c of cases) {
      const r = record(c);
      for (const micros of [false, true]) {
        for (const xff of [false, true]) expect(formatDefaultLine(r, micros, xff)).toBe(reference(r, micros, xff));
      }
    }
  });

  test('an over-long line is the safe variant', () => {
    const line = formatDefaultLine(record({ uri: '/' + 'a'.repeat(5000) }));
    expect(line).toContain('] 0.0.0.0 () {28 vars');
    expect(line).toContain('] - - => generated');
  });

  test('the cached date part follows the clock, back and forth', () => {
    const t0 = new Date(2026, 10, 23, 7, 10, 9, 999).getTime();
    for (const t of [t0, t0 + 1, t0 + 1000, t0, t0 + 86_400_000, t0 + 1]) {
      const r = record({ startedAt: t });
      expect(formatDefaultLine(r)).toBe(reference(r));
      expect(formatDefaultLine(r)).toContain(`[${ctime(t)}]`);
    }
  });
});

describe('default line as bytes (line-writer.ts)', () => {
  test('the same bytes as the string path, newline included', () => {
    const cases: Array<Partial<RequestRecord>> = [
      {},
      { remoteUser: 'alice', app: -1, status: 499, bodyBytes: 0, headerCount: 0, headerBytes: 0, core: 12 },
      { micros: 999, pid: 1, appRequests: 123456789, workerRequests: 9007199254740991, packetSize: 10, bodyBytes: 1e12 },
      { forwardedFor: '10.0.0.1, 10.0.0.2', micros: 0 },
      // Vars are byte strings (one char per byte of the uwsgi packet): UTF-8 sent raw.
      { method: 'POST', uri: bytes('/caf\u00e9?q=\u00ff&e=\u20ac&s=\ud83d\ude00'), protocol: 'HTTP/1.0', remoteUser: bytes('j\u00fcrgen') },
    ];
    for (const c of cases) {
      const r = record(c);
      for (const micros of [false, true]) {
        for (const xff of [false, true]) {
          const w = new DefaultLineWriter(micros, xff);
          const max = w.maxBytes(r);
          expect(max).toBeGreaterThan(0);
          const buf = Buffer.alloc(max + 10, 0xee);
          const end = w.write(r, buf, 5);
          expect(end - 5).toBeLessThanOrEqual(max);
          expect(buf.subarray(5, end).toString('latin1')).toBe(Buffer.from(formatDefaultLine(r, micros, xff) + '\n').toString('latin1'));
          expect(buf[4]).toBe(0xee);
          expect(buf[end]).toBe(0xee);
        }
      }
    }
  });

  test("request vars are bytes: a raw UTF-8 URI is logged as the client's bytes, once (not encoded again)", () => {
    const r = record({ uri: bytes('/caf\u00e9'), remoteUser: bytes('j\u00fcrgen') });
    const w = new DefaultLineWriter(false, false);
    const buf = Buffer.alloc(w.maxBytes(r));
    const line = buf.subarray(0, w.write(r, buf, 0));
    expect(line.includes(Buffer.from('GET /caf\u00e9 =>', 'utf8'))).toBe(true);
    expect(line.includes(Buffer.from('(j\u00fcrgen)', 'utf8'))).toBe(true);
    expect(formatDefaultLine(r)).toContain('GET /caf\u00e9 => generated');
    expect(compileLogFormat('%(uri) %(user) %(var.X)')({ ...r, vars: [['X', bytes('\u20ac')]] })).toBe('/caf\u00e9 j\u00fcrgen \u20ac');
    // Bytes that are not UTF-8: the byte path writes them as they came (as uWSGI); text cannot hold them.
    const raw = record({ uri: '/caf\u00e9' });
    const rawBuf = Buffer.alloc(w.maxBytes(raw));
    expect(rawBuf.subarray(0, w.write(raw, rawBuf, 0)).includes(Buffer.from([0x2f, 0x63, 0x61, 0x66, 0xe9, 0x20]))).toBe(true);
    expect(formatDefaultLine(raw)).toContain('GET /caf\ufffd =>');
  });

  test('a line that may need the safe variant takes the string path', () => {
    expect(new DefaultLineWriter(false, false).maxBytes(record({ uri: '/' + 'a'.repeat(5000) }))).toBe(-1);
  });

  test('follows the clock across seconds', () => {
    const w = new DefaultLineWriter(false, false);
    const t0 = new Date(2026, 10, 23, 7, 10, 9, 999).getTime();
    for (const t of [t0, t0 + 1, t0 + 1000, t0]) {
      const r = record({ startedAt: t });
      const buf = Buffer.alloc(w.maxBytes(r));
      expect(buf.subarray(0, w.write(r, buf, 0)).toString()).toBe(formatDefaultLine(r) + '\n');
    }
  });
});

describe('file target with text and byte records', () => {
  test('order kept, batches written, loss counted, flushSync writes the rest', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reqline-'));
    const file = path.join(dir, 'log');
    try {
      const warn: string[] = [];
      const t = new FileTarget({ path: file, mode: 0o640, truncate: false, limit: 1 << 20, warn: (m) => warn.push(m) });
      const w = new DefaultLineWriter(false, false);
      const expected: string[] = [];
      for (let i = 0; i < 50; i++) {
        const r = record({ appRequests: i });
        if (i % 7 === 0) {
          t.write(`server message ${i}\n`);
          expected.push(`server message ${i}\n`);
        }
        if (i % 11 === 0) {
          t.write(Buffer.from(`buffer ${i}\n`));
          expected.push(`buffer ${i}\n`);
        }
        expect(t.writeWith(w, r)).toBe(true);
        expected.push(formatDefaultLine(r) + '\n');
      }
      // The coalescing timer writes the first batch; what comes after waits for flushSync.
      await new Promise((r) => setTimeout(r, 30));
      expect(fs.readFileSync(file, 'utf8')).toBe(expected.join(''));
      t.write('last text\n');
      t.writeWith(w, record({ appRequests: 99 }));
      expected.push('last text\n', formatDefaultLine(record({ appRequests: 99 })) + '\n');
      t.flushSync();
      expect(fs.readFileSync(file, 'utf8')).toBe(expected.join(''));
      await t.close();
      expect(warn).toEqual([]);

      // A full queue drops and counts byte records like text ones.
      const small = new FileTarget({ path: file, mode: 0o640, truncate: true, limit: 600, warn: () => {} });
      for (let i = 0; i < 10; i++) small.writeWith(w, record());
      expect(small.lost).toBeGreaterThan(0);
      small.flushSync();
      const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
      expect(lines.length + small.lost).toBe(10);
      await small.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RequestLogger.emit', () => {
  const settings = (over: Partial<RequestLogSettings> = {}): RequestLogSettings => ({
    filter: { disabled: false, status4xx: false, status5xx: false, slowMs: 0, bigBytes: 0, zero: false, sendfile: false, ioError: false },
    format: null, micros: false, json: false, xForwardedFor: false, ftimeFormat: null, ...over,
  });

  test('bytes where nothing stands between, the line text elsewhere, nothing when the filter says no', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reqline-'));
    try {
      const file = new FileTarget({ path: path.join(dir, 'a'), mode: 0o640, truncate: false, limit: 1 << 20, warn: () => {} });
      const viaBytes = jest.spyOn(file, 'writeWith');
      const plain = new LogRouter({ defaultTarget: file, defaultEncoders: [], loggers: [], reqLoggers: [], routes: [], reqRoutes: [], drains: [], filters: [], touchRotate: [], touchReopen: [] });
      const log = createServerLog({ sink: { server: (l) => plain.log(l), request: (l) => plain.request(l), requestWith: (w, x) => plain.requestWith(w, x), flushSync: () => plain.flushSync(), close: () => plain.close() }, inheritFd: null });
      const logger = compileRequestLogger(settings())!;
      logger.emit(record(), log);
      expect(viaBytes).toHaveBeenCalledTimes(1);
      // --log-format: the text path.
      compileRequestLogger(settings({ format: '%(method) %(uri) %(status)' }))!.emit(record(), log);
      expect(viaBytes).toHaveBeenCalledTimes(1);
      log.flushSync();
      expect(fs.readFileSync(path.join(dir, 'a'), 'utf8')).toBe(formatDefaultLine(record()) + '\nGET /x?y=1 200\n');

      // An encoder between the line and the file: the router is not plain, the text path.
      const other = new FileTarget({ path: path.join(dir, 'b'), mode: 0o640, truncate: false, limit: 1 << 20, warn: () => {} });
      const encoded = new LogRouter({ defaultTarget: other, defaultEncoders: [(b) => Buffer.concat([Buffer.from('>'), b])], loggers: [], reqLoggers: [], routes: [], reqRoutes: [], drains: [], filters: [], touchRotate: [], touchReopen: [] });
      const log2 = createServerLog({ sink: { server: (l) => encoded.log(l), request: (l) => encoded.request(l), requestWith: (w, x) => encoded.requestWith(w, x), flushSync: () => encoded.flushSync(), close: () => encoded.close() }, inheritFd: null });
      logger.emit(record(), log2);
      // --disable-logging with --log-4xx: a 200 is not logged.
      compileRequestLogger(settings({ filter: { ...settings().filter, disabled: true, status4xx: true } }))!.emit(record(), log2);
      log2.flushSync();
      expect(fs.readFileSync(path.join(dir, 'b'), 'utf8')).toBe('>' + formatDefaultLine(record()) + '\n');
      await plain.close();
      await encoded.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
