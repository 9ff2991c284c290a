/**
 * Magic variables (spec/core.md §4.7).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { djb33xHex, MagicTable, UWSGI_COMPAT_VERSION } from '../../core/config/magic.ts';
import { cleanupTempDirs, get, load, tempDir, write } from './helpers.ts';

afterEach(cleanupTempDirs);

describe('magic variables (§4.7)', () => {
  it('describes the file they appear in (accept: /tmp/mt/sub/my.app.ini)', () => {
    const base = tempDir();
    const file = write(
      base,
      'mt/sub/my.app.ini',
      '[uwsgi]\na = %d\nb = %n\nc = %e\nd = %c\ne = %1\nf = %s\ng = 100%%\nh = x%zy\ni = %p\n',
    );
    const config = load([file]);
    const components = path.dirname(file).split('/').filter(Boolean);
    expect(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((k) => get(config, k))).toEqual([
      `${base}/mt/sub/`,
      'my.app',
      'ini',
      'sub',
      components[1],
      'my.app.ini',
      '100%',
      'xy',
      file,
    ]);
  });

  it('keeps a symlink name for %n and %p, for the Emperor template trick', () => {
    const dir = tempDir();
    write(dir, 'mt/my.app.ini', '[uwsgi]\nsocket = :%n\nwhere = %p\n');
    fs.symlinkSync('my.app.ini', path.join(dir, 'mt/9091.ini'));
    const config = load(['mt/9091.ini'], { cwd: dir });
    expect(get(config, 'socket')).toBe(':9091');
    expect(get(config, 'where')).toBe(`${dir}/mt/9091.ini`);
  });

  it('resolves other relative paths to the real absolute path', () => {
    const dir = tempDir();
    write(dir, 'conf/app.ini', '[uwsgi]\nwhere = %p\ndir = %d\norig = %o\n');
    const config = load(['conf/../conf/app.ini'], { cwd: dir });
    expect(get(config, 'where')).toBe(`${dir}/conf/app.ini`);
    expect(get(config, 'dir')).toBe(`${dir}/conf/`);
    expect(get(config, 'orig')).toBe('conf/../conf/app.ini');
  });

  it('refers to each included file itself, not to the includer', () => {
    const dir = tempDir();
    write(dir, 'main.ini', '[uwsgi]\nmain = %n\ninclude = sub/part.ini\n');
    write(dir, 'sub/part.ini', '[uwsgi]\npart = %n in %c\n');
    const config = load(['main.ini'], { cwd: dir });
    expect(get(config, 'main')).toBe('main');
    expect(get(config, 'part')).toBe('part in sub');
  });

  it('sets the upper-case variants from the first file read with --ini, not from includes', () => {
    const dir = tempDir();
    write(dir, 'vassal.ini', '[uwsgi]\ninclude = templates/base.ini\n');
    write(dir, 'templates/base.ini', '[uwsgi]\nname = %N\nlower = %n\ndir = %C\n');
    const config = load(['--ini', 'vassal.ini'], { cwd: dir });
    expect(get(config, 'name')).toBe('vassal');
    expect(get(config, 'lower')).toBe('base');
    expect(get(config, 'dir')).toBe(path.basename(dir));
  });

  it('leaves the upper-case variants empty for a bare file argument (live reference errata)', () => {
    const dir = tempDir();
    write(dir, 'vassal.ini', '[uwsgi]\nname = [%N]\n');
    expect(get(load(['vassal.ini'], { cwd: dir }), 'name')).toBe('[]');
  });

  it('gives the section name as %x', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[app1]\nsection = %x\n[uwsgi]\nsection = [%x]\n');
    expect(get(load(['--ini', 'conf.ini:app1'], { cwd: dir }), 'section')).toBe('app1');
    expect(get(load(['--ini', 'conf.ini'], { cwd: dir }), 'section')).toBe('[]');
  });

  it('substitutes the raw text before parsing, comments included', () => {
    const dir = tempDir();
    write(dir, 'conf.ini', '[uwsgi]\n%z; gone = yes\nkey%% = v\n');
    const config = load(['conf.ini'], { cwd: dir });
    // `%z` vanishes, so the first line becomes a comment; `%%` is a literal %.
    expect(config.entries.map((e) => [e.key, e.value])).toEqual([['key%', 'v']]);
  });

  it('keeps %( for placeholders and deletes unknown sequences', () => {
    const table = new MagicTable({ cwd: '/srv' });
    expect(table.substitute('%(name) %z% %q end %')).toBe('%(name)  end %');
  });

  it('knows the process-wide variables', () => {
    const table = new MagicTable({ cwd: '/srv/app', binaryPath: '/usr/bin/tsuwsgi', startMs: 1_700_000_000_123 });
    expect(table.substitute('%v|%V|%t|%T|%b|%[')).toBe(
      `/srv/app|${UWSGI_COMPAT_VERSION}|1700000000|1700000000123000|/usr/bin/tsuwsgi|\x1b`,
    );
    expect(table.substitute('%h')).toBe(os.hostname());
    expect(table.substitute('%k')).toBe(String(os.cpus().length));
    expect(table.substitute('%u')).toBe(String(process.getuid?.()));
    expect(table.substitute('%g')).toBe(String(process.getgid?.()));
    expect(table.substitute('%U')).toBe(os.userInfo().username);
    expect(table.substitute('%G')).not.toBe('');
  });

  it('hashes the full path for %j like uWSGI (djb33x, little-endian hex)', () => {
    expect(djb33xHex('/etc/uwsgi/vassals/my.app.ini')).toBe('BA313939');
  });

  it('gives the inode and the directory components', () => {
    const dir = tempDir();
    const file = write(dir, 'a/b/c.ini', '[uwsgi]\ninode = %i\nfirst = %0\nlast = %9\n');
    const config = load([file]);
    expect(get(config, 'inode')).toBe(fs.lstatSync(file, { bigint: true }).ino.toString());
    expect(get(config, 'first')).toBe(file.split('/')[1]);
    expect(get(config, 'last')).toBe(file.split('/').filter(Boolean)[9] ?? '');
  });

  it('does not expand magic variables on the command line or in the environment', () => {
    const config = load(['--set', 'a=%d'], { env: { UWSGI_B: '%n' } });
    expect(get(config, 'a')).toBe('%d');
    expect(get(config, 'b')).toBe('%n');
  });

  it('sets only %o for stdin', () => {
    const config = load(['--ini', '-'], { readStdin: () => '[uwsgi]\nfrom = %o\n' });
    expect(get(config, 'from')).toBe('-');
  });
});
