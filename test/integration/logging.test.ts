/**
 * Request logging (spec/core.md §5.1–5.3): uWSGI's default request line, --log-format,
 * --disable-logging and --logto.
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { fixture, sleep, startServer, tmpDir, type ServerHandle } from '../helpers/server.ts';

const HELLO = fixture('hello.py');

/** spec/core.md §5.2 accept 1, for the request GET /x?y=1 on a fresh server. */
const DEFAULT_LINE =
  /^\[pid: (\d+)\|app: 0\|req: 1\/1\] 127\.0\.0\.1 \(\) \{(\d+) vars in (\d+) bytes\} \[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] GET \/x\?y=1 => generated 11 bytes in \d+ msecs \(HTTP\/1\.1 200\) (\d+) headers in (\d+) bytes \(1 switches on core 0\)$/m;

describe('request log lines', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    if (srv && !srv.hasExited) expect(await srv.stop()).toBe(0);
    srv = undefined;
  }, 30000);

  test('§5.2: the default line has uWSGI\'s exact shape, with an even vars count and the bridge pid', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    const s = srv;
    const r = await httpRequest(s.port, { path: '/x?y=1' });
    expect(r.status).toBe(200);
    const m = await s.waitForLog(DEFAULT_LINE, 5000).catch((err: Error) => {
      const lines = s.logs().split('\n').filter((l) => l.includes('GET /x'));
      throw new Error(`${err.message.split('\n')[0]}\nrequest lines seen:\n${lines.join('\n')}`);
    });
    const vars = Number(m[2]);
    expect(vars % 2).toBe(0);
    expect(vars).toBeGreaterThanOrEqual(2 * 8);
    expect(Number(m[3])).toBeGreaterThan(0);
    // The pid is the app worker (bridge) that served the request.
    const worker = await s.waitForLog(/spawned uWSGI worker 1 \(pid: (\d+), cores: 1\)/);
    expect(m[1]).toBe(worker[1]);
    // One response header (Content-Type: text/html) — plus whatever framing the server adds.
    expect(Number(m[4])).toBeGreaterThanOrEqual(1);
  });

  test('§5.2: request counters grow (req: 2/2 on the second request)', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO]);
    const s = srv;
    await httpRequest(s.port, { path: '/one' });
    await httpRequest(s.port, { path: '/two' });
    await s.waitForLog(/\|app: 0\|req: 2\/2\] .* GET \/two => generated 11 bytes/, 5000);
  });

  test('§5.3: --log-format \'%(method) %(uri) %(status) %(user) %(var.QUERY_STRING) %(modifier1)\' → "GET /a?b=1 200 - b=1 0"', async () => {
    srv = await startServer([
      '--http-socket',
      '127.0.0.1:0',
      '--wsgi-file',
      HELLO,
      '--log-format',
      '%(method) %(uri) %(status) %(user) %(var.QUERY_STRING) %(modifier1)',
    ]);
    const s = srv;
    await httpRequest(s.port, { path: '/a?b=1' });
    await s.waitForLog(/^GET \/a\?b=1 200 - b=1 0$/m, 5000);
    // The default line is replaced, not added to.
    await sleep(300);
    expect(s.logs()).not.toMatch(/GET \/a\?b=1 => generated/);
  });

  test('--disable-logging: no request line (server messages stay)', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO, '--disable-logging']);
    const s = srv;
    for (let i = 0; i < 3; i++) expect((await httpRequest(s.port, { path: `/quiet${i}` })).status).toBe(200);
    await sleep(1000);
    expect(s.logs()).not.toMatch(/\/quiet\d/);
    expect(s.logs()).not.toMatch(/=> generated/);
    expect(s.logs()).toMatch(/spawned uWSGI worker 1/);
  });

  test('--logto FILE: server messages and request lines go to the file', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'tsuwsgi.log');
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', HELLO, '--logto', file]);
    const s = srv;
    await httpRequest(s.port, { path: '/logged?z=9' });
    const deadline = Date.now() + 5000;
    let text = '';
    while (Date.now() < deadline) {
      text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
      if (/GET \/logged\?z=9 => generated 11 bytes/.test(text)) break;
      await sleep(50);
    }
    expect(text).toMatch(/uwsgi socket 0 bound to TCP address 127\.0\.0\.1:\d+ fd \d+/);
    expect(text).toMatch(/^\*\*\* tsuwsgi is ready/m);
    expect(text).toMatch(/^\[pid: \d+\|app: 0\|req: 1\/1\] 127\.0\.0\.1 \(\) .* GET \/logged\?z=9 => generated 11 bytes in \d+ msecs \(HTTP\/1\.1 200\)/m);
    expect(await s.stop()).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/goodbye to uWSGI\./);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('what the app prints to stderr lands in the log', async () => {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('suite.py')]);
    const s = srv;
    await httpRequest(s.port, { path: '/slow?s=0&t=printed' });
    await s.waitForLog(/slow-start pid=\d+ uri=\/slow\?s=0&t=printed/, 5000);
  });
});
