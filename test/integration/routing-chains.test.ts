/**
 * The error, response and final routing chains and the response header options end to end
 * (spec/subsystems.md §6.1-6.3, §6.7, acceptance checks §6.8/11-13): real tsuwsgi processes in
 * front of chains_app.py, whose responses depend on the path (/status/NNN, /html, /json,
 * /hdr, /stream).
 */
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { httpRequest, type HttpRequestOptions, type HttpResult } from '../helpers/http-raw.ts';
import { exchange, stdVars, uwsgiPacket } from '../helpers/uwsgi-client.ts';
import { fixture, runTsuwsgi, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const APP = ['--wsgi-file', fixture('chains_app.py')];

async function get(srv: ServerHandle, p: string, o: HttpRequestOptions = {}): Promise<HttpResult> {
  return httpRequest(srv.port, { path: p, ...o });
}

/** Header names in the order the client got them (rawHeaders is [name, value, …]). */
const names = (r: HttpResult): string[] => r.rawHeaders.filter((_, i) => i % 2 === 0);

describe('response chain, collect/pull-header, add/del-header (one server)', () => {
  let srv: ServerHandle;

  beforeAll(async () => {
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', ...APP,
      // §6.8/11
      '--collect-header', 'Content-Type CT',
      '--response-route-if', 'startswith:${CT};text/plain addheader:X-Text: 1',
      '--response-route', '^/turn404 clearheaders:404 Not Found',
      '--response-route', '^/turn404 addheader:X-Turned: ${uwsgi[status]}',
      // pull-header: the value is usable, the header is gone
      '--pull-header', 'X-Secret SECRET',
      '--response-route-if-not', 'empty:${SECRET} addheader:X-Was-Secret: ${SECRET}',
      '--add-header', 'X-Global: g',
      '--del-header', 'X-Keep',
      // the response chain also runs on routing's own answers
      '--route', '^/teapot return:418',
      '--response-route-status', '418 addheader:X-Teapot: short and stout',
      // a BREAK in the response chain discards the response: the connection is closed
      '--response-route', '^/drop break:',
      // labels and goto with the response chain's own program counter (the docs' gzip
      // example shape); `last:` ends the chain, so this part comes last
      '--response-route', '^/html goto:htmlpart',
      '--response-route-run', 'last:',
      '--response-route-label', 'htmlpart',
      '--response-route-run', 'addheader:X-Html: yes',
      // a transformation added by the response chain applies to this response
      '--response-route-if', 'contains:${HTTP_ACCEPT_ENCODING};gzip gzip:',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('§6.8/11 collect-header + response-route-if: X-Text on text responses only', async () => {
    await withServerLog(srv, async () => {
      const text = await get(srv, '/');
      expect(text.status).toBe(200);
      expect(text.headers['x-text']).toBe('1');
      expect(text.body.toString()).toBe('hello');
      const json = await get(srv, '/json');
      expect(json.headers['content-type']).toBe('application/json');
      expect(json.headers['x-text']).toBeUndefined();
    });
  });

  it('§6.8/11 clearheaders turns the app response into a 404, with ${uwsgi[status]} the new status', async () => {
    const r = await get(srv, '/turn404');
    expect(r.status).toBe(404);
    expect(r.headers['x-turned']).toBe('404');
    // The app's headers are gone (uWSGI prepares the headers anew); its body still follows.
    expect(r.headers['content-type']).toBeUndefined();
    expect(r.body.toString()).toBe('hello');
  });

  it('response-route-label + goto jump within the response chain', async () => {
    expect((await get(srv, '/html')).headers['x-html']).toBe('yes');
    expect((await get(srv, '/')).headers['x-html']).toBeUndefined();
  });

  it('the uWSGI docs example: the response chain gzips text/html for clients that accept it', async () => {
    const html = await get(srv, '/html', { headers: { 'Accept-Encoding': 'gzip' } });
    expect(html.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(html.body).toString()).toBe('<p>html</p>');
    const text = await get(srv, '/', { headers: { 'Accept-Encoding': 'gzip' } });
    expect(text.headers['content-encoding']).toBeUndefined();
    expect(text.body.toString()).toBe('hello');
  });

  it('pull-header removes the header and stores its value; add-header and del-header apply to every response', async () => {
    const r = await get(srv, '/hdr');
    expect(r.headers['x-secret']).toBeUndefined();
    expect(r.headers['x-was-secret']).toBe('s3cret');
    expect(r.headers['x-keep']).toBeUndefined();
    expect(r.headers['x-global']).toBe('g');
    // --add-header comes after the response's own headers, before routing's addheaders.
    const order = names(r);
    expect(order.indexOf('X-Global')).toBeGreaterThan(order.indexOf('Content-Type'));
    expect(order.indexOf('X-Global')).toBeLessThan(order.indexOf('X-Text'));
    expect((await get(srv, '/')).headers['x-was-secret']).toBeUndefined();
  });

  it("runs on routing's own answers (return:418) with *-route-status matching exactly", async () => {
    const r = await get(srv, '/teapot');
    expect(r.status).toBe(418);
    expect(r.headers['x-teapot']).toBe('short and stout');
    expect(r.headers['x-global']).toBe('g');
    expect((await get(srv, '/status/404')).headers['x-teapot']).toBeUndefined();
  });

  it('a BREAK in the response chain discards the response and closes the connection', async () => {
    await expect(get(srv, '/drop')).rejects.toThrow(/socket hang up|ECONNRESET/);
    // The server is fine afterwards.
    expect((await get(srv, '/')).status).toBe(200);
  });
});

describe('error chain (with --master: core worker child)', () => {
  let srv: ServerHandle;

  beforeAll(async () => {
    srv = await startServer([
      '--master', '--http-socket', '127.0.0.1:0', ...APP,
      // §6.8/13
      '--error-route-status', '404 addheader:X-Err: 1',
      // the error chain may answer instead of the app
      '--error-route-status', '502 redirect:/maintenance',
      // it runs on every status prepared, routing's own answers included
      '--error-route-run', 'addheader:X-Status-Seen: ${uwsgi[status]}',
      '--route', '^/denied break:403 Forbidden',
      '--error-route-status', '403 addheader:X-Denied: 1',
      // goto inside the error chain, with its own labels
      '--error-route-status', '500 goto:fivehundred',
      '--error-route-run', 'last:',
      '--error-route-run', 'addheader:X-Never: 1',
      '--error-route-label', 'fivehundred',
      '--error-route-run', 'addheader:X-Err-Label: ${uwsgi[status]}',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('§6.8/13 error-route-status = 404 addheader: X-Err only on 404 responses', async () => {
    await withServerLog(srv, async () => {
      const miss = await get(srv, '/status/404');
      expect(miss.status).toBe(404);
      expect(miss.headers['x-err']).toBe('1');
      expect(miss.body.toString()).toBe('status 404');
      expect((await get(srv, '/')).headers['x-err']).toBeUndefined();
      expect((await get(srv, '/status/403')).headers['x-err']).toBeUndefined();
    });
  });

  it('goto jumps forward to an error-route-label; labels of other chains are not visible', async () => {
    const r = await get(srv, '/status/500');
    expect(r.status).toBe(500);
    expect(r.headers['x-err-label']).toBe('500');
    expect(r.headers['x-never']).toBeUndefined();
    // last: stopped the chain for other statuses before the label.
    expect((await get(srv, '/')).headers['x-err-label']).toBeUndefined();
  });

  it('an answer from the error chain replaces the app response (and is logged once)', async () => {
    await withServerLog(srv, async () => {
      const r = await get(srv, '/status/502');
      expect(r.status).toBe(302);
      expect(r.headers['location']).toBe('/maintenance');
      expect(r.body.toString()).toBe('Moved');
      await srv.waitForLog(/GET \/status\/502 => generated 5 bytes .*\(HTTP\/1\.1 302\)/);
      expect(srv.logs().match(/GET \/status\/502 =>/g)).toHaveLength(1);
    });
  });

  it('runs for every status, and on the request chain\'s own answers', async () => {
    expect((await get(srv, '/')).headers['x-status-seen']).toBe('200');
    const denied = await get(srv, '/denied');
    expect(denied.status).toBe(403);
    expect(denied.headers['x-denied']).toBe('1');
    expect(denied.headers['x-status-seen']).toBe('403');
  });
});

describe('final chain', () => {
  let srv: ServerHandle;
  const dir = fs.realpathSync(tmpDir('tsuwsgi-chains-final-'));
  fs.writeFileSync(path.join(dir, 'file.txt'), 'static body\n');

  beforeAll(async () => {
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', ...APP,
      '--static-map', `/static=${dir}`,
      '--log-format', 'LF %(uri) %(status) lv=%(fin)',
      // §6.8/12
      '--final-route-run', 'log:DONE ${REQUEST_URI} ${uwsgi[status]}',
      '--final-route', '^/stream log:RSIZE ${uwsgi[rsize]}',
      '--final-route-status', '404 log:miss ${REQUEST_URI}',
      // final runs before the request log line: logvar and donotlog apply to it (as uWSGI)
      '--final-route-run', 'logvar:fin=${uwsgi[status]}',
      '--final-route', '^/quiet donotlog:',
      // it cannot change the response any more
      '--final-route-run', 'addheader:X-Too-Late: 1',
      '--collect-header', 'Content-Type CT',
      '--final-route-run', 'log:CT ${REQUEST_URI} ${CT}',
      // an answer goes nowhere, and (a BREAK) ends the chain
      '--final-route', '^/json return:500',
      '--final-route', '^/json log:not reached',
      '--route', '^/routed return:204',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('§6.8/12 final-route-run logs DONE <status> after each request; final-route-status = 404 only on 404', async () => {
    await withServerLog(srv, async () => {
      expect((await get(srv, '/')).status).toBe(200);
      await srv.waitForLog(/^DONE \/ 200$/m);
      expect((await get(srv, '/status/404')).status).toBe(404);
      await srv.waitForLog(/^DONE \/status\/404 404$/m);
      await srv.waitForLog(/^miss \/status\/404$/m);
      expect(srv.logs()).not.toMatch(/^miss \/$/m);
    });
  });

  it('runs after a streamed response is complete, before its log line', async () => {
    await withServerLog(srv, async () => {
      const r = await get(srv, '/stream');
      expect(r.body.toString()).toBe('chunk-0\nchunk-1\nchunk-2\n');
      const m = await srv.waitForLog(/^DONE \/stream 200$[\s\S]*^LF \/stream 200 lv=200$/m);
      expect(m).toBeTruthy();
      // ${uwsgi[rsize]}: the body bytes the client got.
      await srv.waitForLog(/^RSIZE 24$/m);
    });
  });

  it('donotlog in the final chain suppresses the request log line; logvar reaches it', async () => {
    await withServerLog(srv, async () => {
      await get(srv, '/quiet');
      await srv.waitForLog(/^DONE \/quiet 200$/m);
      await get(srv, '/after-quiet');
      await srv.waitForLog(/^LF \/after-quiet 200 lv=200$/m);
      expect(srv.logs()).not.toMatch(/^LF \/quiet/m);
    });
  });

  it('cannot change the response: headers and answers are ignored', async () => {
    const r = await get(srv, '/json');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('{"a": 1}');
    expect(r.headers['x-too-late']).toBeUndefined();
    await srv.waitForLog(/^CT \/json application\/json$/m);
    await srv.waitForLog(/^LF \/json 200/m);
    expect(srv.logs()).not.toMatch(/^not reached$/m);
  });

  it("runs on routing's own answers and on static files", async () => {
    await withServerLog(srv, async () => {
      expect((await get(srv, '/routed')).status).toBe(204);
      await srv.waitForLog(/^DONE \/routed 204$/m);
      const s = await get(srv, '/static/file.txt');
      expect(s.body.toString()).toBe('static body\n');
      await srv.waitForLog(/^DONE \/static\/file\.txt 200$/m);
    });
  });
});

describe('chains on static files, error pages, a uwsgi socket', () => {
  let srv: ServerHandle;
  const dir = fs.realpathSync(tmpDir('tsuwsgi-chains-static-'));
  fs.writeFileSync(path.join(dir, 'page.html'), '<p>static</p>');
  const page404 = path.join(dir, '404.html');
  fs.writeFileSync(page404, '<h1>custom not found</h1>');

  beforeAll(async () => {
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', '--socket', '127.0.0.1:0',
      '--mount', `/app=${fixture('chains_app.py')}`, '--manage-script-name', '--no-default-app',
      '--static-map', `/static=${dir}`,
      // the first readable file of the list is served
      '--error-page-404', path.join(dir, 'missing.html'),
      '--error-page-404', page404,
      '--collect-header', 'Content-Type CT',
      '--response-route-if', 'equal:${CT};text/html addheader:X-Html: 1',
      '--error-route-status', '404 addheader:X-Err: 1',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('a static file goes through collect-header and the response chain', async () => {
    const r = await get(srv, '/static/page.html');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('<p>static</p>');
    expect(r.headers['x-html']).toBe('1');
  });

  it("error-page-404 is the body of tsuwsgi's own 404 (no app for the URL), through the chains", async () => {
    await withServerLog(srv, async () => {
      const r = await get(srv, '/nowhere');
      expect(r.status).toBe(404);
      expect(r.headers['content-type']).toBe('text/html');
      expect(r.headers['connection']).toBe('close');
      expect(r.body.toString()).toBe('<h1>custom not found</h1>');
      expect(r.headers['x-err']).toBe('1');
      expect(r.headers['x-html']).toBe('1');
      await srv.waitForLog(/GET \/nowhere => generated 25 bytes .*\(HTTP\/1\.1 404\)/);
    });
  });

  it("the app's own 404 keeps its body (error pages are for tsuwsgi's answers only, as uWSGI)", async () => {
    const r = await get(srv, '/app/status/404');
    expect(r.status).toBe(404);
    expect(r.body.toString()).toBe('status 404');
    expect(r.headers['x-err']).toBe('1');
  });

  it('the chains and the error page apply on the uwsgi socket too', async () => {
    const addr = srv.sockets[1]!;
    const res = await exchange(addr, uwsgiPacket(stdVars({ PATH_INFO: '/nowhere', REQUEST_URI: '/nowhere' })));
    const text = res.data.toString();
    expect(text).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(text).toMatch(/\r\nX-Err: 1\r\n/);
    expect(text).toMatch(/\r\n\r\n<h1>custom not found<\/h1>$/);
  });
});

describe('start-up errors in every chain', () => {
  it.each([
    ['--error-route', '^/x brek:', /unable to find routing action "brek" in --error-route "\^\/x brek:"/],
    ['--response-route-if', 'nosuch:a addheader:X: 1', /unable to find routing condition "nosuch" in --response-route-if/],
    ['--final-route-run', 'log', /invalid route syntax in --final-route-run "log"/],
    ['--error-route-status', '40x break:', /invalid status "40x" in --error-route-status "40x break:"/],
    ['--response-route-status', '404', /invalid route syntax in --response-route-status "404"/],
    ['--final-route', '^/(x log:1', /invalid regexp "\^\/\(x" in --final-route/],
    ['--collect-header', 'Content-Type', /invalid --collect-header "Content-Type": the syntax is <header> <var>/],
    ['--add-header', 'NoColon', /invalid --add-header "NoColon"/],
    ['--response-route-run', 'clearheaders:', /"clearheaders:" in --response-route-run "clearheaders:": the argument must be a status line/],
  ])('%s %s is fatal with a clear message', async (option, value, message) => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', ...APP, option, value]);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/TSUWSGI_E_ROUTING/);
    expect(r.output).toMatch(message);
  });

  it('route-status exists only on the error, response and final chains', async () => {
    const r = await runTsuwsgi(['--http-socket', '127.0.0.1:0', ...APP, '--route-status', '404 log:x']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/route-status/);
  });
});
