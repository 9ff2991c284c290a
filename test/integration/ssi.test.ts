/**
 * ssi (`ssi:FILE`): server-side includes, compared byte for byte with what Debian's uWSGI
 * 2.0.21 ssi plugin answers for the same rule and the same documents (both servers run in the
 * same directory, so relative includes name the same files).
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { fixture, freePort, runTsuwsgi, startServer, tmpDir, type ServerHandle } from '../helpers/server.ts';

type Answer = { status: number; contentType: string | undefined; contentLength: string | undefined; body: Buffer } | 'closed';

/** The response, or 'closed' when the server closed the connection without one (uWSGI's BREAK with nothing sent). */
async function ask(port: number, p: string, headers: Record<string, string> = {}): Promise<Answer> {
  try {
    const r = await httpRequest(port, { path: p, headers });
    return { status: r.status, contentType: r.headers['content-type'], contentLength: r.headers['content-length'], body: r.body };
  } catch (err) {
    if (/socket hang up|ECONNRESET/.test((err as Error).message)) return 'closed';
    throw err;
  }
}

describe('ssi: against uWSGI', () => {
  const dir = tmpDir('tsuwsgi-ssi-');
  let ts: ServerHandle;
  let uw: ForeignHandle;
  let uwPort = 0;

  const docs: Record<string, string | Buffer> = {
    'echo.shtml': [
      'method=<!--#echo var="REQUEST_METHOD" -->',
      'qs=<!--#echo var="QUERY_STRING"-->',
      'uri=<!--#echo   var="REQUEST_URI"   -->',
      'header=<!--#echo var="HTTP_X_TEST" -->',
      'missing=[<!--#echo var="NO_SUCH_VAR" -->]',
      'empty-name=[<!--#echo var="" -->]',
      'no-arg=[<!--#echo -->]',
      'other-arg=[<!--#echo file="x" -->]',
      'first-wins=<!--#echo var="REQUEST_METHOD" var="QUERY_STRING" -->',
      'tab=<!--#echo\tvar="REQUEST_METHOD"-->',
      '',
    ].join('\n'),
    'include.shtml': [
      'abs=[<!--#include file="DIR/part.html" -->]',
      'rel=[<!--#include file="part.html" -->]',
      'not-parsed=[<!--#include file="nested.shtml" -->]',
      'empty=[<!--#include file="empty.txt" -->]',
      'missing=[<!--#include file="nope.html" -->]',
      'directory=[<!--#include file="DIR" -->]',
      'virtual=[<!--#include virtual="/part.html" -->]',
      '',
    ].join('\n'),
    'syntax.shtml': [
      '1 unknown command [<!--#exec cmd="id" -->]',
      '2 case-sensitive [<!--#ECHO var="REQUEST_METHOD" -->]',
      '3 comment kept [<!-- plain comment -->]',
      '4 partial openers [<!- x] [<!x] [<x] [<<!--#echo var="REQUEST_METHOD"-->]',
      '5 spaces around = [<!--#echo var = "REQUEST_METHOD"-->]',
      "6 single quotes [<!--#echo var='REQUEST_METHOD'-->]",
      '7 unterminated value [<!--#echo var="REQUEST_METHOD-->]',
      '8 seven args [<!--#echo a="1" b="2" c="3" d="4" e="5" f="6" var="REQUEST_METHOD"-->]',
      '9 eight args [<!--#echo a="1" b="2" c="3" d="4" e="5" f="6" g="7" var="REQUEST_METHOD"-->]',
      '10 dashes inside [<!--#echo var="REQUEST_METHOD" -- -->] [<!--#echo var="REQUEST_METHOD"--->x-->]',
      '11 first --> ends it [<!--#echo var="-->" -->]',
      '12 junk after a value [<!--#echo var="REQUEST_METHOD"junk-->] [<!--#echo var="REQUEST_METHOD"x="y-->]',
      '13 no value [<!--#echo var=-->]',
      '14 blank directive [<!--# -->]',
      '15 cache without a cache [<!--#cache key="k" -->] [<!--#cache key="k" name="c" -->]',
      '16 a-->b <!-->',
      '',
    ].join('\n'),
    'printenv.shtml': '<pre><!--#printenv --></pre>\n',
    'bytes.shtml': Buffer.concat([Buffer.from('caf\xe9 \x00 \xff<!--#echo var="REQUEST_METHOD"-->\xfe', 'latin1')]),
    'empty.shtml': '',
    'tail-directive.shtml': 'kept <!--#echo var="REQUEST_METHOD"',
    'tail-opener.shtml': 'kept <!-',
    'plain.html': 'no directives at all\n',
    'part.html': '<b>part</b>\n',
    'nested.shtml': 'inner <!--#echo var="REQUEST_METHOD" -->',
    'empty.txt': '',
  };

  beforeAll(async () => {
    for (const [name, body] of Object.entries(docs)) fs.writeFileSync(path.join(dir, name), typeof body === 'string' ? body.split('DIR').join(dir) : body);
    const rule = ['--route', `^/s/(.*) ssi:${dir}/$1`];
    ts = await startServer(['--plugin', 'ssi', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), ...rule], { cwd: dir });
    uwPort = await freePort();
    uw = await startForeign(UWSGI_BIN, ['--plugin', 'ssi', '--http-socket', `127.0.0.1:${uwPort}`, ...rule], /spawned uWSGI worker 1/, { cwd: dir });
  });
  afterAll(async () => {
    await uw?.stop();
    if (ts) expect(await ts.stop()).toBe(0);
  });

  it.each(['echo.shtml?a=1&b=2', 'include.shtml', 'syntax.shtml', 'bytes.shtml', 'empty.shtml', 'tail-directive.shtml', 'tail-opener.shtml', 'plain.html'])(
    '%s: the same status, headers and body',
    async (doc) => {
      const headers = { 'X-Test': 'a&b<c>' };
      const mine = await ask(ts.port, `/s/${doc}`, headers);
      const theirs = await ask(uwPort, `/s/${doc}`, headers);
      expect(mine).not.toBe('closed');
      expect(mine).toEqual(theirs);
      if (mine !== 'closed') {
        expect(mine.status).toBe(200);
        expect(mine.contentType).toBe('text/html');
        expect(Number(mine.contentLength)).toBe(mine.body.length);
      }
    },
  );

  it('echo prints request vars as they are (no HTML escaping)', async () => {
    const r = await ask(ts.port, '/s/echo.shtml?a=1&b=2', { 'X-Test': 'a&b<c>' });
    expect(r !== 'closed' && r.body.toString()).toBe(
      ['method=GET', 'qs=a=1&b=2', 'uri=/s/echo.shtml?a=1&b=2', 'header=a&b<c>', 'missing=[]', 'empty-name=[]', 'no-arg=[]', 'other-arg=[]', 'first-wins=GET', 'tab=GET', ''].join('\n'),
    );
  });

  it('include copies the file unparsed, relative to the working directory; virtual= is not supported', async () => {
    const r = await ask(ts.port, '/s/include.shtml');
    expect(r !== 'closed' && r.body.toString()).toBe(
      ['abs=[<b>part</b>\n]', 'rel=[<b>part</b>\n]', 'not-parsed=[inner <!--#echo var="REQUEST_METHOD" -->]', 'empty=[]', 'missing=[]', 'directory=[]', 'virtual=[]', ''].join('\n'),
    );
  });

  it('printenv prints every request var as NAME=value lines (the same vars as uWSGI)', async () => {
    const mine = await ask(ts.port, '/s/printenv.shtml?x=1');
    const theirs = await ask(uwPort, '/s/printenv.shtml?x=1');
    if (mine === 'closed' || theirs === 'closed') throw new Error('printenv.shtml was not answered');
    // The port is in SERVER_PORT and HTTP_HOST; uWSGI 2.0.21's http parser sets no REMOTE_PORT,
    // and sets PATH_INFO before REQUEST_URI: compare the sets of the other lines.
    const lines = (b: Buffer): string[] =>
      b
        .toString('latin1')
        .split('\n')
        .filter((l) => !/^(SERVER_PORT|HTTP_HOST|REMOTE_PORT)=/.test(l))
        .sort();
    expect(lines(mine.body)).toEqual(lines(theirs.body));
    expect(mine.body.toString()).toMatch(/^<pre>REQUEST_METHOD=GET\n/);
    expect(mine.body.toString()).toContain(`\nQUERY_STRING=x=1\nSERVER_PROTOCOL=HTTP/1.1\n`);
    expect(mine.body.toString()).toMatch(/\n<\/pre>\n$/);
  });

  it('a document that cannot be read gets no answer: the connection is closed, as uWSGI', async () => {
    expect(await ask(uwPort, '/s/missing.shtml')).toBe('closed');
    expect(await ask(ts.port, '/s/missing.shtml')).toBe('closed');
    expect(await ask(ts.port, '/s/')).toBe('closed'); // the directory itself
    await ts.waitForLog(/ssi: unable to read .*missing\.shtml: the connection is closed/);
    // The server carries on.
    expect(await ask(ts.port, '/s/plain.html')).toMatchObject({ status: 200 });
  });

  it('directives that crash uWSGI (empty, blank) produce nothing here', async () => {
    fs.writeFileSync(path.join(dir, 'crash.shtml'), 'a<!--#-->b<!--#  -->c<!--#-x-->d');
    expect(await ask(ts.port, '/s/crash.shtml')).toMatchObject({ status: 200, body: Buffer.from('abcd') });
  });

  it('an ssi: rule without a document is refused at start-up', async () => {
    const r = await runTsuwsgi(['--plugin', 'ssi', '--http-socket', '127.0.0.1:0', '--route', '^/ ssi:']);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/"ssi:" needs the path of a document/);
  });
});
