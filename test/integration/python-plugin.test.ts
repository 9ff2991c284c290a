/**
 * The python plugin's options and the `uwsgi` module (spec/languages.md §4.1, §4.5), plus
 * the process options apps depend on (--env, --chdir, --uid) and an --ini file end to end.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { fixture, startServer, tmpDir, withServerLog } from '../helpers/server.ts';

interface Report {
  worker_id: number;
  masterpid: number;
  numproc: number;
  version: string;
  version_is_bytes: boolean;
  opt: Record<string, string | string[] | boolean>;
  hostname: string;
  cwd: string;
  env_MY_SETTING: string | null;
  executable: string;
  prefix: string;
  uid: number;
  sys_path_0_3: string[];
}

async function report(port: number): Promise<Report> {
  const r = await httpRequest(port);
  expect(r.status).toBe(200);
  return JSON.parse(r.body.toString()) as Report;
}

describe('the uwsgi Python module', () => {
  it('exposes worker_id(), masterpid(), numproc, version (bytes), opt (bytes, lists for repeats) and log()', async () => {
    const srv = await startServer([
      '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('uwsgi_api.py'), '--processes', '2',
      '--set-ph', 'team=blue', '--env', 'A=1', '--env', 'B=2',
    ]);
    await withServerLog(srv, async () => {
      const r = await report(srv.port);
      expect([1, 2]).toContain(r.worker_id);
      expect(r.masterpid).toBe(srv.pid);
      expect(r.numproc).toBe(2);
      expect(r.version_is_bytes).toBe(true);
      expect(r.version).toMatch(/^2\.0\.\d+/);
      expect(r.opt['processes']).toBe('2');
      expect(r.opt['env']).toEqual(['A=1', 'B=2']);
      expect(r.opt['team']).toBe('blue');
      expect(r.hostname).toBe(os.hostname());
      await srv.waitForLog(/uwsgi\.log from the app: hello log/);
    });
    expect(await srv.stop()).toBe(0);
  });
});

describe('process options seen by the app', () => {
  it('--env sets variables, --chdir sets the working directory before the app loads', async () => {
    const dir = fs.realpathSync(tmpDir());
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('uwsgi_api.py'), '--env', 'MY_SETTING=on', '--chdir', dir]);
    const r = await report(srv.port);
    expect(r.env_MY_SETTING).toBe('on');
    expect(r.cwd).toBe(dir);
    expect(await srv.stop()).toBe(0);
  });

  it('with one app the environ has no UWSGI_APPID, as under uWSGI; a mounted app gets its mountpoint', async () => {
    const dir = tmpDir();
    const app = path.join(dir, 'appid.py');
    fs.writeFileSync(app, "def application(env, sr):\n    sr('200 OK', [('Content-Type', 'text/plain')])\n    return [repr(env.get('UWSGI_APPID')).encode()]\n");
    const single = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', app]);
    expect((await httpRequest(single.port, { path: '/x' })).body.toString()).toBe('None');
    expect(await single.stop()).toBe(0);
    const mounted = await startServer(['--http-socket', '127.0.0.1:0', '--mount', `/m=${app}`, '--manage-script-name']);
    expect((await httpRequest(mounted.port, { path: '/m/x' })).body.toString()).toBe("'/m'");
    expect(await mounted.stop()).toBe(0);
  });

  it('--pythonpath puts directories first on sys.path', async () => {
    const dir = tmpDir();
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('uwsgi_api.py'), '--pythonpath', dir]);
    const r = await report(srv.port);
    expect(r.sys_path_0_3).toContain(dir);
    expect(await srv.stop()).toBe(0);
  });

  it('--uid nobody (as root): the app runs unprivileged, the socket was bound before the drop', async () => {
    expect(process.getuid?.()).toBe(0); // CI and these machines run the suite as root
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('uwsgi_api.py'), '--uid', 'nobody', '--gid', 'nogroup']);
    const r = await report(srv.port);
    expect(r.uid).toBe(nobody);
    expect(await srv.stop()).toBe(0);
  });
});

describe('--home / --virtualenv', () => {
  it('runs the bridge with the virtualenv\'s interpreter', async () => {
    const venv = path.join(tmpDir(), 'venv');
    execFileSync('python3', ['-m', 'venv', '--without-pip', venv]);
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('uwsgi_api.py'), '--virtualenv', venv]);
    const r = await report(srv.port);
    expect(r.prefix).toBe(venv);
    expect(await srv.stop()).toBe(0);
  });
});

describe('an --ini file end to end', () => {
  it('serves from an ini with a section, %(placeholders), magic %d and $(ENV)', async () => {
    const dir = fs.realpathSync(tmpDir());
    fs.copyFileSync(fixture('uwsgi_api.py'), path.join(dir, 'app.py'));
    fs.writeFileSync(
      path.join(dir, 'site.ini'),
      [
        '[uwsgi]',
        'processes = 1',
        '[production]',
        'base = %d',
        'http-socket = 127.0.0.1:0',
        'wsgi-file = %(base)app.py',
        'env = MY_SETTING=$(TSUWSGI_TEST_SETTING)',
        'master = true',
        '',
      ].join('\n'),
    );
    const srv = await startServer(['--ini', path.join(dir, 'site.ini') + ':production'], { env: { TSUWSGI_TEST_SETTING: 'from-env' } });
    const r = await report(srv.port);
    expect(r.env_MY_SETTING).toBe('from-env');
    expect(r.opt['wsgi-file']).toBe(path.join(dir, 'app.py'));
    expect(r.opt['processes']).toBeUndefined();
    expect(await srv.stop()).toBe(0);
  });
});
