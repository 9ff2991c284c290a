/**
 * Config logic: for / if-* / endif (spec/core.md §4.13).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../core/errors.ts';
import { globPaths } from '../../core/config/glob.ts';
import { all, cleanupTempDirs, get, load, pairs, tempDir, write } from './helpers.ts';

afterEach(cleanupTempDirs);

function loadIni(text: string, extra: Parameters<typeof load>[1] = {}): ReturnType<typeof load> {
  const dir = extra.cwd ?? tempDir();
  write(dir, 'conf.ini', text);
  return load(['conf.ini'], { ...extra, cwd: dir });
}

describe('config logic (§4.13)', () => {
  it('repeats a line for each item of `for` (accept 1: three sockets)', () => {
    const config = loadIni('[uwsgi]\nfor = 3031 3032 3033\nsocket = 127.0.0.1:%(_)\nendfor =\n');
    expect(all(config, 'socket')).toEqual(['127.0.0.1:3031', '127.0.0.1:3032', '127.0.0.1:3033']);
  });

  it('applies the whole loop to each line in turn (accept 2: s1 a, s1 b, s2 a, s2 b)', () => {
    const config = loadIni('[uwsgi]\nfor = a b\ns1 = /var/run/%(_).socket\ns2 = /var/run/%(_)-http.socket\nendfor =\n');
    expect(pairs(config)).toEqual([
      'for = a b',
      's1 = /var/run/a.socket',
      's1 = /var/run/b.socket',
      's2 = /var/run/a-http.socket',
      's2 = /var/run/b-http.socket',
      'endfor = ',
    ]);
  });

  it('applies an if-env block with the variable as %(_) (accept 3)', () => {
    const text = '[uwsgi]\nif-env = HOME\nprint = home is %(_)\nendif =\n';
    expect(get(loadIni(text, { env: { HOME: '/home/u' } }), 'print')).toBe('home is /home/u');
    expect(get(loadIni(text, { env: {} }), 'print')).toBeUndefined();
  });

  it('compares if-env VAR=value', () => {
    const text = '[uwsgi]\nif-env = MODE=prod\nworkers = 8\nendif\n';
    expect(get(loadIni(text, { env: { MODE: 'prod' } }), 'processes')).toBe('8');
    expect(get(loadIni(text, { env: { MODE: 'dev' } }), 'processes')).toBeUndefined();
  });

  it('applies if-exists only when the path exists (accept 4)', () => {
    const dir = tempDir();
    const maint = path.join(dir, 'maint');
    const text = `[uwsgi]\nif-exists = ${maint}\nfoo = down\nendif =\n`;
    expect(get(loadIni(text, { cwd: dir }), 'foo')).toBeUndefined();
    fs.writeFileSync(maint, '');
    expect(get(loadIni(text, { cwd: dir }), 'foo')).toBe('down');
  });

  it('sees options set before if-opt, optionally compared (accept 5)', () => {
    expect(get(loadIni('[uwsgi]\ncheaper = 3\nif-opt = cheaper\nprint = cheaper %(_)\nendif =\n'), 'print')).toBe('cheaper 3');
    expect(get(loadIni('[uwsgi]\ncheaper = 3\nif-opt = cheaper=4\nprint = cheaper %(_)\nendif =\n'), 'print')).toBeUndefined();
    expect(get(loadIni('[uwsgi]\nif-opt = cheaper\nprint = early\nendif =\ncheaper = 3\n'), 'print')).toBeUndefined();
  });

  it('rejects a block opened inside another (accept 6: recursive logic)', () => {
    expect(() => loadIni('[uwsgi]\nfor = a\nfor = b\n')).toThrow(ConfigError);
    expect(() => loadIni('[uwsgi]\nfor = a\nfor = b\n')).toThrow(/recursive logic in options is not supported \(option = for\)/);
  });

  it('runs on the command line too: --for … --socket … --endfor', () => {
    const config = load(['--for=3031 3032', '--socket=127.0.0.1:%(_)', '--endfor', '--module', 'helloworld']);
    expect(pairs(config)).toEqual([
      'for = 3031 3032',
      'socket = 127.0.0.1:3031',
      'socket = 127.0.0.1:3032',
      'endfor = true',
      'module = helloworld',
    ]);
  });

  it('counts with for-times', () => {
    expect(all(loadIni('[uwsgi]\nfor-times = 3\nworker-id = %(_)\nend\n'), 'worker-id')).toEqual(['1', '2', '3']);
  });

  it('walks a glob with for-glob, marking directories, and keeps the pattern when nothing matches', () => {
    const dir = tempDir();
    write(dir, 'docs/b.html', '');
    write(dir, 'docs/a.html', '');
    write(dir, 'docs/.hidden.html', '');
    fs.mkdirSync(path.join(dir, 'docs/sub.html'));
    const config = loadIni('[uwsgi]\nfor-glob = docs/*.html\nfile = %(_)\nendfor\nfor-glob = none/*.x\nmissing = %(_)\nendfor\n', {
      cwd: dir,
    });
    expect(all(config, 'file')).toEqual(['docs/a.html', 'docs/b.html', 'docs/sub.html/']);
    expect(all(config, 'missing')).toEqual(['none/*.x']);
    expect(globPaths(`${dir}/docs/[ab].html`, '/')).toEqual([`${dir}/docs/a.html`, `${dir}/docs/b.html`]);
  });

  it('reads lines with for-readline, newline removed', () => {
    const dir = tempDir();
    write(dir, 'hosts', 'a.example\r\nb.example\n\nc.example');
    expect(all(loadIni('[uwsgi]\nfor-readline = hosts\nhost = %(_)\nendfor\n', { cwd: dir }), 'host')).toEqual([
      'a.example',
      'b.example',
      '',
      'c.example',
    ]);
  });

  it('tells regular files and directories apart with if-file / if-dir and their negations', () => {
    const dir = tempDir();
    write(dir, 'f', '');
    fs.mkdirSync(path.join(dir, 'd'));
    const text = [
      '[uwsgi]',
      'if-file = f', 'r1 = file %(_)', 'endif',
      'if-file = d', 'r2 = no', 'endif',
      'if-dir = d', 'r3 = dir %(_)', 'endif',
      'if-not-dir = f', 'r4 = not a dir', 'endif',
      'if-not-file = nothing', 'r5 = %(_) is no file', 'endif',
      'if-not-exists = nothing', 'r6 = yes', 'endif',
      '',
    ].join('\n');
    const config = loadIni(text, { cwd: dir });
    expect([get(config, 'r1'), get(config, 'r2'), get(config, 'r3'), get(config, 'r4'), get(config, 'r5'), get(config, 'r6')]).toEqual([
      'file f',
      undefined,
      'dir d',
      'not a dir',
      'nothing is no file',
      'yes',
    ]);
  });

  it('leaves %(_) as written in if-not-env and if-not-opt blocks (live reference errata)', () => {
    const config = loadIni('[uwsgi]\nif-not-env = NOPE\na = [%(_)]\nendif\nif-not-opt = nope\nb = [%(_)]\nendif\n', { env: {} });
    expect(get(config, 'a')).toBe('[%(_)]');
    expect(get(config, 'b')).toBe('[%(_)]');
  });

  it('evaluates the condition again for each line, as uWSGI does', () => {
    const config = loadIni('[uwsgi]\nif-not-opt = cheaper\ncheaper = 1\nprint = after\nendif\n');
    expect(get(config, 'cheaper')).toBe('1');
    expect(get(config, 'print')).toBeUndefined();
  });

  it('closes any block with end, endif or endfor', () => {
    const config = loadIni('[uwsgi]\nfor = a b\nx = %(_)\nend\ny = %(_)\n');
    expect(all(config, 'x')).toEqual(['a', 'b']);
    expect(all(config, 'y')).toEqual(['%(_)']);
  });
});
