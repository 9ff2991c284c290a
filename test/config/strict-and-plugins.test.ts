/**
 * Unknown keys, strict mode (spec/core.md §4.15) and plugins that add options while the
 * config is read (§4.1 immediate options, §7.2).
 */
import { ConfigError, PluginError, UnknownOptionError } from '../../core/errors.ts';
import { cleanupTempDirs, get, load, TestLookup, tempDir, write } from './helpers.ts';

afterEach(cleanupTempDirs);

describe('unknown keys in config files (§4.1)', () => {
  it('keeps a key that is no option as a placeholder', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\ncustomers_base_dir = /srv\n');
    const config = load(['c.ini'], { cwd: dir });
    expect(get(config, 'customers_base_dir')).toBe('/srv');
    expect(config.placeholders.has('customers_base_dir')).toBe(true);
  });

  it('names the plugin for a key that belongs to a plugin which is not loaded', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nsocket = :1\npython-path = /srv/app\n');
    expect(() => load(['c.ini'], { cwd: dir })).toThrow(UnknownOptionError);
    expect(() => load(['c.ini'], { cwd: dir })).toThrow(
      'unknown option "--python-path": it is provided by plugin "python", which is not loaded; add --plugins python (c.ini:3)',
    );
  });
});

describe('strict mode (§4.15)', () => {
  it('rejects an unknown key when strict (accept)', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nfoo = 1\n');
    expect(() => load(['--strict', '--ini', 'c.ini'], { cwd: dir })).toThrow(ConfigError);
    expect(() => load(['--strict', '--ini', 'c.ini'], { cwd: dir })).toThrow(
      /^\[strict-mode\] unknown config directive: foo \(c\.ini:2\)/,
    );
  });

  it('accepts placeholders declared with set-ph (accept)', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nset-ph = foo=1\nprint = %(foo)\n');
    const config = load(['--strict', '--ini', 'c.ini'], { cwd: dir });
    expect(get(config, 'print')).toBe('1');
  });

  it('also catches unknown keys given before strict, --set and the environment', () => {
    expect(() => load(['--set', 'foo=1', '--strict'])).toThrow(/unknown config directive: foo \(command line\)/);
    expect(() => load(['--strict'], { env: { UWSGI_MY_VAR: 'x' } })).toThrow(/unknown config directive: my-var/);
  });

  it('suggests the option that was probably meant', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nstrict = true\nsockte = :1\n');
    expect(() => load(['c.ini'], { cwd: dir })).toThrow(/sockte \(c\.ini:3\): did you mean "socket"\?/);
  });

  it('can be switched off again (strict = false)', () => {
    expect(get(load(['--strict', '--set', 'strict=false', '--set', 'foo=1']), 'foo')).toBe('1');
  });
});

describe('plugins named in the config (§4.1 immediate)', () => {
  it('loads a plugin at its ini line so the following lines may use its options', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nplugins = python\npython-path = /srv/app\n');
    const config = load(['c.ini'], { cwd: dir });
    expect(get(config, 'python-path')).toBe('/srv/app');
    expect(config.lookup.loadCalls).toEqual([{ value: 'python', origin: 'c.ini:2' }]);
  });

  it('loads every plugin of the command line before the other options, once', () => {
    const config = load(['--pp', '/srv/app', '--plugins', 'python']);
    expect(get(config, 'python-path')).toBe('/srv/app');
    expect(config.lookup.loadCalls).toEqual([{ value: 'python', origin: 'command line' }]);
  });

  it('maps the options of a loaded plugin to their names', () => {
    expect(get(load(['--plugin=python', '--pythonpath', '/x']), 'python-path')).toBe('/x');
  });

  it('loads UWSGI_PLUGINS before the other UWSGI_* variables', () => {
    const config = load([], { env: { UWSGI_PYTHON_PATH: '/srv', UWSGI_PLUGINS: 'python' } });
    expect(get(config, 'python-path')).toBe('/srv');
    expect(get(config, 'plugins')).toBe('python');
    expect(config.lookup.loadCalls).toEqual([{ value: 'python', origin: 'env UWSGI_PLUGINS' }]);
  });

  it('loads plugins named by need-plugin too, even when the registry does not declare it', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nneed-plugin = psgi\npsgi = app.pl\n');
    const config = load(['c.ini'], { cwd: dir });
    expect(get(config, 'psgi')).toBe('app.pl');
    expect(config.lookup.loadCalls).toEqual([{ value: 'psgi', origin: 'c.ini:2' }]);
  });

  it('lets a plugin-loading error through', () => {
    expect(() => load(['--plugins', 'cobol'])).toThrow(PluginError);
  });

  it('knows options of a plugin loaded by an earlier --ini on the command line', () => {
    const dir = tempDir();
    write(dir, 'p.ini', '[uwsgi]\nplugin = psgi\n');
    const lookup = new TestLookup();
    const config = load(['--ini', 'p.ini', '--psgi', 'app.pl'], { cwd: dir, lookup });
    expect(get(config, 'psgi')).toBe('app.pl');
  });
});
