/**
 * Custom options (declare-option, §4.14), if-plugin (§4.13), iprint (§4.16),
 * fallback-config registration (§4.12) and the report of likely typos (issue 3 part 4).
 */
import { ConfigError } from '../../core/errors.ts';
import { all, cleanupTempDirs, get, load, pairs, tempDir, TestLookup, write } from './helpers.ts';

afterEach(cleanupTempDirs);

describe('declare-option (§4.14)', () => {
  it('expands a custom option into the options of its template (accept §4.14)', () => {
    const config = load(['--declare-option', 'twoset=set-ph=a=$1;set-ph=b=$2', '--twoset', 'x y']);
    expect([get(config, 'a'), get(config, 'b')]).toEqual(['x', 'y']);
  });

  it('works from an INI file and places the expansion where the custom option is used', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\ndeclare-option = myport=http-socket=:$1\nbefore = 1\nmyport = 9191\nafter = 2\n');
    expect(pairs(load(['c.ini'], { cwd: dir })).slice(1)).toEqual(['before = 1', 'myport = 9191', 'http-socket = :9191', 'after = 2']);
  });

  it("substitutes $k as uWSGI does: in order, $10 is $1 then 0, a missing word stays", () => {
    const config = load(['--declare-option', 't=set-ph=a=$1$1|$10|$3|$0', '--t', 'x  y']);
    expect(get(config, 'a')).toBe('xx|x0|$3|$0');
    expect(get(load(['--declare-option', 't=set-ph=a=[$1]', '--t', '']), 'a')).toBe('[]');
  });

  it('runs the generated options through the expansion passes', () => {
    const config = load(['--declare-option', 'sock=socket=/tmp/%(name)-$1.sock', '--set-ph', 'name=app', '--sock', 'web']);
    expect(all(config, 'socket')).toEqual(['/tmp/app-web.sock']);
  });

  it('counts custom options as known in strict mode', () => {
    expect(get(load(['--strict', '--declare-option', 'p=set-ph=port=$1', '--p', '80']), 'port')).toBe('80');
  });

  it('refuses a declaration without a template or over an existing option, saying what to write', () => {
    expect(() => load(['--declare-option', 'bad'])).toThrow(ConfigError);
    expect(() => load(['--declare-option', 'bad'])).toThrow(/invalid declare-option syntax, must be newoption=template .*write declare-option = NAME=OPTION=VALUE/);
    expect(() => load(['--declare-option', 'x='])).toThrow(/declares "x" with no option to set/);
    expect(() => load(['--declare-option', 'socket=master=1'])).toThrow(/"socket" is already an option; pick another name/);
  });
});

describe('if-plugin / if-not-plugin (§4.13)', () => {
  it('applies a block only when the plugin is (not) loaded, %(_) being its name', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nif-plugin = python\npy = %(_)\nendif =\nif-not-plugin = psgi\nno-perl = %(_)\nendif =\nifplugin = psgi\nperl = yes\nendif =\n');
    const lookup = new TestLookup();
    lookup.loadPlugins('python', 'test');
    const config = load(['c.ini'], { cwd: dir, lookup });
    expect([get(config, 'py'), get(config, 'no-perl'), get(config, 'perl')]).toEqual(['python', 'psgi', undefined]);
  });
});

describe('iprint and fallback-config (§4.12, §4.16)', () => {
  it('iprint prints while parsing, before expansion', () => {
    const config = load(['--set-ph', 'a=1', '--iprint', 'value %(a)']);
    expect(config.logs).toContain('value %(a)');
  });

  it('fallback-config is reported the moment it is parsed, even if the parse fails later', () => {
    const seen: string[] = [];
    expect(() => load(['--fallback-config', 'safe.ini', '--ini', 'missing.ini'], { onFallbackConfig: (f) => seen.push(f) })).toThrow(/cannot read config file missing\.ini/);
    expect(seen).toEqual(['safe.ini']);
  });
});

describe('keys that are neither options nor used placeholders (issue 3 part 4)', () => {
  it('warns about a likely typo with "did you mean", and keeps it as a placeholder', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nprocesess = 4\n');
    const config = load(['c.ini'], { cwd: dir });
    expect(get(config, 'procesess')).toBe('4');
    expect(config.logs).toContainEqual(expect.stringMatching(/^\*\*\* WARNING: "procesess" \(c\.ini:2\) is not an option and no %\(procesess\) uses it: did you mean "processes"\?; it is kept as a placeholder — declare it with set-ph = procesess=VALUE/));
  });

  it('stays quiet about placeholders that are used, declared, asked for, or tested', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nbase = /srv\nchdir = %(base)\nn = 2\nm = %(n + 1)\nset-ph = declared=1\nasked = 1\nget = asked\ntested = 1\nif-opt = tested\nx = 1\nendif =\nused-later = %(later)\nlater = 1\n');
    const config = load(['c.ini'], { cwd: dir });
    // Only `m` (nothing refers to it), `x` and `used-later` (a forward reference that never
    // resolves) are reported; short names get no far-fetched "did you mean".
    expect(config.logs.filter((l) => l.includes('WARNING'))).toEqual([
      expect.stringContaining('"m" (c.ini:5) is not an option and no %(m) uses it; it is kept'),
      expect.stringContaining('"x" (c.ini:11)'),
      expect.stringContaining('"used-later" (c.ini:13)'),
    ]);
  });

  it('is fatal in strict mode instead (accept §4.15)', () => {
    const dir = tempDir();
    write(dir, 'c.ini', '[uwsgi]\nfoo = 1\n');
    expect(() => load(['--strict', 'c.ini'], { cwd: dir })).toThrow(/\[strict-mode\] unknown config directive: foo/);
  });
});
