/**
 * router_spnego (`spnego:` / `spnego-next:`): Kerberos SPNEGO ("Negotiate") authentication,
 * checked end to end against a real MIT KDC (test/helpers/kdc.ts, realm TSUWSGI.TEST) with a
 * real client: `kinit alice`, then `curl --negotiate` (Debian's curl has GSS-API), which asks
 * first, gets the 401 with `WWW-Authenticate: Negotiate`, then sends its ticket for
 * HTTP/localhost; tokens with other flags (no mutual authentication, raw Kerberos) come from
 * python3-gssapi. Debian does not ship uWSGI's router_spnego, so there is no reference server
 * to compare with: the expectations follow plugins/router_spnego/router_spnego.c (see
 * plugins/router_spnego/index.ts for where tsuwsgi deliberately differs).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { REALM, startKdc, type Kdc } from '../helpers/kdc.ts';
import { requireExecutable, runTsuwsgi, startServer, SYSTEM_PYTHON, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const CURL = '/usr/bin/curl';

/**
 * A client token with the flags curl does not let us choose: python3-gssapi (Debian package
 * python3-gssapi) initiating to SERVICE with MECH (krb5: raw Kerberos; spnego) and, or not,
 * the mutual authentication flag. Prints the base64 token.
 */
const GSS_TOKEN_PY = `
import base64, sys, gssapi
mech = gssapi.MechType.kerberos if sys.argv[1] == 'krb5' else gssapi.OID.from_int_seq('1.3.6.1.5.5.2')
flags = gssapi.RequirementFlag.mutual_authentication if sys.argv[2] == 'mutual' else gssapi.RequirementFlag.out_of_sequence_detection
ctx = gssapi.SecurityContext(name=gssapi.Name(sys.argv[3], gssapi.NameType.hostbased_service), mech=mech, usage='initiate', flags=flags)
print(base64.b64encode(ctx.step()).decode())
`;

/** What curl --negotiate got: the final response, and the token it sent (from its -v trace). */
interface CurlResult {
  status: number;
  body: string;
  /** Headers of the last response, lower-cased names. */
  headers: Map<string, string>;
  /** The base64 token of the last `Authorization: Negotiate` curl sent, or null. */
  sentToken: string | null;
  stderr: string;
}

describe('spnego: Kerberos Negotiate against a real MIT KDC', () => {
  const dir = tmpDir('tsuwsgi-spnego-');
  const app = path.join(dir, 'app.py');
  const ccache = path.join(dir, 'alice.ccache');
  let kdc: Kdc;
  let ts: ServerHandle;
  let wrong: ServerHandle;
  let httpKeytab = '';

  beforeAll(async () => {
    requireExecutable(CURL, 'curl with GSS-API (Debian package curl)');
    fs.writeFileSync(app, "def application(env, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('user=' + env.get('REMOTE_USER', '-')).encode('latin-1')]\n");
    kdc = await startKdc();
    httpKeytab = path.join(kdc.dir, 'http.keytab');
    const otherKeytab = path.join(kdc.dir, 'other.keytab');
    kdc.addService('HTTP/localhost', httpKeytab);
    kdc.addService('HTTP/otherhost', otherKeytab);
    kdc.addUser('alice', 'secret');
    kdc.kinit('alice', 'secret', ccache);
    const rules = [
      '--route', '^/p$ spnego:',
      '--route', '^/h/(.+)$ spnego:HTTP@$1',
      '--route', '^/n$ spnego-next:',
      '--route', '^/n$ basicauth:Fallback,bob:builder',
    ];
    // The keytab is GSS-API's default acceptor keytab, KRB5_KTNAME, as for uWSGI: set by --env
    // (uWSGI's way) or in the server's environment. The replay cache goes to the test's directory.
    const serverEnv = { ...kdc.env, KRB5RCACHEDIR: kdc.dir };
    ts = await startServer(['--plugin', 'router_spnego', '--http-socket', '127.0.0.1:0', '--env', `KRB5_KTNAME=FILE:${httpKeytab}`, '--wsgi-file', app, ...rules], { env: serverEnv });
    // A server whose keytab holds only HTTP/otherhost: it cannot read tickets for HTTP/localhost.
    wrong = await startServer(['--plugin', 'router_spnego', '--http-socket', '127.0.0.1:0', '--wsgi-file', app, '--route', '^/p$ spnego:'], {
      env: { ...serverEnv, KRB5_KTNAME: `FILE:${otherKeytab}` },
    });
  });
  afterAll(async () => {
    if (wrong) expect(await wrong.stop()).toBe(0);
    if (ts) expect(await ts.stop()).toBe(0);
    await kdc?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** `curl --negotiate -u :` as alice (her ccache), to http://localhost:PORT/PATH. */
  function curl(port: number, p: string, cc: string = ccache): Promise<CurlResult> {
    const hdr = path.join(dir, `h-${port}-${Math.random().toString(36).slice(2)}`);
    const body = `${hdr}.body`;
    const args = ['-sS', '-v', '--max-time', '20', '--negotiate', '-u', ':', '--resolve', `localhost:${port}:127.0.0.1`, '-D', hdr, '-o', body, '-w', '%{http_code}', `http://localhost:${port}${p}`];
    return new Promise((resolve, reject) => {
      execFile(CURL, args, { env: { ...process.env, ...kdc.env, KRB5CCNAME: `FILE:${cc}` } }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`curl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        // -D holds every response of the exchange (the 401, then the answer to the token): keep the last.
        const blocks = fs.readFileSync(hdr, 'latin1').split(/\r\n\r\n/).filter((b) => b.startsWith('HTTP/'));
        const headers = new Map<string, string>();
        for (const line of (blocks.at(-1) ?? '').split('\r\n').slice(1)) {
          const colon = line.indexOf(':');
          if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
        }
        const sent = [...stderr.matchAll(/^> Authorization: Negotiate (\S+)/gm)].map((m) => m[1]!);
        const result = { status: Number(stdout), body: fs.existsSync(body) ? fs.readFileSync(body, 'latin1') : '', headers, sentToken: sent.at(-1) ?? null, stderr };
        fs.rmSync(hdr, { force: true });
        fs.rmSync(body, { force: true });
        resolve(result);
      });
    });
  }

  function clientToken(mech: 'krb5' | 'spnego', mutual: boolean, service = 'HTTP@localhost'): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(SYSTEM_PYTHON, ['-c', GSS_TOKEN_PY, mech, mutual ? 'mutual' : 'none', service], { env: { ...process.env, ...kdc.env, KRB5CCNAME: `FILE:${ccache}` } }, (err, stdout, stderr) =>
        err ? reject(new Error(`python3-gssapi client failed (install python3-gssapi): ${stderr || err.message}`)) : resolve(stdout.trim()),
      );
    });
  }

  const logged = (srv: ServerHandle, re: RegExp): Promise<RegExpMatchArray> => srv.waitForLog(re, 5000);

  it('a valid ticket: the app runs with REMOTE_USER = the client principal, realm included', async () => {
    await withServerLog(ts, async () => {
      const res = await curl(ts.port, '/p');
      expect(res.sentToken).not.toBeNull();
      expect(res.status).toBe(200);
      expect(res.body).toBe(`user=alice@${REALM}`);
    });
  });

  it('mutual authentication: the answer carries GSS-API\'s reply token (SPNEGO accept-completed) in WWW-Authenticate', async () => {
    await withServerLog(ts, async () => {
      const res = await curl(ts.port, '/p');
      expect(res.status).toBe(200);
      const m = /^Negotiate ([A-Za-z0-9+/]+=*)$/.exec(res.headers.get('www-authenticate') ?? '');
      expect(m).not.toBeNull();
      // A negTokenResp ([1]) whose negState is accept-completed (ENUMERATED 0).
      const token = Buffer.from(m![1]!, 'base64');
      expect(token[0]).toBe(0xa1);
      expect(token.includes(Buffer.from([0xa0, 0x03, 0x0a, 0x01, 0x00]))).toBe(true);
    });
  });

  it('a client that does not ask for mutual authentication: accepted, with no WWW-Authenticate (uWSGI answers 401)', async () => {
    await withServerLog(ts, async () => {
      const res = await httpRequest(ts.port, { path: '/p', headers: { Authorization: `Negotiate ${await clientToken('krb5', false)}` } });
      expect([res.status, res.body.toString()]).toEqual([200, `user=alice@${REALM}`]);
      expect(res.headers['www-authenticate']).toBeUndefined();
    });
  });

  it('raw Kerberos (not wrapped in SPNEGO) with mutual authentication: accepted, the AP-REP goes back', async () => {
    await withServerLog(ts, async () => {
      const res = await httpRequest(ts.port, { path: '/p', headers: { Authorization: `Negotiate ${await clientToken('krb5', true)}` } });
      expect([res.status, res.body.toString()]).toEqual([200, `user=alice@${REALM}`]);
      // GSS-API's krb5 token framing: [APPLICATION 0] with the krb5 mechanism OID, then the AP-REP.
      const token = Buffer.from(/^Negotiate (\S+)$/.exec(String(res.headers['www-authenticate']))![1]!, 'base64');
      expect(token[0]).toBe(0x60);
    });
  });

  it('no Authorization: 401 Authorization Required with WWW-Authenticate: Negotiate, the app does not run', async () => {
    await withServerLog(ts, async () => {
      const res = await httpRequest(ts.port, { path: '/p' });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Negotiate');
      expect(res.headers['content-type']).toBe('text/plain');
      expect(res.headers.connection).toBe('close');
      expect(res.body.toString()).toBe('Unauthorized');
    });
  });

  it('another scheme, or "Negotiate" without a token: the same 401', async () => {
    await withServerLog(ts, async () => {
      for (const auth of ['Basic Ym9iOmJ1aWxkZXI=', 'Negotiate', 'Negotiate ', 'negotiate YIIB']) {
        const res = await httpRequest(ts.port, { path: '/p', headers: { Authorization: auth } });
        expect([auth, res.status, res.headers['www-authenticate'], res.body.toString()]).toEqual([auth, 401, 'Negotiate', 'Unauthorized']);
      }
    });
  });

  it('a garbage token: 401, and GSS-API\'s reason in the log', async () => {
    await withServerLog(ts, async () => {
      const res = await httpRequest(ts.port, { path: '/p', headers: { Authorization: `Negotiate ${Buffer.from('not a kerberos token').toString('base64')}` } });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Negotiate');
      await logged(ts, /\[uwsgi-spnego\] gss_accept_sec_context\(\) error \(major\): /);
    });
  });

  it('a replayed token (captured from a successful request): 401, the replay cache refuses it', async () => {
    await withServerLog(ts, async () => {
      const first = await curl(ts.port, '/p');
      expect(first.status).toBe(200);
      const again = await httpRequest(ts.port, { path: '/p', headers: { Authorization: `Negotiate ${first.sentToken}` } });
      expect(again.status).toBe(401);
      expect(again.body.toString()).toBe('Unauthorized');
      await logged(ts, /\[uwsgi-spnego\] gss_accept_sec_context\(\) error \(minor\): Request is a replay/);
    });
  });

  it('the argument is the service name, expanded per request: HTTP@localhost accepts the ticket, HTTP@otherhost has no key', async () => {
    await withServerLog(ts, async () => {
      const ok = await curl(ts.port, '/h/localhost');
      expect([ok.status, ok.body]).toEqual([200, `user=alice@${REALM}`]);
      const other = await curl(ts.port, '/h/otherhost');
      expect([other.status, other.body, other.headers.get('www-authenticate')]).toEqual([401, 'Unauthorized', 'Negotiate']);
      await logged(ts, /\[uwsgi-spnego\] gss_acquire_cred\(\) error \(minor\): No key table entry found matching HTTP\/otherhost@/);
    });
  });

  it('spnego-next: a valid ticket passes; a refused token goes on to the next rule (here basicauth)', async () => {
    await withServerLog(ts, async () => {
      const ok = await curl(ts.port, '/n');
      expect([ok.status, ok.body]).toEqual([200, `user=alice@${REALM}`]);
      const bad = await httpRequest(ts.port, { path: '/n', headers: { Authorization: `Negotiate ${Buffer.from('garbage').toString('base64')}` } });
      expect(bad.status).toBe(401);
      expect(bad.headers['www-authenticate']).toBe('Basic realm="Fallback"');
      const notBase64 = await httpRequest(ts.port, { path: '/n', headers: { Authorization: 'Negotiate !!!' } });
      expect(notBase64.headers['www-authenticate']).toBe('Basic realm="Fallback"');
      await logged(ts, /\[uwsgi-spnego\] the Negotiate token is not base64/);
    });
  });

  it('spnego-next without Negotiate credentials: the 401 that asks for them, and routing stops (uWSGI goes on after it)', async () => {
    await withServerLog(ts, async () => {
      const res = await httpRequest(ts.port, { path: '/n' });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Negotiate');
      expect(res.body.toString()).toBe('Unauthorized');
    });
  });

  it('concurrent requests are checked in parallel, each with its own REMOTE_USER', async () => {
    await withServerLog(ts, async () => {
      const results = await Promise.all(Array.from({ length: 6 }, () => curl(ts.port, '/p')));
      expect(results.map((r) => [r.status, r.body])).toEqual(Array.from({ length: 6 }, () => [200, `user=alice@${REALM}`]));
    });
  });

  it('a keytab without the service\'s key (HTTP/otherhost only): 401, and the log says which key is missing', async () => {
    await withServerLog(wrong, async () => {
      const res = await curl(wrong.port, '/p');
      expect([res.status, res.body, res.headers.get('www-authenticate')]).toEqual([401, 'Unauthorized', 'Negotiate']);
      await logged(wrong, new RegExp(`\\[uwsgi-spnego\\] gss_accept_sec_context\\(\\) error \\(minor\\): Request ticket server HTTP/localhost@${REALM.replace('.', '\\.')} not found in keytab`));
    });
  });
});

describe('spnego: rules refused at start-up', () => {
  it.each([
    ['a keytab path instead of a service name', 'spnego:/etc/http.keytab', /the argument is a GSS-API service name \(SERVICE or SERVICE@HOST\), not a keytab or principal.*KRB5_KTNAME/],
    ['a principal instead of a service name', 'spnego-next:HTTP/www.example.com@EXAMPLE.COM', /not a keytab or principal/],
    ['a malformed service name', 'spnego:HTTP@a@b', /"HTTP@a@b" is not a service name \(SERVICE or SERVICE@HOST\)/],
  ])('%s', async (_what, action, message) => {
    const r = await runTsuwsgi(['--plugin', 'router_spnego', '--http-socket', '127.0.0.1:0', '--route', `^/ ${action}`], { timeoutMs: 30000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(message);
  });
});
