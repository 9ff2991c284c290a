/**
 * SIGHUP re-reads the configuration, as uWSGI's reload does (spec/core.md §3.7 accept 2):
 * worker settings apply to the new workers; what needs a restart is said in the log; an
 * invalid file keeps the running configuration.
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { startServer, tmpDir } from '../helpers/server.ts';

function writeIni(file: string, lines: string[]): void {
  fs.writeFileSync(file, ['[uwsgi]', 'plugins = dummy', 'dummy-app = true', 'http-socket = 127.0.0.1:0', ...lines, ''].join('\n'));
}

describe('SIGHUP re-reads the configuration', () => {
  it('applies a changed --processes to the new workers', async () => {
    const ini = path.join(tmpDir(), 'app.ini');
    writeIni(ini, ['processes = 2']);
    const srv = await startServer(['--ini', ini]);
    await srv.waitForLogCount(/spawned uWSGI worker \d/, 2);
    writeIni(ini, ['processes = 4']);
    srv.signal('SIGHUP');
    await srv.waitForLog(/workers reloaded/, 20000);
    expect(srv.logs()).toMatch(/spawned uWSGI worker 4 /);
    const bridges = srv.descendants().filter((p) => p.cmd.includes('bridges/dummy/bridge.mjs'));
    expect(bridges).toHaveLength(4);
    expect((await httpRequest(srv.port)).status).toBe(200);
    expect(await srv.stop()).toBe(0);
  }, 60000);

  it('says which changes need a restart, and keeps serving', async () => {
    const ini = path.join(tmpDir(), 'app.ini');
    writeIni(ini, ['buffer-size = 8192']);
    const srv = await startServer(['--ini', ini]);
    writeIni(ini, ['buffer-size = 16384']);
    srv.signal('SIGHUP');
    await srv.waitForLog(/changes to --buffer-size need a restart of tsuwsgi to apply/, 20000);
    await srv.waitForLog(/workers reloaded/, 20000);
    expect((await httpRequest(srv.port)).status).toBe(200);
    expect(await srv.stop()).toBe(0);
  }, 60000);

  it('keeps the running configuration when the file became invalid', async () => {
    const ini = path.join(tmpDir(), 'app.ini');
    writeIni(ini, ['processes = 1']);
    const srv = await startServer(['--ini', ini]);
    writeIni(ini, ['processes = many']);
    srv.signal('SIGHUP');
    await srv.waitForLog(/configuration not reloaded: .*processes.*the workers restart with the running configuration/, 20000);
    await srv.waitForLog(/workers reloaded/, 20000);
    expect((await httpRequest(srv.port)).status).toBe(200);
    expect(await srv.stop()).toBe(0);
  }, 60000);
});
