/**
 * Differential routing test (issue 7, part 6; spec/subsystems.md §6): every case of
 * routing-cases.ts runs the SAME options under the reference — Debian's uWSGI 2.0.21
 * (`uwsgi --plugin python3,router_redirect,router_rewrite,router_basicauth`) — and under
 * tsuwsgi, both as `--http-socket` servers in front of routing-app.py with /usr/bin/python3,
 * sends the same requests to both (one connection each, `Connection: close`) and compares
 * what comes back: the status line, the body, and the headers except the framing and
 * identity ones (see IGNORED_HEADERS). Cases with a `log` regexp also compare those lines
 * of the two servers' logs.
 *
 * The reference is required: without /usr/bin/uwsgi and its plugins this test FAILS (it
 * never skips). Every process it starts is stopped and checked for leaks (uWSGI runs in its
 * own process group, which is signalled as a whole).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseResponse, rawHttp } from '../helpers/http-raw.ts';
import { installProcessGuards, ProcessGroup } from '../helpers/procs.ts';
import { freePort, REPO_ROOT, sleep, startServer, SYSTEM_PYTHON, tmpDir } from '../helpers/server.ts';
import { desCrypt } from '../../plugins/router_basicauth/des-crypt.ts';
import { CASES, type Expected, type Observed, type RouteRequest, type RoutingCase } from './routing-cases.ts';

installProcessGuards();

const UWSGI = process.env.TSUWSGI_REFERENCE_UWSGI ?? '/usr/bin/uwsgi';
const UWSGI_PLUGIN_DIR = '/usr/lib/uwsgi/plugins';
const UWSGI_PLUGINS = ['python3', 'router_redirect', 'router_rewrite', 'router_basicauth'];
const APP = path.join(REPO_ROOT, 'test', 'differential', 'routing-app.py');

/**
 * Not compared: how a response is framed and who sent it. uWSGI's --http-socket closes the
 * connection after every response (so it may omit Content-Length), tsuwsgi keeps it alive
 * and always frames the body; the body itself is compared byte for byte.
 */
const IGNORED_HEADERS = new Set(['date', 'server', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/** What a server gave for a whole case. */
interface Run {
  /** null when the server did not start; `startError` says why. */
  responses: Observed[] | null;
  startError?: string;
  /** Lines of the log matched by the case's `log` regexp. */
  logLines: string[];
  log: string;
}

function substitute(text: string, dir: string): string {
  return text.split('${DIR}').join(dir);
}

function prepare(c: RoutingCase): string {
  // realpath: the condition cases compare paths, and /tmp may itself be a link.
  const dir = fs.realpathSync(tmpDir('tsuwsgi-routing-diff-'));
  for (const d of c.dirs ?? []) fs.mkdirSync(path.join(dir, d), { recursive: true });
  for (const [name, content] of Object.entries(c.files ?? {})) fs.writeFileSync(path.join(dir, name), substitute(content, dir));
  for (const [link, target] of Object.entries(c.symlinks ?? {})) fs.symlinkSync(target, path.join(dir, link));
  for (const [name, mode] of Object.entries(c.modes ?? {})) fs.chmodSync(path.join(dir, name), mode);
  return dir;
}

/** uWSGI's environment: only what it needs (tsuwsgi's test helper passes the runner's own). */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'LANG']) if (process.env[key] !== undefined) env[key] = process.env[key]!;
  return env;
}

function requestBytes(r: RouteRequest): string {
  const headers: Record<string, string> = { Host: 'localhost', ...r.headers };
  let head = `${r.method ?? 'GET'} ${r.path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return `${head}Connection: close\r\n\r\n`;
}

function observe(data: Buffer, closed: boolean): Observed {
  // Nothing at all: a close without an answer (break:), or a server that hung.
  if (data.length === 0) return closed ? { closed: true } : { hung: true };
  let parsed: ReturnType<typeof parseResponse>;
  try {
    parsed = parseResponse(data, { eof: true });
  } catch {
    parsed = null;
  }
  if (!parsed) return { raw: data.toString('latin1') };
  const r = parsed.response;
  const headers: Record<string, string> = {};
  for (const [name, value] of r.headers) {
    const k = name.toLowerCase();
    if (IGNORED_HEADERS.has(k)) continue;
    headers[k] = headers[k] === undefined ? value : `${headers[k]}, ${value}`;
  }
  return { status: r.status, reason: r.reason, headers, body: r.body.toString('latin1') };
}

async function sendAll(port: number, requests: RouteRequest[]): Promise<Observed[]> {
  const out: Observed[] = [];
  // One at a time: some cases depend on order (logs), and uWSGI runs one worker.
  for (const r of requests) {
    const { data, closed } = await rawHttp(port, requestBytes(r), { idleMs: 3000, timeoutMs: 10000 });
    out.push(observe(data, closed));
  }
  return out;
}

function logLines(log: string, re: RegExp | undefined): string[] {
  if (!re) return [];
  return [...log.matchAll(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`))].map((m) => m[0]);
}

function tail(text: string, n = 40): string {
  return text.split('\n').slice(-n).join('\n');
}

async function runUwsgi(c: RoutingCase, args: string[], dir: string): Promise<Run> {
  const port = await freePort();
  const tag = ProcessGroup.newTag();
  const argv = ['--plugin', UWSGI_PLUGINS.join(','), '--http-socket', `127.0.0.1:${port}`, '--wsgi-file', APP, ...args];
  // detached: uWSGI gets its own process group, so stopping it reaches every process it forked.
  const proc = spawn(UWSGI, argv, { cwd: dir, env: { ...cleanEnv(), TSUWSGI_TEST_TAG: tag }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const group = new ProcessGroup(`uwsgi ${argv.join(' ')}`, proc, tag);
  let out = '';
  proc.stdout!.setEncoding('latin1');
  proc.stderr!.setEncoding('latin1');
  proc.stdout!.on('data', (d: string) => (out += d));
  proc.stderr!.on('data', (d: string) => (out += d));
  let exited = false;
  const closed = new Promise<void>((resolve) => {
    proc.once('close', () => {
      exited = true;
      resolve();
    });
    proc.once('error', (err) => {
      out += `\n[test] spawn error: ${err.message}\n`;
      exited = true;
      resolve();
    });
  });
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (proc.pid !== undefined) process.kill(-proc.pid, signal);
    } catch {
      /* already gone */
    }
  };
  const stop = async (): Promise<void> => {
    group.finished = true;
    if (exited) return;
    killGroup('SIGINT');
    const timer = setTimeout(() => killGroup('SIGKILL'), 10000);
    await closed;
    clearTimeout(timer);
    // Whatever it forked and left behind in its group (nothing, normally).
    killGroup('SIGKILL');
  };
  try {
    // Requests wait in the listen queue until the worker is up: "spawned" is enough.
    const deadline = Date.now() + 20000;
    while (!/spawned uWSGI worker 1/.test(out)) {
      if (exited) return { responses: null, startError: `uWSGI exited at start-up:\n${tail(out)}`, logLines: [], log: out };
      if (Date.now() > deadline) return { responses: null, startError: `uWSGI did not start within 20 s:\n${tail(out)}`, logLines: [], log: out };
      await sleep(25);
    }
    const responses = await sendAll(port, c.requests);
    await stop();
    return { responses, logLines: logLines(out, c.log), log: out };
  } finally {
    await stop();
  }
}

async function runTsuwsgi(c: RoutingCase, args: string[], dir: string): Promise<Run> {
  let srv;
  try {
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', APP, '--python-bin', SYSTEM_PYTHON, ...args], { cwd: dir });
  } catch (err) {
    return { responses: null, startError: (err as Error).message, logLines: [], log: '' };
  }
  try {
    const responses = await sendAll(srv.port, c.requests);
    await srv.stop();
    const log = srv.logs();
    return { responses, logLines: logLines(log, c.log), log };
  } finally {
    await srv.stop();
  }
}

/** The part of a run that is compared (or matched against a case's expectations). */
function comparable(run: Run): { responses: Observed[] | string; log: string[] } {
  return { responses: run.responses ?? `did not start: ${run.startError?.split('\n')[0] ?? ''}`, log: run.logLines };
}

function context(u: Run, t: Run): string {
  return `\n--- uWSGI log (tail) ---\n${tail(u.startError ?? u.log)}\n--- tsuwsgi log (tail) ---\n${tail(t.startError ?? t.log)}`;
}

/** Case notes printed at the end: every known or deliberate difference, with its reason. */
const notes: string[] = [];

afterAll(() => {
  if (notes.length) console.log(`routing differential: ${notes.length} case(s) not compared\n${notes.join('\n')}`);
});

/** Run an assertion; on failure, add both servers' logs to its message. */
function withContext(ctx: string, f: () => void): void {
  try {
    f();
  } catch (err) {
    (err as Error).message += ctx;
    throw err;
  }
}

function expectMatches(who: string, run: Run, expected: Expected[], ctx: string): void {
  withContext(ctx, () => expect({ who, responses: run.responses }).toMatchObject({ who, responses: expected }));
}

describe('routing: tsuwsgi against the reference uWSGI (same config, same app, same requests)', () => {
  it('has the reference installed: uwsgi-core and its python3 and router plugins', () => {
    expect(fs.existsSync(UWSGI)).toBe(true);
    for (const p of UWSGI_PLUGINS) expect({ plugin: p, present: fs.existsSync(path.join(UWSGI_PLUGIN_DIR, `${p}_plugin.so`)) }).toEqual({ plugin: p, present: true });
  });

  it('has at least 30 cases, each named once, each with a reason when not compared', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    for (const c of CASES) {
      if (c.knownDifference || c.deliberate) expect({ name: c.name, hasReference: Array.isArray(c.uwsgi) }).toEqual({ name: c.name, hasReference: true });
      if (c.deliberate) expect({ name: c.name, hasTsuwsgi: Array.isArray(c.tsuwsgi) }).toEqual({ name: c.name, hasTsuwsgi: true });
    }
  });

  // uWSGI checks htpasswd DES entries with glibc's crypt(); tsuwsgi has its own DES-crypt
  // (plugins/router_basicauth/des-crypt.ts). Answers recorded from glibc 2.36 crypt() (Python's
  // crypt.crypt), beyond the one entry the server case exercises: empty and >8-byte
  // passwords, a space, salts at both ends of the alphabet.
  it.each([
    ['secret', 'ab', 'abNANd1rDfiNc'],
    ['', '..', '..X8NBuQ4l6uQ'],
    ['averyverylongpassword', 'zZ', 'zZGsAns7lwxWY'],
    ['pass word', '/.', '/.apiPAAHfKHA'],
    ['tsuwsgi', 'Ts', 'Ts9LGQh/3t85Y'],
  ])('DES crypt(%j, %j) is glibc\'s %s', (password, salt, hash) => {
    expect(desCrypt(password, salt)).toBe(hash);
  });

  describe.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const title = c.refused ? 'both refuse it at start-up' : c.knownDifference ? `KNOWN DIFFERENCE: ${c.knownDifference}` : c.deliberate ? `differs on purpose: ${c.deliberate}` : 'answers like uWSGI';
    it.concurrent(
      title,
      async () => {
        const dir = prepare(c);
        try {
          const args = c.args.map((a) => substitute(a, dir));
          const [u, t] = await Promise.all([runUwsgi(c, args, dir), runTsuwsgi(c, args, dir)]);
          const ctx = context(u, t);
          if (process.env.TSUWSGI_ROUTING_DIFF_DUMP) fs.appendFileSync(process.env.TSUWSGI_ROUTING_DIFF_DUMP, `${JSON.stringify({ name: c.name, uwsgi: comparable(u), tsuwsgi: comparable(t) })}\n`);
          if (c.refused) {
            withContext(ctx, () => expect({ uwsgiRefused: u.responses === null, tsuwsgiRefused: t.responses === null }).toEqual({ uwsgiRefused: true, tsuwsgiRefused: true }));
            // …and for the routing rule, not for something else (a missing plugin, a bad port).
            withContext(ctx, () => expect(u.startError).toMatch(/invalid route|unable to register route|unable to find .* route condition|invalid addvar syntax/));
            withContext(ctx, () => expect(t.startError).toMatch(/TSUWSGI_E_ROUTING/));
            return;
          }
          // The reference must have run, whatever the case: a broken reference is a failure.
          withContext(ctx, () => expect({ uwsgiStarted: u.responses !== null }).toEqual({ uwsgiStarted: true }));
          if (c.knownDifference) {
            expectMatches('uwsgi', u, c.uwsgi!, ctx);
            const same = isDeepStrictEqual(comparable(u), comparable(t));
            notes.push(`- ${c.name}: KNOWN DIFFERENCE — ${c.knownDifference}\n    uwsgi:   ${JSON.stringify(comparable(u))}\n    tsuwsgi: ${JSON.stringify(comparable(t))}`);
            // Fixed? Then this marker must go, so the case is compared again.
            expect({ tsuwsgiNowAgreesRemoveKnownDifference: same }).toEqual({ tsuwsgiNowAgreesRemoveKnownDifference: false });
            return;
          }
          if (c.deliberate) {
            notes.push(`- ${c.name}: deliberate — ${c.deliberate}`);
            expectMatches('uwsgi', u, c.uwsgi!, ctx);
            expectMatches('tsuwsgi', t, c.tsuwsgi!, ctx);
            return;
          }
          withContext(ctx, () => expect(comparable(t)).toEqual(comparable(u)));
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
      120_000,
    );
  });
});
