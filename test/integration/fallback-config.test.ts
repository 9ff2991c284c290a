/**
 * `fallback-config` (spec/core.md §4.12): when startup fails with status 1 (a socket that
 * cannot be bound) or 22 (an app that cannot be loaded), tsuwsgi logs it and starts again,
 * in the same process, with only the fallback file.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { fixture, runTsuwsgi, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

function safeIni(dir: string): string {
  const file = path.join(dir, 'safe.ini');
  fs.writeFileSync(file, `[uwsgi]\nprint = Hello i am the fallback config !!!\nhttp-socket = 127.0.0.1:0\nwsgi-file = ${fixture('hello.py')}\n`);
  return file;
}

async function busyPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('fallback-config (§4.12)', () => {
  let srv: ServerHandle | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  it('reports a socket that is taken as EADDRINUSE, and then serves the fallback config in the same process', async () => {
    const dir = tmpDir();
    const taken = await busyPort();
    try {
      srv = await startServer(['--fallback-config', safeIni(dir), '--http-socket', `127.0.0.1:${taken.port}`, '--wsgi-file', fixture('hello.py')]);
      await withServerLog(srv, async () => {
        const logs = srv!.logs();
        expect(logs).toContain(`cannot bind 127.0.0.1:${taken.port}: EADDRINUSE`);
        expect(logs).toContain(`!!! tsuwsgi (pid: ${srv!.pid}) exited with status 1 !!!`);
        expect(logs).toContain(`!!! Fallback config to ${path.join(dir, 'safe.ini')} !!!`);
        expect(logs).toContain('Hello i am the fallback config !!!');
        expect(logs).toMatch(new RegExp(`tsuwsgi is ready: .*pid ${srv!.pid} `));
        const res = await httpRequest(srv!.port, { path: '/' });
        expect(res.status).toBe(200);
      });
    } finally {
      await taken.close();
    }
  });

  it('falls back when the app cannot be loaded (status 22)', async () => {
    const dir = tmpDir();
    srv = await startServer(['--fallback-config', safeIni(dir), '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('broken_import.py')]);
    await withServerLog(srv, async () => {
      expect(srv!.logs()).toContain('exited with status 22 !!!');
      expect((await httpRequest(srv!.port, { path: '/' })).body.toString()).toBe('Hello World');
    });
  });

  it('without a fallback, a taken socket still fails fast with what to do', async () => {
    const taken = await busyPort();
    try {
      const run = await runTsuwsgi(['--http-socket', `127.0.0.1:${taken.port}`, '--wsgi-file', fixture('hello.py')]);
      expect(run.code).toBe(1);
      expect(run.output).toContain(`cannot bind 127.0.0.1:${taken.port}: EADDRINUSE (another process is using it: stop it or choose another address)`);
    } finally {
      await taken.close();
    }
  });

  it('stops chaining after a fallback that fails too, and says so', async () => {
    const dir = tmpDir();
    const loop = path.join(dir, 'loop.ini');
    fs.writeFileSync(loop, `[uwsgi]\nfallback-config = ${loop}\nwsgi-file = ${fixture('broken_import.py')}\nhttp-socket = 127.0.0.1:0\n`);
    const run = await runTsuwsgi(['--ini', loop], { timeoutMs: 60000 });
    expect(run.code).toBe(22);
    expect(run.output).toContain('!!! not falling back again: 8 fallback configs in a row failed');
  });
});
