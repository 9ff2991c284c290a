/**
 * Placeholders (spec/core.md §4.8), $(ENV) / @(file) and the expansion order (§4.9),
 * placeholder math (§4.10).
 */
import { ConfigError } from '../../core/errors.ts';
import { evaluatePlaceholder, findReferences } from '../../core/config/expand.ts';
import { cleanupTempDirs, get, load, tempDir, write } from './helpers.ts';

afterEach(cleanupTempDirs);

function loadIni(text: string, extra: Parameters<typeof load>[1] = {}): ReturnType<typeof load> {
  const dir = tempDir();
  write(dir, 'conf.ini', text);
  return load(['conf.ini'], { cwd: dir, ...extra });
}

describe('placeholders (§4.8)', () => {
  it('expands %(name) from plain keys and set-ph, and leaves undefined ones verbatim (accept)', () => {
    const config = loadIni(
      '[uwsgi]\nmy_domain = uwsgi.it\nset-ph = base=/var/www\nchdir2x = %(base)/%(my_domain)\ns = /tmp/%(my_domain).sock\nu = %(nope)\n',
    );
    expect(get(config, 'chdir2x')).toBe('/var/www/uwsgi.it');
    expect(get(config, 's')).toBe('/tmp/uwsgi.it.sock');
    expect(get(config, 'u')).toBe('%(nope)');
  });

  it('reads real options too, first occurrence wins', () => {
    const config = loadIni('[uwsgi]\nsocket = :1\nsocket = :2\nfoobar = %(socket)\nw = %(workers)\nprocesses = 4\n');
    expect(get(config, 'foobar')).toBe(':1');
    // an alias finds its option (uWSGI would need the exact spelling)
    expect(get(config, 'w')).toBe('4');
  });

  it('lists the keys that are not options as placeholders', () => {
    const config = loadIni('[uwsgi]\nsocket = :1\nmine = 1\nset-ph = other=2\n');
    expect([...config.placeholders].sort()).toEqual(['mine', 'other']);
  });

  it('trims both sides of set-ph KEY = VALUE (deliberate fix of uWSGI 2.0)', () => {
    const config = loadIni('[uwsgi]\nset-ph = max_customer_address_space = 64\nlimit = %(max_customer_address_space)\n');
    expect(get(config, 'max_customer_address_space')).toBe('64');
    expect(get(config, 'limit')).toBe('64');
  });

  it('refuses set-ph of a real option name with uWSGI\'s message', () => {
    expect(() => load(['--set-ph', 'socket=:1'])).toThrow(ConfigError);
    expect(() => load(['--set-ph', 'workers=2'])).toThrow(
      /you cannot use workers as a placeholder, it is already available as an option/,
    );
  });

  it('refuses set-ph without =', () => {
    expect(() => load(['--set-ph', 'novalue'])).toThrow(/invalid placeholder\/--set value "novalue"/);
  });

  it('does not expand set-ph values (as uWSGI 2.0.2)', () => {
    const config = load(['--set-ph', 'w=$(FOO)', '--set-ph', 'v=%(w)'], { env: { FOO: 'bar' } });
    expect(get(config, 'w')).toBe('$(FOO)');
    expect(get(config, 'v')).toBe('%(w)');
  });

  it('resolves backward chains fully', () => {
    const config = loadIni('[uwsgi]\nx = 9\ny = %(x)\nz = %(y)\n');
    expect(get(config, 'z')).toBe('9');
  });

  it('leaves forward chains one step unexpanded (live reference errata)', () => {
    const config = loadIni('[uwsgi]\nz = %(y)\ny = %(x)\nx = 9\n');
    expect(get(config, 'z')).toBe('%(x)');
    expect(get(config, 'y')).toBe('9');
  });

  it('fails on a self-referencing placeholder instead of hanging', () => {
    expect(() => loadIni('[uwsgi]\na = x%(a)\n')).toThrow(/placeholder cycle: a -> a/);
  });

  it('fails on a placeholder cycle and shows it', () => {
    expect(() => loadIni('[uwsgi]\na = %(b)\nb = %(c)\nc = %(a)\n')).toThrow(
      new ConfigError('placeholder cycle: a -> b -> c -> a (conf.ini:2); a placeholder cannot refer to itself, directly or through others'),
    );
  });

  it('does not call a later occurrence of a key referring to an earlier one a cycle', () => {
    const config = loadIni('[uwsgi]\nsocket = :1\nsocket = %(socket)0\n');
    expect(config.entries.map((e) => e.value)).toEqual([':1', ':10']);
  });
});

describe('$(ENV), @(file) and the expansion order (§4.9)', () => {
  it('expands $(VAR) from the environment (accept)', () => {
    expect(get(load(['--set', 'x=$(FOO)'], { env: { FOO: 'bar' } }), 'x')).toBe('bar');
  });

  it('leaves an unset $(VAR) verbatim (accept)', () => {
    expect(get(load(['--set', 'z=$(NOT_SET_VAR)']), 'z')).toBe('$(NOT_SET_VAR)');
  });

  it('reads @(file) and strips one trailing newline (accept)', () => {
    const dir = tempDir();
    write(dir, 'h', 'hello\n');
    write(dir, 'two', 'x\n\n');
    const config = load(['--set', 'y=@(h)', '--set', 't=[@(two)]'], { cwd: dir });
    expect(get(config, 'y')).toBe('hello');
    expect(get(config, 't')).toBe('[x\n]');
  });

  it('runs $ before @, so @($(HOME)/f) works (accept)', () => {
    const home = tempDir();
    write(home, 'f', 'secret\n');
    const config = loadIni('[uwsgi]\na = @($(HOME)/f)\n', { env: { HOME: home } });
    expect(get(config, 'a')).toBe('secret');
  });

  it('runs @ before %, and $ before % (a placeholder can come from a file)', () => {
    const dir = tempDir();
    write(dir, 'port', '8080\n');
    const config = load(['--set', 'port=@(port)', '--set', 'bind=:%(port)', '--set', 'e=$(E)'], {
      cwd: dir,
      env: { E: '%(port)' },
    });
    expect(get(config, 'bind')).toBe(':8080');
    expect(get(config, 'e')).toBe('8080');
  });

  it('reads @(exec://cmd)', () => {
    expect(get(load(['--set', 'v=@(exec://echo hi)']), 'v')).toBe('hi');
  });

  it('fails when an @() source cannot be read', () => {
    const dir = tempDir();
    expect(() => load(['--set', 'v=@(missing)'], { cwd: dir })).toThrow(ConfigError);
    expect(() => load(['--set', 'v=@(missing)'], { cwd: dir })).toThrow(
      /cannot read @\(missing\) in "v" \(command line\): no such file or directory/,
    );
  });

  it('expands the Heroku form http-socket = :$(PORT)', () => {
    expect(get(load(['--http-socket', ':$(PORT)'], { env: { PORT: '5000' } }), 'http-socket')).toBe(':5000');
  });

  it('does not expand the values of options consumed while parsing (ini, set-ph…)', () => {
    const config = load(['--set-ph', 'a=1', '--print', '%(a)'], { env: {} });
    expect(get(config, 'set-placeholder')).toBe('a=1');
    expect(get(config, 'print')).toBe('1');
  });

  it('finds nested references as uWSGI scans them', () => {
    expect(findReferences('a$(B)c@($(HOME)/x)', '@')).toEqual([{ start: 6, end: 18, key: '$(HOME)/x' }]);
    expect(findReferences('%() %x(y) %%(z) %(open', '%')).toEqual([{ start: 11, end: 15, key: 'z' }]);
  });
});

describe('placeholder math (§4.10)', () => {
  it('adds: foo=17, bar=30, %(foo + bar + 3) = 50', () => {
    expect(get(loadIni('[uwsgi]\nfoo = 17\nbar = 30\nr = %(foo + bar + 3)\n'), 'r')).toBe('50');
  });

  it('has no precedence: %(foo + bar + 3 * 2) = 100', () => {
    expect(get(loadIni('[uwsgi]\nfoo = 17\nbar = 30\nr = %(foo + bar + 3 * 2)\n'), 'r')).toBe('100');
  });

  it('increments: foo=29, %(foo ++) = 30', () => {
    expect(get(loadIni('[uwsgi]\nfoo = 29\nr = %(foo ++)\n'), 'r')).toBe('30');
  });

  it('concatenates two operands: foo=2, bar=9, %(foo bar ++) = 30', () => {
    expect(get(loadIni('[uwsgi]\nfoo = 2\nbar = 9\nr = %(foo bar ++)\n'), 'r')).toBe('30');
  });

  it('works on options too: %(processes * 2)', () => {
    expect(get(loadIni('[uwsgi]\nprocesses = 4\nthreads = %(processes * 2)\n'), 'threads')).toBe('8');
  });

  it('divides truncating, by zero gives 0, missing names count as empty', () => {
    const lookup = (name: string): string | undefined => ({ a: '7', b: '2', z: '0', neg: '-7' })[name];
    expect(evaluatePlaceholder('a / b', lookup)).toBe('3');
    expect(evaluatePlaceholder('neg / b', lookup)).toBe('-3');
    expect(evaluatePlaceholder('a / z', lookup)).toBe('0');
    expect(evaluatePlaceholder('a - missing', lookup)).toBe('7');
    expect(evaluatePlaceholder('a --', lookup)).toBe('6');
    expect(evaluatePlaceholder('missing', lookup)).toBeUndefined();
  });
});
