/**
 * INI format (spec/core.md §4.4) and config sources (§4.6).
 */
import { ConfigError } from '../../core/errors.ts';
import { parseIni } from '../../core/config/ini.ts';
import { ResolvedOptions } from '../../core/options/resolved.ts';
import { all, cleanupTempDirs, get, load, pairs, tempDir, write } from './helpers.ts';
import { startFileServer } from './file-server.ts';

afterEach(cleanupTempDirs);

describe('INI files (§4.4)', () => {
  it('keeps both sockets, the workers and the master flag (accept 1)', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[uwsgi]\nsocket = /tmp/a.sock\nsocket = 127.0.0.1:8000\nworkers = 3\nmaster = true\n');
    const config = load(['conf.ini'], { cwd: dir });
    expect(all(config, 'socket')).toEqual(['/tmp/a.sock', '127.0.0.1:8000']);
    expect(get(config, 'processes')).toBe('3');
    expect(new ResolvedOptions(config.entries).flag('master')).toBe(true);
  });

  it('splits on the first = only and has no inline comments (accept 2)', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[uwsgi]\nfoo = a=b ; c\nlogger = file:/tmp/foobar # This logger\n');
    const config = load(['conf.ini'], { cwd: dir });
    expect(get(config, 'foo')).toBe('a=b ; c');
    expect(get(config, 'logger')).toBe('file:/tmp/foobar # This logger');
  });

  it('reads the section asked with file.ini:section, else [uwsgi] (accept 3)', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[app1]\nfoo = 1\n[uwsgi]\nfoo = 2\n');
    expect(get(load(['--ini', 'conf.ini:app1'], { cwd: dir }), 'foo')).toBe('1');
    expect(get(load(['--ini', 'conf.ini'], { cwd: dir }), 'foo')).toBe('2');
    expect(get(load(['conf.ini'], { cwd: dir }), 'foo')).toBe('2');
  });

  it('parses CRLF files identically (accept 4)', () => {
    const dir = tempDir();
    write(dir, 'lf.ini', '[uwsgi]\nsocket = :1\nmaster\nfoo = a b\n');
    write(dir, 'crlf.ini', '[uwsgi]\r\nsocket = :1\r\nmaster\r\nfoo = a b\r\n');
    const strip = (c: ReturnType<typeof load>) => c.entries.map(({ key, value }) => [key, value]);
    expect(strip(load(['crlf.ini'], { cwd: dir }))).toEqual(strip(load(['lf.ini'], { cwd: dir })));
  });

  it('warns about a missing section and goes on (accept 5)', () => {
    const dir = tempDir();
    write(dir, 'nosection.ini', '[uwsgi]\nfoo = 1\n');
    const config = load(['--ini', 'nosection.ini:missing'], { cwd: dir });
    expect(get(config, 'foo')).toBeUndefined();
    expect(config.logs).toContain('*** WARNING: Can\'t find section "missing" in INI configuration file nosection.ini ***');
  });

  it('logs the file it reads', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[uwsgi]\nfoo = 1\n');
    expect(load(['--ini', 'conf.ini'], { cwd: dir }).logs).toContain('[uWSGI] getting INI configuration from conf.ini');
  });

  it('treats a line without = as a key with an empty value (master ≡ master = true)', () => {
    const dir = tempDir();
    write(dir, 'a.ini', '[uwsgi]\nmaster\n');
    write(dir, 'b.ini', '[uwsgi]\nmaster = false\n');
    expect(new ResolvedOptions(load(['a.ini'], { cwd: dir }).entries).flag('master')).toBe(true);
    expect(new ResolvedOptions(load(['b.ini'], { cwd: dir }).entries).flag('master')).toBe(false);
  });

  it('skips ; and # comment lines, blank lines, and other sections', () => {
    const result = parseIni('; top\n[other]\nx = 1\n[uwsgi]\n  # note\n\n\tfoo\t=\t bar \t\n;y = 2\n[tail]\nz = 3');
    expect(result.lines).toEqual([{ key: 'foo', value: 'bar', line: 7 }]);
    expect(result.foundSection).toBe(true);
  });

  it('keeps duplicate keys in order, keys case-sensitive, quotes literal', () => {
    const result = parseIni('[uwsgi]\nA = "1"\na = 2\na = 3\n');
    expect(result.lines.map((l) => [l.key, l.value])).toEqual([
      ['A', '"1"'],
      ['a', '2'],
      ['a', '3'],
    ]);
  });

  it('reads a file without a final newline', () => {
    expect(parseIni('[uwsgi]\nfoo = 1').lines).toEqual([{ key: 'foo', value: '1', line: 2 }]);
  });

  it('records file and line as the origin', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[uwsgi]\n\nsocket = :1\n');
    expect(load(['conf.ini'], { cwd: dir }).entries[0]?.origin).toBe('conf.ini:3');
  });

  it('reads `ini = :section` from the last INI file read (§4.4)', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[uwsgi]\nfoo = 1\nini = :extra\nbar = 3\n[extra]\nbaz = 2\n');
    expect(pairs(load(['conf.ini'], { cwd: dir }))).toEqual(['foo = 1', 'ini = :extra', 'baz = 2', 'bar = 3']);
  });

  it('reads another section of the embedded config with `ini = :section`', () => {
    const config = load([], { embeddedIni: '[uwsgi]\nsocket = :1\nini = :prod\n[prod]\nprocesses = 8\n' });
    expect(pairs(config)).toEqual(['socket = :1', 'ini = :prod', 'processes = 8']);
  });

  it('fails on an empty file name when there is no embedded config', () => {
    expect(() => load(['--ini', ''])).toThrow(/cannot read config file "" \(command line\): empty file name and no embedded config/);
  });

  it('fails with the file name and the reason when a config file cannot be read', () => {
    const dir = tempDir();
    expect(() => load(['--ini', 'missing.ini'], { cwd: dir })).toThrow(ConfigError);
    expect(() => load(['--ini', 'missing.ini'], { cwd: dir })).toThrow(
      /^cannot read config file missing\.ini: no such file or directory \(ENOENT\)$/,
    );
  });

  it('reads the embedded config first, then UWSGI_* variables, then the command line (§4.3, §4.17)', () => {
    const config = load(['--socket', ':3'], {
      embeddedIni: '[uwsgi]\nsocket = :1\n',
      env: { UWSGI_SOCKET: ':2' },
    });
    expect(all(config, 'socket')).toEqual([':1', ':2', ':3']);
    expect(config.entries.map((e) => e.origin)).toEqual(['embedded config:2', 'env UWSGI_SOCKET', 'command line']);
  });
});

describe('config sources (§4.6)', () => {
  it('reads an INI file from stdin with --ini -', () => {
    const config = load(['--ini', '-'], { readStdin: () => '[uwsgi]\nfoo = bar\n' });
    expect(get(config, 'foo')).toBe('bar');
  });

  it('reads an INI file from the output of a command with exec://', () => {
    const config = load(['--ini', 'exec://printf "[uwsgi]\\nfoo=1"']);
    expect(get(config, 'foo')).toBe('1');
  });

  it('reads a config from an http:// URL, with a :section after the path (accept §4.6)', async () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nfoo = from-http\n[other]\nfoo = other-section\n');
    // The loader is synchronous, so the server must live in another process.
    const server = await startFileServer(dir);
    try {
      expect(get(load(['--ini', `${server.url}/c.ini`]), 'foo')).toBe('from-http');
      expect(get(load(['--ini', `${server.url}/c.ini:other`]), 'foo')).toBe('other-section');
      expect(get(load(['--set', `y=@(${server.url}/c.ini)`]), 'y')).toContain('foo = from-http');
      expect(() => load(['--ini', `${server.url}/missing.ini`])).toThrow(/cannot read config file .*missing\.ini: cannot fetch .*: HTTP status 404/);
    } finally {
      server.stop();
    }
  });

  it('says why an unreachable URL cannot be read', () => {
    expect(() => load(['--ini', 'http://127.0.0.1:1/c.ini'])).toThrow(/cannot read config file http:\/\/127\.0\.0\.1:1\/c\.ini: cannot fetch/);
  });
});
