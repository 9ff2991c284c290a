/**
 * Requests queued behind another on a bridge connection (--bridge-pipeline, docs/ARCHITECTURE.md):
 * they must never be lost when that bridge dies, and a slow request must not hold back
 * requests that arrive after it. Checked with the dummy bridge.
 */
import { httpRequest } from '../helpers/http-raw.ts';
import { startServer, sleep } from '../helpers/server.ts';

const DUMMY = ['--plugins', 'dummy', '--dummy-app', '--http-socket', '127.0.0.1:0'];

describe('bridge pipelining', () => {
  it('only the request in progress fails when its bridge dies; requests queued behind it are re-sent', async () => {
    const srv = await startServer([...DUMMY, '--processes', '1']);
    const crash = httpRequest(srv.port, { path: '/crash' });
    const others = Array.from({ length: 6 }, (_, i) => httpRequest(srv.port, { path: `/echo?${i}`, timeoutMs: 20000 }));
    const crashed = await crash;
    expect(crashed.status).toBe(502);
    const results = await Promise.all(others);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    await srv.waitForLog(/Respawned uWSGI worker 1/);
    expect(await srv.stop()).toBe(0);
  }, 30000);

  it('a slow request does not hold back requests that arrive after it while another worker is free', async () => {
    const srv = await startServer([...DUMMY, '--processes', '2']);
    const slow = httpRequest(srv.port, { path: '/sleep?ms=3000' });
    await sleep(300);
    const t0 = Date.now();
    const fast = await Promise.all(Array.from({ length: 20 }, () => httpRequest(srv.port, { path: '/pid' })));
    const elapsed = Date.now() - t0;
    expect(fast.every((r) => r.status === 200)).toBe(true);
    // Served by the free worker, not queued behind the 3 s request.
    expect(elapsed).toBeLessThan(2500);
    expect((await slow).body.toString()).toBe('done');
    expect(await srv.stop()).toBe(0);
  }, 30000);

  it('--bridge-pipeline 0 turns pipelining off and everything still works', async () => {
    const srv = await startServer([...DUMMY, '--processes', '1', '--bridge-pipeline', '0']);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => httpRequest(srv.port, { path: `/echo?${i}` })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(await srv.stop()).toBe(0);
  });

  it('harakiri counts from when the worker starts a request, not from when it arrived', async () => {
    const srv = await startServer([...DUMMY, '--processes', '1', '--harakiri', '2']);
    // Two 1.5 s requests on one worker: the second waits 1.5 s, then runs 1.5 s (3 s in all).
    const [a, b] = await Promise.all([httpRequest(srv.port, { path: '/sleep?ms=1500' }), httpRequest(srv.port, { path: '/sleep?ms=1500' })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(srv.logs()).not.toMatch(/HARAKIRI/);
    expect(await srv.stop()).toBe(0);
  }, 30000);
});
