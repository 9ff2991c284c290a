/**
 * modifier1 dispatch (spec/core.md §1.3, spec/languages.md §1): the plugin table, N:name,
 * remap-modifier, allowed-modifiers, and uWSGI 1.9.18's default-app rule — checked with the
 * dummy bridge, so no language runtime is involved.
 */
import { httpRequest, rawHttp } from '../helpers/http-raw.ts';
import { runTsuwsgi, startServer } from '../helpers/server.ts';
import { stdVars, uwsgiRequest } from '../helpers/uwsgi-client.ts';

const DUMMY = ['--plugins', 'dummy', '--dummy-app'];

describe('modifier1 dispatch', () => {
  it('sends modifier1 0 to the first loaded app when no python app is loaded', async () => {
    const srv = await startServer([...DUMMY, '--http-socket', '127.0.0.1:0']);
    const r = await httpRequest(srv.port);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('Hello World');
    expect(await srv.stop()).toBe(0);
  });

  it('with --no-default-app, an unbound modifier1 0 is unavailable: logged and the connection closed', async () => {
    const srv = await startServer([...DUMMY, '--no-default-app', '--http-socket', '127.0.0.1:0']);
    const r = await rawHttp(srv.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.closed).toBe(true);
    expect(r.data.length).toBe(0);
    await srv.waitForLog(/-- unavailable modifier requested: 0 --/);
    expect(await srv.stop()).toBe(0);
  });

  it('serves the plugin at its own modifier1 (uwsgi socket, modifier1 250)', async () => {
    const srv = await startServer([...DUMMY, '--socket', '127.0.0.1:0']);
    const out = await uwsgiRequest(srv.sockets[0]!, stdVars({ PATH_INFO: '/pid' }), { modifier1: 250 });
    expect(out.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(await srv.stop()).toBe(0);
  });

  it('answers an unknown modifier1 by closing the connection and logging it, as uWSGI does', async () => {
    const srv = await startServer([...DUMMY, '--socket', '127.0.0.1:0']);
    const out = await uwsgiRequest(srv.sockets[0]!, stdVars(), { modifier1: 5 });
    expect(out.length).toBe(0);
    await srv.waitForLog(/-- unavailable modifier requested: 5 --/);
    // The server keeps serving.
    const ok = await uwsgiRequest(srv.sockets[0]!, stdVars(), { modifier1: 250 });
    expect(ok.toString()).toContain('Hello World');
    expect(await srv.stop()).toBe(0);
  });

  it('binds a plugin to another modifier with --plugins N:name', async () => {
    const srv = await startServer(['--plugins', '7:dummy', '--dummy-app', '--no-default-app', '--socket', '127.0.0.1:0']);
    const out = await uwsgiRequest(srv.sockets[0]!, stdVars(), { modifier1: 7 });
    expect(out.toString()).toContain('Hello World');
    expect(await srv.stop()).toBe(0);
  });

  it('serves modifier TO by the plugin at FROM with --remap-modifier FROM:TO', async () => {
    const srv = await startServer([...DUMMY, '--remap-modifier', '250:9', '--socket', '127.0.0.1:0']);
    const out = await uwsgiRequest(srv.sockets[0]!, stdVars(), { modifier1: 9 });
    expect(out.toString()).toContain('Hello World');
    expect(await srv.stop()).toBe(0);
  });

  it('treats modifiers outside --allowed-modifiers as unavailable', async () => {
    const srv = await startServer([...DUMMY, '--allowed-modifiers', '0', '--socket', '127.0.0.1:0']);
    const refused = await uwsgiRequest(srv.sockets[0]!, stdVars(), { modifier1: 250 });
    expect(refused.length).toBe(0);
    await srv.waitForLog(/-- unavailable modifier requested: 250 --/);
    const allowed = await uwsgiRequest(srv.sockets[0]!, stdVars(), { modifier1: 0 });
    expect(allowed.toString()).toContain('Hello World');
    expect(await srv.stop()).toBe(0);
  });

  it('forces the modifier of HTTP sockets with --http-socket-modifier1', async () => {
    const srv = await startServer([...DUMMY, '--no-default-app', '--http-socket-modifier1', '250', '--http-socket', '127.0.0.1:0']);
    const r = await httpRequest(srv.port, { path: '/echo', method: 'POST', body: 'abc' });
    expect(r.body.toString()).toBe('abc');
    expect(await srv.stop()).toBe(0);
  });
});

describe('plugins by name', () => {
  it('names the plugin that provides an option of a plugin that is not loaded', async () => {
    const r = await runTsuwsgi(['--dummy-app', '--http-socket', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown option "--dummy-app": it is provided by plugin "dummy", which is not loaded; add --plugins dummy');
  });

  it('refuses an unknown plugin, listing the available ones and where it looked', async () => {
    const r = await runTsuwsgi(['--plugins-dir', '/nonexistent', '--plugins', 'nosuch', '--http-socket', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/plugin "nosuch" .* is not available: it is not embedded in this build \(embedded\/in-tree: .*dummy.*python.*\) and no plugin file was found \(searched \/nonexistent\/nosuch_plugin\.cjs\)/);
  });

  it('accepts --plugin, --need-plugin and uWSGI plugin file names for the same plugin', async () => {
    const srv = await startServer(['--plugin', 'dummy_plugin.so', '--need-plugin', 'dummy', '--dummy-app', '--http-socket', '127.0.0.1:0']);
    expect((await httpRequest(srv.port)).status).toBe(200);
    expect(await srv.stop()).toBe(0);
  });

  it('suggests the closest option for a typo', async () => {
    const r = await runTsuwsgi(['--wsgi-fil', 'app.py']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('did you mean "--wsgi-file"');
  });
});
