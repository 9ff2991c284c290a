/**
 * The shared request set (request-set.ts) run against every language bridge that hosts a
 * general-purpose test app: WSGI, PSGI, Rack and WSAPI (lua5.4). Each entry only says where
 * its app answers each case; the cases and their expectations are the same for all.
 *
 * The per-language suites (test/integration/*-conformance.test.ts, *-plugin.test.ts) keep what
 * is specific to each language's API (env keys, input objects, body forms).
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { assertRuby, rbFixture } from '../helpers/ruby.ts';
import { fixture, REPO_ROOT, requireExecutable, startServer } from '../helpers/server.ts';
import { describeSharedRequestSet, rawEchoCheck, type LanguageUnderTest } from './request-set.ts';

const json = (body: Buffer): Record<string, unknown> => JSON.parse(body.toString('utf8')) as Record<string, unknown>;

/** The python and ruby suite apps answer /echo with {length, sha256} in JSON. */
function jsonShaEcho(answer: Buffer, sent: Buffer): void {
  const e = json(answer);
  expect({ length: e.length, sha256: e.sha256 }).toEqual({ length: sent.length, sha256: crypto.createHash('sha256').update(sent).digest('hex') });
}

const perlFixture = (name: string): string => path.join(REPO_ROOT, 'test', 'fixtures', 'perl', name);
const luaFixture = (name: string): string => path.join(REPO_ROOT, 'test', 'fixtures', 'lua', name);

const COOKIES = { 'set-cookie': ['a=1; Path=/', 'b=2; Path=/; HttpOnly'], 'x-multi': ['one', 'two'] };
const SUITE_STREAM = { path: '/stream?n=3', body: 'chunk-0\nchunk-1\nchunk-2\n' };

const LANGUAGES: LanguageUnderTest[] = [
  {
    name: 'WSGI (python, test/fixtures/python/suite.py)',
    start: () => startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('suite.py')]),
    hello: { path: '/hello', body: 'Hello World' },
    env: { path: '/env', read: json },
    echo: { path: '/echo?mode=chunks', check: jsonShaEcho },
    ignoresBody: '/hello',
    repeated: { path: '/cookies', headers: COOKIES },
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
    ignoresBody: '/hello',
    repeated: { path: '/cookies', headers: COOKIES },
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
    ignoresBody: '/hello',
    repeated: { path: '/repeated', headers: { 'set-cookie': ['a=1', 'b=2'], 'x-multi': ['one', 'two'] } },
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
    ignoresBody: '/hello',
    repeated: { path: '/repeated', headers: { 'set-cookie': ['a=1', 'b=2'], 'x-multi': ['one', 'two'] } },
    stream: { path: '/stream', body: 'ab' + 'c'.repeat(100000) },
    error: '/die',
  },
];

for (const lang of LANGUAGES) describeSharedRequestSet(lang);
