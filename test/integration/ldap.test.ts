/**
 * ldap (`ldapauth:` / `ldapauth-next:`): HTTP Basic credentials checked against a real OpenLDAP
 * slapd (test/helpers/slapd.ts). The same rules run under tsuwsgi and under Debian's uWSGI
 * 2.0.21 ldap plugin against the same directory: the answers must be the same, except where
 * tsuwsgi deliberately differs (a directory that cannot be asked is a 502, not a 401).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { httpRequest, type HttpResult } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { startSlapd, SUFFIX, type Slapd } from '../helpers/slapd.ts';
import { freePort, runTsuwsgi, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

const LDIF = `dn: ${SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=reader,${SUFFIX}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: readerpw

dn: ou=people,${SUFFIX}
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,${SUFFIX}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: alice
cn: Alice Liddell
sn: Liddell
uidNumber: 1001
gidNumber: 1001
homeDirectory: /home/alice
userPassword: wonderland

dn: uid=carol,ou=people,${SUFFIX}
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Carol
userPassword: carolpw

dn:: ${b64(`uid=josé,ou=people,${SUFFIX}`)}
objectClass: inetOrgPerson
uid:: ${b64('josé')}
cn: Jose
sn: Jose
userPassword:: ${b64('café')}

dn: ou=staff,${SUFFIX}
objectClass: organizationalUnit
ou: staff

dn: uid=bob,ou=staff,${SUFFIX}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder
userPassword: builder
`;

/** Staff entries are visible only to a bound client (binddn=), everyone may bind. */
const ACL = `access to attrs=userPassword by anonymous auth by * none
access to dn.subtree="ou=staff,${SUFFIX}" by users read by anonymous auth
access to * by * read`;

const basic = (credentials: string): Record<string, string> => ({ Authorization: `Basic ${b64(credentials)}` });

describe('ldapauth: against uWSGI, with the same slapd', () => {
  const dir = tmpDir('tsuwsgi-ldap-');
  const app = path.join(dir, 'app.py');
  let slapd: Slapd;
  let ts: ServerHandle;
  let uw: ForeignHandle;
  let uwPort = 0;

  beforeAll(async () => {
    fs.writeFileSync(app, "def application(env, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('user=' + env.get('REMOTE_USER', '-')).encode('latin-1')]\n");
    slapd = await startSlapd(LDIF, { acl: ACL });
    const dead = `ldap://127.0.0.1:${await freePort()}`;
    const opts = (url: string, more = ''): string => `url=${url};basedn=${SUFFIX}${more}`;
    const rules = [
      '--socket-timeout', '2',
      '--route', `^/p$ ldapauth:People,${opts(slapd.url, ';loglevel=2')}`,
      '--route', `^/px$ ldapauth:Posix,${opts(slapd.url, ';filter=(objectClass=posixAccount)')}`,
      '--route', `^/b$ ldapauth:Bound,${opts(slapd.url, `;binddn=cn=reader,${SUFFIX};bindpw=readerpw`)}`,
      '--route', `^/bw$ ldapauth:Bound,${opts(slapd.url, `;binddn=cn=reader,${SUFFIX};bindpw=wrong`)}`,
      '--route', `^/cn$ ldapauth:By name,${opts(slapd.url, ';attr=cn')}`,
      '--route', `^/n$ ldapauth-next:Next,${opts(slapd.url, ';loglevel=1')}`,
      '--route', '^/n$ basicauth:Fallback,zed:zzz',
      '--route', `^/d$ ldapauth:Down,${opts(dead)}`,
      '--route', `^/dn$ ldapauth-next:Down,${opts(dead)}`,
    ];
    ts = await startServer(['--plugin', 'ldap', '--http-socket', '127.0.0.1:0', '--wsgi-file', app, ...rules]);
    uwPort = await freePort();
    uw = await startForeign(UWSGI_BIN, ['--plugin', 'python3,ldap,router_basicauth', '--http-socket', `127.0.0.1:${uwPort}`, '--wsgi-file', app, ...rules], /spawned uWSGI worker 1/);
  });
  afterAll(async () => {
    await uw?.stop();
    if (ts) expect(await ts.stop()).toBe(0);
    await slapd?.stop();
  });

  async function both(p: string, headers: Record<string, string> = {}): Promise<{ mine: HttpResult; theirs: HttpResult }> {
    return withServerLog(
      ts,
      async () => ({ mine: await httpRequest(ts.port, { path: p, headers, timeoutMs: 15000 }), theirs: await httpRequest(uwPort, { path: p, headers, timeoutMs: 15000 }) }),
      () => `--- uWSGI log ---\n${uw.logs().slice(-3000)}`,
    );
  }

  const same = (r: { mine: HttpResult; theirs: HttpResult }): HttpResult => {
    expect(r.mine.status).toBe(r.theirs.status);
    expect(r.mine.body.toString('latin1')).toBe(r.theirs.body.toString('latin1'));
    expect(r.mine.headers['www-authenticate']).toBe(r.theirs.headers['www-authenticate']);
    return r.mine;
  };

  it('the right password: REMOTE_USER is the user and the app runs', async () => {
    const mine = same(await both('/p', basic('alice:wonderland')));
    expect(mine.status).toBe(200);
    expect(mine.body.toString()).toBe('user=alice');
  });

  it.each([
    ['a wrong password', basic('alice:wrong')],
    ['an unknown user', basic('mallory:wonderland')],
    ['no Authorization header', {}],
    ['another scheme', { Authorization: 'Bearer abcdefgh' }],
    ['credentials without a colon', basic('alice')],
    ['an empty password (an unauthenticated bind)', basic('alice:')],
    ['an empty user', basic(':wonderland')],
    ['the user in other case (LDAP matches it, the login must be exact)', basic('Alice:wonderland')],
    ['a filter wildcard as the user', basic('*:wonderland')],
    ['filter syntax in the user', basic('alice)(uid=*:wonderland')],
  ])('%s: 401 Authorization Required with WWW-Authenticate, as uWSGI', async (_what, headers) => {
    const mine = same(await both('/p', headers));
    expect(mine.status).toBe(401);
    expect(mine.headers['www-authenticate']).toBe('Basic realm="People"');
    expect(mine.body.toString()).toBe('Unauthorized');
  });

  it('UTF-8 user names and passwords', async () => {
    const mine = same(await both('/p', basic('josé:café')));
    expect(mine.status).toBe(200);
    expect(mine.body.toString('utf8')).toBe('user=josé');
  });

  it('filter= narrows the search; attr= names the login attribute', async () => {
    expect(same(await both('/px', basic('alice:wonderland'))).status).toBe(200);
    expect(same(await both('/px', basic('carol:carolpw'))).status).toBe(401);
    expect(same(await both('/p', basic('carol:carolpw'))).status).toBe(200);
    const byName = same(await both('/cn', basic('Alice Liddell:wonderland')));
    expect(byName.body.toString()).toBe('user=Alice Liddell');
  });

  it('binddn=/bindpw=: the search runs as that user (bob is invisible to anonymous searches)', async () => {
    expect(same(await both('/p', basic('bob:builder'))).status).toBe(401);
    const bound = same(await both('/b', basic('bob:builder')));
    expect(bound.body.toString()).toBe('user=bob');
    expect(same(await both('/b', basic('bob:wrong'))).status).toBe(401);
  });

  it('ldapauth-next: a refusal goes on to the next rule; no credentials is still a 401', async () => {
    expect(same(await both('/n', basic('alice:wonderland'))).body.toString()).toBe('user=alice');
    expect(same(await both('/n', basic('zed:zzz'))).body.toString()).toBe('user=zed');
    expect(same(await both('/n', basic('zed:wrong'))).headers['www-authenticate']).toBe('Basic realm="Fallback"');
    expect(same(await both('/n', {})).headers['www-authenticate']).toBe('Basic realm="Next"');
  });

  it('loglevel=2 logs successful binds, loglevel=1 refusals, in uWSGI\'s words', async () => {
    await both('/p', basic('alice:wonderland'));
    await both('/n', basic('alice:nope'));
    await both('/n', basic('nobody:nope'));
    const lines = [
      `[router-ldapauth] successful bind as user 'uid=alice,ou=people,${SUFFIX}' to '${slapd.url}'`,
      `[router-ldapauth] can't bind as user 'uid=alice,ou=people,${SUFFIX}' to '${slapd.url}': `,
    ];
    await sleep(200);
    for (const line of lines) {
      expect(uw.logs()).toContain(line);
      expect(ts.logs()).toContain(line);
    }
    // uWSGI drops the "[" of this one (a typo in ldap.c); tsuwsgi writes it.
    expect(uw.logs()).toContain(`router-ldapauth] user 'nobody' not found in LDAP server at '${slapd.url}'`);
    expect(ts.logs()).toContain(`[router-ldapauth] user 'nobody' not found in LDAP server at '${slapd.url}'`);
  });

  it('a wrong bindpw: uWSGI 401; tsuwsgi 502 and a log line (the user\'s password was never checked)', async () => {
    const r = await both('/bw', basic('alice:wonderland'));
    expect(r.theirs.status).toBe(401);
    expect(r.mine.status).toBe(502);
    expect(r.mine.body.toString()).toBe('Bad Gateway');
    await ts.waitForLog(new RegExp(`\\[router-ldapauth\\] cannot authenticate with the LDAP server at '${slapd.url}': can't bind as user 'cn=reader,${SUFFIX}'`));
  });

  it('the server down: uWSGI 401; tsuwsgi 502 and a log line; ldapauth-next goes on as in uWSGI', async () => {
    const r = await both('/d', basic('alice:wonderland'));
    expect(r.theirs.status).toBe(401);
    expect(r.mine.status).toBe(502);
    await ts.waitForLog(/\[router-ldapauth\] cannot authenticate with the LDAP server at 'ldap:\/\/127\.0\.0\.1:\d+': .*ECONNREFUSED/);
    const next = same(await both('/dn', basic('alice:wonderland')));
    expect(next.body.toString()).toBe('user=-');
  });

  it('reuses its connections: no new connection to slapd once warm (uWSGI opens one per request)', async () => {
    await httpRequest(ts.port, { path: '/b', headers: basic('bob:builder') });
    await sleep(100);
    const accepted = (): number => (slapd.logs().match(/ ACCEPT from IP=/g) ?? []).length;
    const before = accepted();
    for (let i = 0; i < 3; i++) expect((await httpRequest(ts.port, { path: '/b', headers: basic('bob:builder') })).status).toBe(200);
    await sleep(100);
    expect(accepted()).toBe(before);
    for (let i = 0; i < 3; i++) expect((await httpRequest(uwPort, { path: '/b', headers: basic('bob:builder') })).status).toBe(200);
    await sleep(100);
    expect(accepted()).toBe(before + 3);
  });

  it('concurrent checks share the search connection safely', async () => {
    const users = [['alice', 'wonderland', 200], ['bob', 'builder', 200], ['carol', 'carolpw', 200], ['alice', 'bad', 401], ['josé', 'café', 200]] as const;
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => users[i % users.length]!).map(async ([u, p, status]) => {
      const r = await httpRequest(ts.port, { path: '/b', headers: basic(`${u}:${p}`) });
      return [r.status, r.body.toString('utf8'), status, u] as const;
    }));
    for (const [got, body, want, u] of results) {
      expect(got).toBe(want);
      if (want === 200) expect(body).toBe(`user=${u}`);
    }
  });
});

describe('ldapauth: a directory that goes away, or never answers', () => {
  const dir = tmpDir('tsuwsgi-ldap-restart-');
  const app = path.join(dir, 'app.py');
  let slapd: Slapd | undefined;
  let silent: net.Server;
  let ts: ServerHandle;
  const held: net.Socket[] = [];

  beforeAll(async () => {
    fs.writeFileSync(app, "def application(env, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('user=' + env.get('REMOTE_USER', '-')).encode('latin-1')]\n");
    slapd = await startSlapd(LDIF, { acl: ACL });
    // Accepts connections and never says a word: libldap (uWSGI) would wait for it forever.
    silent = net.createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const silentUrl = `ldap://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    ts = await startServer([
      '--plugin', 'ldap', '--http-socket', '127.0.0.1:0', '--wsgi-file', app, '--socket-timeout', '1',
      '--route', `^/b$ ldapauth:Bound,url=${slapd.url};basedn=${SUFFIX};binddn=cn=reader,${SUFFIX};bindpw=readerpw`,
      '--route', `^/s$ ldapauth:Silent,url=${silentUrl};basedn=${SUFFIX}`,
    ]);
  });
  afterAll(async () => {
    if (ts) expect(await ts.stop()).toBe(0);
    await slapd?.stop();
    for (const s of held) s.destroy();
    await new Promise((r) => silent?.close(r));
  });

  it('a restarted slapd: 502 while it is down, then the kept connections are reopened (and re-bound) by themselves', async () => {
    await withServerLog(ts, async () => {
      expect((await httpRequest(ts.port, { path: '/b', headers: basic('bob:builder') })).status).toBe(200);
      const port = slapd!.port;
      await slapd!.stop();
      slapd = undefined;
      expect((await httpRequest(ts.port, { path: '/b', headers: basic('bob:builder') })).status).toBe(502);
      slapd = await startSlapd(LDIF, { acl: ACL, port });
      const again = await httpRequest(ts.port, { path: '/b', headers: basic('bob:builder') });
      expect(again.status).toBe(200);
      expect(again.body.toString()).toBe('user=bob');
      expect((await httpRequest(ts.port, { path: '/b', headers: basic('bob:wrong') })).status).toBe(401);
    });
  });

  it('a server that never answers: 504 after --socket-timeout, no hang', async () => {
    const started = Date.now();
    const r = await httpRequest(ts.port, { path: '/s', headers: basic('alice:wonderland'), timeoutMs: 15000 });
    expect(r.status).toBe(504);
    expect(r.body.toString()).toBe('Gateway Timeout');
    expect(Date.now() - started).toBeLessThan(5000);
    await ts.waitForLog(/\[router-ldapauth\] cannot authenticate with the LDAP server at 'ldap:\/\/127\.0\.0\.1:\d+': /);
  });
});

describe('ldapauth: bad rules are refused at start-up', () => {
  it.each([
    ['ldapauth:R', /a realm and the options are needed/],
    ['ldapauth:R,basedn=dc=x', /url= is required/],
    ['ldapauth:R,url=ldap://127.0.0.1', /basedn= is required/],
    ['ldapauth:R,url=http://127.0.0.1;basedn=dc=x', /only ldap:\/\/ and ldaps:\/\//],
    ['ldapauth:R,url=ldap://127.0.0.1;basedn=dc=x;bindpwd=x', /unknown key "bindpwd"/],
    ['ldapauth:R,url=ldap://127.0.0.1;basedn=dc=x;binddn=cn=a', /binddn= and bindpw= go together/],
    ['ldapauth:R,url=ldap://127.0.0.1;basedn=dc=x;filter=objectClass=*)(', /is not an LDAP filter/],
  ])('%s', async (action, message) => {
    const r = await runTsuwsgi(['--plugin', 'ldap', '--http-socket', '127.0.0.1:0', '--route-run', action], { timeoutMs: 20000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/TSUWSGI_E_ROUTING/);
    expect(r.output).toMatch(message);
  });
});
