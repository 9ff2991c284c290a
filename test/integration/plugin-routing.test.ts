/**
 * Route actions, conditions and route vars from a plugin FILE (docs/plugins.md, "Route
 * actions"): examples/plugins/stamp is built out of tree with `tsuwsgi --build-plugin`, loaded
 * with `--plugins-dir … --plugins stamp`, and its pieces must work where requests are served:
 * in the single process, and with --master in every core worker process, each of which loads
 * the file itself. A plugin file that loads in the master but not in a core worker must stop
 * start-up with an error saying so.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { fixture, REPO_ROOT, runTsuwsgi, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

/** GET on a fresh connection (no keep-alive), so successive requests may land on either core worker. */
function get(port: number, p: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, headers: { Connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(20000, () => req.destroy(new Error(`GET ${p} timed out`)));
  });
}

const STAMP_RULES = [
  '--route-run', 'stamp:X-Stamp=${stamp[worker]} #${stamp[count]}',
  '--route-if', 'palindrome:${qs[word]} addheader:X-Palindrome: yes',
];

describe('route actions from a plugin file (examples/plugins/stamp)', () => {
  const work = tmpDir('tsuwsgi-plugin-routing-');
  let srv: ServerHandle | undefined;

  beforeAll(async () => {
    const build = await runTsuwsgi(['--build-plugin', path.join(REPO_ROOT, 'examples', 'plugins', 'stamp')], { cwd: work });
    expect({ code: build.code, output: build.output }).toEqual({ code: 0, output: expect.stringContaining('plugin stamp built') });
    expect(fs.existsSync(path.join(work, 'stamp_plugin.cjs'))).toBe(true);
  }, 60000);

  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('--master --core-workers 2: both core worker processes run the plugin\'s action, condition and var', async () => {
    // --processes 2: each core worker gets one bridge connection (capacityShare splits processes × threads).
    srv = await startServer(['--master', '--core-workers', '2', '--processes', '2', '--plugins-dir', work, '--plugins', 'stamp', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), ...STAMP_RULES]);
    await withServerLog(srv, async () => {
      const coreWorkers = new Map<number, number>();
      // Fresh connections in parallel batches until both core workers have answered: the
      // kernel decides which one accepts, so keep asking (bounded).
      for (let batch = 0; batch < 40 && coreWorkers.size < 2; batch++) {
        const answers = await Promise.all(Array.from({ length: 8 }, () => get(srv!.port, '/?word=level')));
        for (const r of answers) {
          expect(r.status).toBe(200);
          expect(r.body).toBe('Hello World');
          expect(r.headers['x-palindrome']).toBe('yes');
          const m = /^([12]):(\d+) #(\d+)$/.exec(String(r.headers['x-stamp']));
          expect(m).not.toBeNull();
          const [wid, pid] = [Number(m![1]), Number(m![2])];
          // A core worker child, never the master (which does not serve requests).
          expect(pid).not.toBe(srv!.pid);
          const known = coreWorkers.get(wid);
          if (known !== undefined) expect(pid).toBe(known);
          coreWorkers.set(wid, pid);
        }
      }
      expect([...coreWorkers.keys()].sort()).toEqual([1, 2]);
      expect(coreWorkers.get(1)).not.toBe(coreWorkers.get(2));
      // The condition is false for a word that is not a palindrome: the rule is skipped.
      const plain = await get(srv!.port, '/?word=levels');
      expect(plain.headers['x-palindrome']).toBeUndefined();
      expect(plain.headers['x-stamp']).toMatch(/^[12]:\d+ #\d+$/);
    });
  }, 60000);

  it('without --master the single process runs them too', async () => {
    srv = await startServer(['--plugins-dir', work, '--plugins', 'stamp', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), ...STAMP_RULES]);
    await withServerLog(srv, async () => {
      const first = await get(srv!.port, '/?word=abba');
      const second = await get(srv!.port, '/?word=abc');
      expect(first.headers['x-stamp']).toBe(`1:${srv!.pid} #1`);
      expect(first.headers['x-palindrome']).toBe('yes');
      expect(second.headers['x-stamp']).toBe(`1:${srv!.pid} #2`);
      expect(second.headers['x-palindrome']).toBeUndefined();
    });
  });

  it('a bad argument to the plugin\'s action is a start-up error naming the rule', async () => {
    const r = await runTsuwsgi(['--master', '--plugins-dir', work, '--plugins', 'stamp', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--route-run', 'stamp:bad name'], { timeoutMs: 20000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('TSUWSGI_E_ROUTING');
    expect(r.output).toContain('"stamp:" needs a header name');
    expect(r.output).toContain('--route-run "stamp:bad name"');
  });

  it('a plugin file that loads in the master but not in a core worker stops start-up with a clear error', async () => {
    const dir = tmpDir('tsuwsgi-flaky-plugin-');
    try {
      // Hand-written CommonJS plugin file (what --build-plugin produces): it throws only where a
      // core worker child loads it, which the master marks with TSUWSGI_ROLE.
      fs.writeFileSync(
        path.join(dir, 'flaky_plugin.cjs'),
        `if (process.env.TSUWSGI_ROLE === 'core-worker') throw new Error('flaky refuses to load in a core worker');
module.exports = { flaky_plugin: { name: 'flaky', apiVersion: ${PLUGIN_API_VERSION}, routeActions: [{ name: 'flaky', prepare: () => () => 'next' }] } };
`,
      );
      const started = Date.now();
      const r = await runTsuwsgi(['--master', '--plugins-dir', dir, '--plugins', 'flaky', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--route-run', 'flaky:'], { timeoutMs: 30000 });
      expect(r.code).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(25000);
      expect(r.output).toContain('TSUWSGI_E_CORE_WORKER');
      expect(r.output).toMatch(/the plugin "flaky" the master loaded from \/\S+\/flaky_plugin\.cjs does not load here/);
      expect(r.output).toContain('flaky refuses to load in a core worker');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
