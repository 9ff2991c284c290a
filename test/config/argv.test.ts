/**
 * Command line (spec/core.md §4.1 unified option model, §4.2 command line & positional files).
 */
import { InvalidOptionError, UnknownOptionError, ConfigError } from '../../core/errors.ts';
import { ResolvedOptions } from '../../core/options/resolved.ts';
import { all, cleanupTempDirs, get, load, pairs, tempDir, write } from './helpers.ts';

afterEach(cleanupTempDirs);

describe('the command line (§4.1, §4.2)', () => {
  it('reads --opt value and --opt=value the same way', () => {
    const config = load(['--http-socket', ':9090', '--socket=127.0.0.1:3031']);
    expect(pairs(config)).toEqual(['http-socket = :9090', 'socket = 127.0.0.1:3031']);
  });

  it('gives the same option list as the equivalent ini file (§4.1 accept 1)', () => {
    const dir = tempDir();
    write(dir, 'hello.ini', '[uwsgi]\nhttp-socket = :9090\nmodule = hello\n');
    const fromArgv = load(['--http-socket', ':9090', '--module', 'hello']);
    const fromIni = load(['hello.ini'], { cwd: dir });
    const strip = (c: typeof fromArgv) => c.entries.map(({ key, value }) => ({ key, value }));
    expect(strip(fromIni)).toEqual(strip(fromArgv));
  });

  it('takes flags without a value, and keeps --master=false so the flag reads false (§4.1)', () => {
    const on = new ResolvedOptions(load(['--master']).entries);
    const off = new ResolvedOptions(load(['--master=false']).entries);
    expect(on.flag('master')).toBe(true);
    expect(off.flag('master')).toBe(false);
    expect(off.string('master')).toBe('false');
  });

  it('does not let a flag swallow the next word', () => {
    const config = load(['--master', 'app.py']);
    expect(pairs(config)).toEqual(['master = true', '__positional__ = app.py']);
  });

  it('maps aliases to the option name', () => {
    expect(pairs(load(['--workers', '4', '--uwsgi-socket', ':1']))).toEqual(['processes = 4', 'socket = :1']);
  });

  it('reads short options: -s :3031, -s:3031, -p 4, -p4 and flag clusters -MT', () => {
    const config = load(['-s', ':3031', '-s:3032', '-p', '4', '-MT', '-p8']);
    expect(pairs(config)).toEqual([
      'socket = :3031',
      'socket = :3032',
      'processes = 4',
      'master = true',
      'enable-threads = true',
      'processes = 8',
    ]);
  });

  it('lets a cluster end with an option that takes the rest as its value (-Ms:3031)', () => {
    expect(pairs(load(['-Ms:3031']))).toEqual(['master = true', 'socket = :3031']);
  });

  it('keeps every occurrence of a repeatable option, in order', () => {
    const config = load(['--socket', ':1', '--http-socket', ':2', '--socket', ':3']);
    expect(all(config, 'socket')).toEqual([':1', ':3']);
  });

  it('reads optional-argument options alone, with =value, or with a following word not starting with -', () => {
    expect(pairs(load(['--chmod-socket']))).toEqual(['chmod-socket = true']);
    expect(pairs(load(['--chmod-socket=644']))).toEqual(['chmod-socket = 644']);
    expect(pairs(load(['--chmod-socket', '660']))).toEqual(['chmod-socket = 660']);
    expect(pairs(load(['--chmod-socket', '--master']))).toEqual(['chmod-socket = true', 'master = true']);
    expect(pairs(load(['-C644']))).toEqual(['chmod-socket = 644']);
  });

  it('takes the next word as the value of a required-argument option, whatever it looks like (getopt)', () => {
    expect(pairs(load(['--print', '--not-an-option']))).toEqual(['print = --not-an-option']);
  });

  it('fails with an error naming the option when its required value is missing', () => {
    expect(() => load(['--master', '--socket'])).toThrow(InvalidOptionError);
    expect(() => load(['--socket'])).toThrow(/option "--socket" requires a value/);
    expect(() => load(['-s'])).toThrow(/option "-s" \(--socket\) requires a value/);
  });

  it('rejects an unknown --foo and explains how to define a placeholder (§4.1 accept 3)', () => {
    let error: unknown;
    try {
      load(['--foo=bar', '--http-socket', ':9090']);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UnknownOptionError);
    expect((error as UnknownOptionError).code).toBe('TSUWSGI_E_UNKNOWN_OPTION');
    expect((error as Error).message).toBe(
      'unknown option "--foo": did you mean "--for"? (to define a placeholder use --set-ph foo=VALUE)',
    );
    expect(() => load(['--xylophone'])).toThrow(
      new UnknownOptionError('unknown option "--xylophone"; to define a placeholder use --set-ph xylophone=VALUE'),
    );
  });

  it('accepts the same value as a placeholder with --set-ph (§4.1 accept 3)', () => {
    const config = load(['--set-ph', 'foo=bar', '--http-socket', ':9090']);
    expect(get(config, 'foo')).toBe('bar');
    expect(config.placeholders.has('foo')).toBe(true);
  });

  it('suggests the closest option names for a typo', () => {
    expect(() => load(['--sockett', ':1'])).toThrow(/unknown option "--sockett": did you mean "--socket"\?/);
    expect(() => load(['--proceses', '2'])).toThrow(/did you mean "--processes"\?/);
  });

  it('lists at most three suggestions', () => {
    let message = '';
    try {
      load(['--soc', 'x']);
    } catch (err) {
      message = (err as Error).message;
    }
    const suggested = message.match(/"--[a-z-]+"/g) ?? [];
    expect(suggested.length).toBeGreaterThan(1);
    expect(suggested.length - 1).toBeLessThanOrEqual(3); // the first quote is the unknown option itself
  });

  it('names the plugin that provides an option when that plugin is not loaded', () => {
    expect(() => load(['--python-path', '/srv'])).toThrow(
      new UnknownOptionError('unknown option "--python-path": it is provided by plugin "python", which is not loaded; add --plugins python'),
    );
  });

  it('rejects an unknown short option', () => {
    expect(() => load(['-Z'])).toThrow(UnknownOptionError);
  });

  it('sets any option or placeholder with --set / -S KEY=VALUE (§4.1)', () => {
    const config = load(['--set', 'socket=:3031', '-S', 'workers=2', '-S', 'mine=x']);
    expect(get(config, 'socket')).toBe(':3031');
    expect(get(config, 'processes')).toBe('2');
    expect(get(config, 'mine')).toBe('x');
    expect(config.placeholders.has('mine')).toBe(true);
    expect(config.placeholders.has('socket')).toBe(false);
  });

  it('keeps a non-config bare argument as __positional__ for the plugins (app.py)', () => {
    const config = load(['--master', 'app.py', 'module:callable']);
    expect(all(config, '__positional__')).toEqual(['app.py', 'module:callable']);
  });

  it('loads bare arguments after every option, as getopt permutes (§4.2)', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[uwsgi]\nsocket = :2\n');
    const config = load(['conf.ini', '--socket', ':1'], { cwd: dir });
    expect(pairs(config)).toEqual(['socket = :1', 'socket = :2']);
  });

  it('reads `U conf.ini` like `U --ini conf.ini`, minus the ini line (§4.2 accept)', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[uwsgi]\nsocket = :3031\nmaster = true\n');
    const bare = load(['conf.ini'], { cwd: dir });
    const forced = load(['--ini', 'conf.ini'], { cwd: dir });
    expect(pairs(forced)).toEqual(['ini = conf.ini', ...pairs(bare)]);
  });

  it('does not read conf.foo as a config when bare, but does with --ini (§4.2 accept)', () => {
    const dir = tempDir();
    write(dir, 'conf.foo', '[uwsgi]\nsocket = :3031\n');
    expect(pairs(load(['conf.foo'], { cwd: dir }))).toEqual(['__positional__ = conf.foo']);
    expect(get(load(['--ini', 'conf.foo'], { cwd: dir }), 'socket')).toBe(':3031');
  });

  it('does not read a bare file.ini:section argument as a config (live reference errata)', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[app1]\nfoo = 1\n');
    expect(pairs(load(['conf.ini:app1'], { cwd: dir }))).toEqual(['__positional__ = conf.ini:app1']);
  });

  it('ignores bare [..] arguments (§4.2)', () => {
    expect(load(['[anything]']).entries).toEqual([]);
  });

  it('picks the format of a bare config argument by its extension (.xml, .yaml, .yml, .json, .js)', () => {
    const dir = tempDir();
    write(dir, 'a.xml', '<uwsgi><foo>xml</foo></uwsgi>');
    write(dir, 'a.yaml', 'uwsgi:\n  foo: yaml\n');
    write(dir, 'a.yml', 'uwsgi:\n  foo: yml\n');
    write(dir, 'a.json', '{"uwsgi": {"foo": "json"}}');
    write(dir, 'a.js', '{"uwsgi": {"foo": "js"}}');
    for (const [file, value] of [['a.xml', 'xml'], ['a.yaml', 'yaml'], ['a.yml', 'yml'], ['a.json', 'json'], ['a.js', 'js']] as const) {
      expect(get(load([file], { cwd: dir }), 'foo')).toBe(value);
    }
    expect(get(load(['-y', 'a.yml', '-j', 'a.json'], { cwd: dir }), 'foo')).toBe('yml');
  });

  it('treats everything after -- as bare arguments', () => {
    expect(pairs(load(['--master', '--', '--socket']))).toEqual(['master = true', '__positional__ = --socket']);
  });

  it('records where each option came from', () => {
    const config = load(['--socket', ':1']);
    expect(config.entries[0]?.origin).toBe('command line');
  });
});
