/**
 * The frameworks the uWSGI docs walk users through (spec/languages.md §4.7 PY2, PY3 and the
 * Django tutorial): Flask via --wsgi-file --callable app, Django via --module
 * project.wsgi:application, both run by Debian's /usr/bin/python3 (--python-bin), the only
 * interpreter that can import the distribution's Flask and Django.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import { httpRequest } from '../helpers/http-raw.ts';
import { fixture, PY_FIXTURES, requireExecutable, startServer, SYSTEM_PYTHON, type ServerHandle } from '../helpers/server.ts';
import { json, sha256 } from '../helpers/assertions.ts';

function requirePythonModule(mod: string): void {
  requireExecutable(SYSTEM_PYTHON, 'Debian\'s python3');
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', `import ${mod}`], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`${SYSTEM_PYTHON} cannot import ${mod} (apt-get install python3-${mod}): ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
  }
}

describe('Flask (--wsgi-file flask_app.py --callable app)', () => {
  let srv: ServerHandle;
  let agent: http.Agent;

  beforeAll(async () => {
    requirePythonModule('flask');
    srv = await startServer([
      '--http-socket',
      '127.0.0.1:0',
      '--wsgi-file',
      fixture('flask_app.py'),
      '--callable',
      'app',
      '--python-bin',
      SYSTEM_PYTHON,
      '--processes',
      '2',
    ]);
    agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  }, 60000);

  afterAll(async () => {
    agent?.destroy();
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  test('GET / renders the view', async () => {
    const r = await httpRequest(srv.port, { agent, path: '/' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.body.toString()).toBe('Hello from Flask');
  });

  test('query arguments are parsed by Flask', async () => {
    const r = await httpRequest(srv.port, { agent, path: '/args?x=1&x=2&y=%C3%A9t%C3%A9' });
    expect(json(r.body)).toEqual({ args: { x: ['1', '2'], y: ['été'] }, path: '/args', script_root: '' });
  });

  test('a JSON POST and a 1 MiB POST body are read by Flask', async () => {
    const j = await httpRequest(srv.port, { agent, method: 'POST', path: '/echo', body: '{"a": [1, 2]}', headers: { 'Content-Type': 'application/json' } });
    expect(json(j.body)).toMatchObject({ json: { a: [1, 2] }, length: 13, content_type: 'application/json' });
    const big = crypto.randomBytes(1024 * 1024);
    const b = await httpRequest(srv.port, { agent, method: 'POST', path: '/echo', body: big, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(json(b.body)).toMatchObject({ length: big.length, sha256: sha256(big) });
  });

  test('a form POST is decoded', async () => {
    const r = await httpRequest(srv.port, { agent, method: 'POST', path: '/form', body: 'name=tsu&lang=py', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(json(r.body)).toEqual({ form: { name: 'tsu', lang: 'py' } });
  });

  test('two cookies set by Flask arrive as two Set-Cookie headers', async () => {
    const r = await httpRequest(srv.port, { agent, path: '/cookie' });
    expect(r.headers['set-cookie']).toHaveLength(2);
    expect(r.headers['set-cookie']!.join('\n')).toMatch(/flask_a=1[\s\S]*flask_b=2/);
  });

  test('an unknown route is Flask\'s 404', async () => {
    const r = await httpRequest(srv.port, { agent, path: '/missing' });
    expect(r.status).toBe(404);
    expect(r.body.toString()).toMatch(/Not Found/);
  });
});

describe('Django (--module djangoproj.wsgi:application)', () => {
  let srv: ServerHandle;

  beforeAll(async () => {
    requirePythonModule('django');
    srv = await startServer([
      '--http-socket',
      '127.0.0.1:0',
      '--pythonpath',
      PY_FIXTURES,
      '--module',
      'djangoproj.wsgi:application',
      '--python-bin',
      SYSTEM_PYTHON,
    ]);
  }, 60000);

  afterAll(async () => {
    if (srv) expect(await srv.stop()).toBe(0);
  }, 60000);

  test('GET /hello/ renders the view', async () => {
    const r = await httpRequest(srv.port, { path: '/hello/' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body.toString()).toBe('Hello from Django');
  });

  test('request.META, GET and build_absolute_uri come from the environ', async () => {
    const r = await httpRequest(srv.port, { path: '/meta/?k=v&n=1', headers: { Host: 'example.test:8080' } });
    expect(r.status).toBe(200);
    expect(json(r.body)).toMatchObject({
      meta: { REQUEST_METHOD: 'GET', PATH_INFO: '/meta/', SCRIPT_NAME: '', QUERY_STRING: 'k=v&n=1', SERVER_PROTOCOL: 'HTTP/1.1', HTTP_HOST: 'example.test:8080' },
      get: { k: 'v', n: '1' },
      path: '/meta/',
      absolute: 'http://example.test:8080/meta/?k=v&n=1',
    });
  });

  test('POST bodies (form and 512 KiB binary) are read by Django', async () => {
    const f = await httpRequest(srv.port, { method: 'POST', path: '/echo/', body: 'a=1&b=two', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(json(f.body)).toMatchObject({ method: 'POST', post: { a: '1', b: 'two' }, length: 9 });
    const big = crypto.randomBytes(512 * 1024);
    const b = await httpRequest(srv.port, { method: 'POST', path: '/echo/', body: big, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(json(b.body)).toMatchObject({ length: big.length, sha256: sha256(big) });
  });

  test('an unknown URL is Django\'s 404 (DEBUG False)', async () => {
    const r = await httpRequest(srv.port, { path: '/nope/' });
    expect(r.status).toBe(404);
    expect(r.body.toString()).toMatch(/Not Found/);
  });
});
