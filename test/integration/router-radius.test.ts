/**
 * router_radius (`radius:` / `radius-next:`): HTTP Basic credentials checked by a RADIUS server.
 * The same rules run under tsuwsgi and under Debian's uWSGI 2.0.21 router_radius plugin, against
 * the same small RADIUS server (test/helpers/radius-server.ts), which records every packet it
 * gets: the two must answer alike and send alike, except where tsuwsgi deliberately differs
 * (a RADIUS server that cannot be asked is a 502/504, not a 401; a long Access-Accept is
 * accepted; no extra NUL block for a 16-byte password).
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, type HttpResult } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { startRadiusServer, type RadiusServer, type ReceivedRequest } from '../helpers/radius-server.ts';
import { freePort, runTsuwsgi, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const SECRET = 's3cret';
const USERS = { alice: 'wonderland', sixteen: 'abcdefghijklmnop', 'josé': 'café' };
const basic = (credentials: string): Record<string, string> => ({ Authorization: `Basic ${Buffer.from(credentials).toString('base64')}` });

describe('radius: against uWSGI, with the same RADIUS server', () => {
  const dir = tmpDir('tsuwsgi-radius-');
  const app = path.join(dir, 'app.py');
  let radius: RadiusServer;
  let silent: RadiusServer;
  let chatty: RadiusServer;
  let ts: ServerHandle;
  let uw: ForeignHandle;
  let uwPort = 0;

  beforeAll(async () => {
    fs.writeFileSync(app, "def application(env, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('user=' + env.get('REMOTE_USER', '-')).encode('latin-1')]\n");
    radius = await startRadiusServer({ secret: SECRET, users: USERS });
    silent = await startRadiusServer({ secret: SECRET, users: USERS, silent: true });
    chatty = await startRadiusServer({ secret: SECRET, users: USERS, replyMessage: 'Welcome! '.repeat(20) });
    const deadPort = await freePort();
    const at = (p: number): string => `server=127.0.0.1:${p}`;
    const rules = [
      '--socket-timeout', '1',
      '--route', `^/r$ radius:realm=Radius area,${at(radius.port)},secret=${SECRET},nas_port=7,nas_address=10.1.2.3`,
      '--route', `^/n$ radius-next:realm=Next area,${at(radius.port)},secret=${SECRET},nas_address=10.1.2.3`,
      '--route', '^/n$ basicauth:Fallback,bob:builder',
      '--route', `^/w$ radius:realm=W,${at(radius.port)},secret=not-the-secret,nas_address=10.1.2.3`,
      '--route', `^/s$ radius:realm=Silent,${at(silent.port)},secret=${SECRET},nas_address=10.1.2.3`,
      '--route', `^/sn$ radius-next:realm=Silent,${at(silent.port)},secret=${SECRET},nas_address=10.1.2.3`,
      '--route', `^/d$ radius:realm=Down,${at(deadPort)},secret=${SECRET},nas_address=10.1.2.3`,
      '--route', `^/c$ radius:realm=Chatty,${at(chatty.port)},secret=${SECRET},nas_address=10.1.2.3`,
      '--route', `^/h$ radius:realm=Host,${at(radius.port)},secret=${SECRET}`,
    ];
    ts = await startServer(['--plugin', 'router_radius', '--http-socket', '127.0.0.1:0', '--wsgi-file', app, ...rules]);
    uwPort = await freePort();
    uw = await startForeign(UWSGI_BIN, ['--plugin', 'python3,router_radius,router_basicauth', '--http-socket', `127.0.0.1:${uwPort}`, '--wsgi-file', app, ...rules], /spawned uWSGI worker 1/);
  });
  afterAll(async () => {
    await uw?.stop();
    if (ts) expect(await ts.stop()).toBe(0);
    await Promise.all([radius?.close(), silent?.close(), chatty?.close()]);
  });

  /** One request to a server, with the packets the RADIUS servers got for it. */
  async function ask(port: number, p: string, headers: Record<string, string> = {}): Promise<{ res: HttpResult; packets: ReceivedRequest[] }> {
    for (const s of [radius, silent, chatty]) s.received.length = 0;
    const res = await httpRequest(port, { path: p, headers, timeoutMs: 10000 });
    return { res, packets: [...radius.received, ...silent.received, ...chatty.received] };
  }

  async function both(p: string, headers: Record<string, string> = {}): Promise<{ mine: Awaited<ReturnType<typeof ask>>; theirs: Awaited<ReturnType<typeof ask>> }> {
    return withServerLog(ts, async () => ({ mine: await ask(ts.port, p, headers), theirs: await ask(uwPort, p, headers) }), () => `--- uWSGI log ---\n${uw.logs().slice(-3000)}`);
  }

  const sameAnswer = (a: HttpResult, b: HttpResult): void => {
    expect(a.status).toBe(b.status);
    expect(a.body.toString('latin1')).toBe(b.body.toString('latin1'));
    expect(a.headers['www-authenticate']).toBe(b.headers['www-authenticate']);
  };

  it('Access-Accept: REMOTE_USER is the user and the app runs; the Access-Request is the one uWSGI sends', async () => {
    const { mine, theirs } = await both('/r', basic('alice:wonderland'));
    sameAnswer(mine.res, theirs.res);
    expect(mine.res.status).toBe(200);
    expect(mine.res.body.toString()).toBe('user=alice');
    expect(mine.packets).toHaveLength(1);
    expect(theirs.packets).toHaveLength(1);
    const [m, t] = [mine.packets[0]!, theirs.packets[0]!];
    // Access-Request; User-Name, User-Password, NAS-Port, NAS-IP-Address in uWSGI's order.
    for (const pkt of [m, t]) {
      expect(pkt.code).toBe(1);
      expect(pkt.attributes.map((a) => a.type)).toEqual([1, 2, 5, 4]);
      expect(pkt.user).toBe('alice');
      expect(pkt.password).toBe('wonderland');
      expect(pkt.length).toBe(pkt.bytes);
    }
    expect(m.attributes).toEqual(t.attributes.map((a) => (a.type === 2 ? m.attributes[1] : a)));
    expect(m.attributes[2]!.value.readUInt32BE(0)).toBe(7);
    expect([...m.attributes[3]!.value]).toEqual([10, 1, 2, 3]);
    expect(m.passwordWireLength).toBe(16);
    expect(t.passwordWireLength).toBe(16);
    // A fresh random Request Authenticator hides each password (uWSGI's comes from rand()).
    expect(m.authenticator.equals(t.authenticator)).toBe(false);
  });

  it('without nas_port/nas_address: NAS-Port 0 and the address of the host name, as uWSGI', async () => {
    const { mine, theirs } = await both('/h', basic('alice:wonderland'));
    sameAnswer(mine.res, theirs.res);
    expect(mine.res.status).toBe(200);
    const nas = (pkts: ReceivedRequest[]): string[] => pkts[0]!.attributes.filter((a) => a.type === 4 || a.type === 5).map((a) => a.value.toString('hex'));
    expect(nas(mine.packets)).toEqual(nas(theirs.packets));
    expect(nas(mine.packets)[0]).toBe('00000000');
  });

  it.each([
    ['a wrong password', basic('alice:wrong')],
    ['an unknown user', basic('mallory:wonderland')],
    ['an empty user', basic(':wonderland')],
    ['credentials without a colon', basic('alice')],
    ['no Authorization header', {}],
    ['another scheme', { Authorization: 'Bearer abcdefgh' }],
  ])('%s: 401 Authorization Required with WWW-Authenticate, as uWSGI', async (_what, headers) => {
    const { mine, theirs } = await both('/r', headers);
    sameAnswer(mine.res, theirs.res);
    expect(mine.res.status).toBe(401);
    expect(mine.res.headers['www-authenticate']).toBe('Basic realm="Radius area"');
    expect(mine.res.body.toString()).toBe('Unauthorized');
  });

  it('asks the server only when there is a user to ask about', async () => {
    expect((await both('/r', {})).mine.packets).toHaveLength(0);
    expect((await both('/r', basic('alice'))).mine.packets).toHaveLength(0);
    const wrong = await both('/r', basic('alice:wrong'));
    expect(wrong.mine.packets.map((p) => p.answer)).toEqual(['reject']);
    expect(wrong.theirs.packets.map((p) => p.answer)).toEqual(['reject']);
  });

  it('a password of exactly 16 bytes authenticates; tsuwsgi does not add uWSGI\'s extra block of NULs', async () => {
    const { mine, theirs } = await both('/r', basic('sixteen:abcdefghijklmnop'));
    sameAnswer(mine.res, theirs.res);
    expect(mine.res.body.toString()).toBe('user=sixteen');
    expect(mine.packets[0]!.passwordWireLength).toBe(16);
    expect(theirs.packets[0]!.passwordWireLength).toBe(32);
  });

  it('UTF-8 user names and passwords go through as bytes', async () => {
    const { mine, theirs } = await both('/r', basic('josé:café'));
    sameAnswer(mine.res, theirs.res);
    expect(mine.res.status).toBe(200);
    // The app gets REMOTE_USER's bytes (UTF-8), which PEP 3333 hands over as latin-1 text.
    expect(mine.res.body.toString('utf8')).toBe('user=josé');
    expect(mine.packets[0]!.user).toBe('josé');
  });

  it('radius-next: a refusal goes on to the next rule; no credentials is still a 401', async () => {
    for (const [headers, status, body] of [
      [basic('alice:wonderland'), 200, 'user=alice'],
      [basic('bob:builder'), 200, 'user=bob'],
      [basic('bob:wrong'), 401, 'Unauthorized'],
    ] as const) {
      const { mine, theirs } = await both('/n', headers);
      sameAnswer(mine.res, theirs.res);
      expect(mine.res.status).toBe(status);
      expect(mine.res.body.toString()).toBe(body);
    }
    const { mine, theirs } = await both('/n', {});
    sameAnswer(mine.res, theirs.res);
    expect(mine.res.headers['www-authenticate']).toBe('Basic realm="Next area"');
  });

  it('a request already authenticated is not checked again', async () => {
    // /n: radius-next accepts alice, then basicauth sees REMOTE_USER and lets her through.
    const { mine, theirs } = await both('/n', basic('alice:wonderland'));
    sameAnswer(mine.res, theirs.res);
    expect(mine.packets).toHaveLength(1);
  });

  it('a wrong shared secret: the password decodes to garbage and the reply fails its authenticator check (uWSGI: 401; tsuwsgi: 502 and a log line)', async () => {
    const { mine, theirs } = await both('/w', basic('alice:wonderland'));
    expect(theirs.res.status).toBe(401);
    expect(mine.res.status).toBe(502);
    expect(mine.packets[0]!.password).not.toBe('wonderland');
    expect(theirs.packets[0]!.password).not.toBe('wonderland');
    await ts.waitForLog(/\[router-radius\] cannot authenticate with the RADIUS server 127\.0\.0\.1:\d+: the reply's Response Authenticator is wrong: is secret= the shared secret/);
  });

  it('a silent server: one request, then --socket-timeout (uWSGI: 401; tsuwsgi: 504, radius-next goes on)', async () => {
    const started = Date.now();
    const { mine, theirs } = await both('/s', basic('alice:wonderland'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(theirs.res.status).toBe(401);
    expect(mine.res.status).toBe(504);
    expect(mine.res.body.toString()).toBe('Gateway Timeout');
    expect(mine.packets).toHaveLength(1);
    expect(theirs.packets).toHaveLength(1);
    await ts.waitForLog(/\[router-radius\] cannot authenticate with the RADIUS server .*: no answer within 1 seconds \(--socket-timeout\)/);
    const next = await both('/sn', basic('alice:wonderland'));
    // The app runs unauthenticated: radius-next leaves the decision to the rules after it.
    expect(next.mine.res.body.toString()).toBe('user=-');
    sameAnswer(next.mine.res, next.theirs.res);
  });

  it('no server on the port (ICMP port unreachable): uWSGI 401, tsuwsgi 502 at once', async () => {
    const { mine, theirs } = await both('/d', basic('alice:wonderland'));
    expect(theirs.res.status).toBe(401);
    expect(mine.res.status).toBe(502);
    await ts.waitForLog(/\[router-radius\] cannot authenticate with the RADIUS server .*: ECONNREFUSED/);
  });

  it('an Access-Accept longer than the request is accepted (uWSGI reads only as many bytes as it sent, and refuses it)', async () => {
    const { mine, theirs } = await both('/c', basic('alice:wonderland'));
    expect(mine.packets[0]!.answer).toBe('accept');
    expect(theirs.packets[0]!.answer).toBe('accept');
    expect(mine.res.status).toBe(200);
    expect(mine.res.body.toString()).toBe('user=alice');
    expect(theirs.res.status).toBe(401);
  });
});

describe('radius: bad rules are refused at start-up', () => {
  it.each([
    ['radius:realm=R,secret=x', /realm=, server= and secret= are required/],
    ['radius:realm=R,server=127.0.0.1:1812,secert=x', /unknown key "secert"/],
    ['radius:realm=R,server=127.0.0.1:99999,secret=x', /the port must be 1\.\.65535/],
    ['radius:realm=R,server=127.0.0.1:1812,secret=x,nas_port=abc', /nas_port=abc is not a number/],
  ])('%s', async (action, message) => {
    const r = await runTsuwsgi(['--plugin', 'router_radius', '--http-socket', '127.0.0.1:0', '--route-run', action], { timeoutMs: 20000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/TSUWSGI_E_ROUTING/);
    expect(r.output).toMatch(message);
  });
});
