/**
 * The logging options of issue 8 that loggers.test.ts and logging.test.ts do not cover, one
 * test each, against real tsuwsgi processes and real files and sockets (spec/core.md §5.1,
 * §5.2, §5.4, §5.5): --logto2, --log-req-route, --touch-logrotate, --log-master,
 * --log-ioerror, --log-req-encoder, --log-date / --logdate, --log-reopen, --log-zero,
 * --log-drain and --log-filter.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { LOG_APP as APP, readFile, startOn, until } from '../helpers/logging.ts';
import { sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';


const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const REQUEST_LINE = /^\[pid: \d+\|app: 0\|req: \d+\/\d+\] 127\.0\.0\.1 \(\) \{\d+ vars in \d+ bytes\} \[[^\]]+\] GET \/\S* => generated \d+ bytes in \d+ msecs \(HTTP\/1\.1 \d{3}\) \d+ headers in \d+ bytes \(1 switches on core 0\)$/;
/** ctime() as uWSGI prints it, e.g. "Mon Nov 23 07:10:09 2026". */
const CTIME = /\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}/;

describe('logging options (issue 8)', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    if (srv && !srv.hasExited) expect(await srv.stop()).toBe(0);
    srv = undefined;
  }, 30000);

  test('--logto2 FILE: opened after the privilege drop — what is logged before (the socket binding) goes to stderr, everything after (workers, app output, requests) to FILE', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'late.log');
    const st = await startOn(['--master', '--logto2', file]);
    srv = st.srv;
    const s = srv;
    await withServerLog(s, async () => {
      const text = await until(() => readFile(file), (t) => /^\*\*\* tsuwsgi is ready/m.test(t), 'the ready line in the --logto2 file');
      expect(text).toMatch(/^spawned uWSGI worker 1 \(pid: \d+, cores: 1\)$/m);
      expect((await httpRequest(st.port, { path: '/print/late' })).status).toBe(200);
      const t = await until(() => readFile(file), (x) => x.includes('GET /print/late') && x.includes('app says late'), 'the request line and the app output in the file');
      expect(lines(t).find((l) => l.includes('GET /print/late'))).toMatch(REQUEST_LINE);
      // The socket was bound before privileges dropped: that line went to the terminal.
      expect(s.logs()).toMatch(/^uwsgi socket 0 bound to TCP address 127\.0\.0\.1:\d+ fd \d+$/m);
      expect(t).not.toMatch(/bound to TCP address/);
      // Nothing after the switch reaches the terminal.
      expect(s.logs()).not.toMatch(/tsuwsgi is ready|spawned uWSGI worker|app says late|GET \/print\/late/);
    });
  });

  test('--log-req-route ID REGEX: matching request lines go only to req-logger ID, the rest to the unnamed req-loggers; server messages never reach req-loggers', async () => {
    const dir = tmpDir();
    const reqs = path.join(dir, 'req.log');
    const errs = path.join(dir, 'req-errs.log');
    const server = path.join(dir, 'server.log');
    const st = await startOn([
      '--logger', `file:${server}`,
      '--req-logger', `file:${reqs}`,
      '--req-logger', `errs file:${errs}`,
      '--log-req-route', 'errs \\(HTTP/1\\.1 5\\d\\d\\)',
    ]);
    srv = st.srv;
    await withServerLog(srv, async () => {
      await until(() => readFile(server), (t) => /tsuwsgi is ready/.test(t), 'the ready line');
      expect((await httpRequest(st.port, { path: '/code/503' })).status).toBe(503);
      expect((await httpRequest(st.port, { path: '/code/200' })).status).toBe(200);
      expect((await httpRequest(st.port, { path: '/code/500' })).status).toBe(500);
      const e = await until(() => readFile(errs), (t) => t.includes('/code/503') && t.includes('/code/500'), 'both 5xx lines in req-errs.log');
      const r = await until(() => readFile(reqs), (t) => t.includes('/code/200'), 'the 200 line in req.log');
      expect(lines(e)).toHaveLength(2);
      for (const l of lines(e)) expect(l).toMatch(REQUEST_LINE);
      expect(lines(r)).toHaveLength(1);
      expect(lines(r)[0]).toMatch(REQUEST_LINE);
      expect(r).not.toContain('/code/5');
      // Request lines go to the req-loggers only, server messages only to --logger.
      expect(readFile(server)).not.toMatch(/=> generated/);
      expect(e + r).not.toMatch(/tsuwsgi is ready|spawned/);
    });
  });

  test('--touch-logrotate FILE: touching FILE rotates the --logto file as --log-maxsize does (marker, FILE.<unix time>), logging goes on in a fresh file; --log-backupname names the old one', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'r.log');
    const touch = path.join(dir, 'rotate-now');
    fs.writeFileSync(touch, '');
    const st = await startOn(['--logto', file, '--touch-logrotate', touch]);
    srv = st.srv;
    await withServerLog(srv, async () => {
      await httpRequest(st.port, { path: '/before-rotation' });
      await until(() => readFile(file), (t) => t.includes('/before-rotation'), 'the first request line');
      // Nothing rotates until the file is touched.
      await sleep(1200);
      expect(fs.readdirSync(dir).filter((f) => /^r\.log\.\d+$/.test(f))).toHaveLength(0);
      const t0 = Math.floor(Date.now() / 1000);
      fs.utimesSync(touch, new Date(), new Date(Date.now() + 5000));
      const rotated = await until(() => fs.readdirSync(dir).filter((f) => /^r\.log\.\d+$/.test(f)), (l) => l.length > 0, 'a rotated file');
      expect(rotated).toHaveLength(1);
      const stamp = Number(rotated[0]!.slice('r.log.'.length));
      expect(stamp).toBeGreaterThanOrEqual(t0);
      expect(stamp).toBeLessThanOrEqual(t0 + 5);
      const old = readFile(path.join(dir, rotated[0]!));
      expect(old).toContain('*** tsuwsgi is ready');
      expect(old).toContain('GET /before-rotation');
      expect(old).toMatch(new RegExp(`logsize: ${Buffer.byteLength(old) - Buffer.byteLength(old.split('\n').slice(-2).join('\n'))}, triggering rotation to ${esc(file)}\\.${stamp}\\.\\.\\.\\n$`));
      await httpRequest(st.port, { path: '/after-rotation' });
      const fresh = await until(() => readFile(file), (t) => t.includes('/after-rotation'), 'the next request line in the fresh file');
      expect(fresh).not.toContain('/before-rotation');
      expect(fresh).not.toContain('tsuwsgi is ready');
      expect(readFile(path.join(dir, rotated[0]!))).not.toContain('/after-rotation');
    });
    expect(await srv.stop()).toBe(0);

    const file2 = path.join(dir, 'b.log');
    const backup = path.join(dir, 'b.old');
    const st2 = await startOn(['--logto', file2, '--touch-logrotate', touch, '--log-backupname', backup]);
    srv = st2.srv;
    await withServerLog(srv, async () => {
      await until(() => readFile(file2), (t) => t.includes('tsuwsgi is ready'), 'the ready line');
      await sleep(1100);
      fs.utimesSync(touch, new Date(), new Date(Date.now() + 10000));
      const b = await until(() => readFile(backup), (t) => t.endsWith(`triggering rotation to ${backup}...\n`), 'the backup file');
      expect(b).toContain('tsuwsgi is ready');
      await httpRequest(st2.port, { path: '/after-backup' });
      await until(() => readFile(file2), (t) => t.includes('/after-backup'), 'the fresh b.log');
      expect(readFile(file2)).not.toContain('tsuwsgi is ready');
    });
  });

  test('--log-master: app workers and the core worker write to pipes the master reads; lines from concurrent workers still arrive whole and each worker\'s in order', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'm.log');
    const st = await startOn(['--master', '--log-master', '--logto', file, '--processes', '2']);
    srv = st.srv;
    const s = srv;
    await withServerLog(s, async () => {
      await until(() => readFile(file), (t) => /tsuwsgi is ready/.test(t), 'the ready line');
      // Every child's stderr is a pipe (to the master), not the log file.
      const children = s.descendants();
      expect(children.length).toBeGreaterThanOrEqual(3);
      for (const c of children) {
        let fd2 = '';
        try {
          fd2 = fs.readlinkSync(`/proc/${c.pid}/fd/2`);
        } catch {
          continue; // a helper process that already exited
        }
        // A pipe or (Node's stdio 'pipe') a socketpair: anything but the log file itself.
        expect({ cmd: c.cmd, fd2 }).toEqual({ cmd: c.cmd, fd2: expect.stringMatching(/^(pipe|socket):\[\d+\]$/) });
      }
      const pad = 'x'.repeat(1500);
      // Sequential requests: the app's lines in request order.
      for (let i = 0; i < 15; i++) await httpRequest(st.port, { path: `/print/seq${i}-${pad}` });
      // Concurrent requests on two app workers: every line whole, exactly once.
      await Promise.all(Array.from({ length: 30 }, (_, i) => httpRequest(st.port, { path: `/print/par${i}-${pad}` })));
      const text = await until(
        () => readFile(file),
        (t) => lines(t).filter((l) => l.includes('=> generated')).length >= 45 && lines(t).filter((l) => l.startsWith('app says')).length >= 45,
        '45 request lines and 45 app lines',
      );
      const all = lines(text);
      const appLines = all.filter((l) => l.includes('app says') || l.includes(pad.slice(0, 50)) && !l.includes('=> generated'));
      for (const l of appLines) expect(l).toMatch(new RegExp(`^app says (seq|par)\\d+-${pad}$`));
      expect(appLines.filter((l) => l.startsWith('app says seq')).map((l) => Number(/seq(\d+)/.exec(l)![1]))).toEqual(Array.from({ length: 15 }, (_, i) => i));
      expect(appLines.filter((l) => l.startsWith('app says par')).map((l) => Number(/par(\d+)/.exec(l)![1])).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      const reqLines = all.filter((l) => l.includes('=> generated'));
      expect(reqLines).toHaveLength(45);
      for (const l of reqLines) expect(l).toMatch(REQUEST_LINE);
      // Nothing else was mixed into a line: every line is a request line, an app line or a server message.
      for (const l of all) expect(l.includes(pad.slice(0, 20)) ? REQUEST_LINE.test(l) || l.startsWith('app says ') : true).toBe(true);
    });
  });

  // uWSGI 2.0's log_request tests `read_errors > 0 && write_errors > 0` (core/logging.c), so
  // there a request is re-enabled only when it had both kinds of error. tsuwsgi logs a request
  // with either error, as the option's help says ("log requests with io errors"). The option
  // takes a value on the command line, as in uWSGI (`--log-ioerror 1`).
  test('--log-ioerror: with --disable-logging, a request whose client went away (before the response, or in the middle of its body) is still logged; complete ones are not', async () => {
    const st = await startOn(['--disable-logging', '--log-ioerror', '1', '--processes', '2']);
    srv = st.srv;
    const s = srv;
    await withServerLog(s, async () => {
      await s.waitForLog(/tsuwsgi is ready/);
      // The client sends its request and hangs up while the app is still sleeping.
      const c = net.connect(st.port, '127.0.0.1');
      await new Promise<void>((r) => c.once('connect', () => r()));
      c.write('GET /sleep/1200 HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await sleep(300);
      c.destroy();
      expect((await httpRequest(st.port, { path: '/code/200' })).status).toBe(200);
      expect((await httpRequest(st.port, { path: '/code/404' })).status).toBe(404);
      const m = await s.waitForLog(/^\[pid: .*\] 127\.0\.0\.1 \(\) .* GET \/sleep\/1200 => generated 0 bytes in \d+ msecs \(HTTP\/1\.1 \d{3}\) .*$/m, 8000);
      expect(m[0]).toMatch(/^\[pid: \d+\|app: 0\|req: \d+\/\d+\] /);
      // A client that leaves in the middle of a large body: a write error, logged with what was sent.
      const b = net.connect(st.port, '127.0.0.1');
      await new Promise<void>((r) => b.once('connect', () => r()));
      b.write('GET /big/20000000 HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await new Promise<void>((r) => b.once('data', () => r()));
      b.destroy();
      const big = await s.waitForLog(/GET \/big\/20000000 => generated (\d+) bytes in \d+ msecs \(HTTP\/1\.1 200\)/, 8000);
      expect(Number(big[1])).toBeLessThan(20000000);
      await sleep(1500);
      expect(s.logs()).not.toContain('GET /code/200');
      expect(s.logs()).not.toContain('GET /code/404');
      expect(s.logs().match(/GET \/sleep\/1200 =>/g)).toHaveLength(1);
    });
    expect(await srv.stop()).toBe(0);

    // The same without --log-ioerror: nothing is logged.
    srv = (await startOn(['--disable-logging'])).srv;
    const s2 = srv;
    await s2.waitForLog(/tsuwsgi is ready/);
    const port2 = s2.port;
    const c = net.connect(port2, '127.0.0.1');
    await new Promise<void>((r) => c.once('connect', () => r()));
    c.write('GET /sleep/600 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await sleep(200);
    c.destroy();
    await s2.waitForLog(/client disconnected: .* during GET \/sleep\/600/, 5000);
    await sleep(800);
    expect(s2.logs()).not.toContain('GET /sleep/600 =>');
  });

  test('--log-req-encoder: encodes only the lines going to req-loggers (byte-exact), while --log-encoder encodes the server messages; NAME:ID limits it to one req-logger', async () => {
    const dir = tmpDir();
    const req = path.join(dir, 'req.log');
    const js = path.join(dir, 'req.json');
    const server = path.join(dir, 'server.log');
    const st = await startOn([
      '--logger', `file:${server}`,
      '--req-logger', `file:${req}`,
      '--req-logger', `js file:${js}`,
      '--log-req-route', 'js GET /enc/json',
      '--log-encoder', 'prefix SRV|',
      '--log-req-encoder', 'prefix REQ|',
      '--log-req-encoder', 'json:js {"line":"${msg}","t":${unix}}',
      '--log-req-encoder', 'nl:js',
    ]);
    srv = st.srv;
    await withServerLog(srv, async () => {
      await until(() => readFile(server), (t) => t.includes('tsuwsgi is ready'), 'the ready line');
      await httpRequest(st.port, { path: '/enc/one' });
      await httpRequest(st.port, { path: '/enc/two' });
      await httpRequest(st.port, { path: '/enc/json/1' });
      await httpRequest(st.port, { path: '/enc/json/2' });
      const r = await until(() => readFile(req), (t) => t.includes('/enc/two'), 'both request lines');
      // prefix REQ| + the line with its newline: "REQ|[pid: …]\n" per request, nothing else.
      expect(r.endsWith('\n')).toBe(true);
      const rl = r.split('\n').slice(0, -1);
      expect(rl).toHaveLength(2);
      for (const l of rl) {
        expect(l.startsWith('REQ|[pid: ')).toBe(true);
        expect(l.slice('REQ|'.length)).toMatch(REQUEST_LINE);
      }
      // The js req-logger (only the routed lines): prefix REQ| (no id: every req-logger), then json, then nl.
      const j = await until(() => readFile(js), (t) => t.includes('/enc/json/2'), 'both JSON records');
      const jl = j.split('\n');
      expect(jl.pop()).toBe('');
      expect(jl).toHaveLength(2);
      for (const l of jl) {
        const rec = JSON.parse(l) as { line: string; t: number };
        expect(Object.keys(rec)).toEqual(['line', 't']);
        expect(Math.abs(rec.t - Date.now() / 1000)).toBeLessThan(60);
        expect(rec.line.startsWith('REQ|')).toBe(true);
        expect(rec.line.slice(4)).toMatch(REQUEST_LINE);
        expect(rec.line).toContain('GET /enc/json/');
      }
      expect(r).not.toContain('/enc/json');
      // The general encoder only on server messages; the request encoders never there.
      const srvText = readFile(server);
      expect(srvText).toMatch(/^SRV\|\*\*\* tsuwsgi is ready: .*\*\*\*$/m);
      for (const l of lines(srvText)) expect(l.startsWith('SRV|')).toBe(true);
      expect(srvText).not.toContain('REQ|');
      expect(srvText).not.toContain('=> generated');
      expect(r + j).not.toContain('SRV|');
    });
  });

  test('--log-date prefixes server messages with ctime() and " - "; --logdate FORMAT with strftime(FORMAT); request lines and app output are not prefixed', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'd.log');
    const st = await startOn(['--logto', file, '--log-date']);
    srv = st.srv;
    await withServerLog(srv, async () => {
      const text = await until(() => readFile(file), (t) => t.includes('tsuwsgi is ready'), 'the ready line');
      expect(text).toMatch(new RegExp(`^${CTIME.source} - \\*\\*\\* tsuwsgi is ready: `, 'm'));
      expect(text).toMatch(new RegExp(`^${CTIME.source} - uwsgi socket 0 bound to TCP address`, 'm'));
      await httpRequest(st.port, { path: '/print/dated' });
      const t = await until(() => readFile(file), (x) => x.includes('GET /print/dated') && x.includes('app says dated'), 'the request line and the app line');
      expect(lines(t).find((l) => l.includes('GET /print/dated'))).toMatch(REQUEST_LINE);
      expect(lines(t)).toContain('app says dated');
    });
    expect(await srv.stop()).toBe(0);

    const file2 = path.join(dir, 'f.log');
    const st2 = await startOn(['--logto', file2, '--logdate', '[%Y-%m-%d]']);
    srv = st2.srv;
    await withServerLog(srv, async () => {
      const text = await until(() => readFile(file2), (t) => t.includes('tsuwsgi is ready'), 'the ready line');
      const year = new Date().getFullYear();
      expect(text).toMatch(new RegExp(`^\\[${year}-\\d\\d-\\d\\d\\] - \\*\\*\\* tsuwsgi is ready: `, 'm'));
      await httpRequest(st2.port, { path: '/undated' });
      const t = await until(() => readFile(file2), (x) => x.includes('GET /undated'), 'the request line');
      expect(lines(t).find((l) => l.includes('GET /undated'))).toMatch(REQUEST_LINE);
    });
  });

  test('--log-reopen: on reload (SIGHUP) the log file is reopened — after an external rename, the reload and later requests land in a new file', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'h.log');
    const st = await startOn(['--master', '--logto', file, '--log-reopen']);
    srv = st.srv;
    const s = srv;
    await withServerLog(s, async () => {
      await until(() => readFile(file), (t) => t.includes('tsuwsgi is ready'), 'the ready line');
      await httpRequest(st.port, { path: '/before-hup' });
      await until(() => readFile(file), (t) => t.includes('/before-hup'), 'the first request line');
      fs.renameSync(file, file + '.1');
      s.signal('SIGHUP');
      const t = await until(() => readFile(file), (x) => /^\[\d+\] .*h\.log reopened\.$/m.test(x) && x.includes('workers reloaded'), 'the reopen marker in the new file', 20000);
      expect(t).not.toContain('/before-hup');
      await httpRequest(st.port, { path: '/after-hup' });
      await until(() => readFile(file), (x) => x.includes('GET /after-hup'), 'the request after the reload in the new file');
      await httpRequest(st.port, { path: '/print/after-hup' });
      await until(() => readFile(file), (x) => x.includes('app says after-hup'), "the app's output after the reload in the new file");
      expect(readFile(file + '.1')).not.toContain('after-hup');
    }, () => `--- h.log ---\n${readFile(file)}\n--- h.log.1 ---\n${readFile(file + '.1')}`);
  }, 40000);

  test('--log-zero: with --disable-logging, responses with an empty body are logged, others not', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', APP, '--disable-logging', '--log-zero']);
    const s = srv;
    await httpRequest(s.port, { path: '/big/0' });
    await httpRequest(s.port, { path: '/big/10' });
    await s.waitForLog(/GET \/big\/0 => generated 0 bytes/, 5000);
    await sleep(300);
    expect(s.logs()).not.toContain('GET /big/10');
  });

  test('--log-drain REGEX drops matching lines; --log-filter REGEX keeps only matching lines', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'drain.log');
    const st = await startOn(['--logto', file, '--log-drain', 'GET /health', '--log-drain', '^spawned']);
    srv = st.srv;
    await withServerLog(srv, async () => {
      await until(() => readFile(file), (t) => t.includes('tsuwsgi is ready'), 'the ready line');
      await httpRequest(st.port, { path: '/health' });
      await httpRequest(st.port, { path: '/print/kept' });
      const t = await until(() => readFile(file), (x) => x.includes('GET /print/kept'), 'the other request line');
      expect(t).toContain('app says kept');
      expect(t).not.toContain('/health');
      expect(t).not.toMatch(/^spawned/m);
    });
    expect(await srv.stop()).toBe(0);

    const file2 = path.join(dir, 'filter.log');
    const st2 = await startOn(['--logto', file2, '--log-filter', 'GET /keep', '--log-filter', 'app says']);
    srv = st2.srv;
    await withServerLog(srv, async () => {
      await httpRequest(st2.port, { path: '/drop' });
      await httpRequest(st2.port, { path: '/keep/1' });
      await httpRequest(st2.port, { path: '/print/filtered' });
      const t = await until(() => readFile(file2), (x) => x.includes('GET /keep/1') && x.includes('app says filtered'), 'the kept lines');
      await sleep(300);
      const all = lines(readFile(file2));
      expect(all).toHaveLength(2);
      expect(all[0]).toMatch(REQUEST_LINE);
      expect(t).not.toMatch(/tsuwsgi is ready|GET \/drop|GET \/print/);
    });
  });
});
