/**
 * The core route actions that act outside the request vars (spec/subsystems.md §6.6): raw
 * output (`send:`, `send-crnl:`, `disableheaders:`) checked byte for byte on the wire over
 * --http-socket and --socket, as uWSGI 2.0.21 writes it; `harakiri:`; `chdir:`, `sethome:`,
 * `setfile:`, `setprocname:`, `donotoffload:`; and the status a BREAK without an answer logs.
 * Real tsuwsgi processes in front of routing_actions_app.py ("app:<PATH_INFO>") and
 * slow_app.py.
 */
import fs from 'node:fs';
import { parseResponse, rawHttp, rawRequest, RawHttpConnection } from '../helpers/http-raw.ts';
import path from 'node:path';
import { assertRuby, rbFixture } from '../helpers/ruby.ts';
import { exchange, stdVars, uwsgiPacket } from '../helpers/uwsgi-client.ts';
import { fixture, REPO_ROOT, requireExecutable, sleep, startServer, tmpDir, withServerLog, type ServerHandle } from '../helpers/server.ts';

const APP = ['--wsgi-file', fixture('routing_actions_app.py')];

/** One GET on a fresh connection: every byte until the server closes it. */
async function wire(srv: ServerHandle, path: string): Promise<{ text: string; closed: boolean }> {
  const r = await rawHttp(srv.port, rawRequest('GET', path, { Host: 'x' }), { idleMs: 1500 });
  return { text: r.data.toString('latin1'), closed: r.closed };
}

/** A request line of the log for this path. */
const logLine = (path: string): RegExp => new RegExp(`GET ${path.replace(/[?]/g, '\\?')} => generated (\\d+) bytes in \\d+ msecs \\(HTTP/1\\.1 (\\d+)\\) (\\d+) headers in (\\d+) bytes`);

/** [bytes, status, header count, header bytes] of the log line for this path. */
async function logged(srv: ServerHandle, path: string): Promise<number[]> {
  const m = await srv.waitForLog(logLine(path), 5000);
  return m.slice(1, 5).map(Number);
}

describe('send:, send-crnl:, disableheaders: over --http-socket (one server)', () => {
  let srv: ServerHandle;

  beforeAll(async () => {
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', ...APP, '--processes', '2',
      // raw bytes before the app's response: the app's head is not sent, its body is
      '--route', '^/send send:hello ${REQUEST_URI}|',
      '--route', '^/crnl send-crnl:line ${qs[v]}',
      // a whole response written by routing, then the request ends
      '--route', '^/custom send-crnl:HTTP/1.1 202 Accepted',
      '--route', '^/custom send-crnl:Content-Type: text/plain',
      '--route', '^/custom send-crnl:',
      '--route', '^/custom send:custom body',
      '--route', '^/custom break:',
      '--route', '^/disable disableheaders:',
      // a status prepared by clearheaders goes out (with addheader) before the bytes
      '--route', '^/prepared clearheaders:404 Not Found',
      '--route', '^/prepared addheader:X-Y: 2',
      '--route', '^/prepared send:abc',
      '--route', '^/prepared break:',
      // in the response chain the app's head goes out first, then the bytes, then the body
      '--response-route', '^/rsend send:XYZ',
      '--response-route', '^/rdisable disableheaders:',
      // in the final chain the bytes follow the body
      '--final-route', '^/fsend send:FIN',
      // UTF-8 from the config and latin-1 bytes from the request reach the client unchanged
      '--route', '^/bytes send:é${HTTP_X_B}',
      '--route', '^/bytes break:',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  it('send: writes its bytes first; the app then sends its body without a head; the connection closes', async () => {
    await withServerLog(srv, async () => {
      const r = await wire(srv, '/send');
      expect(r.text).toBe('hello /send|app:/send');
      expect(r.closed).toBe(true);
      // uWSGI: "generated 21 bytes", no header bytes (tsuwsgi logs the app's status; uWSGI 500)
      const [bytes, , , headerBytes] = await logged(srv, '/send');
      expect(bytes).toBe(21);
      expect(headerBytes).toBe(0);
    });
  });

  it('send-crnl: appends \\r\\n', async () => {
    const r = await wire(srv, '/crnl?v=1');
    expect(r.text).toBe('line 1\r\napp:/crnl');
  });

  it('send-crnl: lines and break: make a whole response routing wrote itself', async () => {
    await withServerLog(srv, async () => {
      const r = await wire(srv, '/custom');
      expect(r.text).toBe('HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\n\r\ncustom body');
      expect(r.closed).toBe(true);
      const res = parseResponse(Buffer.from(r.text, 'latin1'), { eof: true })!.response;
      expect(res.status).toBe(202);
      expect(res.body.toString()).toBe('custom body');
      // As uWSGI: the bytes count as body, no status was prepared (500), no headers.
      expect(await logged(srv, '/custom')).toEqual([r.text.length, 500, 0, 0]);
    });
  });

  it('disableheaders: the app body only, and the log shows its status with 0 header bytes', async () => {
    await withServerLog(srv, async () => {
      const r = await wire(srv, '/disable');
      expect(r.text).toBe('app:/disable');
      expect(r.closed).toBe(true);
      const [bytes, status, count, headerBytes] = await logged(srv, '/disable');
      expect([bytes, status, headerBytes]).toEqual([12, 200, 0]);
      expect(count).toBe(2);
    });
  });

  it('send: after clearheaders: in the request chain sends that status and the header edits first', async () => {
    await withServerLog(srv, async () => {
      const r = await wire(srv, '/prepared');
      expect(r.text).toBe('HTTP/1.1 404 Not Found\r\nX-Y: 2\r\n\r\nabc');
      // uWSGI 2.0.21 logs "generated 3 bytes ... (HTTP/1.1 404) 0 headers in 34 bytes"
      const [bytes, status, , headerBytes] = await logged(srv, '/prepared');
      expect([bytes, status, headerBytes]).toEqual([3, 404, 34]);
    });
  });

  it('send: in the response chain goes out after the app head, before its body', async () => {
    const r = await wire(srv, '/rsend');
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\nContent-Type: text\/plain\r\nContent-Length: 10\r\n\r\nXYZapp:\/rsend$/);
    expect(r.closed).toBe(true);
  });

  it('disableheaders: in the response chain drops the app head', async () => {
    const r = await wire(srv, '/rdisable');
    expect(r.text).toBe('app:/rdisable');
  });

  it('send: in the final chain writes after the body, then the connection closes', async () => {
    await withServerLog(srv, async () => {
      const r = await wire(srv, '/fsend');
      expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\napp:\/fsendFIN$/);
      expect(r.closed).toBe(true);
      const [bytes] = await logged(srv, '/fsend');
      expect(bytes).toBe('app:/fsend'.length + 3);
    });
  });

  it('bytes: UTF-8 of the rule text, latin-1 bytes of request vars', async () => {
    const r = await rawHttp(srv.port, Buffer.concat([Buffer.from('GET /bytes HTTP/1.1\r\nHost: x\r\nX-B: '), Buffer.from([0xff, 0x41]), Buffer.from('\r\n\r\n')]), { idleMs: 1500 });
    expect([...r.data]).toEqual([0xc3, 0xa9, 0xff, 0x41]);
  });

  it.each([
    ['/disable', 'app:/disable'],
    ['/send', 'hello /send|app:/send'],
  ])('a keep-alive connection: a slow framed response, then the raw output of %s, then the connection closes', async (p, expected) => {
    const c = await RawHttpConnection.connect(srv.port);
    try {
      // Pipelined behind a slower response (two app workers: the raw one is ready first), the
      // raw output waits for it to be written, then follows it.
      await c.write(Buffer.concat([rawRequest('GET', '/sleep', { Host: 'x' }), rawRequest('GET', p, { Host: 'x' }), rawRequest('GET', '/never', { Host: 'x' })]));
      const deadline = Date.now() + 5000;
      while (!c.closed && Date.now() < deadline) await sleep(20);
      expect(c.closed).toBe(true);
      const data = Buffer.from(c.pending);
      const first = parseResponse(data)!;
      expect(first.response.status).toBe(200);
      expect(first.response.body.toString()).toBe('app:/sleep');
      // The raw output, and nothing for the request after it: the connection ended.
      expect(data.subarray(first.consumed).toString()).toBe(expected);
    } finally {
      c.close();
    }
  });
});

describe('send:, send-crnl:, disableheaders: over --socket (uwsgi protocol)', () => {
  it('writes the same bytes as uWSGI and closes', async () => {
    const srv = await startServer([
      '--socket', '127.0.0.1:0', ...APP,
      '--route', '^/crnl send-crnl:hello',
      '--route', '^/disable disableheaders:',
      '--route', '^/bye send:bye',
      '--route', '^/bye break:',
    ]);
    await withServerLog(srv, async () => {
      const addr = srv.sockets[0]!;
      const req = (p: string): Buffer => uwsgiPacket(stdVars({ PATH_INFO: p, REQUEST_URI: p, SCRIPT_NAME: '' }));
      // Byte for byte what uWSGI 2.0.21 sends for these rules.
      const crnl = await exchange(addr, req('/crnl'));
      expect(crnl.data.toString()).toBe('hello\r\napp:/crnl');
      expect(crnl.end).toBe('close');
      expect((await exchange(addr, req('/disable'))).data.toString()).toBe('app:/disable');
      const bye = await exchange(addr, req('/bye'));
      expect(bye.data.toString()).toBe('bye');
      expect(bye.end).toBe('close');
      // Without the rules, the framed response.
      expect((await exchange(addr, req('/x'))).data.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\napp:\/x$/);
      expect(await logged(srv, '/bye')).toEqual([3, 500, 0, 0]);
    });
    expect(await srv.stop()).toBe(0);
  });
});

describe('harakiri:', () => {
  it('sets a harakiri for matching requests only, without --harakiri', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('slow_app.py'), '--processes', '2', '--route', '^/short harakiri:1']);
    await withServerLog(srv, async () => {
      const t0 = Date.now();
      const [short, long] = await Promise.all([
        rawHttp(srv.port, rawRequest('GET', '/short?s=6', { Host: 'x', Connection: 'close' }), { idleMs: 8000, timeoutMs: 10000 }),
        rawHttp(srv.port, rawRequest('GET', '/long?s=2.5', { Host: 'x', Connection: 'close' }), { idleMs: 8000, timeoutMs: 10000 }),
      ]);
      // harakiri is checked every second: killed between 1 and ~2.5 s, long before its 6 s.
      const shortRes = parseResponse(short.data, { eof: true })!.response;
      expect(shortRes.status).toBe(504);
      const longRes = parseResponse(long.data, { eof: true })!.response;
      expect(longRes.status).toBe(200);
      expect(longRes.body.toString()).toMatch(/^done \d+$/);
      expect(Date.now() - t0).toBeLessThan(5500);
      await srv.waitForLog(/HARAKIRI ON WORKER/);
      expect(srv.logs()).toMatch(/HARAKIRI: .* WAS managing request \/short\?s=6/);
      expect(srv.logs()).not.toMatch(/HARAKIRI: .* WAS managing request \/long/);
    });
    expect(await srv.stop()).toBe(0);
  }, 30000);

  it('next to --harakiri, the first timer to expire wins (as uWSGI: a rule cannot raise it)', async () => {
    const srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('slow_app.py'), '--harakiri', '1', '--route-run', 'harakiri:30']);
    await withServerLog(srv, async () => {
      const t0 = Date.now();
      const r = await rawHttp(srv.port, rawRequest('GET', '/x?s=6', { Host: 'x', Connection: 'close' }), { idleMs: 8000, timeoutMs: 10000 });
      expect(parseResponse(r.data, { eof: true })!.response.status).toBe(504);
      expect(Date.now() - t0).toBeLessThan(4000);
    });
    expect(await srv.stop()).toBe(0);
  }, 30000);
});

describe('chdir:, sethome:, setfile:, setprocname:, donotoffload: (one server)', () => {
  let srv: ServerHandle;
  const dir = fs.realpathSync(tmpDir('tsuwsgi-chdir-'));

  beforeAll(async () => {
    srv = await startServer([
      '--http-socket', '127.0.0.1:0', ...APP,
      '--route', `^/json/cd chdir:${dir}`,
      '--route', '^/json/bad chdir:/nonexistent/dir',
      '--route', '^/json/vars sethome:/venvs/${qs[v]}',
      '--route', '^/json/vars setfile:/apps/${qs[v]}.py',
      '--route', '^/pn setprocname:tsuwsgi-pn-${qs[n]}',
      '--offload-threads', '1',
      '--route', '^/nooff donotoffload:',
      '--route-run', 'offload:',
    ]);
  });
  afterAll(async () => {
    expect(await srv.stop()).toBe(0);
  });

  const json = async (p: string): Promise<Record<string, unknown>> => {
    const r = await rawHttp(srv.port, rawRequest('GET', p, { Host: 'x', Connection: 'close' }));
    return JSON.parse(parseResponse(r.data, { eof: true })!.response.body.toString()) as Record<string, unknown>;
  };

  it('chdir: the app runs in the directory, and stays there for later requests (as uWSGI)', async () => {
    await withServerLog(srv, async () => {
      const before = await json('/json/x');
      expect(before.cwd).not.toBe(dir);
      const cd = await json('/json/cd');
      expect(cd.cwd).toBe(dir);
      expect(cd.chdir).toBe(dir);
      // One app worker: the next request runs where the last chdir left it.
      expect((await json('/json/y')).cwd).toBe(dir);
    });
  });

  it('chdir: to a missing directory closes the request with uWSGI\'s log line', async () => {
    await withServerLog(srv, async () => {
      const r = await wire(srv, '/json/bad');
      expect(r.text).toBe('');
      expect(r.closed).toBe(true);
      await srv.waitForLog(/uwsgi_router_chdir_func\(\)\/chdir\(\): No such file or directory \[\/nonexistent\/dir\] during GET \/json\/bad/);
      expect(await logged(srv, '/json/bad')).toEqual([0, 500, 0, 0]);
    });
  });

  it('sethome: and setfile: set UWSGI_HOME and UWSGI_FILE for the app', async () => {
    const r = await json('/json/vars?v=one');
    expect(r.home).toBe('/venvs/one');
    expect(r.file).toBe('/apps/one.py');
    expect((await json('/json/novars')).home).toBeNull();
  });

  it('setprocname: renames the process that ran the rule (the only one without --master)', async () => {
    await withServerLog(srv, async () => {
      const r = await wire(srv, '/pn?n=abc');
      expect(r.text).toMatch(/app:\/pn$/);
      const cmd = fs.readFileSync(`/proc/${srv.pid}/cmdline`, 'latin1').replace(/\0+$/, '');
      expect(cmd).toBe('tsuwsgi-pn-abc');
    });
  });

  it('donotoffload: an offload: after it breaks the request, as without offload threads', async () => {
    await withServerLog(srv, async () => {
      const ok = await wire(srv, '/plain');
      expect(ok.text).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*app:\/plain$/);
      const r = await wire(srv, '/nooff');
      expect(r.text).toBe('');
      await srv.waitForLog(/unable to use the offload transformation without offload threads !!! \(a donotoffload: rule/);
    });
  });
});

describe('chdir: in the Ruby and Perl bridges', () => {
  it.each([
    ['rack', () => assertRuby([]), () => ['--plugins', 'rack', '--rack', rbFixture('cwd.ru')]],
    ['psgi', () => requireExecutable('/usr/bin/perl', 'the PSGI bridge'), () => ['--plugins', 'psgi', '--psgi', path.join(REPO_ROOT, 'test', 'fixtures', 'perl', 'cwd.psgi')]],
  ])('%s: the app runs in the directory from then on', async (_name, check, app) => {
    check();
    const dir = fs.realpathSync(tmpDir('tsuwsgi-chdir-'));
    const srv = await startServer(['--http-socket', '127.0.0.1:0', ...app(), '--route', `^/cd chdir:${dir}`]);
    await withServerLog(srv, async () => {
      const body = async (p: string): Promise<string> => parseResponse((await rawHttp(srv.port, rawRequest('GET', p, { Host: 'x', Connection: 'close' }))).data, { eof: true })!.response.body.toString();
      expect(await body('/x')).not.toMatch(new RegExp(`^${dir} `));
      expect(await body('/cd')).toBe(`${dir} ${dir}`);
      expect(await body('/y')).toBe(`${dir} `);
    });
    expect(await srv.stop()).toBe(0);
  });
});

describe('a BREAK without an answer logs the status prepared so far (uWSGI)', () => {
  it('error chain, response chain and request chain', async () => {
    const srv = await startServer([
      '--http-socket', '127.0.0.1:0', ...APP,
      '--error-route-status', '404 break:',
      '--response-route', '^/rdrop break:',
      '--response-route', '^/cleared clearheaders:410 Gone',
      '--response-route', '^/cleared break:',
      '--route', '^/qdrop break:',
    ]);
    await withServerLog(srv, async () => {
      for (const p of ['/status/404', '/rdrop', '/cleared', '/qdrop']) {
        const r = await wire(srv, p);
        expect(r.text).toBe('');
        expect(r.closed).toBe(true);
      }
      expect((await logged(srv, '/status/404'))[1]).toBe(404);
      expect((await logged(srv, '/rdrop'))[1]).toBe(200);
      expect((await logged(srv, '/cleared'))[1]).toBe(410);
      // Nothing prepared a status: uWSGI logs 500.
      expect((await logged(srv, '/qdrop'))[1]).toBe(500);
    });
    expect(await srv.stop()).toBe(0);
  });
});
