/**
 * The shared request set (request-set.ts) run against every language bridge that hosts a
 * general-purpose test app: WSGI, PSGI, Rack, WSAPI (lua5.4), JWSGI (Java), PHP (php-cgi) and
 * CGI (a Perl script). Each entry only says where its app answers each case; the cases and
 * their expectations are the same for all.
 *
 * The per-language suites (test/integration/*-conformance.test.ts, *-plugin.test.ts) keep what
 * is specific to each language's API (env keys, input objects, body forms).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { assertRuby, rbFixture } from '../helpers/ruby.ts';
import { fixture, REPO_ROOT, requireExecutable, startServer, tmpDir } from '../helpers/server.ts';
import { describeSharedRequestSet, rawEchoCheck, type LanguageUnderTest } from './request-set.ts';

const json = (body: Buffer): Record<string, unknown> => JSON.parse(body.toString('utf8')) as Record<string, unknown>;

/** The python and ruby suite apps answer /echo with {length, sha256} in JSON. */
function jsonShaEcho(answer: Buffer, sent: Buffer): void {
  const e = json(answer);
  expect({ length: e.length, sha256: e.sha256 }).toEqual({ length: sent.length, sha256: crypto.createHash('sha256').update(sent).digest('hex') });
}

const perlFixture = (name: string): string => path.join(REPO_ROOT, 'test', 'fixtures', 'perl', name);
const luaFixture = (name: string): string => path.join(REPO_ROOT, 'test', 'fixtures', 'lua', name);
const fixtureDir = (lang: string): string => path.join(REPO_ROOT, 'test', 'fixtures', lang);

/** The same binaries are checked, used to compile the fixture and given to the jvm plugin. */
const JAVA = '/usr/bin/java';
const JAVAC = '/usr/bin/javac';
/** Where Suite.java is compiled for this run (made by start, removed by cleanup). */
let jvmClasses = '';

const COOKIES = { 'set-cookie': ['a=1; Path=/', 'b=2; Path=/; HttpOnly'], 'x-multi': ['one', 'two'] };
/** Set-Cookie a=1, b=2 and X-Multi one, two: the repeated headers of the other suite apps. */
const AB_ONE_TWO = { 'set-cookie': ['a=1', 'b=2'], 'x-multi': ['one', 'two'] };
const SUITE_STREAM = { path: '/stream?n=3', body: 'chunk-0\nchunk-1\nchunk-2\n' };

const LANGUAGES: LanguageUnderTest[] = [
  {
    name: 'WSGI (python, test/fixtures/python/suite.py)',
    start: () => startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('suite.py')]),
    hello: { path: '/hello', body: 'Hello World' },
    env: { path: '/env', read: json },
    echo: { path: '/echo?mode=chunks', check: jsonShaEcho },
    ignoresBody: { path: '/hello', body: 'Hello World' },
    repeated: { path: '/cookies', headers: COOKIES, body: 'cookies' },
    stream: SUITE_STREAM,
    error: '/error',
  },
  {
    name: 'Rack (ruby, test/fixtures/ruby/suite.ru under Rack::Lint)',
    assertRuntime: () => assertRuby(['rack']),
    start: () => startServer(['--plugins', 'rack', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '7', '--rack', rbFixture('suite.ru')]),
    hello: { path: '/hello', body: 'Hello World' },
    env: { path: '/env', read: json },
    echo: { path: '/echo?mode=chunks', check: jsonShaEcho },
    ignoresBody: { path: '/hello', body: 'Hello World' },
    repeated: { path: '/cookies', headers: COOKIES, body: 'cookies' },
    stream: SUITE_STREAM,
    error: '/error',
  },
  {
    name: 'PSGI (perl, test/fixtures/perl/suite.psgi)',
    assertRuntime: () => requireExecutable('/usr/bin/perl', 'perl'),
    start: () => startServer(['--plugins', 'psgi', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '5', '--psgi', perlFixture('suite.psgi')]),
    hello: { path: '/hello', body: 'Hello World' },
    env: { path: '/env', read: json },
    echo: {
      path: '/echo?mode=chunks&digest',
      check(answer, sent) {
              const e = json(answer);
        expect({ length: e.length, md5: e.md5 }).toEqual({ length: sent.length, md5: crypto.createHash('md5').update(sent).digest('hex') });
      },
    },
    ignoresBody: { path: '/hello', body: 'Hello World' },
    repeated: { path: '/repeated', headers: AB_ONE_TWO, body: 'ok' },
    stream: { path: '/stream', body: 'ab' + 'c'.repeat(100000) },
    error: '/die',
  },
  {
    name: 'WSAPI (lua5.4, test/fixtures/lua/suite.lua)',
    assertRuntime: () => requireExecutable('/usr/bin/lua5.4', 'lua5.4'),
    start: () => startServer(['--plugins', 'lua', '--http-socket', '127.0.0.1:0', '--lua', luaFixture('suite.lua'), '--lua-bin', '/usr/bin/lua5.4']),
    hello: { path: '/hello', body: 'Hello World' },
    env: { path: '/env', read: json },
    echo: { path: '/echo?mode=chunks', check: rawEchoCheck },
    ignoresBody: { path: '/hello', body: 'Hello World' },
    repeated: { path: '/repeated', headers: AB_ONE_TWO, body: 'repeated' },
    stream: { path: '/stream', body: 'ab' + 'c'.repeat(100000) },
    error: '/die',
  },
  {
    name: 'JWSGI (java, test/fixtures/jvm/Suite.java)',
    assertRuntime() {
      requireExecutable(JAVA, 'java (JDK 17+; Debian: apt-get install default-jdk-headless)');
      requireExecutable(JAVAC, 'javac (JDK 17+; Debian: apt-get install default-jdk-headless)');
    },
    start() {
      jvmClasses = tmpDir('tsuwsgi-shared-jvm-');
      const r = spawnSync(JAVAC, ['--release', '17', '-d', jvmClasses, path.join(fixtureDir('jvm'), 'Suite.java')], { encoding: 'utf8', timeout: 120000 });
      if (r.status !== 0) throw new Error(`javac Suite.java failed: ${r.error?.message ?? r.stderr}`);
      // A cold checkout compiles the bridge jar first (about 2 s), hence the longer wait.
      return startServer(
        ['--plugins', 'jvm,jwsgi', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '8', '--jwsgi', 'Suite', '--jvm-classpath', jvmClasses, '--jvm-bin', JAVA],
        { readyTimeoutMs: 90000 },
      );
    },
    cleanup() {
      if (jvmClasses) fs.rmSync(jvmClasses, { recursive: true, force: true });
    },
    hello: { path: '/hello', body: 'Hello World' },
    env: { path: '/env', read: json },
    echo: { path: '/echo', check: rawEchoCheck },
    ignoresBody: { path: '/hello', body: 'Hello World' },
    repeated: { path: '/repeated', headers: AB_ONE_TWO, body: 'repeated' },
    stream: { path: '/stream', body: 'ab' + 'c'.repeat(100000) },
    error: '/die',
  },
  {
    name: 'PHP (php-cgi, test/fixtures/php/suite.php)',
    assertRuntime: () => requireExecutable('/usr/bin/php-cgi', 'php-cgi (the php plugin runs PHP with it)'),
    // display_errors=0: PHP's core turns a fatal error before any output into a 500 only when
    // display_errors is off; with it on, PHP prints the error into a 200 page. That is PHP's
    // rule under every SAPI, uWSGI's embedded one included (its php plugin sends
    // SG(sapi_headers).http_response_code, which PHP's error handler set to 500), so the
    // production setting (also Debian's php.ini) is pinned here rather than read from the
    // machine's php.ini.
    start: () =>
      startServer(['--plugins', 'php', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '14', '--php-docroot', fixtureDir('php'), '--php-set', 'display_errors=0']),
    hello: { path: '/suite.php/hello', body: 'Hello World' },
    env: { path: '/suite.php/env', read: json },
    echo: { path: '/suite.php/echo', check: rawEchoCheck },
    ignoresBody: { path: '/suite.php/hello', body: 'Hello World' },
    repeated: { path: '/suite.php/repeated', headers: AB_ONE_TWO, body: 'repeated' },
    stream: { path: '/suite.php/stream', body: 'ab' + 'c'.repeat(100000) },
    error: '/suite.php/die',
    // php-cgi answers HEAD with the headers alone: PHP's SAPI layer marks a HEAD request
    // headers-only (SG(request_info).headers_only) and discards the script's output, as it does
    // under uWSGI's embedded SAPI. The bridge gives a GET whose body arrived whole a
    // Content-Length; for HEAD it has no body to count, and sends none rather than a guess.
    headBodyDroppedByRuntime: 'PHP discards the output of a HEAD request itself (main/SAPI.c headers_only)',
  },
  {
    // Every case holds for CGI, the error case included: a script that dies before its header
    // block leaves an invalid CGI response, which is a 500 (uWSGI's cgi plugin sends a bare 500
    // too; tsuwsgi adds a body, docs/cgi.md), and the next script runs as usual.
    name: 'CGI (perl, test/fixtures/cgi/suite.pl)',
    assertRuntime: () => requireExecutable('/usr/bin/perl', 'perl'),
    start: () =>
      startServer(['--plugins', 'cgi', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '9', '--cgi', fixtureDir('cgi'), '--cgi-helper', '.pl=perl']),
    hello: { path: '/suite.pl/hello', body: 'Hello World' },
    env: { path: '/suite.pl/env', read: json },
    echo: { path: '/suite.pl/echo', check: rawEchoCheck },
    ignoresBody: { path: '/suite.pl/hello', body: 'Hello World' },
    repeated: { path: '/suite.pl/repeated', headers: AB_ONE_TWO, body: 'repeated' },
    stream: { path: '/suite.pl/stream', body: 'ab' + 'c'.repeat(100000) },
    error: '/suite.pl/die',
  },
];

for (const lang of LANGUAGES) describeSharedRequestSet(lang);
