/**
 * The internal routing engine end to end (spec/subsystems.md §6.8): real tsuwsgi processes
 * with routing rules in front of a WSGI app that dumps its environ (env_dump.py).
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, type HttpRequestOptions, type HttpResult } from '../helpers/http-raw.ts';
import { exchange, stdVars, uwsgiPacket } from '../helpers/uwsgi-client.ts';
import { fixture, runTsuwsgi, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const APP = ['--wsgi-file', fixture('env_dump.py')];

async function get(srv: ServerHandle, p: string, o: HttpRequestOptions = {}): Promise<HttpResult> {
  return httpRequest(srv.port, { path: p, ...o });
}
const env = (r: HttpResult): Record<string, unknown> => JSON.parse(r.body.toString()) as Record<string, unknown>;

describe('request chain: actions, conditions and vars (one server)', () => {
  let srv: ServerHandle;
  const dir = fs.realpathSync(tmpDir('tsuwsgi-routing-'));
  const file = path.join(dir, 'file.txt');
  const link = path.join(dir, 'link');
  fs.writeFileSync(file, 'x');
  fs.symlinkSync(file, link);

  const matrix: Array<[string, string]> = [
    ['exists', 'exists:${HTTP_X_P}'],
    ['isfile', 'isfile:${HTTP_X_P}'],
    ['isdir', 'isdir:${HTTP_X_P}'],
    ['islink', 'islink:${HTTP_X_P}'],
    ['isexec', 'isexec:${HTTP_X_P}'],
    ['empty', 'empty:${HTTP_X_S}'],
    ['startswith', 'startswith:${HTTP_X_S};foo'],
    ['endswith', 'endswith:${HTTP_X_S};bar'],
    ['contains', 'contains:${HTTP_X_S};oob'],
    ['gt', '>:${HTTP_X_N};10'],
    ['ge', '>=:${HTTP_X_N};10'],
    ['lt', '<:${HTTP_X_N};10'],
    ['le', '<=:${HTTP_X_N};10'],
    ['ipv4in', 'ipv4in:${HTTP_X_IP};127.0.0.0/8'],
    ['ipv6in', 'ipv6in:${HTTP_X_IP};fd00::/8'],
  ];

  beforeAll(async () => {
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', ...APP,
      '--route', '^/notfound break:404 Not Found',
      '--route', '^/teapot return:418',
      '--route-user-agent', '.*curl.* redirect:http://uwsgi.it${REQUEST_URI}',
      '--route', '^/old/(.*) rewrite:/new/$1?x=1',
      '--route', '^/last/ rewrite-last:/new/last',
      '--route', '^/new/last break:500',
      '--route', '^/quiet donotlog:',
      '--route-if', 'equal:${qs[a]};1 break:403',
      '--route-if', 'regexp:${HTTP_HOST};^(.+)\\.example\\.com$ addheader:X-Sub: $1',
      '--route-if', 'ipv4in:${REMOTE_ADDR};127.0.0.0/8 addheader:X-Local: 1',
      ...matrix.flatMap(([name, cond]) => ['--route-if', `${cond} addheader:X-C-${name}: 1`]),
      '--route-run', 'addvar:N=5', '--route-run', '+:N,2', '--route-run', 'addheader:X-N: ${N}',
      '--route-run', 'addvar:D=10', '--route-run', '/:D,5', '--route-run', 'addheader:X-D: ${D}',
      '--route-run', 'addheader:X-Time: ${time[unix]}',
      '--route-run', 'addheader:X-Httptime: ${httptime[3600]}',
      '--route-run', 'addheader:X-Wid: ${uwsgi[wid]}',
      '--route-run', 'addheader:X-B64: ${base64[REQUEST_METHOD]}',
      '--route-run', 'addheader:X-Hex: ${hex[REQUEST_METHOD]}',
      '--route', '^/files/ addheader:X-Mime: [${mime[PATH_INFO]}]',
      '--route-run', 'addheader:X-Gone: 1', '--route-run', 'delheader:x-gone',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('§6.8/1 break:404 answers 404 text/plain with no body, without the app, and is logged', async () => {
    await withServerLog(srv, async () => {
      const r = await get(srv, '/notfound');
      expect(r.status).toBe(404);
      expect(r.headers['content-type']).toBe('text/plain');
      expect(r.body.length).toBe(0);
      // The vars block size is the request's, as for an app response (not 0).
      await srv.waitForLog(/\{\d+ vars in [1-9]\d* bytes\} .*GET \/notfound => generated 0 bytes .*\(HTTP\/1\.1 404\)/);
    });
  });

  it('§6.8/2 return:418 answers the reason phrase with its Content-Length', async () => {
    const r = await get(srv, '/teapot');
    expect(r.status).toBe(418);
    expect(r.body.toString()).toBe("I'm a teapot");
    expect(r.headers['content-length']).toBe(String(r.body.length));
  });

  it('§6.8/3 route-user-agent + redirect expands ${REQUEST_URI}', async () => {
    const r = await get(srv, '/a?b=1', { headers: { 'User-Agent': 'curl/8.5.0' } });
    expect(r.status).toBe(302);
    expect(r.headers['location']).toBe('http://uwsgi.it/a?b=1');
    expect(r.body.toString()).toBe('Moved');
  });

  it('§6.8/4 rewrite sets PATH_INFO and prepends to QUERY_STRING; rewrite-last skips later rules', async () => {
    await withServerLog(srv, async () => {
      const r = await get(srv, '/old/p?y=2');
      expect(r.status).toBe(200);
      expect(env(r)).toMatchObject({ PATH_INFO: '/new/p', QUERY_STRING: 'x=1&y=2' });
      const last = await get(srv, '/last/x');
      expect(last.status).toBe(200);
      expect(env(last)).toMatchObject({ PATH_INFO: '/new/last' });
      expect((await get(srv, '/new/last')).status).toBe(500);
    });
  });

  it('§6.8/5 route-if equal on ${qs[a]}', async () => {
    expect((await get(srv, '/x?a=1')).status).toBe(403);
    expect((await get(srv, '/x?a=2')).status).toBe(200);
  });

  it('§6.8/6 regexp condition captures become $1 (applied to the app response headers)', async () => {
    const r = await get(srv, '/', { headers: { Host: 'foo.example.com' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-sub']).toBe('foo');
    expect((await get(srv, '/', { headers: { Host: 'example.org' } })).headers['x-sub']).toBeUndefined();
  });

  it('§6.8/7 conditions matrix: one positive and one negative request each', async () => {
    await withServerLog(srv, async () => {
      const probe = async (headers: Record<string, string>): Promise<HttpResult['headers']> => (await get(srv, '/', { headers })).headers;
      const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
        ['exists', { 'X-P': dir }, { 'X-P': path.join(dir, 'missing') }],
        ['isfile', { 'X-P': file }, { 'X-P': dir }],
        ['isdir', { 'X-P': dir }, { 'X-P': file }],
        ['islink', { 'X-P': link }, { 'X-P': file }],
        ['isexec', { 'X-P': '/bin/sh' }, { 'X-P': file }],
        ['empty', {}, { 'X-S': 'foobar' }],
        ['startswith', { 'X-S': 'foobar' }, { 'X-S': 'barfoo' }],
        ['endswith', { 'X-S': 'foobar' }, { 'X-S': 'barfoo' }],
        ['contains', { 'X-S': 'foobar' }, { 'X-S': 'fob' }],
        ['gt', { 'X-N': '11' }, { 'X-N': '10' }],
        ['ge', { 'X-N': '10' }, { 'X-N': '9' }],
        ['lt', { 'X-N': '9' }, { 'X-N': '10' }],
        ['le', { 'X-N': '10' }, { 'X-N': '11' }],
        ['ipv4in', { 'X-IP': '127.1.2.3' }, { 'X-IP': '10.0.0.1' }],
        ['ipv6in', { 'X-IP': 'fd00::1' }, { 'X-IP': '::1' }],
      ];
      for (const [name, yes, no] of cases) {
        expect([name, (await probe(yes))[`x-c-${name}`]]).toEqual([name, '1']);
        expect([name, (await probe(no))[`x-c-${name}`]]).toEqual([name, undefined]);
      }
      expect((await probe({}))['x-local']).toBe('1');
    });
  });

  it('§6.8/16 var math: + and a real /; delheader removes an added header', async () => {
    const r = await get(srv, '/');
    expect(r.headers['x-n']).toBe('7');
    expect(r.headers['x-d']).toBe('2');
    expect(r.headers['x-gone']).toBeUndefined();
  });

  it('§6.8/17 time, httptime, uwsgi[wid], base64 and hex route vars', async () => {
    const r = await get(srv, '/');
    expect(r.headers['x-time']).toMatch(/^\d{10}$/);
    const delta = Date.parse(String(r.headers['x-httptime'])) - Date.now();
    expect(delta).toBeGreaterThan(3500 * 1000);
    expect(delta).toBeLessThan(3700 * 1000);
    expect(Number(r.headers['x-wid'])).toBeGreaterThanOrEqual(1);
    expect(r.headers['x-b64']).toBe('R0VU');
    expect(r.headers['x-hex']).toBe('474554');
  });

  it('mime[] gives the type of a file name from /etc/mime.types, empty when unknown', async () => {
    expect((await get(srv, '/files/logo.png')).headers['x-mime']).toBe('[image/png]');
    expect((await get(srv, '/files/x.tar.gz')).headers['x-mime']).toBe('[application/gzip]');
    expect((await get(srv, '/files/noext')).headers['x-mime']).toBe('[]');
    expect((await get(srv, '/files/a.unknownext')).headers['x-mime']).toBe('[]');
  });

  it('donotlog suppresses the request log line', async () => {
    await withServerLog(srv, async () => {
      expect((await get(srv, '/quiet')).status).toBe(200);
      expect((await get(srv, '/after-quiet')).status).toBe(200);
      await srv.waitForLog(/GET \/after-quiet =>/);
      expect(srv.logs()).not.toMatch(/GET \/quiet =>/);
    });
  });
});

describe('goto, labels, route-if-not and basicauth (with --master: core worker child)', () => {
  let srv: ServerHandle;
  const dir = tmpDir('tsuwsgi-routing-auth-');
  const htpasswd = path.join(dir, 'htpasswd');
  // {SHA} of "secret" and `openssl passwd -apr1 -salt abcdefgh secret`.
  fs.writeFileSync(htpasswd, 'sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\napr:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n');

  beforeAll(async () => {
    srv = await startServer([
      '--master', '--http-socket', '127.0.0.1:0', ...APP,
      '--log-format', 'LF %(method) %(uri) %(status) lv=%(who)',
      '--route', '^/lv logvar:who=x-${qs[w]}',
      '--route-label', 'top',
      '--route', '^/back goto:top',
      '--route', '^/inv goto:inv',
      '--route', '^/auth goto:auth',
      '--route', '^/multi goto:multi',
      '--route', '^/htp goto:htp',
      '--route-host', '^localhost(:\\d+)?$ goto:localhost',
      '--route-host', '^sid\\.local(:\\d+)?$ goto:sid.local',
      '--route-run', 'last:',
      '--route-label', 'sid.local', '--route-run', 'addheader:Server: sid', '--route-run', 'last:',
      '--route-label', 'localhost', '--route-run', 'addheader:Server: localhost', '--route-run', 'last:',
      '--route-label', 'inv', '--route-if-not', 'equal:${qs[a]};1 break:403', '--route-run', 'last:',
      '--route-label', 'auth', '--route-run', 'basicauth:R,foo:bar', '--route-run', 'addheader:X-User: ${REMOTE_USER}', '--route-run', 'last:',
      '--route-label', 'multi', '--route-run', 'basicauth-next:R,a:b', '--route-run', 'basicauth:R,c:d', '--route-run', 'addheader:X-User: ${REMOTE_USER}', '--route-run', 'last:',
      '--route-label', 'htp', '--route-run', `basicauth:H,${htpasswd}`, '--route-run', 'addheader:X-User: ${REMOTE_USER}', '--route-run', 'last:',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  const basic = (u: string, p: string): Record<string, string> => ({ Authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

  it('§6.8/8 labels give different Server headers per Host; a backward goto closes the request', async () => {
    await withServerLog(srv, async () => {
      expect((await get(srv, '/', { headers: { Host: 'localhost' } })).headers['server']).toBe('localhost');
      expect((await get(srv, '/', { headers: { Host: 'sid.local' } })).headers['server']).toBe('sid');
      expect((await get(srv, '/', { headers: { Host: 'other' } })).headers['server']).toBeUndefined();
      await expect(get(srv, '/back')).rejects.toThrow(/socket hang up|ECONNRESET/);
      await srv.waitForLog(/"goto" instruction can only jump forward/);
    });
  });

  it('§6.8/5 route-if-not inverts the condition', async () => {
    expect((await get(srv, '/inv?a=1')).status).toBe(200);
    expect((await get(srv, '/inv?a=2')).status).toBe(403);
  });

  it('§6.8/9 basicauth: 401 with WWW-Authenticate, 200 with credentials, REMOTE_USER for the app', async () => {
    await withServerLog(srv, async () => {
      const no = await get(srv, '/auth');
      expect(no.status).toBe(401);
      expect(no.headers['www-authenticate']).toBe('Basic realm="R"');
      expect(no.body.toString()).toBe('Unauthorized');
      expect((await get(srv, '/auth', { headers: basic('foo', 'nope') })).status).toBe(401);
      const ok = await get(srv, '/auth', { headers: basic('foo', 'bar') });
      expect(ok.status).toBe(200);
      expect(ok.headers['x-user']).toBe('foo');
      expect(env(ok)['_keys']).toContain('REMOTE_USER');
    });
  });

  it('§6.8/9 basicauth-next followed by basicauth accepts both accounts', async () => {
    expect((await get(srv, '/multi', { headers: basic('a', 'b') })).headers['x-user']).toBe('a');
    expect((await get(srv, '/multi', { headers: basic('c', 'd') })).headers['x-user']).toBe('c');
    expect((await get(srv, '/multi', { headers: basic('a', 'd') })).status).toBe(401);
  });

  it('logvar sets a %(KEY) for --log-format (core worker child)', async () => {
    await withServerLog(srv, async () => {
      expect((await get(srv, '/lv?w=1')).status).toBe(200);
      await srv.waitForLog(/LF GET \/lv\?w=1 200 lv=x-1/);
      expect((await get(srv, '/nolv')).status).toBe(200);
      await srv.waitForLog(/LF GET \/nolv 200 lv=-/);
    });
  });

  it('basicauth with an htpasswd file ({SHA} and $apr1$)', async () => {
    expect((await get(srv, '/htp', { headers: basic('sha', 'secret') })).headers['x-user']).toBe('sha');
    expect((await get(srv, '/htp', { headers: basic('apr', 'secret') })).headers['x-user']).toBe('apr');
    expect((await get(srv, '/htp', { headers: basic('apr', 'wrong') })).status).toBe(401);
  });
});

describe('routing without any app (as uWSGI: the routes run before the modifier1 is looked up)', () => {
  it('answers what the rules answer; a request no rule answers is refused as an unavailable modifier', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '--route', '^/tea$ return:418', '--route', '^/old$ redirect:/new']);
    try {
      await withServerLog(srv, async () => {
        expect((await httpRequest(srv.port, { path: '/tea' })).status).toBe(418);
        const moved = await httpRequest(srv.port, { path: '/old' });
        expect(moved.status).toBe(302);
        expect(moved.headers['location']).toBe('/new');
        await httpRequest(srv.port, { path: '/other' }).catch(() => undefined);
        await srv.waitForLog(/-- unavailable modifier requested: 0 --/);
      });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  });
});

describe('routing on a uwsgi socket', () => {
  it('answers, adds headers and closes through the uwsgi front end too', async () => {
    const srv = await startServer(['--socket', '127.0.0.1:0', ...APP, '--route', '^/r return:404', '--route-label', 'top', '--route', '^/back goto:top', '--route-run', 'addheader:X-R: 1']);
    await withServerLog(srv, async () => {
      const addr = srv.sockets[0]!;
      const r = await exchange(addr, uwsgiPacket(stdVars({ PATH_INFO: '/r', REQUEST_URI: '/r' })));
      expect(r.data.toString()).toMatch(/^HTTP\/1\.1 404 Not Found\r\n[\s\S]*\r\n\r\nNot Found$/);
      const app = await exchange(addr, uwsgiPacket(stdVars({ PATH_INFO: '/x', REQUEST_URI: '/x', SCRIPT_NAME: '' })));
      expect(app.data.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*X-R: 1\r\n/);
      const back = await exchange(addr, uwsgiPacket(stdVars({ PATH_INFO: '/back', REQUEST_URI: '/back' })));
      expect(back.data.length).toBe(0);
    });
    expect(await srv.stop()).toBe(0);
  });
});

describe('start-up errors', () => {
  it('--router-list prints the actions, conditions and vars with their plugins', async () => {
    const r = await runTsuwsgi(['--router-list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^break \(core\)$/m);
    expect(r.stdout).toMatch(/^redirect, redirect-302 \(router_redirect\)$/m);
    expect(r.stdout).toMatch(/^basicauth-next \(router_basicauth\)$/m);
    expect(r.stdout).toMatch(/^regexp, re, regex \(core\)$/m);
    expect(r.stdout).toMatch(/^uwsgi \(core\)$/m);
  });

  it('an unknown action or a missing colon is fatal, with a clear message', async () => {
    const bad = await runTsuwsgi(['--http-socket', '127.0.0.1:0', ...APP, '--route', '^/x brek:']);
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/unable to find routing action "brek" in --route "\^\/x brek:"/);
    const colon = await runTsuwsgi(['--http-socket', '127.0.0.1:0', ...APP, '--route-run', 'break']);
    expect(colon.code).toBe(1);
    expect(colon.output).toMatch(/invalid route syntax in --route-run "break"/);
  });
});
