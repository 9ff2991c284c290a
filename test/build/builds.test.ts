/**
 * Builds end to end (issue 4): a monolithic executable, the core profile with plugins built
 * one by one, distro-style packages installed into a temporary root, an embedded config,
 * and a third-party plugin built out of tree by an installed core. Every build goes to a
 * temporary dist directory (TSUWSGI_DIST), and every server started is stopped.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest } from '../helpers/http-raw.ts';
import { fixture, REPO_ROOT, runTsuwsgi, startServer, withServerLog, type ServerHandle } from '../helpers/server.ts';

const DIST = fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-dist-'));
/** dpkg's name for this machine's architecture (amd64…): the core package's. */
const ARCH = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim();
const PERL_HELLO = path.join(REPO_ROOT, 'test', 'fixtures', 'perl', 'hello.pl');

function uwsgiconfig(args: string[], env: Record<string, string> = {}): { output: string; ms: number } {
  const started = Date.now();
  const run = spawnSync(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(REPO_ROOT, 'uwsgiconfig.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, TSUWSGI_DIST: DIST, ...env },
    encoding: 'utf8',
  });
  const output = `${run.stdout}${run.stderr}`;
  if (run.status !== 0) throw new Error(`uwsgiconfig.ts ${args.join(' ')} failed (${run.status}):\n${output}`);
  return { output, ms: Date.now() - started };
}

const bin = (profile: string, name = 'tsuwsgi'): string => path.join(DIST, profile, 'bin', name);

let srv: ServerHandle | undefined;
afterEach(async () => {
  await srv?.stop();
  srv = undefined;
});
afterAll(() => fs.rmSync(DIST, { recursive: true, force: true }));

describe('monolithic build (uwsgiconfig.ts --build)', () => {
  it('builds the default profile in well under 60 s into one executable with its bridges', () => {
    const { output, ms } = uwsgiconfig(['--build', 'default']);
    expect(ms).toBeLessThan(60_000);
    expect(output).toMatch(/tsuwsgi core built: .*bin\/tsuwsgi .*embedded plugins: python, http/);
    expect(fs.statSync(bin('default')).mode & 0o111).not.toBe(0);
    expect(fs.existsSync(path.join(DIST, 'default', 'bridges', 'python', 'bridge.py'))).toBe(true);
    expect(fs.existsSync(path.join(DIST, 'default', 'plugins', 'psgi_plugin.cjs'))).toBe(true);
  });

  it('runs without the checkout: --version, --plugins-list, and a WSGI app through two core workers', async () => {
    const version = await runTsuwsgi(['--version'], { command: bin('default'), cwd: os.tmpdir() });
    expect(version.stdout.trim()).toMatch(/^2\.0\.\d+-tsuwsgi-/);
    const list = await runTsuwsgi(['--plugins-list'], { command: bin('default'), cwd: os.tmpdir() });
    expect(list.stdout).toMatch(/^python \(loaded\)$/m);
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--master', '--core-workers', '2'], { command: bin('default'), cwd: os.tmpdir() });
    await withServerLog(srv, async () => {
      const res = await httpRequest(srv!.port, { path: '/' });
      expect(res.body.toString()).toBe('Hello World');
    });
  });

  it('loads a plugin file built with the profile from its own plugins directory', async () => {
    srv = await startServer(['--plugins', 'http,psgi', '--http', '127.0.0.1:0', '--psgi', PERL_HELLO], { command: bin('default'), cwd: os.tmpdir() });
    await withServerLog(srv, async () => {
      expect((await httpRequest(srv!.port, { path: '/' })).status).toBe(200);
    });
  });

  it('bakes UWSGI_EMBED_CONFIG into a UWSGI_BIN_NAME executable that starts with no arguments and accepts more', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-embed-'));
    const ini = path.join(dir, 'app.ini');
    fs.writeFileSync(ini, `[uwsgi]\nhttp-socket = 127.0.0.1:0\nwsgi-file = ${fixture('hello.py')}\n`);
    try {
      uwsgiconfig(['--build', 'pyonly'], { UWSGI_EMBED_CONFIG: ini, UWSGI_BIN_NAME: 'myapp' });
      const myapp = bin('pyonly', 'myapp');
      srv = await startServer([], { command: myapp, cwd: os.tmpdir() });
      await withServerLog(srv, async () => {
        expect((await httpRequest(srv!.port, { path: '/' })).body.toString()).toBe('Hello World');
      });
      await srv.stop();
      // The embedded config is read first; the command line adds to it.
      srv = await startServer(['--http-socket', '127.0.0.1:0'], { command: myapp, cwd: os.tmpdir() });
      await withServerLog(srv, async () => {
        expect(srv!.sockets).toHaveLength(2);
        for (const s of srv!.sockets) expect((await httpRequest(Number(s.split(':').pop()), { path: '/' })).status).toBe(200);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('single executable (uwsgiconfig.ts --sea)', () => {
  it('injects the core into a copy of node: one file that is the whole server (bridges stay beside it)', async () => {
    uwsgiconfig(['--sea', 'pyonly']);
    const exe = path.join(`${DIST}/pyonly-sea`, 'bin', 'tsuwsgi');
    // It is a node binary, not a script: no #! line, no interpreter needed.
    expect(fs.readFileSync(exe).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    srv = await startServer(['--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py'), '--master', '--core-workers', '2'], { command: exe, cwd: os.tmpdir() });
    await withServerLog(srv, async () => {
      expect((await httpRequest(srv!.port, { path: '/' })).body.toString()).toBe('Hello World');
    });
  });
});

describe('modular build: the core profile, then one plugin at a time', () => {
  it('builds a core with no request plugin, which refuses requests with uWSGI\'s unavailable-modifier line', async () => {
    uwsgiconfig(['--build', 'core']);
    const list = await runTsuwsgi(['--plugins-list'], { command: bin('core'), cwd: os.tmpdir() });
    expect(list.stdout).not.toMatch(/\(loaded/);
    srv = await startServer(['--http-socket', '127.0.0.1:0'], { command: bin('core'), cwd: os.tmpdir() });
    await withServerLog(srv, async () => {
      await httpRequest(srv!.port, { path: '/' }).catch(() => undefined);
      await srv!.waitForLog(/-- unavailable modifier requested: 0 --/);
    });
  });

  it('adds python with --plugin plugins/python core, loaded by --plugins python', async () => {
    uwsgiconfig(['--plugin', 'plugins/python', 'core']);
    expect(fs.existsSync(path.join(DIST, 'core', 'plugins', 'python_plugin.cjs'))).toBe(true);
    srv = await startServer(['--plugins', 'python', '--http-socket', '127.0.0.1:0', '--wsgi-file', fixture('hello.py')], { command: bin('core'), cwd: os.tmpdir() });
    await withServerLog(srv, async () => {
      expect((await httpRequest(srv!.port, { path: '/' })).body.toString()).toBe('Hello World');
    });
    const missing = await runTsuwsgi(['--plugins', 'psgi'], { command: bin('core'), cwd: os.tmpdir() });
    expect(missing.code).toBe(1);
    expect(missing.output).toContain(`searched ${path.join(DIST, 'core', 'plugins', 'psgi_plugin.cjs')}`);
  });
});

describe('packages (uwsgiconfig.ts --package) and third-party plugins', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-root-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('turns the modular build into tsuwsgi-core and one package per plugin, with runtime dependencies', () => {
    uwsgiconfig(['--build', 'modular']);
    uwsgiconfig(['--package', 'modular']);
    const packages = fs.readdirSync(path.join(DIST, 'modular', 'packages')).sort();
    // The core carries compiled code (esbuild, the sendfile addon): the machine's architecture.
    expect(packages).toEqual(expect.arrayContaining([`tsuwsgi-core_0.1.0_${ARCH}.deb`, 'tsuwsgi-plugin-psgi_0.1.0_all.deb', 'tsuwsgi-plugin-python_0.1.0_all.deb', 'tsuwsgi-plugin-rack_0.1.0_all.deb']));
    const info = spawnSync('dpkg-deb', ['-f', path.join(DIST, 'modular', 'packages', 'tsuwsgi-plugin-psgi_0.1.0_all.deb'), 'Depends'], { encoding: 'utf8' });
    expect(info.stdout.trim()).toBe('tsuwsgi-core (= 0.1.0), perl');
    // The cgi plugin ships its C forker, compiled for this machine.
    expect(packages).toContain(`tsuwsgi-plugin-cgi_0.1.0_${ARCH}.deb`);
    const cgiFiles = spawnSync('dpkg-deb', ['-c', path.join(DIST, 'modular', 'packages', `tsuwsgi-plugin-cgi_0.1.0_${ARCH}.deb`)], { encoding: 'utf8' }).stdout;
    expect(cgiFiles).toMatch(/bridges\/cgi\/native\/build\/cgi-forker\n/);
    expect(cgiFiles).not.toMatch(/cgi-forker\.c|native\/build\.ts/);
  });

  it('installs the core and psgi packages side by side and serves `--plugins http,psgi --http … --psgi app.pl`', async () => {
    for (const p of ['tsuwsgi-core', 'tsuwsgi-plugin-psgi']) {
      const run = spawnSync('dpkg-deb', ['-x', path.join(DIST, 'modular', 'packages', `${p}_0.1.0_${p === 'tsuwsgi-core' ? ARCH : 'all'}.deb`), root], { encoding: 'utf8' });
      expect(run.status).toBe(0);
    }
    const installed = path.join(root, 'usr', 'bin', 'tsuwsgi');
    expect(fs.lstatSync(installed).isSymbolicLink()).toBe(true);
    srv = await startServer(['--plugins', 'http,psgi', '--http', '127.0.0.1:0', '--psgi', PERL_HELLO], { command: installed, cwd: os.tmpdir() });
    await withServerLog(srv, async () => {
      const res = await httpRequest(srv!.port, { path: '/' });
      expect(res.status).toBe(200);
      expect(srv!.logs()).toContain('Perl app 0');
    });
  });

  it('builds examples/plugins/echo out of tree with the installed core and serves requests through it (modifier1 101)', async () => {
    const installed = path.join(root, 'usr', 'bin', 'tsuwsgi');
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-3rd-'));
    try {
      const build = await runTsuwsgi(['--build-plugin', path.join(REPO_ROOT, 'examples', 'plugins', 'echo')], { command: installed, cwd: work });
      expect({ code: build.code, output: build.output }).toEqual({ code: 0, output: expect.stringContaining('plugin echo built') });
      expect(fs.existsSync(path.join(work, 'echo_plugin.cjs'))).toBe(true);
      expect(fs.existsSync(path.join(work, 'echo', 'bridge.mjs'))).toBe(true);
      srv = await startServer(['--plugins-dir', work, '--plugins', 'echo', '--echo', '--echo-prefix', 'third party', '--http-socket', '127.0.0.1:0', '--http-socket-modifier1', '101'], { command: installed, cwd: os.tmpdir() });
      await withServerLog(srv, async () => {
        const res = await httpRequest(srv!.port, { path: '/hello?x=1' });
        expect(res.body.toString()).toMatch(/^third party\nREQUEST_METHOD=GET\nREQUEST_URI=\/hello\?x=1\n/);
      });
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
