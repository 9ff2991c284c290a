/**
 * router_access (spec/subsystems.md §6.6, `access:action=hosts`): TCP wrappers' hosts.allow and
 * hosts.deny decide whether a client gets past the rule, as uWSGI's router_access does through
 * libwrap. A real tsuwsgi in front of routing_actions_app.py ("app:<PATH_INFO>").
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { fixture, runTsuwsgi, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

describe('access:action=hosts', () => {
  const dir = tmpDir('tsuwsgi-access-');
  const allow = path.join(dir, 'hosts.allow');
  const deny = path.join(dir, 'hosts.deny');
  let srv: ServerHandle;

  beforeAll(async () => {
    fs.writeFileSync(allow, '# nobody in particular\n');
    fs.writeFileSync(deny, 'uwsgi: 127.0.0.1\n');
    srv = await startServer([
      '--plugin', 'router_access', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('routing_actions_app.py'),
      '--route', `^/private access:action=hosts,allow=${allow},deny=${deny}`,
      '--route', `^/other access:action=hosts,daemon=other,allow=${allow},deny=${deny}`,
    ]);
  });
  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  });

  it('a client hosts.deny names gets 403 Forbidden (text/plain "Forbidden"); other paths and daemons are untouched', async () => {
    await withServerLog(srv, async () => {
      const r = await httpRequest(srv.port, { path: '/private/x' });
      expect(r.status).toBe(403);
      expect(r.headers['content-type']).toBe('text/plain');
      expect(r.body.toString()).toBe('Forbidden');
      expect((await httpRequest(srv.port, { path: '/public' })).body.toString()).toBe('app:/public');
      expect((await httpRequest(srv.port, { path: '/other' })).body.toString()).toBe('app:/other');
    });
  });

  it('hosts.allow wins over hosts.deny, and edits apply without a restart', async () => {
    await withServerLog(srv, async () => {
      fs.writeFileSync(allow, 'ALL: 127.0.0.0/255.0.0.0 EXCEPT 127.0.0.2\n');
      fs.utimesSync(allow, new Date(), new Date(Date.now() + 5000));
      expect((await httpRequest(srv.port, { path: '/private/y' })).body.toString()).toBe('app:/private/y');
    });
  });

  it('an action other than hosts is refused at start-up, saying what exists', async () => {
    const r = await runTsuwsgi(['--plugin', 'router_access', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('routing_actions_app.py'), '--route', '^/ access:action=ldap']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/only action=hosts exists/);
  });
});
