/**
 * The default request line against the reference: uWSGI 2.0 (Debian's uwsgi-core with the
 * python3 plugin) and tsuwsgi serve the same WSGI app the same requests; both lines are
 * parsed field by field. Times, pids and dates differ by nature and are masked; the fields
 * that describe the request and response must be equal. Two counts differ by design and
 * are checked for shape only (docs/logging.md): the vars count and packet size (tsuwsgi's
 * HTTP front end passes a few more CGI vars, e.g. REMOTE_PORT, and the app-selection var
 * UWSGI_APPID) and the response header count/size (the bridge adds Content-Length when the
 * app's body has a known length).
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { httpRequest } from '../helpers/http-raw.ts';
import { fixture, freePort, requireExecutable, sleep, startServer, type ServerHandle } from '../helpers/server.ts';

const UWSGI = '/usr/bin/uwsgi';
const LINE =
  /^\[pid: (\d+)\|app: (-?\d+)\|req: (\d+)\/(\d+)\] (\S+) \((.*?)\) \{(\d+) vars in (\d+) bytes\} \[(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\] (\S+) (\S+) => generated (\d+) bytes in (\d+) msecs \((\S+) (\d{3})\) (\d+) headers in (\d+) bytes \((\d+) switches on core (\d+)\)$/;
const FIELDS = ['pid', 'app', 'appReqs', 'workerReqs', 'addr', 'user', 'vars', 'pktsize', 'ctime', 'method', 'uri', 'rsize', 'msecs', 'proto', 'status', 'headers', 'hsize', 'switches', 'core'] as const;
type Parsed = Record<(typeof FIELDS)[number], string>;

function parse(line: string): Parsed {
  const m = LINE.exec(line);
  if (!m) throw new Error(`not a uWSGI request line: ${line}`);
  return Object.fromEntries(FIELDS.map((f, i) => [f, m[i + 1]!])) as Parsed;
}

const REQUESTS = ['/x?y=1', '/a/b', '/?q=%20space'];

/** Run uWSGI itself on a free port, send REQUESTS, return its request lines. */
async function uwsgiLines(): Promise<string[]> {
  requireExecutable(UWSGI, 'uWSGI (Debian uwsgi-core + uwsgi-plugin-python3)');
  const port = await freePort();
  const proc = spawn(UWSGI, ['--plugin', 'python3', '--http-socket', `127.0.0.1:${port}`, '--wsgi-file', fixture('hello.py'), '--processes', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    const deadline = Date.now() + 15000;
    while (!/spawned uWSGI worker 1/.test(out)) {
      if (Date.now() > deadline) throw new Error(`uWSGI did not start:\n${out}`);
      await sleep(50);
    }
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => (c.destroy(), resolve()));
      c.once('error', reject);
    });
    for (const p of REQUESTS) await httpRequest(port, { path: p });
    const until = Date.now() + 5000;
    while (out.split('\n').filter((l) => LINE.test(l)).length < REQUESTS.length && Date.now() < until) await sleep(50);
    return out.split('\n').filter((l) => LINE.test(l));
  } finally {
    proc.kill('SIGINT');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

describe('default request line compared with uWSGI 2.0 itself', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    if (srv && !srv.hasExited) expect(await srv.stop()).toBe(0);
    srv = undefined;
  }, 30000);

  test('same requests, same line: every field equal except times, pids and the documented counts', async () => {
    const reference = (await uwsgiLines()).map(parse);
    expect(reference).toHaveLength(REQUESTS.length);
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--processes', '1']);
    const s = srv;
    for (const p of REQUESTS) await httpRequest(s.port, { path: p });
    const ours = (await s.waitForLogCount(/^\[pid: .*$/m, REQUESTS.length, 5000)).map((m) => parse(m[0]));
    for (let i = 0; i < REQUESTS.length; i++) {
      const u = reference[i]!;
      const t = ours[i]!;
      // Equal: what the request and response were.
      for (const f of ['app', 'appReqs', 'workerReqs', 'addr', 'user', 'method', 'uri', 'rsize', 'proto', 'status', 'switches', 'core'] as const) {
        expect({ request: REQUESTS[i], field: f, value: t[f] }).toEqual({ request: REQUESTS[i], field: f, value: u[f] });
      }
      // Same shape: even vars counts (key and value slots), positive sizes, ctime dates.
      for (const p of [u, t]) {
        expect(Number(p.vars) % 2).toBe(0);
        expect(Number(p.pktsize)).toBeGreaterThan(0);
        expect(Number(p.headers)).toBeGreaterThanOrEqual(1);
        expect(new Date(p.ctime).getFullYear()).toBe(new Date().getFullYear());
      }
      // tsuwsgi passes at most a handful more vars (REMOTE_PORT, UWSGI_APPID…) and one more header.
      expect(Number(t.vars) - Number(u.vars)).toBeGreaterThanOrEqual(0);
      expect(Number(t.vars) - Number(u.vars)).toBeLessThanOrEqual(8);
      expect(Number(t.headers) - Number(u.headers)).toBeLessThanOrEqual(1);
    }
  });
});
