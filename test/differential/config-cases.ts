/**
 * The fixtures of the differential config test (issue 3, part 6): each case is a set of
 * config files plus a command line, loaded by the reference (`uwsgi --show-config
 * --no-server`, Debian's uwsgi-core) and by tsuwsgi, whose option lists are compared.
 *
 * `${DIR}` in file contents, arguments and environment values is the case's temporary
 * directory (the same for both servers, so magic variables such as `%d` agree).
 *
 * Outcomes:
 * - 'same' (the default): both print the same option list (option aliases are compared by
 *   their canonical name: uWSGI prints `workers = 3` as written, tsuwsgi `processes = 3`);
 * - 'both-fail': both exit with a non-zero status; `errors` are substrings each must print;
 * - `differs`: a DELIBERATE difference — the reason is given, and tsuwsgi must produce
 *   exactly `tsuwsgi` (the list) or fail with `tsuwsgiError`. The reference's own output is
 *   checked too (`uwsgi`), so a change in the reference shows up.
 */

export interface DiffCase {
  name: string;
  files?: Record<string, string>;
  /** link name → target (relative to DIR). */
  symlinks?: Record<string, string>;
  /** Directories to create (relative to DIR). */
  dirs?: string[];
  args: string[];
  env?: Record<string, string>;
  stdin?: string;
  outcome?: 'same' | 'both-fail';
  /** For 'both-fail': what each must say (substring of its output). */
  errors?: { uwsgi?: string; tsuwsgi?: string };
  differs?: {
    why: string;
    /** The reference's option list (a check that we know what it does). */
    uwsgi?: string[];
    /** tsuwsgi's option list… */
    tsuwsgi?: string[];
    /** …or the error it fails with. */
    tsuwsgiError?: string;
  };
}

const HELLO_INI = '[uwsgi]\nsocket = /tmp/a.sock\nsocket = 127.0.0.1:8000\nworkers = 3\nmaster = true\n';

export const CASES: DiffCase[] = [
  // ---------------------------------------------------------------- INI (§4.4)
  { name: 'ini: repeated options, alias, flag (accept §4.4.1)', files: { 'conf.ini': HELLO_INI }, args: ['--ini', 'conf.ini'] },
  { name: 'ini: no inline comments, split on the first =', files: { 'c.ini': '[uwsgi]\nfoo = a=b ; c\nlogger-x = file:/tmp/foobar # comment\n' }, args: ['--ini', 'c.ini'] },
  { name: 'ini: a section picked with file.ini:section', files: { 'c.ini': '[app1]\nfoo = 1\n[uwsgi]\nfoo = 2\n' }, args: ['--ini', 'c.ini:app1'] },
  { name: 'ini: the default section when none is asked', files: { 'c.ini': '[app1]\nfoo = 1\n[uwsgi]\nfoo = 2\n' }, args: ['--ini', 'c.ini'] },
  { name: 'ini: CRLF line endings', files: { 'c.ini': '[uwsgi]\r\nfoo = 1\r\nbar = two words\r\n' }, args: ['--ini', 'c.ini'] },
  { name: 'ini: a missing section contributes nothing', files: { 'c.ini': '[uwsgi]\nfoo = 1\n' }, args: ['--ini', 'c.ini:missing'] },
  { name: 'ini: keys without a value, empty values', files: { 'c.ini': '[uwsgi]\nmaster\nfoo =\nbar\nbaz = \n' }, args: ['--ini', 'c.ini'] },
  { name: 'ini: comments, blank lines, indentation', files: { 'c.ini': '; top\n[uwsgi]\n  # hash comment\n\n\tfoo = 1\n   ; semicolon\nbar=2\n' }, args: ['--ini', 'c.ini'] },
  { name: 'ini: quotes are literal', files: { 'c.ini': '[uwsgi]\nfoo = "quoted value"\nbar = \'single\'\n' }, args: ['--ini', 'c.ini'] },
  { name: 'ini: ini inside ini is injected at that point (accept §4.11)', files: { 'file1.ini': '[uwsgi]\nsocket = :3031\nini = file2.ini\nsocket = :3032\nchdir = /tmp\n', 'file2.ini': '[uwsgi]\nmaster\nmemory-report\nprocesses = 4\n' }, args: ['file1.ini'] },
  { name: 'ini: `ini = :section` reads a section of the last INI file', files: { 'c.ini': '[uwsgi]\nfoo = 1\nini = :extra\n[extra]\nbar = 2\n' }, args: ['--ini', 'c.ini'] },
  { name: 'ini: a bare argument is the same as --ini', files: { 'conf.ini': HELLO_INI }, args: ['conf.ini'] },
  { name: 'ini: --ini forces the format of any extension', files: { 'conf.foo': '[uwsgi]\nfoo = 1\n' }, args: ['--ini', 'conf.foo'] },
  {
    name: 'ini: a bare argument with an unknown extension is refused',
    files: { 'conf.foo': '[uwsgi]\nfoo = 1\n' },
    args: ['conf.foo'],
    outcome: 'both-fail',
    errors: { uwsgi: 'unable to load configuration from conf.foo', tsuwsgi: 'unable to load configuration from conf.foo' },
  },
  { name: 'ini: bare [section] arguments are ignored', files: { 'c.ini': '[uwsgi]\nfoo = 1\n' }, args: ['[ignored]', '--ini', 'c.ini'] },

  // ---------------------------------------------------------------- magic variables (§4.7)
  {
    name: 'magic: per-file variables, %% and unknown sequences (accept §4.7)',
    dirs: ['mt/sub'],
    files: { 'mt/sub/my.app.ini': '[uwsgi]\na = %d\nb = %n\nc = %e\nd = %c\nf = %s\ng = 100%%\nh = x%zy\ni = %p\nk = %k\nu = %u\nw = %g\no = %o\n' },
    args: ['--ini', 'mt/sub/my.app.ini'],
  },
  { name: 'magic: upper-case twins are set by --ini', dirs: ['up'], files: { 'up/x.ini': '[uwsgi]\nn = %N\nc = %C\nd = %D\ne = %E\ns = %S\n' }, args: ['--ini', 'up/x.ini'] },
  { name: 'magic: upper-case twins stay empty for a bare argument', files: { 'x.ini': '[uwsgi]\nn = [%N]\nlower = %n\n' }, args: ['x.ini'] },
  { name: 'magic: %x is the section, %j the path hash, %i the inode', files: { 'c.ini': '[sect]\nx = %x\nj = %j\ni = %i\n' }, args: ['--ini', 'c.ini:sect'] },
  { name: 'magic: a symlink keeps its own name (the Emperor template trick)', files: { 'app.template': '[uwsgi]\nsocket = :%n\nname = %s\n' }, symlinks: { '9091.ini': 'app.template' }, args: ['--ini', '9091.ini'] },
  { name: 'magic: an included file sees its own variables', files: { 'main.ini': '[uwsgi]\nme = %n\ninclude = part.ini\nafter = %n\n', 'part.ini': '[uwsgi]\npart = %n\n' }, args: ['--ini', 'main.ini'] },
  { name: 'magic: %0..%9 are the directory components', dirs: ['p/q'], files: { 'p/q/c.ini': '[uwsgi]\nlast = %c\nboth = %d\n' }, args: ['--ini', 'p/q/c.ini'] },

  // ---------------------------------------------------------------- expansion (§4.8–4.10)
  { name: 'expand: $(ENV) set and unset (accept §4.9)', files: { 'c.ini': '[uwsgi]\nx = $(DIFF_FOO)\nz = $(DIFF_NOT_SET_VAR)\nmix = a-$(DIFF_FOO)-b\n' }, env: { DIFF_FOO: 'bar' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: @(file) strips one trailing newline', files: { 'h': 'hello\n\n', 'c.ini': '[uwsgi]\ny = @(h)\n' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: @($(VAR)/file) — $() runs first', files: { 'f': 'content\n', 'c.ini': '[uwsgi]\ny = @($(DIFF_BASE)/f)\n' }, env: { DIFF_BASE: '${DIR}' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: @(exec://…)', files: { 'c.ini': '[uwsgi]\ny = @(exec://echo from-exec)\n' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: placeholders, first occurrence, undefined kept (accept §4.8)', files: { 'c.ini': '[uwsgi]\nmy_domain = uwsgi.it\nset-ph = base=/var/www\nchdir2x = %(base)/%(my_domain)\ns = /tmp/%(my_domain).sock\nu = %(nope)\nmy_domain = second\n' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: an option is a placeholder too', files: { 'c.ini': '[uwsgi]\nsocket = /tmp/s.sock\nfoobar = %(socket)\n' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: set-ph values are never expanded', files: { 'c.ini': '[uwsgi]\nset-ph = w=$(DIFF_FOO)\nv = %(w)\n' }, env: { DIFF_FOO: 'bar' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: backward placeholder chains resolve', files: { 'c.ini': '[uwsgi]\nc = 1\nb = %(c)\na = %(b)\n' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: forward placeholder chains stop after one step (errata)', files: { 'c.ini': '[uwsgi]\nz = %(y)\ny = %(x)\nx = 9\n' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: placeholder math (accept §4.10)', files: { 'c.ini': '[uwsgi]\nfoo = 17\nbar = 30\nm1 = %(foo + bar + 3)\nm2 = %(foo + bar + 3 * 2)\nm3 = %(foo ++)\nm4 = %(foo bar ++)\nm5 = %(bar / 0)\nm6 = %(bar - foo)\n' }, args: ['--ini', 'c.ini'] },
  { name: 'expand: include expands, inherit does not (accept §4.11)', files: { 'base.ini': '[uwsgi]\nx = %(y)\n', 'inc.ini': '[uwsgi]\ny = 1\ninclude = base.ini\n', 'inh.ini': '[uwsgi]\ny = 1\ninherit = base.ini\nz = 2\n' }, args: ['--ini', 'inc.ini', '--ini', 'inh.ini'] },
  { name: 'expand: --set on the command line is expanded', files: { 'h': 'hello\n' }, env: { DIFF_FOO: 'bar' }, args: ['--set', 'x=$(DIFF_FOO)', '--set', 'y=@(h)', '--set', 'z=$(DIFF_NOT_SET_VAR)'] },
  {
    name: 'expand: set-ph trims around = (deliberate)',
    files: { 'c.ini': '[uwsgi]\nset-ph = max_customer_address_space = 64\nv = %(max_customer_address_space)\n' },
    args: ['--ini', 'c.ini'],
    differs: {
      why: 'uWSGI splits set-ph on the first "=" without trimming, so the doc\'s own example defines the key "max_customer_address_space " that no %() reaches (spec/core.md §4.8 hint).',
      uwsgi: ['ini = c.ini', 'set-ph = max_customer_address_space = 64', 'max_customer_address_space  =  64', 'v = %(max_customer_address_space)'],
      tsuwsgi: ['ini = c.ini', 'set-ph = max_customer_address_space = 64', 'max_customer_address_space = 64', 'v = 64'],
    },
  },
  {
    name: 'expand: a self-referencing placeholder is an error, not a hang (deliberate)',
    files: { 'c.ini': '[uwsgi]\na = x%(a)\n' },
    args: ['--ini', 'c.ini'],
    differs: { why: 'uWSGI 2.0 loops forever on it (spec/core.md §4.8); the reference is not run for this case.', tsuwsgiError: 'placeholder cycle: a -> a' },
  },

  // ---------------------------------------------------------------- config logic (§4.13)
  { name: 'logic: for binds three sockets (accept §4.13.1)', files: { 'c.ini': '[uwsgi]\nfor = 3031 3032 3033\nsocket = 127.0.0.1:%(_)\nendfor =\n' }, args: ['--ini', 'c.ini'] },
  { name: 'logic: for applies to each line separately (accept §4.13.2)', files: { 'c.ini': '[uwsgi]\nfor = a b\ns1 = /var/run/%(_).socket\ns2 = /var/run/%(_)-http.socket\nendfor =\n' }, args: ['--ini', 'c.ini'] },
  { name: 'logic: if-env with the variable set', files: { 'c.ini': '[uwsgi]\nif-env = DIFF_HOME\nhome-is = %(_)\nendif =\nafter = 1\n' }, env: { DIFF_HOME: '/home/someone' }, args: ['--ini', 'c.ini'] },
  { name: 'logic: if-env with the variable unset, if-not-env keeps %(_)', files: { 'c.ini': '[uwsgi]\nif-env = DIFF_UNSET\nx = %(_)\nendif =\nif-not-env = DIFF_UNSET\ny = [%(_)]\nend-if =\n' }, args: ['--ini', 'c.ini'] },
  { name: 'logic: if-env VAR=value compares', files: { 'c.ini': '[uwsgi]\nif-env = DIFF_MODE=prod\np = %(_)\nendif =\nif-env = DIFF_MODE=dev\nd = %(_)\nendif =\n' }, env: { DIFF_MODE: 'prod' }, args: ['--ini', 'c.ini'] },
  {
    name: 'logic: if-exists / if-not-exists (accept §4.13.4)',
    files: { maint: '', 'c.ini': '[uwsgi]\nif-exists = maint\nfoo = down\nendif =\nif-exists = nope\nbar = up\nendif =\nif-not-exists = nope\nbaz = %(_)\nendif =\nif-exists = .\ndir = %(_)\nendif =\n' },
    args: ['--ini', 'c.ini'],
  },
  { name: 'logic: if-file / if-dir / if-not-file / if-not-dir', dirs: ['d'], files: { 'f': 'x', 'c.ini': '[uwsgi]\nif-file = f\na = %(_)\nendif =\nif-file = d\nb = %(_)\nendif =\nif-dir = d\nc = %(_)\nendif =\nif-not-dir = f\ne = %(_)\nendif =\nif-not-file = nope\ng = %(_)\nendif =\n' }, args: ['--ini', 'c.ini'] },
  { name: 'logic: if-opt and if-not-opt see earlier options only (accept §4.13.5)', files: { 'c.ini': '[uwsgi]\nif-opt = workers\nearly = %(_)\nendif =\nworkers = 3\nif-opt = workers\nw = %(_)\nendif =\nif-opt = workers=4\nno = %(_)\nendif =\nif-not-opt = threads\nt = none\nendif =\n' }, args: ['--ini', 'c.ini'] },
  { name: 'logic: for-times and for-readline', files: { 'lines': 'one\ntwo\n', 'c.ini': '[uwsgi]\nfor-times = 3\nn = %(_)\nendfor =\nfor-readline = lines\nl = %(_)\nendfor =\n' }, args: ['--ini', 'c.ini'] },
  { name: 'logic: for-glob, and a glob with no match iterates once with the pattern', dirs: ['g/sub'], files: { 'g/a.txt': '', 'g/b.txt': '', 'c.ini': '[uwsgi]\nfor-glob = g/*.txt\nf = %(_)\nendfor =\nfor-glob = g/*\nd = %(_)\nendfor =\nfor-glob = g/*.none\nn = %(_)\nendfor =\n' }, args: ['--ini', 'c.ini'] },
  { name: 'logic: on the command line (--for … --endfor)', args: ['--for=3031 3032', '--socket=127.0.0.1:%(_)', '--endfor', '--set', 'after=1'] },
  { name: 'logic: `end` closes any block', files: { 'c.ini': '[uwsgi]\nfor = a\nx = %(_)\nend =\ny = %(_)\n' }, args: ['--ini', 'c.ini'] },
  {
    name: 'logic: nested blocks are refused (accept §4.13.6)',
    files: { 'c.ini': '[uwsgi]\nfor = a\nfor = b\nx = 1\nendfor =\n' },
    args: ['--ini', 'c.ini'],
    outcome: 'both-fail',
    errors: { uwsgi: 'recursive logic in options is not supported', tsuwsgi: 'recursive logic in options is not supported' },
  },

  // ---------------------------------------------------------------- XML (§4.5)
  {
    name: 'xml: a stanza picked by id (accept §4.5.1; deliberate: the option keeps its :id)',
    files: { 'f.xml': '<i-love-xml><uwsgi id="tg"><socket>/tmp/tg.sock</socket></uwsgi><uwsgi id="dj"><socket>/tmp/dj.sock</socket></uwsgi></i-love-xml>' },
    args: ['--xml', 'f.xml:dj'],
    differs: {
      why: 'uWSGI cuts the ":id" off the stored `xml`/`json` value (it writes a NUL over the colon while parsing), so --show-config misreports which stanza was loaded; tsuwsgi keeps the value as written, as uWSGI itself does for ini and yaml.',
      uwsgi: ['xml = f.xml', 'socket = /tmp/dj.sock'],
      tsuwsgi: ['xml = f.xml:dj', 'socket = /tmp/dj.sock'],
    },
  },
  { name: 'xml: the first stanza when no id is asked', files: { 'f.xml': '<root><uwsgi id="a"><x>1</x></uwsgi><uwsgi><x>2</x></uwsgi></root>' }, args: ['--xml', 'f.xml'] },
  { name: 'xml: empty elements, entities, blanks, CDATA, comments', files: { 'f.xml': '<?xml version="1.0"?>\n<!-- c -->\n<uwsgi>\n  <master/>\n  <empty></empty>\n  <foo>a &amp; b &lt;c&gt;</foo>\n  <ws>  spaced  </ws>\n  <cd><![CDATA[print 1]]></cd>\n  <!-- inside -->\n  <m mode="prod">p</m>\n</uwsgi>\n' }, args: ['-x', 'f.xml'] },
  {
    name: 'xml: <app mountpoint> is a mount (deliberate: no empty `app` option)',
    files: { 'f.xml': '<uwsgi><app mountpoint="/p">path.py</app></uwsgi>' },
    args: ['--xml', 'f.xml'],
    differs: {
      why: 'uWSGI adds the mount and then an empty `app` placeholder left over from its legacy handling; tsuwsgi adds the mount only.',
      uwsgi: ['xml = f.xml', 'mount = /p=path.py', 'app = '],
      tsuwsgi: ['xml = f.xml', 'mount = /p=path.py'],
    },
  },
  { name: 'xml: a bare .xml argument', files: { 'f.xml': '<uwsgi><foo>1</foo></uwsgi>' }, args: ['f.xml'] },
  {
    name: 'xml: a root without <uwsgi> is refused',
    files: { 'c.xml': '<foo><a>1</a></foo>' },
    args: ['--xml', 'c.xml'],
    outcome: 'both-fail',
    errors: { uwsgi: 'invalid xml root element, <uwsgi> expected', tsuwsgi: 'invalid xml root element in c.xml, <uwsgi> expected' },
  },
  {
    name: 'xml: malformed XML is refused',
    files: { 'd.xml': '<uwsgi><a>1</a>' },
    args: ['--xml', 'd.xml'],
    outcome: 'both-fail',
    errors: { uwsgi: 'could not parse file d.xml', tsuwsgi: 'could not parse file d.xml' },
  },
  {
    name: 'xml: an id that no stanza has (deliberate: an error)',
    files: { 'u.xml': '<root><uwsgi id="a"><x>1</x></uwsgi><uwsgi><x>2</x></uwsgi></root>' },
    args: ['--xml', 'u.xml:zz'],
    differs: { why: 'uWSGI silently uses the last stanza of the file; loading a config the user did not ask for is worse than stopping.', uwsgi: ['xml = u.xml', 'x = 2'], tsuwsgiError: 'u.xml has no <uwsgi id="zz">; its stanzas are: a' },
  },

  // ---------------------------------------------------------------- JSON (§4.5)
  { name: 'json: arrays repeat an option, true is 1 (accept §4.5.2)', files: { 'f.json': '{"uwsgi":{"socket":["/tmp/a.sock","127.0.0.1:8000"],"master":true,"workers":3}}' }, args: ['--json', 'f.json'] },
  {
    name: 'json: an object picked with file.json:name (accept §4.5.3; deliberate: the option keeps its :name)',
    files: { 'f.json': '{"app1":{"foo":"rack"},"app2":{"foo":"php"}}' },
    args: ['--json', 'f.json:app2'],
    differs: { why: 'as for xml: uWSGI cuts the ":name" off the stored value.', uwsgi: ['json = f.json', 'foo = php'], tsuwsgi: ['json = f.json:app2', 'foo = php'] },
  },
  { name: 'json: scalar mapping — false/null, numbers as written, nested objects ignored', files: { 'f.json': '{"uwsgi": {"off": false, "nul": null, "real": 1.50, "exp": 1e3, "neg": -4, "obj": {"x": 1}, "arr": [true, 1, "s", 2.5, null, {"y":1}], "dup": "a", "dup": "b", "esc": "t\\tab \\u00e9"}}' }, args: ['--json', 'f.json'] },
  { name: 'json: a bare .js argument is JSON', files: { 'f.js': '{"uwsgi": {"foo": "js"}}' }, args: ['f.js'] },
  {
    name: 'json: the named object must exist',
    files: { 'b.json': '{"x":{}}' },
    args: ['--json', 'b.json'],
    outcome: 'both-fail',
    errors: { uwsgi: 'you must define a object named uwsgi in your JSON data', tsuwsgi: 'you must define a object named uwsgi in your JSON data' },
  },
  {
    name: 'json: a syntax error is refused',
    files: { 'c.json': '{"uwsgi": {"a": 1,}' },
    args: ['--json', 'c.json'],
    outcome: 'both-fail',
    errors: { uwsgi: 'error parsing JSON data', tsuwsgi: 'error parsing JSON data in c.json: invalid object key (must be a string) at line 1, column 19' },
  },

  // ---------------------------------------------------------------- YAML (§4.5 + errata)
  { name: 'yaml: repeated keys (accept §4.5.4)', files: { 'f.yaml': 'uwsgi:\n  socket: /tmp/a.sock\n  socket: 127.0.0.1:8000\n  master: 1\n  workers: 3\n' }, args: ['--yaml', 'f.yaml'] },
  { name: 'yaml: # inside a value is kept, quotes are removed (errata)', files: { 'f.yaml': '# comment\nuwsgi:\n  foo: a#b\n  q: "quoted"\n  s: \'single \'\'q\'\'\'\n  t: value # trailing comment\n' }, args: ['--yaml', 'f.yaml'] },
  { name: 'yaml: lists repeat an option, scalars stay text', files: { 'f.yaml': 'uwsgi:\n  list:\n    - x\n    - y\n  flow: [1, 2]\n  a: 1.50\n  b: ~\n  c: ""\n  d: true\n  j: 0x1F\n  empty:\n  last: end\n' }, args: ['--yaml', 'f.yaml'] },
  { name: 'yaml: nested mappings are flattened, block scalars kept', files: { 'f.yaml': 'uwsgi:\n  nested:\n    inner: 1\n  fm: {x: 1, y: 2}\n  e: after-nested\n  f: |\n    block\n    text\n' }, args: ['--yaml', 'f.yaml'] },
  { name: 'yaml: a section picked with file.yaml:name, other sections ignored', files: { 'f.yaml': 'foo:\n  a: 1\nuwsgi:\n  b: 2\nother:\n  c: 3\n' }, args: ['--yaml', 'f.yaml:other'] },
  { name: 'yaml: included from an ini file, bare .yml argument', files: { 'c.ini': '[uwsgi]\nbefore = 1\ninclude = part.yaml\nafter = 2\n', 'part.yaml': 'uwsgi:\n  middle: x\n', 'g.yml': 'uwsgi:\n  yml: y\n' }, args: ['--ini', 'c.ini', 'g.yml'] },
  {
    name: 'yaml: anchors and aliases work (deliberate)',
    files: { 'f.yaml': 'uwsgi:\n  h: &anc val\n  i: *anc\n  j: after\n' },
    args: ['--yaml', 'f.yaml'],
    differs: { why: 'uWSGI stops reading at the first anchor ("unsupported YAML token"), silently dropping the rest of the file.', uwsgi: ['yaml = f.yaml'], tsuwsgi: ['yaml = f.yaml', 'h = val', 'i = val', 'j = after'] },
  },
  {
    name: 'yaml: a syntax error is refused (deliberate)',
    files: { 'f.yaml': 'uwsgi:\n  a: 1\n  b: [2\n' },
    args: ['--yaml', 'f.yaml'],
    differs: { why: 'uWSGI keeps what it read before the error and starts anyway.', uwsgi: ['yaml = f.yaml', 'a = 1', 'b = 2'], tsuwsgiError: 'error parsing YAML file f.yaml' },
  },

  // ---------------------------------------------------------------- environment, command line, sources (§4.2, §4.3, §4.6)
  { name: 'env: UWSGI_* become options, before the command line (accept §4.3)', env: { UWSGI_HTTP_SOCKET: ':9090', UWSGI_MASTER: '1', UWSGI_PROCESSES: '3', UWSGI_MY_VAR: 'x' }, args: ['--set', 'cli=1'] },
  { name: 'env: reserved UWSGI_ variables are not options', env: { UWSGI_RELOADS: '2', UWSGI_ORIGINAL_PROC_NAME: 'x', UWSGI_FOO: 'kept' }, args: ['--set', 'cli=1'] },
  { name: 'cli: --opt=value, short options, flags hold true', args: ['-s', ':3031', '--socket=:3032', '-M', '-p', '4', '--set', 'a=b=c', '--enable-threads'] },
  { name: 'sources: --ini - reads stdin (accept §4.6)', stdin: '[uwsgi]\nfoo = bar\n', args: ['--ini', '-'] },
  { name: 'sources: exec:// config', args: ['--ini', 'exec://printf "[uwsgi]\\nfoo=1\\nbar=2"'] },
  { name: 'sources: a json file from stdin', stdin: '{"uwsgi": {"foo": "from-stdin"}}', args: ['--json', '-'] },
  {
    name: 'strict: an unknown key is fatal, set-ph is allowed (accept §4.15)',
    files: { 'c.ini': '[uwsgi]\nset-ph = ok=1\nfoo = 1\n' },
    args: ['--strict', '--ini', 'c.ini'],
    outcome: 'both-fail',
    errors: { uwsgi: 'unknown config directive: foo', tsuwsgi: 'unknown config directive: foo' },
  },
  { name: 'strict: declared placeholders pass', files: { 'c.ini': '[uwsgi]\nset-ph = ok=1\nsocket = /tmp/%(ok).sock\n' }, args: ['--strict', '--ini', 'c.ini'] },
  {
    name: 'declare-option: the expansion is listed (deliberate)',
    files: { 'c.ini': '[uwsgi]\ndeclare-option = myport=http-socket=:$1;set-ph=last=$2\nmyport = 9191 77\n' },
    args: ['--ini', 'c.ini'],
    differs: {
      why: 'uWSGI applies a custom option\'s non-immediate options directly, so --show-config and --get do not show them; tsuwsgi lists them after the custom option, as if written there.',
      uwsgi: ['ini = c.ini', 'declare-option = myport=http-socket=:$1;set-ph=last=$2', 'myport = 9191 77', 'last = 77'],
      tsuwsgi: ['ini = c.ini', 'declare-option = myport=http-socket=:$1;set-ph=last=$2', 'myport = 9191 77', 'http-socket = :9191', 'last = 77'],
    },
  },
  { name: 'declare-option: immediate options of a custom option (accept §4.14)', args: ['--declare-option', 'twoset=set-ph=a=$1;set-ph=b=$2', '--twoset', 'x y'] },
];
