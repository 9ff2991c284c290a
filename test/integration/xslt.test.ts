/**
 * xslt (`xslt:` route action, `toxslt:` transformation): XSLT through libxslt, compared byte
 * for byte with Debian's uWSGI 2.0.21 xslt plugin (the same libxslt) for the same rules and
 * files, plus the places where tsuwsgi fixes uWSGI on purpose (plugins/xslt/index.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { startForeign, UWSGI_BIN, type ForeignHandle } from '../helpers/foreign.ts';
import { freePort, runTsuwsgi, startServer, tmpDir, type ServerHandle } from '../helpers/server.ts';

type Answer = { status: number; contentTypes: string[]; contentLength: string | undefined; body: Buffer } | 'closed';

/** The response, or 'closed' when the server closed the connection without one (uWSGI's BREAK with nothing sent). */
async function ask(port: number, p: string): Promise<Answer> {
  try {
    const r = await httpRequest(port, { path: p });
    // Every Content-Type header (uWSGI's toxslt sends two).
    const types: string[] = [];
    for (let i = 0; i < r.rawHeaders.length; i += 2) if (/^content-type$/i.test(r.rawHeaders[i]!)) types.push(r.rawHeaders[i + 1]!);
    return { status: r.status, contentTypes: types, contentLength: r.headers['content-length'], body: r.body };
  } catch (err) {
    if (/socket hang up|ECONNRESET/.test((err as Error).message)) return 'closed';
    throw err;
  }
}

const XSL_HEAD = '<?xml version="1.0"?>\n<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">\n';
const XSL_TAIL = '</xsl:stylesheet>\n';

const FILES: Record<string, string> = {
  'doc.xml': '<?xml version="1.0"?>\n<catalog><cd><title>Empire Burlesque</title><artist>Bob Dylan</artist></cd><cd><title>Hide &amp; seek</title><artist>Bonnie &lt;3</artist></cd></catalog>\n',
  'latin.xml': '<?xml version="1.0" encoding="UTF-8"?>\n<catalog><cd><title>Café Tacvba</title><artist>Señor</artist></cd></catalog>\n',
  'bad.xml': '<broken><a></broken>\n',
  // HTML output with two global parameters.
  'page.xsl':
    XSL_HEAD +
    '<xsl:param name="foo" select="\'default\'"/>\n<xsl:param name="bar"/>\n' +
    '<xsl:template match="/"><html><body><h1>foo=<xsl:value-of select="$foo"/> bar=<xsl:value-of select="$bar"/></h1>\n' +
    '<xsl:for-each select="catalog/cd"><p><xsl:value-of select="title"/> by <xsl:value-of select="artist"/></p></xsl:for-each></body></html></xsl:template>\n' +
    XSL_TAIL,
  'text.xsl': XSL_HEAD + '<xsl:output method="text"/>\n<xsl:template match="/"><xsl:for-each select="catalog/cd"><xsl:value-of select="title"/>;</xsl:for-each></xsl:template>\n' + XSL_TAIL,
  'latin1.xsl': XSL_HEAD + '<xsl:output method="xml" encoding="ISO-8859-1" indent="yes"/>\n<xsl:template match="/"><list><xsl:for-each select="catalog/cd"><item t="{title}"><xsl:value-of select="artist"/></item></xsl:for-each></list></xsl:template>\n' + XSL_TAIL,
  'include.xsl': XSL_HEAD + '<xsl:include href="parts/inner.xsl"/>\n' + XSL_TAIL,
  'parts/inner.xsl': XSL_HEAD + '<xsl:output method="text"/>\n<xsl:template match="/">included: <xsl:value-of select="count(//cd)"/></xsl:template>\n' + XSL_TAIL,
  'broken.xsl': '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/">\n',
  'bogus.xsl': XSL_HEAD + '<xsl:template match="/"><xsl:bogus/></xsl:template>\n' + XSL_TAIL,
  'nothing.xsl': XSL_HEAD + '<xsl:output method="text"/>\n<xsl:template match="/"/>\n' + XSL_TAIL,
  'stop.xsl': XSL_HEAD + '<xsl:template match="/"><xsl:message terminate="yes">giving up here</xsl:message></xsl:template>\n' + XSL_TAIL,
  // The app toxslt transforms: XML (no Content-Length: uWSGI would keep a stale one), or not.
  'app.py': [
    'import os',
    'HERE = os.path.dirname(os.path.abspath(__file__))',
    'def application(env, start_response):',
    "    p = env['PATH_INFO']",
    "    if 'notxml' in p:",
    "        body = b'<notxml'",
    "    elif 'empty' in p:",
    "        body = b''",
    '    else:',
    "        body = open(os.path.join(HERE, 'doc.xml'), 'rb').read()",
    "    headers = [('Content-Type', 'text/xml')]",
    "    if 'withcl' in p:",
    "        headers.append(('Content-Length', str(len(body))))",
    "    start_response('200 OK', headers)",
    '    return [body]',
    '',
  ].join('\n'),
};

describe('xslt: against uWSGI', () => {
  const dir = tmpDir('tsuwsgi-xslt-');
  let ts: ServerHandle;
  let uw: ForeignHandle;
  let uwPort = 0;

  beforeAll(async () => {
    for (const [name, body] of Object.entries(FILES)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), body);
    }
    const rules = [
      // The document and the stylesheet from the path, the query string as the params.
      ['--route', `^/x/([a-z]+)/([a-z0-9]+)$ xslt:doc=${dir}/$1.xml,stylesheet=${dir}/$2.xsl,params=\${QUERY_STRING}`],
      ['--route', `^/ct/ xslt:doc=${dir}/doc.xml,stylesheet=${dir}/page.xsl,content_type=text/plain,params=foo=fixed&junk&&bar=b=c`],
      ['--route', `^/t/([a-z0-9]+)/ toxslt:stylesheet=${dir}/$1.xsl,params=foo=hello&bar=world,content_type=application/xhtml+xml`],
      ['--route', `^/tdefault/ toxslt:stylesheet=${dir}/page.xsl`],
    ].flat();
    ts = await startServer(['--plugin', 'xslt', '--http-socket', '127.0.0.1:0', '--wsgi-file', path.join(dir, 'app.py'), ...rules], { cwd: dir });
    uwPort = await freePort();
    uw = await startForeign(UWSGI_BIN, ['--plugin', 'python3,xslt', '--http-socket', `127.0.0.1:${uwPort}`, '--wsgi-file', path.join(dir, 'app.py'), ...rules], /spawned uWSGI worker 1/, { cwd: dir });
    // uWSGI enables entity substitution only once its first transformation ran: warm it up.
    await ask(uwPort, '/x/doc/page');
  });
  afterAll(async () => {
    await uw?.stop();
    if (ts) expect(await ts.stop()).toBe(0);
  });

  describe('the xslt: action', () => {
    it.each(['/x/doc/page?foo=abc&bar=x%20y', '/x/doc/page', '/x/doc/page?foo=', '/x/doc/text', '/x/latin/latin1', '/x/latin/page', '/x/doc/include', '/ct/'])(
      '%s: the same status, headers and body',
      async (p) => {
        const mine = await ask(ts.port, p);
        const theirs = await ask(uwPort, p);
        expect(mine).not.toBe('closed');
        expect(mine).toEqual(theirs);
        if (mine !== 'closed') expect(Number(mine.contentLength)).toBe(mine.body.length);
      },
    );

    it('answers 200 with the transformation, text/html by default, params from the rule', async () => {
      const body = '<html><body>\n<h1>foo=abc bar=</h1>\n<p>Empire Burlesque by Bob Dylan</p>\n<p>Hide &amp; seek by Bonnie &lt;3</p>\n</body></html>\n';
      expect(await ask(ts.port, '/x/doc/page?foo=abc')).toEqual({ status: 200, contentTypes: ['text/html'], contentLength: String(body.length), body: Buffer.from(body) });
      // content_type=, and params items without `=` are skipped, the first `=` splits.
      const ct = await ask(ts.port, '/ct/');
      expect(ct !== 'closed' && [ct.contentTypes, ct.body.toString().split('\n')[1]]).toEqual([['text/plain'], '<h1>foo=fixed bar=b=c</h1>']);
    });

    it.each([
      ['a missing document', '/x/missing/page', /I\/O warning : failed to load external entity ".*missing\.xml"/],
      ['a document that is not XML', '/x/bad/page', /bad\.xml:1: parser error : Opening and ending tag mismatch/],
      ['a missing stylesheet', '/x/doc/missing', /xsltParseStylesheetFile : cannot parse .*missing\.xsl/],
      ['a stylesheet that is not XML', '/x/doc/broken', /cannot parse the stylesheet .*broken\.xsl/],
      ['a stylesheet that fails', '/x/doc/bogus', /xsltApplySequenceConstructor: bogus was not compiled/],
      ['an empty result', '/x/doc/nothing', /produced no output/],
      ['xsl:message terminate', '/x/doc/stop', /giving up here/],
    ])('%s: no answer, the connection is closed (as uWSGI), and the reason is logged', async (_what, p, logged) => {
      expect(await ask(uwPort, p)).toBe('closed');
      expect(await ask(ts.port, p)).toBe('closed');
      await ts.waitForLog(logged);
    });

    it('passes params as strings: a value with a double quote works (uWSGI evaluates it as XPath and fails)', async () => {
      const p = '/x/doc/page?foo=say"hi"&bar=\'q\'';
      expect(await ask(uwPort, p)).toBe('closed');
      const mine = await ask(ts.port, p);
      expect(mine !== 'closed' && mine.body.toString().split('\n')[1]).toBe('<h1>foo=say"hi" bar=\'q\'</h1>');
      // …and it is not XPath: no expression injection through the query string.
      const injected = await ask(ts.port, "/x/doc/page?foo=count(//cd)");
      expect(injected !== 'closed' && injected.body.toString().split('\n')[1]).toBe('<h1>foo=count(//cd) bar=</h1>');
    });

    it('re-reads a stylesheet whose file changed (cached by path and mtime)', async () => {
      const file = path.join(dir, 'changing.xsl');
      const sheet = (word: string): string => XSL_HEAD + `<xsl:output method="text"/><xsl:template match="/">${word}</xsl:template>` + XSL_TAIL;
      fs.writeFileSync(file, sheet('first'));
      fs.utimesSync(file, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
      expect(await ask(ts.port, '/x/doc/changing')).toMatchObject({ body: Buffer.from('first') });
      expect(await ask(ts.port, '/x/doc/changing')).toMatchObject({ body: Buffer.from('first') });
      fs.writeFileSync(file, sheet('second'));
      fs.utimesSync(file, new Date('2026-01-01T00:00:01Z'), new Date('2026-01-01T00:00:01Z'));
      expect(await ask(ts.port, '/x/doc/changing')).toMatchObject({ body: Buffer.from('second') });
    });

    it('transforms concurrent requests in parallel, each with its own params', async () => {
      const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => ask(ts.port, `/x/doc/page?foo=n${i}`)));
      answers.forEach((a, i) => expect(a !== 'closed' && a.body.toString().split('\n')[1]).toBe(`<h1>foo=n${i} bar=</h1>`));
    });
  });

  describe('the toxslt transformation', () => {
    it.each(['/t/page/', '/t/text/', '/t/latin1/', '/tdefault/'])('%s: the same status and body as uWSGI', async (p) => {
      const mine = await ask(ts.port, p);
      const theirs = await ask(uwPort, p);
      if (mine === 'closed' || theirs === 'closed') throw new Error(`${p} was not answered`);
      expect(mine.status).toBe(200);
      expect(mine.status).toBe(theirs.status);
      expect(mine.body.toString('latin1')).toBe(theirs.body.toString('latin1'));
      // uWSGI adds the Content-Type after the app's; tsuwsgi replaces it, so there is one.
      expect(theirs.contentTypes[0]).toBe('text/xml');
      expect(mine.contentTypes).toEqual([theirs.contentTypes[theirs.contentTypes.length - 1]]);
    });

    it('transforms the app body with the rule params and sets the content_type', async () => {
      expect(await ask(ts.port, '/t/page/')).toMatchObject({
        status: 200,
        contentTypes: ['application/xhtml+xml'],
        body: Buffer.from('<html><body>\n<h1>foo=hello bar=world</h1>\n<p>Empire Burlesque by Bob Dylan</p>\n<p>Hide &amp; seek by Bonnie &lt;3</p>\n</body></html>\n'),
      });
      expect(await ask(ts.port, '/tdefault/')).toMatchObject({ contentTypes: ['text/html'] });
    });

    it("drops the app's Content-Length, which no longer matches (uWSGI keeps it)", async () => {
      const r = await httpRequest(ts.port, { path: '/t/text/withcl' });
      expect(r.body.toString()).toBe('Empire Burlesque;Hide & seek;');
      expect(r.headers['content-length'] === undefined || Number(r.headers['content-length']) === r.body.length).toBe(true);
    });

    it('an empty body passes through untouched, as in uWSGI', async () => {
      const mine = await ask(ts.port, '/t/page/empty');
      const theirs = await ask(uwPort, '/t/page/empty');
      expect(mine).toMatchObject({ status: 200, body: Buffer.alloc(0) });
      expect(theirs).toMatchObject({ status: 200, body: Buffer.alloc(0) });
    });

    it('a body that is not XML answers 500 (uWSGI sends the app head with an empty body)', async () => {
      expect(await ask(uwPort, '/t/page/notxml')).toMatchObject({ status: 200, body: Buffer.alloc(0) });
      expect(await ask(ts.port, '/t/page/notxml')).toMatchObject({ status: 500 });
      await ts.waitForLog(/toxslt: the response body is not XML/);
      await ts.waitForLog(/Couldn't find end of Start Tag notxml/);
    });
  });

  describe('rules refused at start-up, with what to write', () => {
    it.each([
      ['xslt:stylesheet=/a.xsl', /invalid "xslt:" action .*a doc is required/],
      ['xslt:doc=/a.xml', /invalid "xslt:" action .*a stylesheet is required/],
      ['xslt:doc=/a.xml,stylesheet=/a.xsl,content-type=text/plain', /unknown key "content-type" \(allowed: doc, stylesheet, content_type, params/],
      ['toxslt:params=a=1', /invalid "toxslt:" transformation .*a stylesheet is required/],
    ])('%s', async (action, message) => {
      const r = await runTsuwsgi(['--plugin', 'xslt', '--http-socket', '127.0.0.1:0', '--route', `^/ ${action}`]);
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(message);
    });
  });
});
