/**
 * XML, YAML and JSON configs (spec/core.md §4.5 and the errata observed on Debian's
 * uWSGI), read through the real loader. The differential test compares the same formats
 * with the reference itself; these tests pin the details and the error messages.
 */
import { ConfigError } from '../../core/errors.ts';
import { all, cleanupTempDirs, get, load, pairs, tempDir, write } from './helpers.ts';

afterEach(cleanupTempDirs);

describe('JSON configs (§4.5)', () => {
  it('repeats an option per array item and maps true to 1 (accept §4.5.2)', () => {
    const dir = tempDir();
    write(dir, 'f.json', '{"uwsgi":{"socket":["/tmp/a.sock","127.0.0.1:8000"],"master":true,"workers":3}}');
    expect(pairs(load(['--json', 'f.json'], { cwd: dir }))).toEqual([
      'json = f.json',
      'socket = /tmp/a.sock',
      'socket = 127.0.0.1:8000',
      'master = 1',
      'processes = 3',
    ]);
  });

  it('maps false and null to 0, keeps numbers as written and ignores nested objects', () => {
    const dir = tempDir();
    write(dir, 'f.json', '{"uwsgi": {"off": false, "nul": null, "real": 1.50, "exp": 1e3, "obj": {"x": 1}, "arr": [true, "s", null, {"y": 1}], "esc": "a\\tb\\u00e9"}}');
    const config = load(['--json', 'f.json'], { cwd: dir });
    expect(pairs(config).slice(1)).toEqual(['off = 0', 'nul = 0', 'real = 1.50', 'exp = 1e3', 'arr = 1', 'arr = s', 'arr = 0', 'esc = a\tbé']);
  });

  it('keeps duplicate keys in order', () => {
    const dir = tempDir();
    write(dir, 'f.json', '{"uwsgi": {"dup": "a", "dup": "b"}}');
    expect(all(load(['--json', 'f.json'], { cwd: dir }), 'dup')).toEqual(['a', 'b']);
  });

  it('picks another object with file.json:name (accept §4.5.3)', () => {
    const dir = tempDir();
    write(dir, 'f.json', '{"app1":{"foo":"rack"},"app2":{"foo":"php"}}');
    expect(get(load(['--json', 'f.json:app2'], { cwd: dir }), 'foo')).toBe('php');
  });

  it('says which object is missing and how to write it', () => {
    const dir = tempDir();
    write(dir, 'f.json', '{"x": {}}');
    expect(() => load(['--json', 'f.json'], { cwd: dir })).toThrow(ConfigError);
    expect(() => load(['--json', 'f.json'], { cwd: dir })).toThrow(/you must define a object named uwsgi in your JSON data \(f\.json\): write \{"uwsgi": \{"option": "value"/);
    write(dir, 'g.json', '{"uwsgi": 5}');
    expect(() => load(['--json', 'g.json'], { cwd: dir })).toThrow(/object named uwsgi/);
  });

  it('points at the line and column of a syntax error', () => {
    const dir = tempDir();
    write(dir, 'c.json', '{"uwsgi": {\n  "a": 1,\n}\n');
    expect(() => load(['--json', 'c.json'], { cwd: dir })).toThrow(/error parsing JSON data in c\.json: invalid object key \(must be a string\) at line 3, column 1/);
    write(dir, 'd.json', '{"uwsgi": {"a": "unterminated}}');
    expect(() => load(['--json', 'd.json'], { cwd: dir })).toThrow(/unterminated string at line 1/);
    write(dir, 'e.json', '{"uwsgi": {}} trailing');
    expect(() => load(['--json', 'e.json'], { cwd: dir })).toThrow(/unexpected text after the JSON document/);
  });

  it('substitutes magic variables and expands placeholders like any config', () => {
    const dir = tempDir();
    write(dir, 'app.json', '{"uwsgi": {"name": "%n", "base": "/srv", "path": "%(base)/x"}}');
    const config = load(['--json', 'app.json'], { cwd: dir });
    expect(get(config, 'name')).toBe('app');
    expect(get(config, 'path')).toBe('/srv/x');
  });
});

describe('YAML configs (§4.5, errata: libyaml semantics)', () => {
  it('keeps repeated keys (accept §4.5.4)', () => {
    const dir = tempDir();
    write(dir, 'f.yaml', 'uwsgi:\n  socket: /tmp/a.sock\n  socket: 127.0.0.1:8000\n  master: 1\n  workers: 3\n');
    expect(pairs(load(['--yaml', 'f.yaml'], { cwd: dir })).slice(1)).toEqual(['socket = /tmp/a.sock', 'socket = 127.0.0.1:8000', 'master = 1', 'processes = 3']);
  });

  it('keeps # inside a value and removes quotes (errata, not §4.5.5)', () => {
    const dir = tempDir();
    write(dir, 'f.yaml', 'uwsgi:\n  foo: a#b\n  q: "quoted"\n  t: value # comment\n');
    const config = load(['--yaml', 'f.yaml'], { cwd: dir });
    expect([get(config, 'foo'), get(config, 'q'), get(config, 't')]).toEqual(['a#b', 'quoted', 'value']);
  });

  it('keeps every scalar as text, repeats lists, flattens nested mappings, skips empty keys', () => {
    const dir = tempDir();
    write(dir, 'f.yaml', 'uwsgi:\n  a: 1.50\n  b: ~\n  d: true\n  list:\n    - x\n    - y\n  flow: [1, 2]\n  nested:\n    inner: 1\n  empty:\n  e: ""\n');
    expect(pairs(load(['--yaml', 'f.yaml'], { cwd: dir })).slice(1)).toEqual([
      'a = 1.50',
      'b = ~',
      'd = true',
      'list = x',
      'list = y',
      'flow = 1',
      'flow = 2',
      'inner = 1',
      'e = ',
    ]);
  });

  it('reads a section by name and resolves aliases', () => {
    const dir = tempDir();
    write(dir, 'f.yaml', 'base: &b\n  x: 1\nother:\n  c: &v 3\n  d: *v\nuwsgi:\n  u: 1\n');
    expect(pairs(load(['--yaml', 'f.yaml:other'], { cwd: dir })).slice(1)).toEqual(['c = 3', 'd = 3']);
  });

  it('warns, as for INI, when the section is missing', () => {
    const dir = tempDir();
    write(dir, 'f.yaml', 'uwsgi:\n  a: 1\n');
    const config = load(['--yaml', 'f.yaml:nope'], { cwd: dir });
    expect(pairs(config)).toEqual(['yaml = f.yaml:nope']);
    expect(config.logs).toContain(`*** WARNING: Can't find section "nope" in YAML configuration file f.yaml ***`);
  });

  it('refuses a syntax error with its line', () => {
    const dir = tempDir();
    write(dir, 'f.yaml', 'uwsgi:\n  a: 1\n  b: [2\n');
    expect(() => load(['--yaml', 'f.yaml'], { cwd: dir })).toThrow(/error parsing YAML file f\.yaml: .* at line \d+, column \d+; fix the file/);
  });
});

describe('XML configs (§4.5)', () => {
  it('picks a stanza by id (accept §4.5.1), the first one otherwise', () => {
    const dir = tempDir();
    write(dir, 'f.xml', '<i-love-xml><uwsgi id="tg"><socket>/tmp/tg.sock</socket></uwsgi><uwsgi id="dj"><socket>/tmp/dj.sock</socket></uwsgi></i-love-xml>');
    expect(get(load(['--xml', 'f.xml:dj'], { cwd: dir }), 'socket')).toBe('/tmp/dj.sock');
    expect(get(load(['--xml', 'f.xml'], { cwd: dir }), 'socket')).toBe('/tmp/tg.sock');
    expect(load(['--xml', 'f.xml:dj'], { cwd: dir }).logs).toContain('[uWSGI] using xml uwsgi id: dj');
  });

  it('reads empty elements as 1, decodes entities, keeps blanks and CDATA, maps <app> to mount', () => {
    const dir = tempDir();
    write(dir, 'f.xml', '<?xml version="1.0"?>\n<!-- c -->\n<uwsgi>\n <master/>\n <foo>a &amp; b &lt;c&gt;</foo>\n <ws>  s  </ws>\n <cd><![CDATA[x < 1]]></cd>\n <app mountpoint="/p">app.py</app>\n</uwsgi>\n');
    expect(pairs(load(['--xml', 'f.xml'], { cwd: dir })).slice(1)).toEqual(['master = 1', 'foo = a & b <c>', 'ws =   s  ', 'cd = x < 1', 'mount = /p=app.py']);
  });

  it('refuses a missing id, a nested element, a wrong root and broken XML, saying what to fix', () => {
    const dir = tempDir();
    write(dir, 'u.xml', '<r><uwsgi id="a"><x>1</x></uwsgi></r>');
    expect(() => load(['--xml', 'u.xml:zz'], { cwd: dir })).toThrow(/u\.xml has no <uwsgi id="zz">; its stanzas are: a/);
    write(dir, 'n.xml', '<uwsgi>\n<a>1</a>\n<nested><x>1</x></nested></uwsgi>');
    expect(() => load(['--xml', 'n.xml'], { cwd: dir })).toThrow(/<nested> in n\.xml \(line 3\) contains the element <x>: an option element holds text only/);
    write(dir, 'r.xml', '<foo><a>1</a></foo>');
    expect(() => load(['--xml', 'r.xml'], { cwd: dir })).toThrow(/invalid xml root element in r\.xml, <uwsgi> expected/);
    write(dir, 'b.xml', '<uwsgi><a>1</a>');
    expect(() => load(['--xml', 'b.xml'], { cwd: dir })).toThrow(/could not parse file b\.xml: .*line 1/);
  });
});

describe('--config FILE (§4.2)', () => {
  it('picks the format from the extension, like a bare argument', () => {
    const dir = tempDir();
    write(dir, 'a.yml', 'uwsgi:\n  foo: from-yaml\n');
    write(dir, 'b.ini', '[uwsgi]\nbar = from-ini\n');
    const config = load(['--config', 'a.yml', '--config', 'b.ini'], { cwd: dir });
    expect([get(config, 'foo'), get(config, 'bar')]).toEqual(['from-yaml', 'from-ini']);
    // As for include and bare arguments, the whole name must end with the extension.
    expect(() => load(['--config', 'b.ini:s'], { cwd: dir })).toThrow(/unable to load configuration from b\.ini:s/);
    expect(() => load(['--config', 'c.conf'], { cwd: dir })).toThrow(/unable to load configuration from c\.conf .*use --ini c\.conf/);
  });
});
