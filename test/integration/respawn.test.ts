/**
 * A worker that cannot be respawned (its app no longer loads) is retried with a back-off
 * until it loads again; requests that arrive meanwhile wait for it (like uWSGI's listen
 * queue) and are served when it is back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { fixture, startServer, tmpDir } from '../helpers/server.ts';

describe('respawn when the app stops loading', () => {
  it('retries the respawn, logs why it failed, and serves again once the app loads', async () => {
    const flag = path.join(tmpDir(), 'broken');
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('flaky_load.py'), '--processes', '1'], {
      env: { FLAKY_FLAG: flag },
    });
    const first = Number((await httpRequest(srv.port)).body.toString());
    fs.writeFileSync(flag, 'x');
    process.kill(first, 'SIGKILL');
    await srv.waitForLog(/DAMN ! worker 1 \(pid: \d+\) died, killed by signal 9/);
    await srv.waitForLog(/worker 1 respawn failed: .*could not be loaded.*trying again in \d+ seconds/, 15000);
    expect(srv.logs()).toContain('flaky_load: the flag file exists, refusing to load');
    const pending = httpRequest(srv.port, { timeoutMs: 40000 });
    fs.rmSync(flag);
    const r = await pending;
    expect(r.status).toBe(200);
    expect(Number(r.body.toString())).not.toBe(first);
    await srv.waitForLog(/Respawned uWSGI worker 1 \(new pid: \d+\)/);
    expect(await srv.stop()).toBe(0);
  }, 60000);
});
