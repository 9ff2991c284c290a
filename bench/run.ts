/**
 * Benchmark: tsuwsgi against uWSGI and gunicorn on the same WSGI apps, measured with wrk.
 *
 *   npm run bench                      # everything (≈ 3 min)
 *   BENCH_DURATION=3s BENCH_ROUNDS=1 npm run bench
 *   BENCH_PEERS=tsuwsgi,uwsgi BENCH_APPS=hello npm run bench
 *
 * Each (server, app) pair: start the server with 2 worker processes and no request logging,
 * check the app answers correctly, warm up, then run wrk (2 threads, 32 keep-alive
 * connections, 10 s) 3 times and report the median req/s and the median p99 latency.
 * Results go to stdout as a table and to bench/results/latest.json. See bench/README.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, '..');
const APPS_DIR = path.join(BENCH_DIR, 'apps');
const RESULTS = path.join(BENCH_DIR, 'results', 'latest.json');

const WRK = process.env.BENCH_WRK ?? '/usr/bin/wrk';
const UWSGI = process.env.BENCH_UWSGI ?? '/usr/bin/uwsgi';
const GUNICORN = process.env.BENCH_GUNICORN ?? '/usr/bin/gunicorn';
/** The interpreter Debian's uwsgi plugin and gunicorn use: tsuwsgi's bridges use it too, so all run the same Python. */
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const STARMAN = process.env.BENCH_STARMAN ?? '/usr/bin/starman';
/** The perl Debian's uwsgi psgi plugin and starman use: tsuwsgi's Perl bridge runs it too. */
const PERL = process.env.BENCH_PERL ?? '/usr/bin/perl';
const PUMA = process.env.BENCH_PUMA ?? '/usr/bin/puma';
/** The ruby Debian's uwsgi rack plugin (rack_ruby31) and puma use: tsuwsgi's Ruby bridge runs it too. */
const RUBY = process.env.BENCH_RUBY ?? '/usr/bin/ruby';
/** PHP: tsuwsgi runs php-cgi (FastCGI), uWSGI its embedded php plugin, php-fpm sits behind nginx. */
const PHP_CGI = process.env.BENCH_PHP_CGI ?? '/usr/bin/php-cgi';
const PHP_FPM = process.env.BENCH_PHP_FPM ?? '/usr/sbin/php-fpm8.2';
const NGINX = process.env.BENCH_NGINX ?? '/usr/sbin/nginx';
/** Lua: tsuwsgi's bridge runs Debian's lua5.4 (BENCH_LUA=/usr/bin/luajit for the JIT); uWSGI's lua plugin is LuaJIT's. */
const LUA = process.env.BENCH_LUA ?? '/usr/bin/lua5.4';

const DURATION = process.env.BENCH_DURATION ?? '10s';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const WARMUP = process.env.BENCH_WARMUP ?? '2s';
const PROCESSES = 2;
/** How many non-matching rules the `+routes` peers put in front of hello world. */
const ROUTE_COUNT = 20;

interface AppDef {
  name: string;
  /** The app's language (default python): a peer runs only the apps of its `langs`. */
  lang?: string;
  file: string;
  module: string;
  description: string;
  check(body: Buffer): boolean;
  /** The path wrk and the readiness check request (default "/"). */
  path?: string;
}

const APPS: AppDef[] = [
  { name: 'hello', file: path.join(APPS_DIR, 'hello.py'), module: 'hello:application', description: 'Hello World (11 bytes)', check: (b) => b.toString() === 'Hello World' },
  { name: 'big', file: path.join(APPS_DIR, 'big.py'), module: 'big:application', description: '64 KiB body', check: (b) => b.length === 65536 },
  { name: 'psgi', lang: 'perl', file: path.join(APPS_DIR, 'hello.psgi'), module: '', description: 'PSGI Hello World (11 bytes)', check: (b) => b.toString() === 'Hello World' },
  { name: 'rack', lang: 'ruby', file: path.join(APPS_DIR, 'hello.ru'), module: '', description: 'Rack Hello World (11 bytes)', check: (b) => b.toString() === 'Hello World' },
  { name: 'php', lang: 'php', file: path.join(APPS_DIR, 'hello.php'), module: '', description: 'PHP Hello World (11 bytes)', check: (b) => b.toString() === 'Hello World' },
  { name: 'lua', lang: 'lua', file: path.join(APPS_DIR, 'hello.lua'), module: '', description: 'WSAPI Hello World (11 bytes)', check: (b) => b.toString() === 'Hello World' },
  // Static file serving (--static-map): the file lives in a private temporary directory every server can read.
  { name: 'static', lang: 'static', file: path.join(APPS_DIR, 'hello.py'), module: '', path: '/static/hello.txt', description: 'static file via --static-map (11 bytes)', check: (b) => b.toString() === 'Hello World' },
  { name: 'static4k', lang: 'static', file: path.join(APPS_DIR, 'hello.py'), module: '', path: '/static/4k.bin', description: 'static file via --static-map (4 KiB)', check: (b) => b.equals(staticContent('4k.bin')) },
  { name: 'static1m', lang: 'static', file: path.join(APPS_DIR, 'hello.py'), module: '', path: '/static/1m.bin', description: 'static file via --static-map (1 MiB)', check: (b) => b.equals(staticContent('1m.bin')) },
  // CGI forks the script for every request, in both servers: this measures the fork/exec path.
  { name: 'cgi', lang: 'cgi', file: path.join(APPS_DIR, 'cgi-bin'), module: '', path: '/hello.sh', description: 'CGI shell script Hello World (11 bytes)', check: (b) => b.toString() === 'Hello World' },
  { name: 'jwsgi', lang: 'java', file: path.join(APPS_DIR, 'Hello.java'), module: 'Hello:application', description: 'JWSGI Hello World (11 bytes)', check: (b) => b.toString() === 'Hello World' },
];

/** Temporary directories of this run, removed by one exit handler (one per directory tripped Node's listener warning). */
const TEMP_DIRS: string[] = [];
function removeAtExit(dir: string): void {
  if (TEMP_DIRS.length === 0) process.on('exit', () => TEMP_DIRS.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  TEMP_DIRS.push(dir);
}

/** JWSGI apps are classes: Hello.java is compiled once per run (javac) into a temporary directory. */
let javaClassDir = '';
function javaClasses(app: AppDef): string {
  if (!javaClassDir) {
    javaClassDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-jwsgi-'));
    removeAtExit(javaClassDir);
    const r = spawnSync('javac', ['-d', javaClassDir, app.file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`javac ${app.file} failed: ${r.error?.message ?? r.stderr}`);
  }
  return javaClassDir;
}

/**
 * The files of the static apps: 11 bytes of text, 4 KiB and 1 MiB of bytes that are not all
 * the same (a check that the whole file came back, in order). `.bin`, so every server sends
 * the same Content-Type (application/octet-stream).
 */
const STATIC_CONTENT: Record<string, Buffer> = {
  'hello.txt': Buffer.from('Hello World'),
  '4k.bin': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + 13) & 0xff)),
  '1m.bin': Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7 + 13) & 0xff)),
};
function staticContent(name: string): Buffer {
  return STATIC_CONTENT[name]!;
}

/** The directory of the static apps' files, world-readable (nginx workers drop privileges). */
let staticDir = '';
function staticFiles(): string {
  if (!staticDir) {
    staticDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-static-'));
    fs.chmodSync(staticDir, 0o755);
    removeAtExit(staticDir);
    for (const [name, content] of Object.entries(STATIC_CONTENT)) fs.writeFileSync(path.join(staticDir, name), content, { mode: 0o644 });
  }
  return staticDir;
}

/**
 * ROUTE_COUNT `route` rules on PATH_INFO that never match `/` (each a different literal, so
 * no engine can share work between them), the same for tsuwsgi and uWSGI. `break:` is never
 * reached; it only makes each a complete rule.
 */
function nonMatchingRoutes(): string[] {
  return Array.from({ length: ROUTE_COUNT }, (_, i) => ['--route', `^/bench-nomatch-${i}/ break:404 Not Found`]).flat();
}

/** nginx serving the `static` app's directory itself (one worker, keep-alive, no access log). */
function nginxStatic(_app: AppDef, port: number): { file: string; args: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nginx-'));
  removeAtExit(dir);
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) fs.mkdirSync(path.join(dir, d));
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `error_log ${dir}/logs/error.log warn;\npid ${dir}/nginx.pid;\nworker_processes 1;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  include /etc/nginx/mime.types;\n` +
      `  client_body_temp_path ${dir}/client_body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    location /static/ { alias ${staticFiles()}/; }\n  }\n}\n`,
  );
  return { file: NGINX, args: ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'] };
}

/** How tsuwsgi and uWSGI load an app of each language (uWSGI plugin names are Debian's). */
const TSUWSGI_APP_ARGS: Record<string, (app: AppDef) => string[]> = {
  python: (app) => ['--wsgi-file', app.file, '--python-bin', PYTHON],
  perl: (app) => ['--plugins', 'psgi', '--psgi', app.file, '--perl-bin', PERL],
  ruby: (app) => ['--plugins', 'rack', '--rack', app.file, '--ruby-bin', RUBY],
  php: (app) => ['--http-socket-modifier1', '14', '--plugins', 'php', '--php-app', app.file, '--php-cgi-bin', PHP_CGI],
  lua: (app) => ['--http-socket-modifier1', '6', '--plugins', 'lua', '--lua', app.file, '--lua-bin', LUA],
  java: (app) => ['--plugins', 'jvm,jwsgi', '--jwsgi', app.module, '--jvm-classpath', javaClasses(app)],
  cgi: (app) => ['--http-socket-modifier1', '9', '--plugins', 'cgi', '--cgi', app.file],
  // hello.py answers what the map does not (nothing, in the benchmark).
  // uWSGI's 2 worker processes both read and send files; in tsuwsgi the core workers do (the
  // bridges never see a static request), so the like-for-like setup is 2 core workers.
  static: (app) => ['--static-map', `/static=${staticFiles()}`, '--core-workers', String(PROCESSES), '--wsgi-file', app.file, '--python-bin', PYTHON],
};
const UWSGI_APP_ARGS: Record<string, (app: AppDef) => string[]> = {
  python: (app) => ['--plugin', 'python3', '--wsgi-file', app.file],
  perl: (app) => ['--plugin', 'psgi', '--psgi', app.file],
  // uWSGI runs a full GC after every Rack request by default (about 200 req/s on hello world
  // here); tsuwsgi leaves GC to Ruby, as puma does, so uWSGI gets the closest setting.
  ruby: (app) => ['--plugin', 'rack_ruby31', '--rack', app.file, '--ruby-gc-freq', '1000000'],
  php: (app) => ['--http-socket-modifier1', '14', '--plugin', 'php', '--php-app', app.file],
  // Debian's lua_plugin.so is LuaJIT's (uwsgi-plugin-luajit). A Lua app registers no app in
  // uWSGI, so modifier1 0 is not forwarded to it: the modifier must be given. uWSGI runs a
  // full Lua GC after every request by default; tsuwsgi leaves GC to Lua, so uWSGI gets the
  // closest setting. Its 2.0 plugin declares --lua-gc-freq without an argument (a bug), so
  // the value goes through --set, which does take effect (checked: the heap then grows).
  lua: (app) => ['--http-socket-modifier1', '6', '--plugin', 'lua', '--lua', app.file, '--set', 'lua-gc-freq=1000000'],
  // Debian's uwsgi-plugin-jvm-openjdk-17 and uwsgi-plugin-jwsgi-openjdk-17, with their uwsgi.jar.
  static: (app) => ['--plugin', 'python3', '--wsgi-file', app.file, '--static-map', `/static=${staticFiles()}`],
  cgi: (app) => ['--http-socket-modifier1', '9', '--plugin', 'cgi', '--cgi', app.file],
  java: (app) => ['--http-socket-modifier1', '8', '--plugin', 'jvm_openjdk17', '--plugin', 'jwsgi_openjdk17', '--jvm-classpath', '/usr/share/java/uwsgi.jar', '--jvm-classpath', javaClasses(app), '--jwsgi', app.module],
};

/**
 * php-fpm (pm = static, PROCESSES children) behind nginx (one worker, keep-alive to clients,
 * the usual one FastCGI connection per request: with fastcgi_keep_conn an fpm child stays
 * bound to one idle nginx connection), both run by one shell that stops php-fpm when nginx
 * ends. Config, pid and logs live in a private temporary directory.
 */
function phpFpmBehindNginx(app: AppDef, port: number): { file: string; args: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-php-fpm-'));
  // nginx workers run as an unprivileged user when started as root: they must reach the socket.
  fs.chmodSync(dir, 0o755);
  removeAtExit(dir);
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) fs.mkdirSync(path.join(dir, d));
  const sock = path.join(dir, 'fpm.sock');
  fs.writeFileSync(
    path.join(dir, 'fpm.conf'),
    `[global]\npid = ${dir}/fpm.pid\nerror_log = ${dir}/logs/fpm.log\ndaemonize = no\n[www]\nlisten = ${sock}\nlisten.mode = 0666\npm = static\npm.max_children = ${PROCESSES}\n`,
  );
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `error_log ${dir}/logs/error.log warn;\npid ${dir}/nginx.pid;\nworker_processes 1;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n` +
      `  client_body_temp_path ${dir}/client_body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;\n` +
      `  upstream fpm { server unix:${sock}; }\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    location / {\n      include /etc/nginx/fastcgi_params;\n      fastcgi_param SCRIPT_FILENAME ${app.file};\n      fastcgi_pass fpm;\n    }\n  }\n}\n`,
  );
  // -R: php-fpm refuses to run as root without it (the bench may run as root in CI). php-fpm
  // starts its own session, so the shell stops it when nginx ends.
  const script = `"$1" -F -R -y "$3/fpm.conf" & fpm=$!; trap 'kill $fpm 2>/dev/null; wait' EXIT; trap 'exit 0' INT TERM; "$2" -p "$3" -c "$3/nginx.conf" -g 'daemon off;'`;
  return { file: '/bin/sh', args: ['-c', script, 'php-fpm+nginx', PHP_FPM, NGINX, dir] };
}

/** A private file for the request log of a +log peer, removed when the run ends. */
function requestLogFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-log-'));
  removeAtExit(dir);
  return path.join(dir, 'requests.log');
}

interface Peer {
  name: string;
  binary: string;
  /** The app languages this server runs (default python). */
  langs?: string[];
  /** Only these apps (default: every app of its languages). */
  apps?: string[];
  command(app: AppDef, port: number): { file: string; args: string[]; cwd?: string };
}

const PEERS: Peer[] = [
  {
    name: 'tsuwsgi',
    binary: process.execPath,
    langs: Object.keys(TSUWSGI_APP_ARGS),
    command: (app, port) => ({
      file: process.execPath,
      args: [path.join(REPO, 'bin', 'tsuwsgi.js'), '--http-socket', `127.0.0.1:${port}`, '--processes', String(PROCESSES), ...TSUWSGI_APP_ARGS[app.lang ?? 'python']!(app), '--disable-logging'],
      cwd: REPO,
    }),
  },
  {
    // The cost of request logging (issue 8: under 5% of hello-world throughput): tsuwsgi with
    // uWSGI's default request line written to a file, against the tsuwsgi row above.
    name: 'tsuwsgi+log',
    binary: process.execPath,
    langs: ['python'],
    command: (app, port) => ({
      file: process.execPath,
      args: [path.join(REPO, 'bin', 'tsuwsgi.js'), '--http-socket', `127.0.0.1:${port}`, '--processes', String(PROCESSES), ...TSUWSGI_APP_ARGS[app.lang ?? 'python']!(app), '--logto', requestLogFile()],
      cwd: REPO,
    }),
  },
  {
    name: 'uWSGI',
    binary: UWSGI,
    langs: Object.keys(UWSGI_APP_ARGS),
    command: (app, port) => ({
      file: UWSGI,
      args: ['--http-socket', `127.0.0.1:${port}`, '--processes', String(PROCESSES), ...UWSGI_APP_ARGS[app.lang ?? 'python']!(app), '--disable-logging'],
    }),
  },
  {
    // uWSGI's own cost of the same request log (each worker write()s its line to the file):
    // the floor tsuwsgi+log is held against (the "logging overhead" section).
    name: 'uWSGI+log',
    binary: UWSGI,
    langs: ['python'],
    command: (app, port) => ({
      file: UWSGI,
      args: ['--http-socket', `127.0.0.1:${port}`, '--processes', String(PROCESSES), ...UWSGI_APP_ARGS[app.lang ?? 'python']!(app), '--logto', requestLogFile()],
    }),
  },
  // The cost of routing: the same servers with ROUTE_COUNT `route` rules that never match in
  // front of hello world. They run side by side with tsuwsgi and uWSGI, rounds interleaved,
  // so "X+routes / X" is measured under the same noise (the "routing overhead" section).
  {
    name: 'tsuwsgi+routes',
    binary: process.execPath,
    apps: ['hello'],
    command: (app, port) => ({
      file: process.execPath,
      args: [path.join(REPO, 'bin', 'tsuwsgi.js'), '--http-socket', `127.0.0.1:${port}`, '--processes', String(PROCESSES), ...TSUWSGI_APP_ARGS.python!(app), '--disable-logging', ...nonMatchingRoutes()],
      cwd: REPO,
    }),
  },
  {
    name: 'uWSGI+routes',
    binary: UWSGI,
    apps: ['hello'],
    // `route` and `break` are in uWSGI's core: no router plugin is needed.
    command: (app, port) => ({
      file: UWSGI,
      args: ['--http-socket', `127.0.0.1:${port}`, '--processes', String(PROCESSES), ...UWSGI_APP_ARGS.python!(app), '--disable-logging', ...nonMatchingRoutes()],
    }),
  },
  {
    name: 'starman',
    binary: STARMAN,
    langs: ['perl'],
    // starman keeps connections alive and writes no access log unless asked (--access-log).
    command: (app, port) => ({
      file: PERL,
      args: [STARMAN, '--workers', String(PROCESSES), '--listen', `127.0.0.1:${port}`, app.file],
    }),
  },
  {
    name: 'puma',
    binary: PUMA,
    langs: ['ruby'],
    // 2 workers of 1 thread: the same concurrency as 2 single-threaded app workers. puma keeps
    // connections alive and logs no requests unless asked (--log-requests).
    command: (app, port) => ({
      file: RUBY,
      args: [PUMA, '-w', String(PROCESSES), '-t', '1:1', '-e', 'production', '-b', `tcp://127.0.0.1:${port}`, app.file],
    }),
  },
  {
    name: 'php-fpm',
    binary: PHP_FPM,
    langs: ['php'],
    command: phpFpmBehindNginx,
  },
  {
    name: 'nginx',
    binary: NGINX,
    langs: ['static'],
    command: nginxStatic,
  },
  {
    name: 'gunicorn',
    binary: GUNICORN,
    // gunicorn writes no access log unless asked (--access-logfile): the same as --disable-logging.
    command: (app, port) => ({
      file: GUNICORN,
      args: ['-w', String(PROCESSES), '--worker-class', 'sync', '-b', `127.0.0.1:${port}`, '--chdir', APPS_DIR, '--log-level', 'warning', app.module],
    }),
  },
];

interface Round {
  rps: number;
  p99Ms: number;
  p50Ms: number;
  avgMs: number;
  requests: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
  /**
   * CPU time of the server's processes (its process group) per request during the round, in
   * µs. On a small shared machine this is steadier than req/s: it does not move with what
   * the neighbours do to the throughput (the logging overhead section compares it).
   */
  cpuUsPerReq?: number;
}

interface Result {
  server: string;
  app: string;
  command: string;
  rounds: Round[];
  medianRps: number;
  medianP99Ms: number;
  /** The server closed connections after responses (wrk counts a read error per request). */
  closesConnections: boolean;
  /** The server stopped answering after a wrk run (the remaining rounds were not run). */
  stalled: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function exists(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

function get(port: number, timeoutMs = 2000, urlPath = '/'): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

interface Running {
  proc: ChildProcess;
  output: () => string;
}

function startPeer(peer: Peer, app: AppDef, port: number): Running {
  const c = peer.command(app, port);
  // Own process group, so stopping kills every worker the server forked.
  const proc = spawn(c.file, c.args, { cwd: c.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { proc, output: () => out };
}

/** One GET with a 5 s limit: does the server still answer correctly? */
async function answers(port: number, app: AppDef): Promise<boolean> {
  try {
    const res = await get(port, 5000, app.path);
    return res.status === 200 && app.check(res.body);
  } catch {
    return false;
  }
}

async function waitReady(r: Running, port: number, app: AppDef, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (r.proc.exitCode !== null || r.proc.signalCode !== null) throw new Error(`${name} exited during start-up:\n${r.output().slice(-3000)}`);
    try {
      const res = await get(port, 2000, app.path);
      if (res.status === 200 && app.check(res.body)) return;
      throw new Error(`${name} answered ${res.status} with ${res.body.length} bytes for app ${app.name}`);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${name} not ready after 60 s (${(err as Error).message}):\n${r.output().slice(-3000)}`);
    }
    await sleep(200);
  }
}

async function stopPeer(r: Running): Promise<void> {
  const pid = r.proc.pid;
  if (pid === undefined || r.proc.exitCode !== null || r.proc.signalCode !== null) return;
  const exited = new Promise<void>((res) => r.proc.once('exit', () => res()));
  try {
    process.kill(-pid, 'SIGINT');
  } catch {
    /* gone */
  }
  const t = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 10_000);
  await exited;
  clearTimeout(t);
  // Whatever the server forked and left behind in its group.
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* nothing left */
  }
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case 'us':
      return v / 1000;
    case 'ms':
      return v;
    case 's':
      return v * 1000;
    case 'm':
      return v * 60_000;
    default:
      return Number.NaN;
  }
}

export function parseWrk(out: string): Round {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\b/m.exec(out);
  const p50 = /^\s*50%\s+([\d.]+)(us|ms|s|m)\b/m.exec(out);
  const avg = /^\s*Latency\s+([\d.]+)(us|ms|s|m)\b/m.exec(out);
  const reqs = /(\d+) requests in/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (!rps || !p99) throw new Error(`cannot parse wrk output:\n${out}`);
  return {
    rps: Number(rps[1]),
    p99Ms: toMs(p99[1]!, p99[2]!),
    p50Ms: p50 ? toMs(p50[1]!, p50[2]!) : Number.NaN,
    avgMs: avg ? toMs(avg[1]!, avg[2]!) : Number.NaN,
    requests: reqs ? Number(reqs[1]) : 0,
    socketErrors: sock
      ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

function runWrk(port: number, duration: string, urlPath = '/'): string {
  const r = spawnSync(WRK, ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', duration, '--latency', `http://127.0.0.1:${port}${urlPath}`], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  if (r.status !== 0) throw new Error(`wrk failed (${r.status ?? r.signal}): ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

interface Overhead {
  server: string;
  withoutRps: number;
  withRoutesRps: number;
  /** X+routes / X: 1 = free, 0.9 = the rules cost 10% of the throughput. */
  ratio: number;
}

/** Per server run with and without the rules (`X` and `X+routes`, app hello): what the rules cost. */
function routingOverhead(results: Result[]): Overhead[] {
  const out: Overhead[] = [];
  for (const r of results.filter((x) => x.app === 'hello' && x.server.endsWith('+routes') && x.medianRps > 0)) {
    const server = r.server.slice(0, -'+routes'.length);
    const base = results.find((x) => x.app === 'hello' && x.server === server && x.medianRps > 0);
    if (base) out.push({ server, withoutRps: base.medianRps, withRoutesRps: r.medianRps, ratio: r.medianRps / base.medianRps });
  }
  return out;
}

/** Clock ticks per second of /proc/PID/stat's CPU times. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/**
 * User + system CPU ticks of every live process in process group `pgid` (a peer runs in its
 * own group: the server and every worker it forked), from /proc; null where /proc is missing.
 */
function groupCpuTicks(pgid: number | undefined): number | null {
  if (pgid === undefined || !fs.existsSync('/proc/self/stat')) return null;
  let ticks = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command (which may hold spaces and parentheses): state is field 3.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks;
}

interface LogOverhead {
  server: string;
  app: string;
  /** Round i of X+log against round i of X (they run back to back): the median of those ratios. */
  medianRoundRatio: number;
  roundRatios: number[];
  /** Median CPU per request (all the server's processes) with and without the log, µs. */
  cpuWithLog: number | null;
  cpuWithout: number | null;
}

/**
 * Per server run with and without request logging to a file (`X+log` and `X`): what the log
 * costs. Rounds are paired (round i of both ran within one interleaving cycle, under about
 * the same neighbours), which removes most of the drift the medians of each would keep.
 */
function loggingOverhead(results: Result[]): LogOverhead[] {
  const out: LogOverhead[] = [];
  const cpu = (r: Result): number | null => {
    const v = r.rounds.map((x) => x.cpuUsPerReq).filter((x): x is number => x !== undefined);
    return v.length ? median(v) : null;
  };
  for (const r of results.filter((x) => x.server.endsWith('+log') && x.rounds.length > 0)) {
    const server = r.server.slice(0, -'+log'.length);
    const base = results.find((x) => x.app === r.app && x.server === server && x.rounds.length > 0);
    if (!base) continue;
    const n = Math.min(r.rounds.length, base.rounds.length);
    const roundRatios: number[] = [];
    for (let i = 0; i < n; i++) if (base.rounds[i]!.rps > 0) roundRatios.push(r.rounds[i]!.rps / base.rounds[i]!.rps);
    if (roundRatios.length === 0) continue;
    out.push({ server, app: r.app, medianRoundRatio: median(roundRatios), roundRatios, cpuWithLog: cpu(r), cpuWithout: cpu(base) });
  }
  return out;
}

async function main(): Promise<void> {
  if (!exists(WRK)) {
    console.error(`wrk is required for the benchmark but ${WRK} is missing (apt-get install wrk)`);
    process.exit(1);
  }
  const only = process.env.BENCH_PEERS?.split(',').map((s) => s.trim().toLowerCase());
  const onlyApps = process.env.BENCH_APPS?.split(',').map((s) => s.trim());
  const apps = APPS.filter((a) => !onlyApps || onlyApps.includes(a.name));
  const skipped: Array<{ server: string; reason: string }> = [];
  const peers = PEERS.filter((p) => !only || only.includes(p.name.toLowerCase())).filter((p) => {
    if (exists(p.binary)) return true;
    const reason = `${p.binary} not found`;
    console.log(`note: skipping ${p.name}: ${reason}`);
    skipped.push({ server: p.name, reason });
    return false;
  });

  console.log(
    `wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} (keep-alive), ${ROUNDS} round(s) per server and app, ${PROCESSES} worker processes each, request logging off; ${os.cpus().length} CPUs, Python ${PYTHON}`,
  );
  const results: Result[] = [];
  for (const app of apps) {
    // All servers run side by side and the rounds are interleaved (tsuwsgi, uWSGI, gunicorn,
    // tsuwsgi, …): the machines are shared and noisy, and interleaving spreads the noise over
    // every server instead of penalising whichever happened to run during a busy minute.
    interface Live {
      peer: Peer;
      port: number;
      cmd: string;
      running: Running;
      rounds: Round[];
      stalled: boolean;
    }
    const live: Live[] = [];
    try {
      for (const peer of peers.filter((p) => (p.langs ?? ['python']).includes(app.lang ?? 'python') && (!p.apps || p.apps.includes(app.name)))) {
        const port = await freePort();
        const c = peer.command(app, port);
        const running = startPeer(peer, app, port);
        try {
          await waitReady(running, port, app, peer.name);
        } catch (err) {
          console.log(`  ${peer.name} ${app.name}: FAILED: ${(err as Error).message}`);
          skipped.push({ server: `${peer.name}/${app.name}`, reason: `failed: ${(err as Error).message.split('\n')[0]}` });
          await stopPeer(running);
          continue;
        }
        live.push({ peer, port, cmd: [c.file, ...c.args].join(' '), running, rounds: [], stalled: false });
      }
      for (const l of live) {
        if (/^0+[a-z]*$/.test(WARMUP)) continue;
        runWrk(l.port, WARMUP, app.path);
        if (!(await answers(l.port, app))) {
          l.stalled = true;
          console.log(`  ${l.peer.name} ${app.name}: stopped answering after the warm-up run (wrk's connections were cut mid-request)`);
        }
      }
      for (let i = 0; i < ROUNDS; i++) {
        for (const l of live) {
          if (l.stalled) continue;
          const cpu0 = groupCpuTicks(l.running.proc.pid);
          const round = parseWrk(runWrk(l.port, DURATION, app.path));
          const cpu1 = groupCpuTicks(l.running.proc.pid);
          if (cpu0 !== null && cpu1 !== null && round.requests > 0) round.cpuUsPerReq = ((cpu1 - cpu0) * 1e6) / CLK_TCK / round.requests;
          l.rounds.push(round);
          const errs = round.socketErrors;
          console.log(
            `  ${l.peer.name} ${app.name} round ${i + 1}: ${round.rps.toFixed(0)} req/s, p99 ${round.p99Ms.toFixed(2)} ms` +
              (errs.connect + errs.write + errs.timeout + round.non2xx ? `, errors: connect ${errs.connect} write ${errs.write} timeout ${errs.timeout} non-2xx ${round.non2xx}` : '') +
              (errs.read ? `, connection closes (wrk "read" errors): ${errs.read}` : ''),
          );
          if (!(await answers(l.port, app))) {
            l.stalled = true;
            console.log(`  ${l.peer.name} ${app.name}: stopped answering after round ${i + 1} (wrk's connections were cut mid-request)`);
          }
        }
      }
    } finally {
      for (const l of live) await stopPeer(l.running);
    }
    for (const l of live) {
      results.push({
        server: l.peer.name,
        app: app.name,
        command: l.cmd,
        rounds: l.rounds,
        medianRps: l.rounds.length ? median(l.rounds.map((x) => x.rps)) : 0,
        medianP99Ms: l.rounds.length ? median(l.rounds.map((x) => x.p99Ms)) : Number.NaN,
        closesConnections: l.rounds.some((x) => x.socketErrors.read > x.requests / 2),
        stalled: l.stalled,
      });
    }
  }

  const header = `${pad('server', 14)} ${pad('app', 8)} ${pad('req/s (median)', 15, true)} ${pad('p99 ms (median)', 16, true)} ${pad('vs tsuwsgi', 11, true)}  notes`;
  console.log('\n' + header);
  console.log('-'.repeat(header.length + 10));
  for (const r of results) {
    const base = results.find((x) => x.app === r.app && x.server === 'tsuwsgi');
    const ratio = base && base.medianRps > 0 ? (r.medianRps / base.medianRps).toFixed(2) + 'x' : 'n/a';
    const notes = [
      r.stalled ? `STALLED: stopped answering after ${r.rounds.length ? `round ${r.rounds.length}` : 'the warm-up'}` : '',
      r.closesConnections ? 'closes connections (no keep-alive)' : '',
      r.rounds.some((x) => x.non2xx > 0) ? 'non-2xx responses!' : '',
      r.rounds.some((x) => x.socketErrors.timeout > 0) ? 'timeouts' : '',
    ]
      .filter(Boolean)
      .join(', ');
    console.log(
      `${pad(r.server, 14)} ${pad(r.app, 8)} ${pad(r.medianRps.toFixed(0), 15, true)} ${pad(r.medianP99Ms.toFixed(2), 16, true)} ${pad(ratio, 11, true)}  ${notes}`,
    );
  }
  for (const s of skipped) console.log(`skipped: ${s.server}: ${s.reason}`);

  const overhead = routingOverhead(results);
  if (overhead.length) {
    console.log(`\nrouting overhead: hello world behind ${ROUTE_COUNT} non-matching route rules (X+routes) against without (X), rounds interleaved`);
    for (const o of overhead) {
      console.log(`${pad(o.server, 14)} ${pad(o.withRoutesRps.toFixed(0), 8, true)} / ${pad(o.withoutRps.toFixed(0), 8, true)} req/s = ${o.ratio.toFixed(3)} (${o.ratio <= 1 ? `${((1 - o.ratio) * 100).toFixed(1)}% slower` : `${((o.ratio - 1) * 100).toFixed(1)}% faster: noise`})`);
    }
    const t = overhead.find((o) => o.server === 'tsuwsgi');
    const u = overhead.find((o) => o.server === 'uWSGI');
    if (t && u) console.log(`ratio of ratios (tsuwsgi / uWSGI): ${(t.ratio / u.ratio).toFixed(3)} (1.000 = routing costs both the same share of their throughput)`);
  }

  const logOverhead = loggingOverhead(results);
  if (logOverhead.length) {
    console.log('\nlogging overhead: request lines to a file (X+log, --logto) against --disable-logging (X); round i of both paired, CPU = all the server\'s processes');
    for (const o of logOverhead) {
      const cpu = o.cpuWithLog !== null && o.cpuWithout !== null ? `, CPU ${o.cpuWithLog.toFixed(1)} / ${o.cpuWithout.toFixed(1)} us/req (${o.cpuWithLog >= o.cpuWithout ? '+' : ''}${(((o.cpuWithLog - o.cpuWithout) / o.cpuWithout) * 100).toFixed(1)}%)` : '';
      console.log(`${pad(o.server, 14)} ${pad(o.app, 8)} req/s ratio ${o.medianRoundRatio.toFixed(3)} (median of ${o.roundRatios.length} rounds: ${o.roundRatios.map((x) => x.toFixed(2)).join(' ')})${cpu}`);
    }
    for (const t of logOverhead.filter((x) => x.server === 'tsuwsgi')) {
      const u = logOverhead.find((x) => x.server === 'uWSGI' && x.app === t.app);
      if (u) console.log(`ratio of ratios (tsuwsgi / uWSGI), ${t.app}: ${(t.medianRoundRatio / u.medianRoundRatio).toFixed(3)} (1.000 = the log costs both the same share of their throughput)`);
    }
  }

  const py = spawnSync(PYTHON, ['--version'], { encoding: 'utf8' });
  const report = {
    date: new Date().toISOString(),
    host: { hostname: os.hostname(), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', node: process.version, python: (py.stdout || py.stderr).trim() },
    config: { tool: 'wrk', threads: THREADS, connections: CONNECTIONS, duration: DURATION, warmup: WARMUP, rounds: ROUNDS, processes: PROCESSES, logging: 'disabled' },
    apps: Object.fromEntries(apps.map((a) => [a.name, { file: path.relative(REPO, a.file), description: a.description }])),
    results: results.map((r) => {
      const base = results.find((x) => x.app === r.app && x.server === 'tsuwsgi');
      return { ...r, ratioVsTsuwsgi: base && base.medianRps > 0 ? r.medianRps / base.medianRps : null };
    }),
    routingOverhead: overhead,
    loggingOverhead: logOverhead,
    skipped,
  };
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nresults written to ${path.relative(process.cwd(), RESULTS) || RESULTS}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
