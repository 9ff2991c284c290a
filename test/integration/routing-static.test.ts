/**
 * The filesystem route actions end to end (spec/subsystems.md §6.6, §17): router_static's
 * `static:` / `static-next:` (the static engine: MIME, Last-Modified, 304, Range, Expires
 * rules, the realpath security check) and `file:` / `sendfile:` / `fastfile:` (+ `-next`),
 * and router_expires' `expires:`, on a tsuwsgi whose app (env_dump.py) answers whatever
 * routing does not.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, rawHttp, rawRequest, type HttpRequestOptions, type HttpResult } from '../helpers/http-raw.ts';
import { fixture, runTsuwsgi, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
const isApp = (r: HttpResult): boolean => r.status === 200 && r.headers['content-type'] === 'application/json';
/** uWSGI's answer to a static action with nothing to serve: the connection closes, no response. */
async function closedWithoutAnswer(port: number, method: string, p: string): Promise<boolean> {
  const res = await rawHttp(port, rawRequest(method, p, { Connection: 'close' }, method === 'POST' ? 'x' : undefined), { timeoutMs: 10000 });
  return res.closed && res.data.length === 0;
}

describe('static:, file:, sendfile:, fastfile: and expires: route actions', () => {
  let srv: ServerHandle;
  const dir = fs.realpathSync(tmpDir('tsuwsgi-routing-static-'));
  const www = path.join(dir, 'www');
  const safe = path.join(dir, 'safe');
  const big = crypto.randomBytes(5 * 1024 * 1024 + 7);
  // A fixed mtime, so Expires = mtime + value can be checked to the second.
  const MTIME = 1_700_000_000;
  const get = (p: string, o: HttpRequestOptions = {}): Promise<HttpResult> => httpRequest(srv.port, { path: p, ...o });

  beforeAll(async () => {
    fs.mkdirSync(path.join(www, 'dir'), { recursive: true });
    fs.mkdirSync(path.join(www, 'noindex'), { recursive: true });
    fs.mkdirSync(safe, { recursive: true });
    fs.writeFileSync(path.join(www, 'a.css'), 'body{}\n');
    fs.writeFileSync(path.join(www, 'dir', 'index.html'), '<h1>index</h1>');
    fs.writeFileSync(path.join(www, 'big.bin'), big);
    fs.writeFileSync(path.join(www, 'x.php'), '<?php ?>');
    fs.writeFileSync(path.join(www, 'data.json'), '{"a":1}');
    fs.writeFileSync(path.join(www, 'noext'), 'plain');
    fs.writeFileSync(path.join(www, 'café.txt'), 'utf8 name');
    fs.writeFileSync(path.join(www, 'raw.http'), 'HTTP/1.0 203 From File\r\nX-Raw: 1\r\nContent-Length: 3\r\n\r\nraw');
    fs.writeFileSync(path.join(dir, 'outside.txt'), 'secret');
    fs.writeFileSync(path.join(safe, 'ok.txt'), 'safe');
    fs.symlinkSync(path.join(dir, 'outside.txt'), path.join(www, 'evil'));
    fs.symlinkSync(path.join(safe, 'ok.txt'), path.join(www, 'safe-link'));
    fs.utimesSync(path.join(www, 'a.css'), MTIME, MTIME);
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('env_dump.py'),
      '--static-index', 'index.html', '--static-skip-ext', '.php', '--static-safe', safe, '--honour-range',
      '--static-expires-type', 'application/json=600',
      '--route', `^/s/(.*) static:${www}/$1`,
      '--route', `^/n/(.*) static-next:${www}/$1`,
      '--route', '^/h/ addheader:X-Routed: 1',
      '--route', `^/h/(.*) static:${www}/$1`,
      '--route', `^/f/(.*) file:filename=${www}/$1`,
      '--route', `^/fs/(.*) file:filename=${www}/$1,status=404 Not Here,content_type=text/plain`,
      '--route', `^/fm/(.*) file:filename=${www}/$1,mime=1`,
      '--route', `^/fnocl/(.*) file:filename=${www}/$1,no_cl=1`,
      '--route', `^/sfnocl/(.*) sendfile:filename=${www}/$1,no_cl=1`,
      '--route', `^/ff/(.*) fastfile:filename=${www}/$1,mime=1`,
      '--route', `^/fn/(.*) file-next:filename=${www}/$1`,
      '--route', `^/sn/(.*) sendfile-next:filename=${www}/$1`,
      '--route', `^/ffn/(.*) fastfile-next:filename=${www}/$1`,
      '--route', `^/raw file:filename=${www}/raw.http,no_headers=1`,
      '--route', `^/exp/file expires:filename=${www}/a.css,value=3600`,
      '--route', '^/exp/unix expires:unix=${time[unix]},value=60',
      '--route', `^/exp/missing expires:file=${www}/missing,value=60`,
      '--route', `^/exp/ static:${www}/a.css`,
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('static: serves the file with the static engine\'s headers, and is logged', async () => {
    await withServerLog(srv, async () => {
      const r = await get('/s/a.css');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/css');
      expect(r.headers['content-length']).toBe('7');
      expect(r.headers['last-modified']).toBe(new Date(MTIME * 1000).toUTCString());
      expect(r.body.toString()).toBe('body{}\n');
      await srv.waitForLog(/GET \/s\/a\.css => generated 7 bytes .*\(HTTP\/1\.1 200\)/);
    });
  });

  it('static: answers If-Modified-Since with 304, Range with 206, HEAD without a body, static-expires-type rules', async () => {
    const lm = new Date(MTIME * 1000).toUTCString();
    const nm = await get('/s/a.css', { headers: { 'If-Modified-Since': lm } });
    expect([nm.status, nm.body.length]).toEqual([304, 0]);
    const part = await get('/s/big.bin', { headers: { Range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${big.length}`);
    expect(part.body.equals(big.subarray(10, 20))).toBe(true);
    const head = await get('/s/big.bin', { method: 'HEAD' });
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(big.length), 0]);
    const j = await get('/s/data.json');
    const exp = Date.parse(String(j.headers['expires']));
    expect(Math.abs(exp - (Date.now() + 600_000))).toBeLessThan(5000);
  });

  it('static: and file: find a UTF-8 file name from the percent-decoded request path', async () => {
    for (const p of ['/s/caf%C3%A9.txt', '/f/caf%C3%A9.txt']) {
      const r = await get(p);
      expect([p, r.status, r.body.toString()]).toEqual([p, 200, 'utf8 name']);
    }
  });

  it('static: streams a 5 MB file intact', async () => {
    const r = await get('/s/big.bin');
    expect([r.status, r.body.length, sha256(r.body)]).toEqual([200, big.length, sha256(big)]);
  });

  it('static: serves a directory through --static-index; a directory without one is not served', async () => {
    for (const p of ['/s/dir', '/s/dir/']) {
      const r = await get(p);
      expect([p, r.status, r.headers['content-type'], r.body.toString()]).toEqual([p, 200, 'text/html', '<h1>index</h1>']);
    }
    expect(await closedWithoutAnswer(srv.port, 'GET', '/s/noindex')).toBe(true);
  });

  it('static: refuses a symlink leaving the path (security error) unless it points into --static-safe', async () => {
    await withServerLog(srv, async () => {
      expect(await closedWithoutAnswer(srv.port, 'GET', '/s/evil')).toBe(true);
      await srv.waitForLog(new RegExp(`\\[uwsgi-fileserve\\] security error: ${dir}/outside\\.txt is not under ${www}/evil or a safe path`));
      const ok = await get('/s/safe-link');
      expect([ok.status, ok.body.toString()]).toEqual([200, 'safe']);
    });
  });

  it('static: never serves `..` smuggled in through $1, nor --static-skip-ext files, nor methods other than GET/HEAD', async () => {
    // The front end does not normalise the path: $1 is "../outside.txt", whose realpath is not the path.
    expect(await closedWithoutAnswer(srv.port, 'GET', '/s/../outside.txt')).toBe(true);
    expect(await closedWithoutAnswer(srv.port, 'GET', '/s/x.php')).toBe(true);
    expect(await closedWithoutAnswer(srv.port, 'POST', '/s/a.css')).toBe(true);
    expect(await closedWithoutAnswer(srv.port, 'GET', '/s/missing')).toBe(true);
    await srv.waitForLog(/static: nothing to serve for GET \/s\/missing/);
  });

  it('static-next: serves the file when there is one, else the next rules (here the app) run', async () => {
    const r = await get('/n/a.css');
    expect([r.status, r.body.toString()]).toEqual([200, 'body{}\n']);
    const miss = await get('/n/missing');
    expect(isApp(miss)).toBe(true);
    const post = await get('/n/a.css', { method: 'POST', body: 'x' });
    expect(isApp(post)).toBe(true);
  });

  it('routing header edits apply to a static: response', async () => {
    const r = await get('/h/a.css');
    expect([r.status, r.headers['x-routed']]).toEqual([200, '1']);
  });

  it('file: sends the file as text/html 200 with Content-Length and no static headers', async () => {
    const r = await get('/f/a.css');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html');
    expect(r.headers['content-length']).toBe('7');
    expect(r.headers['last-modified']).toBeUndefined();
    expect(r.body.toString()).toBe('body{}\n');
    // Any method: the rule names the file.
    expect((await get('/f/a.css', { method: 'POST', body: 'x' })).status).toBe(200);
  });

  it('file: status=, content_type=, mime=1 (falls back to content_type for unknown types)', async () => {
    const s = await get('/fs/a.css');
    expect([s.status, s.headers['content-type'], s.body.toString()]).toEqual([404, 'text/plain', 'body{}\n']);
    const raw = await rawHttp(srv.port, rawRequest('GET', '/fs/a.css', { Connection: 'close' }));
    expect(raw.data.toString('latin1')).toMatch(/^HTTP\/1\.1 404 Not Here\r\n/);
    expect((await get('/fm/a.css')).headers['content-type']).toBe('text/css');
    expect((await get('/fm/noext')).headers['content-type']).toBe('text/html');
    expect((await get('/ff/data.json')).headers['content-type']).toBe('application/json');
  });

  it('file: no_cl=1 drops Content-Length (file only: sendfile always sends it)', async () => {
    const f = await get('/fnocl/a.css');
    expect([f.status, f.headers['content-length'], f.headers['transfer-encoding'], f.body.toString()]).toEqual([200, undefined, 'chunked', 'body{}\n']);
    const s = await get('/sfnocl/a.css');
    expect([s.status, s.headers['content-length'], s.body.toString()]).toEqual([200, '7', 'body{}\n']);
  });

  it('file:, sendfile:, fastfile: stream a 5 MB file intact', async () => {
    for (const p of ['/f/big.bin', '/sn/big.bin', '/ff/big.bin']) {
      const r = await get(p);
      expect([p, r.status, r.body.length, sha256(r.body)]).toEqual([p, 200, big.length, sha256(big)]);
    }
  });

  it('a missing file: file: closes the request, the -next forms go on to the app', async () => {
    await withServerLog(srv, async () => {
      expect(await closedWithoutAnswer(srv.port, 'GET', '/f/missing')).toBe(true);
      await srv.waitForLog(/file: unable to open .*\/missing: the connection is closed/);
      for (const p of ['/fn/missing', '/sn/missing', '/ffn/missing']) expect([p, isApp(await get(p))]).toEqual([p, true]);
    });
  });

  it('file: no_headers=1 sends a file that holds the whole HTTP response', async () => {
    const r = await get('/raw');
    expect([r.status, r.headers['x-raw'], r.body.toString()]).toEqual([203, '1', 'raw']);
  });

  it('expires:filename= adds Expires = file mtime + value; unix= counts from the given time', async () => {
    const f = await get('/exp/file');
    expect(f.status).toBe(200);
    expect(f.headers['expires']).toBe(new Date((MTIME + 3600) * 1000).toUTCString());
    const u = await get('/exp/unix');
    const at = Date.parse(String(u.headers['expires']));
    expect(Math.abs(at - (Date.now() + 60_000))).toBeLessThan(5000);
  });

  it('expires: on a file that cannot be stat()ed adds nothing, logs it and routing goes on', async () => {
    await withServerLog(srv, async () => {
      const r = await get('/exp/missing');
      expect([r.status, r.headers['expires']]).toEqual([200, undefined]);
      await srv.waitForLog(/expires: unable to stat\(\) .*\/www\/missing: ENOENT/);
    });
  });

  it('bad arguments are refused at start-up with TSUWSGI_E_ROUTING', async () => {
    for (const rule of ['file:status=200', 'static:', 'file:filename=/x,status=abc', 'file:filename=/x,colour=red', 'expires:value=10']) {
      const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('env_dump.py'), '--route-run', rule]);
      expect([rule, r.code]).toEqual([rule, 1]);
      expect(r.output).toMatch(/TSUWSGI_E_ROUTING/);
    }
  });
});
