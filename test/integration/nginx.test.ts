/**
 * tsuwsgi behind a real nginx with the stock uwsgi_params (spec/core.md §11 T3, T4):
 * `--socket ... --master --processes 4 --threads 2`, over TCP and over a unix socket.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { startNginx, type NginxHandle } from '../helpers/nginx.ts';
import { PY_FIXTURES, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';
import { json } from '../helpers/assertions.ts';

const APP_ARGS = ['--pythonpath', PY_FIXTURES, '--module', 'suite:application', '--master', '--processes', '4', '--threads', '2'];

function suiteThroughNginx(name: string, socket: () => { spec: string; upstream: (srv: ServerHandle) => string }) {
  describe(name, () => {
    let srv: ServerHandle;
    let ngx: NginxHandle;

    beforeAll(async () => {
      const s = socket();
      srv = await startServer(['--socket', s.spec, ...APP_ARGS], { readyTimeoutMs: 60000 });
      ngx = await startNginx({ upstream: s.upstream(srv) });
    }, 90000);

    afterAll(async () => {
      await ngx?.stop();
      if (srv) expect(await srv.stop()).toBe(0);
    }, 60000);

    const withLogs = <T,>(f: () => Promise<T>): Promise<T> =>
      withServerLog(srv, f, () => `--- nginx error.log (tail) ---\n${ngx.errorLog().split('\n').slice(-15).join('\n')}`);

    test('GET through nginx returns the app\'s page', () =>
      withLogs(async () => {
        const r = await httpRequest(ngx.port, { path: '/hello' });
        expect(r.status).toBe(200);
        expect(r.headers['content-type']).toBe('text/html');
        expect(r.body.toString()).toBe('Hello World');
      }));

    test('the app sees nginx\'s uwsgi_params (query string, REQUEST_URI, REMOTE_ADDR, SERVER_PORT …)', () =>
      withLogs(async () => {
        const r = await httpRequest(ngx.port, { path: '/env/x/y?a=1&b=%20c', headers: { 'X-Test': 'via-nginx' } });
        expect(r.status).toBe(200);
        const e = json(r.body);
        expect(e).toMatchObject({
          REQUEST_METHOD: 'GET',
          QUERY_STRING: 'a=1&b=%20c',
          REQUEST_URI: '/env/x/y?a=1&b=%20c',
          PATH_INFO: '/env/x/y',
          SERVER_PROTOCOL: 'HTTP/1.1',
          REMOTE_ADDR: '127.0.0.1',
          SERVER_PORT: String(ngx.port),
          REQUEST_SCHEME: 'http',
          HTTP_X_TEST: 'via-nginx',
          'wsgi.url_scheme': 'http',
          'wsgi.multithread': true,
          'wsgi.multiprocess': true,
        });
        expect(e.REMOTE_PORT).toMatch(/^\d+$/);
      }));

    test('a POST upload (2 MiB) reaches the app intact', () =>
      withLogs(async () => {
        const body = crypto.randomBytes(2 * 1024 * 1024);
        const r = await httpRequest(ngx.port, { method: 'POST', path: '/echo?mode=chunks', body, headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 60000 });
        expect(r.status).toBe(200);
        expect(json(r.body)).toMatchObject({
          length: body.length,
          sha256: crypto.createHash('sha256').update(body).digest('hex'),
          content_type: 'application/octet-stream',
        });
      }), 90000);

    test('a small form POST is read with read(CONTENT_LENGTH)', () =>
      withLogs(async () => {
        const r = await httpRequest(ngx.port, { method: 'POST', path: '/echo?mode=read', body: 'a=1&b=2', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
        expect(json(r.body)).toMatchObject({ body: 'a=1&b=2', content_length: '7', content_type: 'application/x-www-form-urlencoded' });
      }));

    test('20 concurrent requests all succeed, served by several bridge processes', () =>
      withLogs(async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => httpRequest(ngx.port, { path: `/slow?s=0.3&i=${i}`, timeoutMs: 60000 })),
        );
        const statuses = results.map((r) => r.status);
        expect(statuses).toEqual(Array(20).fill(200));
        const pids = new Set(results.map((r) => r.body.toString().replace(/^done /, '')));
        expect(pids.size).toBeGreaterThan(1);
      }), 90000);

    test('a streamed response and repeated headers pass through nginx', () =>
      withLogs(async () => {
        const s = await httpRequest(ngx.port, { path: '/stream?n=4' });
        expect(s.body.toString()).toBe('chunk-0\nchunk-1\nchunk-2\nchunk-3\n');
        const c = await httpRequest(ngx.port, { path: '/cookies' });
        expect(c.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
      }));

    test('an app error is a 500 through nginx, not a broken upstream', () =>
      withLogs(async () => {
        const r = await httpRequest(ngx.port, { path: '/error' });
        expect(r.status).toBe(500);
        expect(ngx.errorLog()).not.toMatch(/upstream prematurely closed/);
      }));
  });
}

suiteThroughNginx('nginx uwsgi_pass 127.0.0.1:PORT → tsuwsgi --socket (TCP)', () => ({
  spec: '127.0.0.1:0',
  upstream: (srv) => srv.sockets[0]!,
}));

const unixDir = tmpDir('tsuwsgi-nginx-unix-');
fs.chmodSync(unixDir, 0o755);
suiteThroughNginx('nginx uwsgi_pass unix:PATH → tsuwsgi --socket PATH (UNIX)', () => ({
  spec: path.join(unixDir, 'app.sock'),
  upstream: (srv) => `unix:${srv.sockets[0]!}`,
}));
afterAll(() => fs.rmSync(unixDir, { recursive: true, force: true }));
