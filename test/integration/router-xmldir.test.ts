/**
 * router_xmldir (`xmldir:DIR`): a directory listing as XML, compared byte for byte with what
 * Debian's uWSGI 2.0.21 router_xmldir answers for the same rule and the same directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { fixture, freePort, startServer, tmpDir, type ServerHandle } from '../helpers/server.ts';

describe('xmldir: against uWSGI', () => {
  const dir = tmpDir('tsuwsgi-xmldir-');
  let ts: ServerHandle;
  let uw: ForeignHandle;
  let uwPort = 0;

  beforeAll(async () => {
    const files: Array<[string, string]> = [
      ['a.txt', 'hello\n'],
      ['b&c.html', 'x'],
      ['.hidden', ''],
      ['Zeta<>"\'.txt', 'zz'],
      ['F1', ''],
      ['f10', '1234567890'],
      ['f9', '9'],
      ['café.txt', 'é'],
    ];
    const when = new Date('2026-01-02T03:04:05Z');
    for (const [name, body] of files) {
      fs.writeFileSync(path.join(dir, name), body);
      fs.utimesSync(path.join(dir, name), when, when);
    }
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.mkdirSync(path.join(dir, 'empty'));
    fs.writeFileSync(path.join(dir, 'sub', 'inner.txt'), 'in');
    for (const d of ['sub', 'empty', 'sub/inner.txt']) fs.utimesSync(path.join(dir, d), when, when);
    fs.symlinkSync(path.join(dir, 'a.txt'), path.join(dir, 'link'));
    fs.symlinkSync(path.join(dir, 'sub'), path.join(dir, 'dirlink'));
    const rule = ['--route', `^/x(.*) xmldir:${dir}$1`];
    ts = await startServer(['--plugin', 'router_xmldir', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), ...rule], { env: { TZ: 'UTC' } });
    uwPort = await freePort();
    uw = await startForeign(UWSGI_BIN, ['--plugin', 'router_xmldir', '--http-socket', `127.0.0.1:${uwPort}`, ...rule], /spawned uWSGI worker 1/, { env: { TZ: 'UTC' } });
  });
  afterAll(async () => {
    await uw?.stop();
    if (ts) expect(await ts.stop()).toBe(0);
  });

  it.each(['/x', '/x/sub', '/x/empty', '/x/missing', '/x/a.txt'])('%s: the same status and the same XML', async (p) => {
    const mine = await httpRequest(ts.port, { path: p });
    const theirs = await httpRequest(uwPort, { path: p });
    expect(mine.status).toBe(theirs.status);
    expect(mine.body.toString('utf8')).toBe(theirs.body.toString('utf8'));
    if (mine.status === 200) expect(mine.headers['content-type']).toBe('application/xml');
  });

  it('lists regular files and directories only, hidden ones too, in byte order', async () => {
    const body = (await httpRequest(ts.port, { path: '/x' })).body.toString('utf8');
    const names = [...body.matchAll(/<(file|directory) size="\d+" mtime="2026-01-02T03:04:05">([^<]*)<\//g)].map((m) => m[2]);
    expect(names).toEqual(['.hidden', 'F1', 'Zeta&lt;&gt;"\'.txt', 'a.txt', 'b&amp;c.html', 'caf&#xE9;.txt', 'empty', 'f10', 'f9', 'sub']);
    expect(body).not.toMatch(/link/);
  });
});
