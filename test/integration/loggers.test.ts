/**
 * Loggers, routing, encoders and request-log filters against real targets (spec/core.md
 * §5.1, §5.2, §5.4, §5.5; issue 8): files with rotation, UDP and unix datagram listeners,
 * a syslog socket, rsyslog datagrams, a pipe command, a command that never reads (requests
 * keep being served, the loss is reported), structured JSON, and bad input.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { LOG_APP as APP, readFile, startOn, until } from '../helpers/logging.ts';
import { runTsuwsgi, sleep, startServer, SYSTEM_PYTHON, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const base = (): string[] => ['--http-socket', '127.0.0.1:0', '--wsgi-file', APP];


/** A UDP listener collecting datagrams. */
async function udpListener(): Promise<{ port: number; got: string[]; close(): void }> {
  const sock = dgram.createSocket('udp4');
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString()));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { port: sock.address().port, got, close: () => sock.close() };
}

/** A unix datagram listener (Node has none: a python3 one-liner prints each datagram as hex). */
async function unixDgramListener(socketPath: string): Promise<{ got: string[]; close(): Promise<void> }> {
  const script = [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    `s.bind(${JSON.stringify(socketPath)})`,
    'print("ready", flush=True)',
    'while True:',
    '    print(s.recv(65536).hex(), flush=True)',
  ].join('\n');
  const proc: ChildProcess = spawn(SYSTEM_PYTHON, ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const got: string[] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  let buf = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'ready') ready();
      else got.push(Buffer.from(line, 'hex').toString());
    }
  });
  await isReady;
  return {
    got,
    close: async () => {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

const REQUEST_LINE = /^\[pid: \d+\|app: 0\|req: \d+\/\d+\] 127\.0\.0\.1 \(\) \{\d+ vars in \d+ bytes\} \[[^\]]+\] GET \/\S* => generated \d+ bytes in \d+ msecs \(HTTP\/1\.1 \d{3}\) \d+ headers in \d+ bytes \(1 switches on core 0\)$/;

describe('loggers (plugins logfile, logsocket, syslog, rsyslog, logpipe)', () => {
  let srv: ServerHandle | undefined;
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    if (srv && !srv.hasExited) expect(await srv.stop()).toBe(0);
    srv = undefined;
    for (const c of cleanups.splice(0)) await c();
  }, 30000);

  test('§5.4 accept 1: --req-logger file + --logger file split request lines from server messages (with --master: core worker and app output go through the master)', async () => {
    const dir = tmpDir();
    const req = path.join(dir, 'req.log');
    const err = path.join(dir, 'err.log');
    const st = await startOn(['--master', '--req-logger', `file:${req}`, '--logger', `file:${err}`]);
    srv = st.srv;
    const s = srv;
    const port = st.port;
    await withServerLog(s, async () => {
      await until(() => readFile(err), (t) => /tsuwsgi is ready/.test(t), 'the ready line');
      expect((await httpRequest(port, { path: '/print/hello' })).status).toBe(200);
      const r = await until(() => readFile(req), (t) => t.includes('GET /print/hello'), 'the request line');
      const e = await until(() => readFile(err), (t) => t.includes('app says hello'), "the app's stderr in err.log");
      expect(r.trim().split('\n')).toHaveLength(1);
      expect(r.trim()).toMatch(REQUEST_LINE);
      expect(e).toMatch(/spawned uWSGI worker 1/);
      expect(e).not.toMatch(/=> generated/);
      expect(r).not.toMatch(/spawned|app says/);
    });
    // Nothing else reaches the terminal once loggers are set.
    expect(s.logs()).not.toMatch(/spawned uWSGI worker/);
  });

  test('socket logger over UDP: one datagram per line, with the optional prefix', async () => {
    const udp = await udpListener();
    cleanups.push(() => udp.close());
    const dir = tmpDir();
    const st = await startOn(['--logger', `socket:127.0.0.1:${udp.port},myapp: `, '--logger', `file:${path.join(dir, 'all.log')}`]);
    srv = st.srv;
    const port = st.port;
    await httpRequest(port, { path: '/udp' });
    const got = await until(() => udp.got, (g) => g.some((d) => d.includes('GET /udp')), 'the request datagram');
    const d = got.find((x) => x.includes('GET /udp'))!;
    expect(d.startsWith('myapp: [pid: ')).toBe(true);
    expect(d.endsWith('\n')).toBe(true);
    expect(d.slice('myapp: '.length, -1)).toMatch(REQUEST_LINE);
    expect(got.some((x) => x.startsWith('myapp: *** Starting uWSGI'))).toBe(true);
  });

  test('§5.1 accept 2: --logto HOST:PORT sends every line over UDP', async () => {
    const udp = await udpListener();
    cleanups.push(() => udp.close());
    srv = await startServer([...base(), '--logto', `127.0.0.1:${udp.port}`], { waitReady: false });
    const s = srv;
    const got = await until(() => udp.got, (g) => g.some((d) => d.startsWith('*** tsuwsgi is ready')), 'the ready line over UDP', 20000);
    const port = Number(/bound to TCP address 127\.0\.0\.1:(\d+)/.exec(got.join(''))![1]);
    await httpRequest(port, { path: '/over-udp' });
    await until(() => udp.got, (g) => g.some((d) => REQUEST_LINE.test(d.trimEnd()) && d.includes('/over-udp')), 'the request line over UDP');
    expect(s.logs()).not.toMatch(/spawned uWSGI worker/);
  });

  test('socket logger to a unix datagram socket', async () => {
    const dir = tmpDir();
    const sock = path.join(dir, 'collector.sock');
    const l = await unixDgramListener(sock);
    cleanups.push(() => l.close());
    const st = await startOn(['--logger', `socket:${sock}`]);
    srv = st.srv;
    const port = st.port;
    await httpRequest(port, { path: '/unix-dgram' });
    const got = await until(() => l.got, (g) => g.some((d) => d.includes('/unix-dgram')), 'the request datagram');
    expect(got.find((d) => d.includes('/unix-dgram'))!.trimEnd()).toMatch(REQUEST_LINE);
    // One line per datagram.
    for (const d of got) expect(d.indexOf('\n')).toBe(d.length - 1);
  });

  test('syslog logger: <PRI>Mmm dd hh:mm:ss IDENT: MSG to the syslog socket (ident and facility as uWSGI)', async () => {
    const dir = tmpDir();
    const sock = path.join(dir, 'log.sock');
    const l = await unixDgramListener(sock);
    cleanups.push(() => l.close());
    srv = (await startOn(['--syslog-socket', sock, '--logger', 'syslog:myapp,local6', '--log-syslog'])).srv;
    // Two loggers write to the socket, each on its own schedule: wait for both lines.
    const got = await until(() => l.got, (g) => g.filter((d) => d.includes('*** tsuwsgi is ready')).length >= 2, 'the ready line via both syslog loggers');
    const ready = got.filter((d) => d.includes('*** tsuwsgi is ready'));
    // local6.info = 22*8+6 = 182; the default (--log-syslog): daemon.info = 30, ident uwsgi.
    expect(ready.some((d) => /^<182>\w{3} [ \d]\d \d\d:\d\d:\d\d myapp: \*\*\* tsuwsgi is ready.*\*\*\*$/.test(d))).toBe(true);
    expect(ready.some((d) => /^<30>\w{3} [ \d]\d \d\d:\d\d:\d\d uwsgi: \*\*\* tsuwsgi is ready/.test(d))).toBe(true);
  });

  test('rsyslog logger: RFC 3164 datagrams over UDP, parsed field by field', async () => {
    const udp = await udpListener();
    cleanups.push(() => udp.close());
    const st = await startOn(['--logger', `rsyslog:127.0.0.1:${udp.port}`]);
    srv = st.srv;
    const port = st.port;
    await httpRequest(port, { path: '/rsys' });
    const all = await until(() => udp.got, (g) => g.some((d) => d.includes('/rsys')), 'the request datagram');
    const m = /^<(\d+)>(\w{3}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\S+) (\S+): (.*)$/s.exec(all.find((d) => d.includes('/rsys'))!);
    expect(m).not.toBeNull();
    expect(m![1]).toBe('29');
    expect(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']).toContain(m![2]);
    expect(m![7]).toBe(os.hostname());
    expect(m![8]).toBe('uwsgi');
    expect(m![9]).toMatch(REQUEST_LINE);
  });

  test('pipe logger: lines reach the command\'s stdin; the command is stopped with the server', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'piped.log');
    const st = await startOn(['--logger', `pipe:cat > ${out}`]);
    srv = st.srv;
    const port = st.port;
    await until(() => readFile(out), (t) => /tsuwsgi is ready/.test(t), 'the piped ready line');
    await httpRequest(port, { path: '/piped' });
    await until(() => readFile(out), (t) => t.split('\n').some((l) => REQUEST_LINE.test(l) && l.includes('/piped')), 'the piped request line');
    expect(srv.descendants().some((p) => p.cmd.includes('cat'))).toBe(true);
    // afterEach stops the server; the process guard fails the test if cat survived.
  });

  test('a dead target (a command that never reads) does not block requests; the loss is reported', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'all.log');
    const st = await startOn(['--req-logger', 'pipe:exec sleep 1000', '--logger', `file:${file}`, '--log-buffer', '4096', '--processes', '2']);
    srv = st.srv;
    const port = st.port;
    // The pipe buffer (64 KiB) plus 4 KiB of queue hold ~350 request lines; send well more.
    const t0 = Date.now();
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 8 });
    for (let batch = 0; batch < 12; batch++) {
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => httpRequest(port, { path: `/dead/${batch}/${i}`, agent, timeoutMs: 5000 })));
      for (const r of rs) expect(r.status).toBe(200);
    }
    agent.destroy();
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(20000);
    const text = await until(() => readFile(file), (t) => /\*\*\* \d+ log lines lost \(target pipe:exec sleep 1000\) \*\*\*/.test(t), 'the loss report');
    const lost = Number(/\*\*\* (\d+) log lines lost/.exec(text)![1]);
    expect(lost).toBeGreaterThan(0);
    expect(lost).toBeLessThan(600);
  });

  test('§5.1 accept 3: --log-maxsize rotates --logto to FILE.<unix time> with uWSGI\'s marker; --log-backupname names it', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'u.log');
    const st = await startOn(['--master', '--logto', file, '--log-maxsize', '2000']);
    srv = st.srv;
    const port = st.port;
    for (let i = 0; i < 30; i++) await httpRequest(port, { path: `/rot/${i}` });
    const rotated = await until(() => fs.readdirSync(dir).filter((f) => /^u\.log\.\d+$/.test(f)), (l) => l.length > 0, 'a rotated file');
    const old = readFile(path.join(dir, rotated[0]!));
    expect(old).toMatch(new RegExp(`logsize: \\d+, triggering rotation to ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.\\d+\\.\\.\\.\\n$`));
    expect(fs.statSync(file).size).toBeLessThan(4000);
    expect(await srv.stop()).toBe(0);

    const backup = path.join(dir, 'backup.log');
    const file2 = path.join(dir, 'v.log');
    const st2 = await startOn(['--logto', file2, '--log-maxsize', '1500', '--log-backupname', backup]);
    srv = st2.srv;
    for (let i = 0; i < 20; i++) await httpRequest(st2.port, { path: `/bk/${i}` });
    await until(() => readFile(backup), (t) => t.includes('triggering rotation to ' + backup), 'the backup file');
  });

  test('--touch-logreopen reopens the file (after an external rename); --log-truncate empties it at start', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 't.log');
    const touch = path.join(dir, 'reopen');
    fs.writeFileSync(file, 'old content\n');
    fs.writeFileSync(touch, '');
    const st = await startOn(['--logto', file, '--log-truncate', '--touch-logreopen', touch]);
    srv = st.srv;
    await until(() => readFile(file), (t) => /tsuwsgi is ready/.test(t), 'the ready line');
    expect(readFile(file)).not.toContain('old content');
    fs.renameSync(file, file + '.moved');
    await sleep(1100);
    fs.utimesSync(touch, new Date(), new Date(Date.now() + 5000));
    const t = await until(() => readFile(file), (x) => /^\[\d+\] .*t\.log reopened\.$/m.test(x), 'the reopen marker in the new file');
    await httpRequest(st.port, { path: '/after-reopen' });
    await until(() => readFile(file), (x) => x.includes('/after-reopen'), 'a request line in the new file');
    expect(t).not.toContain('tsuwsgi is ready');
  });

  test('§5.4 accept 2: --log-route sends 500 lines only to the named logger', async () => {
    const dir = tmpDir();
    const all = path.join(dir, 'all.log');
    const errs = path.join(dir, 'errs.log');
    const st = await startOn(['--logger', `file:${all}`, '--logger', `errs file:${errs}`, '--log-route', 'errs  500\\)']);
    srv = st.srv;
    const port = st.port;
    await until(() => readFile(all), (t) => /tsuwsgi is ready/.test(t), 'ready');
    expect((await httpRequest(port, { path: '/code/500' })).status).toBe(500);
    expect((await httpRequest(port, { path: '/code/200' })).status).toBe(200);
    await until(() => readFile(errs), (t) => t.includes('/code/500'), 'the 500 line in errs.log');
    await until(() => readFile(all), (t) => t.includes('/code/200'), 'the 200 line in all.log');
    expect(readFile(all)).not.toContain('/code/500');
    expect(readFile(errs)).not.toContain('/code/200');
    expect(readFile(errs)).not.toContain('tsuwsgi is ready');
  });

  test('§5.5 accept: json encoder + nl on a file logger; prefix inserted between applies in chain order; per-logger encoders', async () => {
    const dir = tmpDir();
    const e = path.join(dir, 'e.log');
    const p = path.join(dir, 'p.log');
    const st = await startOn([
      '--logger', `file:${e}`, '--logger', `px file:${p}`, '--log-route', 'px app says',
      '--log-encoder', 'json {"unix":${unix}, "msg":"${msg}"}', '--log-encoder', 'prefix:px X', '--log-encoder', 'nl',
    ]);
    srv = st.srv;
    const port = st.port;
    await httpRequest(port, { path: '/print/a"quote"' });
    // e.log: every unrouted line, each a JSON document on its own line (json, then nl).
    const text = await until(() => readFile(e), (t) => t.includes('/print/a'), 'the request line');
    const msgs = text.trim().split('\n').map((line) => {
      const rec = JSON.parse(line) as { unix: number; msg: string };
      expect(Number.isInteger(rec.unix)).toBe(true);
      return rec.msg;
    });
    expect(msgs.some((m) => REQUEST_LINE.test(m) && m.includes('GET /print/a'))).toBe(true);
    expect(msgs.some((m) => m.includes('app says'))).toBe(false);
    // p.log: only the routed app line, with json → prefix (this logger only) → nl, in that order.
    const ptext = await until(() => readFile(p), (t) => t.includes('app says'), 'the routed app line');
    expect(ptext.endsWith('\n')).toBe(true);
    const lines = ptext.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith('X{"unix":')).toBe(true);
    // The quotes reach the app as the client sent them; either way the JSON stays valid.
    expect((JSON.parse(lines[0]!.slice(1)) as { msg: string }).msg).toMatch(/^app says a(%22|")quote(%22|")$/);
  });

  test('§5.2 accept 3 and the other re-enablers: --disable-logging --log-4xx/--log-5xx/--log-slow/--log-big', async () => {
    srv = await startServer([...base(), '--disable-logging', '--log-4xx', '--log-slow', '300', '--log-big', '5000']);
    const s = srv;
    for (const p of ['/code/200', '/code/404', '/code/503', '/sleep/10', '/sleep/400', '/big/100', '/big/8000']) await httpRequest(s.port, { path: p });
    await s.waitForLog(/GET \/big\/8000 => generated 8000 bytes/, 5000);
    await s.waitForLog(/GET \/code\/404 => .*\(HTTP\/1\.1 404\)/, 5000);
    await s.waitForLog(/GET \/sleep\/400 => generated/, 5000);
    await sleep(300);
    const logs = s.logs();
    for (const p of ['/code/200', '/code/503', '/sleep/10 ', '/big/100 ']) expect(logs).not.toContain(`GET ${p}`);
    expect(await s.stop()).toBe(0);

    srv = await startServer([...base(), '--disable-logging', '--log-5xx']);
    await httpRequest(srv.port, { path: '/code/404' });
    await httpRequest(srv.port, { path: '/code/502' });
    await srv.waitForLog(/GET \/code\/502 => .*\(HTTP\/1\.1 502\)/, 5000);
    expect(srv.logs()).not.toContain('/code/404');
  });

  test('--log-x-forwarded-for shows the X-Forwarded-For address in the default line', async () => {
    srv = await startServer([...base(), '--log-x-forwarded-for']);
    await httpRequest(srv.port, { path: '/xff', headers: { 'X-Forwarded-For': '203.0.113.7' } });
    await srv.waitForLog(/\] 203\.0\.113\.7 \(\) \{\d+ vars in \d+ bytes\} .* GET \/xff =>/, 5000);
  });

  test('--log-json: server messages and request lines are pino JSON records (also from --master core workers and app output)', async () => {
    srv = await startServer([...base(), '--log-json', '--master'], { waitReady: false });
    const s = srv;
    await s.waitForLog(/"msg":"\*\*\* tsuwsgi is ready/, 30000);
    const port = Number(/bound to TCP address 127\.0\.0\.1:(\d+)/.exec(s.logs())![1]);
    await httpRequest(port, { path: '/print/json' });
    await s.waitForLog(/"uri":"\/print\/json"/, 5000);
    await s.waitForLog(/"msg":"app says json"/, 5000);
    const records = s.logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of records) {
      expect(r.level).toBe(30);
      expect(typeof r.time).toBe('number');
      expect(typeof r.msg).toBe('string');
    }
    const req = records.find((r) => (r.req as { uri?: string } | undefined)?.uri === '/print/json')!;
    expect(req.req).toMatchObject({ method: 'GET', status: 200, proto: 'HTTP/1.1', addr: '127.0.0.1', rsize: 11 });
    expect(req.msg).toMatch(REQUEST_LINE);
    // pino's record, but graceful stop still ends with uWSGI's goodbye.
    s.signal('SIGINT');
    await s.exited;
    expect(s.logs()).toMatch(/"msg":"goodbye to uWSGI\."/);
  });
});

describe('bad logging configuration: a clear error, exit 1, nothing left running', () => {
  test.each([
    [['--logger', 'nope:x'], /unable to find logger "nope"; available loggers: fd, file, pipe, rsyslog, socket, stdio, syslog/],
    [['--logger', 'my-id file:/tmp/x'], /unable to find logger "my-id file".*id must be alphanumeric/],
    [['--logger', 'a file:/dev/null', '--log-route', 'a (unclosed'], /--log-route "\(unclosed": invalid regular expression .*fix the pattern/],
    [['--log-route', 'ghost x'], /no logger is named "ghost"/],
    [['--log-encoder', 'rot13'], /log encoder "rot13" not found/],
    [['--log-encoder', 'gzip:nobody'], /no --logger is named "nobody"/],
    [['--logger', 'file'], /logger "file" needs arguments/],
    [['--logger', 'file:/nonexistent-dir/x.log'], /cannot open log file \/nonexistent-dir\/x\.log: .*check that the directory exists/],
    [['--logger', 'socket:/nonexistent/collector.sock'], /\/nonexistent\/collector\.sock does not exist; start the receiving program first/],
    [['--logger', 'syslog', '--syslog-socket', '/nonexistent/log'], /does not exist; no syslog daemon listens there/],
    [['--logger', 'rsyslog:no-such-host.invalid:514'], /cannot resolve "no-such-host\.invalid"/],
    [['--logger', 'syslog:x,nofacility'], /unknown facility "nofacility"/],
    [['--log-maxsize', '100'], /--log-maxsize rotates the --logto file/],
  ])('%j', async (args, message) => {
    const r = await runTsuwsgi([...base(), '--logger', 'pipe:exec sleep 1000', ...args], { timeoutMs: 30000 });
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/tsuwsgi: error TSUWSGI_E_LOGGER: /);
    expect(r.output).toMatch(message);
    expect(r.output).not.toMatch(/at .*\.ts:\d+/);
  });
});
