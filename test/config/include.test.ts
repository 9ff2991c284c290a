/**
 * Parse order, include / inherit / ini-in-ini (spec/core.md §4.11).
 */
import { ConfigError } from '../../core/errors.ts';
import { formatShowConfig } from '../../core/config/introspect.ts';
import { cleanupTempDirs, get, load, pairs, tempDir, write } from './helpers.ts';

afterEach(cleanupTempDirs);

describe('include, inherit and ini inside ini (§4.11)', () => {
  it('injects an `ini = other.ini` at that very point (accept: file1/file2 order)', () => {
    const dir = tempDir();
    write(dir, 'file1.ini', '[uwsgi]\nsocket = :3031\nini = file2.ini\nsocket = :3032\nchdir = /var/www\n');
    write(dir, 'file2.ini', '[uwsgi]\nmaster\nmemory-report\nprocesses = 4\n');
    const config = load(['file1.ini', '--show-config'], { cwd: dir });
    expect(pairs(config)).toEqual([
      'show-config = true',
      'socket = :3031',
      'ini = file2.ini',
      'master = ',
      'memory-report = ',
      'processes = 4',
      'socket = :3032',
      'chdir = /var/www',
    ]);
    expect(formatShowConfig(config.entries)).toContain(
      'socket = :3031\nini = file2.ini\nmaster = \nmemory-report = \nprocesses = 4\nsocket = :3032\nchdir = /var/www\n',
    );
  });

  it('expands placeholders of an included file (accept: include → 1)', () => {
    const dir = tempDir();
    write(dir, 'base.ini', '[uwsgi]\nx = %(y)\n');
    write(dir, 'main.ini', '[uwsgi]\ny = 1\ninclude = base.ini\n');
    expect(get(load(['main.ini'], { cwd: dir }), 'x')).toBe('1');
  });

  it('does not expand an inherited template (accept: inherit → %(y))', () => {
    const dir = tempDir();
    write(dir, 'base.ini', '[uwsgi]\nx = %(y)\nenv = HOME=$(HOME)\n');
    write(dir, 'main.ini', '[uwsgi]\ny = 1\ninherit = base.ini\n');
    const config = load(['main.ini'], { cwd: dir, env: { HOME: '/root' } });
    expect(get(config, 'x')).toBe('%(y)');
    expect(get(config, 'env')).toBe('HOME=$(HOME)');
  });

  it('appends inherited options after everything else, and applies their magic variables', () => {
    const dir = tempDir();
    write(dir, 'base.ini', '[uwsgi]\nname = %n\nsocket = :2\n');
    write(dir, 'main.ini', '[uwsgi]\ninherit = base.ini\nsocket = :1\n');
    expect(pairs(load(['main.ini', '--master'], { cwd: dir }))).toEqual([
      'master = true',
      'inherit = base.ini',
      'socket = :1',
      'name = base',
      'socket = :2',
    ]);
  });

  it('expands the inherit value itself, which is read after the passes', () => {
    const dir = tempDir();
    write(dir, 'tpl/base.ini', '[uwsgi]\nfrom = template\n');
    write(dir, 'main.ini', '[uwsgi]\ntpl = tpl\ninherit = %(tpl)/base.ini\n');
    expect(get(load(['main.ini'], { cwd: dir }), 'from')).toBe('template');
  });

  it('hides inherited options from an earlier if-opt', () => {
    const dir = tempDir();
    write(dir, 'base.ini', '[uwsgi]\nmaster = true\n');
    write(dir, 'main.ini', '[uwsgi]\ninherit = base.ini\nif-opt = master\nsaw = master %(_)\nendif =\n');
    expect(get(load(['main.ini'], { cwd: dir }), 'saw')).toBeUndefined();
  });

  it('recurses through nested includes', () => {
    const dir = tempDir();
    write(dir, 'a.ini', '[uwsgi]\na = 1\ninclude = b/b.ini\na = 3\n');
    write(dir, 'b/b.ini', '[uwsgi]\nb = 2\nini = c.ini\n');
    write(dir, 'c.ini', '[uwsgi]\nc = 2.5\n');
    expect(pairs(load(['a.ini'], { cwd: dir }))).toEqual(['a = 1', 'include = b/b.ini', 'b = 2', 'ini = c.ini', 'c = 2.5', 'a = 3']);
  });

  it('reports an include loop instead of recursing forever', () => {
    const dir = tempDir();
    write(dir, 'a.ini', '[uwsgi]\ninclude = b.ini\n');
    write(dir, 'b.ini', '[uwsgi]\ninclude = a.ini\n');
    expect(() => load(['a.ini'], { cwd: dir })).toThrow(/config file a\.ini includes itself/);
  });

  it('picks the include format from the extension', () => {
    const dir = tempDir();
    write(dir, 'base.conf', '[uwsgi]\nx = 1\n');
    expect(() => load(['--include', 'base.conf'], { cwd: dir })).toThrow(ConfigError);
    expect(() => load(['--include', 'base.conf'], { cwd: dir })).toThrow(/unable to load configuration from base\.conf/);
    write(dir, 'base.yaml', 'uwsgi:\n  y: 2\n');
    expect(get(load(['--include', 'base.yaml'], { cwd: dir }), 'y')).toBe('2');
  });

  it('injects --ini files on the command line where they appear', () => {
    const dir = tempDir();
    write(dir, 'mid.ini', '[uwsgi]\nsocket = :2\n');
    expect(pairs(load(['--socket', ':1', '--ini', 'mid.ini', '--socket', ':3'], { cwd: dir }))).toEqual([
      'socket = :1',
      'ini = mid.ini',
      'socket = :2',
      'socket = :3',
    ]);
  });
});
