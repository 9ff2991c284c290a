/**
 * The JVM bridge is Java source (bridges/jvm/src); it runs from a jar made with the JDK's
 * javac. Where that jar comes from (docs/jvm.md "The bridge jar"):
 *
 *  1. A build ships it beside the sources: `bridges/jvm/tsuwsgi-jvm-<hash>.jar`, compiled by
 *     uwsgiconfig.ts (buildsys/assets.ts) — a packaged server needs only a JRE.
 *  2. Otherwise (a source checkout) it is compiled on first use into the cache directory,
 *     under the same name. `<hash>` is a digest of the bridge sources, so an edited bridge is
 *     recompiled and a stale jar is never used.
 *
 * A compile writes into a private temporary directory and renames the finished jar into
 * place (atomic on one filesystem), so servers starting at the same time never see half a
 * jar: the last rename wins with identical bytes.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BridgeSpawnError } from '../../core/errors.ts';

/** The bridge's directory (sources in src/, a build's jar beside them). */
export const JVM_BRIDGE_DIR = fileURLToPath(new URL('../../bridges/jvm/', import.meta.url));

/** The Java release the bridge is compiled for: JEP 380's unix sockets need 16+, 17 is the LTS Debian ships. */
export const JAVA_RELEASE = '17';

function walk(dir: string, out: string[] = []): string[] {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) walk(full, out);
    else if (/\.(java|clj)$/.test(e.name)) out.push(full);
  }
  return out;
}

/** The bridge sources (.java and the .clj resources), relative to src/, sorted. */
export function bridgeSources(bridgeDir = JVM_BRIDGE_DIR): string[] {
  const src = path.join(bridgeDir, 'src');
  return walk(src)
    .map((f) => path.relative(src, f))
    .sort();
}

/** A digest of the sources and of the Java release they are compiled for. */
export function sourceHash(bridgeDir = JVM_BRIDGE_DIR): string {
  const h = crypto.createHash('sha256');
  h.update(`release ${JAVA_RELEASE}\n`);
  for (const rel of bridgeSources(bridgeDir)) {
    h.update(`${rel}\n`);
    h.update(fs.readFileSync(path.join(bridgeDir, 'src', rel)));
    h.update('\n');
  }
  return h.digest('hex').slice(0, 16);
}

export function jarName(hash: string): string {
  return `tsuwsgi-jvm-${hash}.jar`;
}

/** An executable on PATH, or null. */
export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/**
 * Where jars compiled on first use go: /var/cache/tsuwsgi/jvm for root (readable after
 * --uid drops privileges), else $XDG_CACHE_HOME/tsuwsgi/jvm or ~/.cache/tsuwsgi/jvm;
 * TSUWSGI_CACHE_DIR overrides both.
 */
export function cacheDirs(): string[] {
  const out: string[] = [];
  if (process.env.TSUWSGI_CACHE_DIR) out.push(path.join(process.env.TSUWSGI_CACHE_DIR, 'jvm'));
  if (process.getuid?.() === 0) out.push('/var/cache/tsuwsgi/jvm');
  const xdg = process.env.XDG_CACHE_HOME || (os.homedir() ? path.join(os.homedir(), '.cache') : '');
  if (xdg) out.push(path.join(xdg, 'tsuwsgi', 'jvm'));
  out.push(path.join(os.tmpdir(), `tsuwsgi-cache-${process.getuid?.() ?? 'user'}`, 'jvm'));
  return out;
}

/** The JDK tool `name` (javac, jar) belonging to a java launcher, else the one on PATH. */
export function jdkTool(java: string, name: string): string | null {
  const launcher = path.isAbsolute(java) ? java : which(java);
  if (launcher) {
    try {
      const beside = path.join(path.dirname(fs.realpathSync(launcher)), name);
      if (fs.existsSync(beside)) return beside;
    } catch {
      /* fall through */
    }
  }
  return which(name);
}

/**
 * Compile the bridge into `outFile` (a jar): javac into a private directory, copy the .clj
 * resources, `jar`, then rename into place. Throws with javac's output on failure.
 */
export function compileBridgeJar(javac: string, outFile: string, bridgeDir = JVM_BRIDGE_DIR): void {
  const jar = path.join(path.dirname(javac), 'jar');
  const jarTool = fs.existsSync(jar) ? jar : which('jar');
  if (!jarTool) throw new Error(`the JDK's jar tool was not found beside ${javac} or on PATH`);
  const outDir = path.dirname(outFile);
  fs.mkdirSync(outDir, { recursive: true, mode: 0o755 });
  const work = fs.mkdtempSync(path.join(outDir, '.build-'));
  try {
    const classes = path.join(work, 'classes');
    fs.mkdirSync(classes);
    const src = path.join(bridgeDir, 'src');
    const sources = bridgeSources(bridgeDir);
    const java = sources.filter((s) => s.endsWith('.java')).map((s) => path.join(src, s));
    try {
      execFileSync(javac, ['--release', JAVA_RELEASE, '-encoding', 'UTF-8', '-nowarn', '-d', classes, ...java], { stdio: 'pipe', timeout: 180_000 });
    } catch (err) {
      const e = err as { stderr?: Buffer; stdout?: Buffer; message: string };
      const output = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.trim();
      throw new Error(`${javac} failed: ${output || e.message}`);
    }
    for (const res of sources.filter((s) => !s.endsWith('.java'))) {
      fs.mkdirSync(path.dirname(path.join(classes, res)), { recursive: true });
      fs.copyFileSync(path.join(src, res), path.join(classes, res));
    }
    const tmpJar = path.join(work, 'bridge.jar');
    execFileSync(jarTool, ['--create', '--file', tmpJar, '-C', classes, '.'], { stdio: 'pipe', timeout: 120_000 });
    fs.chmodSync(tmpJar, 0o644);
    fs.renameSync(tmpJar, outFile);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export interface JarLookup {
  /** The java launcher the bridge runs with (its JDK's javac compiles the jar). */
  java: string;
  log?: (message: string) => void;
}

const found = new Map<string, string>();

/**
 * The bridge jar for the current sources: the one a build shipped, else the cached one, else
 * compiled now (synchronously, once; a few seconds). Throws a BridgeSpawnError saying what to
 * install when there is no jar and no javac.
 */
export function findOrBuildBridgeJar(o: JarLookup): string {
  const hash = sourceHash();
  const known = found.get(hash);
  if (known && fs.existsSync(known)) return known;
  const name = jarName(hash);
  const candidates = [path.join(JVM_BRIDGE_DIR, name), ...cacheDirs().map((d) => path.join(d, name))];
  for (const c of candidates) {
    if (fs.existsSync(c)) {
      found.set(hash, c);
      return c;
    }
  }
  const javac = jdkTool(o.java, 'javac');
  if (!javac) {
    throw new BridgeSpawnError(
      `the JVM bridge must be compiled once and javac was not found (beside ${o.java} or on PATH): install a JDK ${JAVA_RELEASE}+ ` +
        `(Debian: apt-get install default-jdk-headless), or use a tsuwsgi build, which ships ${path.join('bridges', 'jvm', 'tsuwsgi-jvm-*.jar')}`,
    );
  }
  const errors: string[] = [];
  for (const dir of cacheDirs()) {
    const target = path.join(dir, name);
    try {
      o.log?.(`compiling the JVM bridge with ${javac} into ${target} (once per bridge version)...`);
      compileBridgeJar(javac, target);
      found.set(hash, target);
      return target;
    } catch (err) {
      const msg = (err as Error).message;
      // A javac failure is the same in every directory; a directory we cannot write is not.
      if (/ failed: /.test(msg)) throw new BridgeSpawnError(`cannot compile the JVM bridge: ${msg}`, err);
      errors.push(`${dir}: ${msg}`);
    }
  }
  throw new BridgeSpawnError(`cannot compile the JVM bridge: no writable cache directory (${errors.join('; ')}); set TSUWSGI_CACHE_DIR to a writable directory`);
}
