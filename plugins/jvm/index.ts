/**
 * The jvm plugin (modifier1 8): one JVM per --processes slot running bridges/jvm (Java, run
 * from a jar compiled with javac, see bridge-jar.ts), hosting the request handlers of the
 * jwsgi (modifier2 0) and ring (modifier2 1) plugins, as uWSGI's jvm plugin does. Option
 * names are uWSGI's (spec/languages.md §11.1); docs/jvm.md lists what is pending and why.
 *
 * The JVM adopts the pool socket through System.inheritedChannel(), which only looks at fd 0,
 * so this bridge asks the core for the socket on fd 0 too (BridgeCommand.listenOnStdin), and
 * opens the control channel (fd 4) through JDK internals; hence the --add-opens flags below.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BridgeSpawnError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION, type AppSpec } from '../../core/plugins/api.ts';
import type { ResolvedOptions } from '../../core/options/resolved.ts';
import { findOrBuildBridgeJar, which } from './bridge-jar.ts';

/** Debian's Clojure (package clojure): added at the end of the class path when a Ring app is configured. */
export const DEBIAN_CLOJURE_JAR = '/usr/share/java/clojure.jar';

/** The JDK internals the bridge uses (bridges/jvm/src/tsuwsgi/jvm/Native.java). */
export const JVM_OPENS = ['--add-opens', 'java.base/java.io=ALL-UNNAMED', '--add-opens', 'java.base/sun.nio.ch=ALL-UNNAMED'];

/** The java launcher: --jvm-bin, else $JAVA_HOME/bin/java, else java on PATH. */
export function javaLauncher(options: ResolvedOptions): string {
  const explicit = options.string('jvm-bin');
  if (explicit) return explicit;
  const home = process.env.JAVA_HOME;
  if (home && fs.existsSync(path.join(home, 'bin', 'java'))) return path.join(home, 'bin', 'java');
  return which('java') ?? 'java';
}

/** The JWSGI and Ring handlers the options name (their plugins own the options). */
function handlers(options: ResolvedOptions): { jwsgi: string; ring: string } {
  return { jwsgi: (options.string('jwsgi') ?? '').trim(), ring: (options.string('ring-app') ?? '').trim() };
}

function hostsApps(options: ResolvedOptions): boolean {
  const h = handlers(options);
  return h.jwsgi !== '' || h.ring !== '';
}

/** uWSGI's class path: ".", then every --jvm-classpath; tsuwsgi adds Debian's Clojure last for Ring apps. */
function classPath(options: ResolvedOptions, jar: string): string {
  const entries = [jar, '.', ...options.all('jvm-classpath').map((p) => (p === '.' ? p : path.resolve(p)))];
  if (handlers(options).ring && fs.existsSync(DEBIAN_CLOJURE_JAR)) entries.push(DEBIAN_CLOJURE_JAR);
  return entries.join(path.delimiter);
}

/** A --ring-load script: a file (made absolute), else a name on the class path (uWSGI's RT.loadResourceScript). */
function ringScript(p: string): string {
  return fs.existsSync(p) ? path.resolve(p) : p;
}

let bridgeJar: string | null = null;

function jarFor(options: ResolvedOptions, log?: (m: string) => void): string {
  if (!bridgeJar || !fs.existsSync(bridgeJar)) bridgeJar = findOrBuildBridgeJar({ java: javaLauncher(options), log });
  return bridgeJar;
}

export default definePlugin({
  name: 'jvm',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the JVM: JWSGI and Ring request handlers (plugins jwsgi, ring) in a Java bridge',
  modifier1: 8,
  options: [
    { name: 'jvm-main-class', argument: 'required', kind: 'string', multiple: true, metavar: 'CLASS', help: 'load the specified class and call its main() function (slash or dotted form)' },
    { name: 'jvm-opt', argument: 'required', kind: 'string', multiple: true, metavar: 'OPTION', help: 'add the specified jvm option (e.g. -Xmx64m)' },
    { name: 'jvm-class', argument: 'required', kind: 'string', multiple: true, metavar: 'CLASS', help: 'load the specified class (slash or dotted form)' },
    { name: 'jvm-classpath', argument: 'required', kind: 'path', multiple: true, metavar: 'PATH', help: 'add the specified directory or jar to the classpath' },
    { name: 'jvm-bin', aliases: ['java-bin'], argument: 'required', kind: 'path', metavar: 'PATH', help: 'java launcher that runs the bridge (tsuwsgi addition; default $JAVA_HOME/bin/java or java on PATH)' },
  ],
  init(ctx) {
    const o = ctx.options;
    if (!hostsApps(o)) {
      if (o.has('jvm-main-class') || o.has('jvm-class')) {
        ctx.log('*** --jvm-main-class/--jvm-class without a --jwsgi or --ring-app app: no JVM is started (RPC and signal handlers registered from Java are pending in tsuwsgi, see docs/jvm.md) ***');
      }
      return;
    }
    // Compile the bridge now (once per bridge version) rather than in the middle of spawning.
    jarFor(o, ctx.log);
  },
  bridge: {
    runtime: 'JVM',
    apps(options): AppSpec[] {
      if (!hostsApps(options)) return [];
      const h = handlers(options);
      const origin = [h.jwsgi && `--jwsgi ${h.jwsgi}`, h.ring && `--ring-app ${h.ring}`].filter(Boolean).join(' ');
      return [{ mountpoint: '', load: { kind: 'jvm', target: h.jwsgi || h.ring, jwsgi: h.jwsgi, ring: h.ring }, origin }];
    },
    command(options) {
      const java = javaLauncher(options);
      if (path.isAbsolute(java) && !fs.existsSync(java)) {
        throw new BridgeSpawnError(`the java launcher ${java} does not exist: install a JRE/JDK 17+ (Debian: apt-get install default-jdk-headless) or name it with --jvm-bin`);
      }
      const jar = jarFor(options);
      return {
        file: java,
        args: [...options.all('jvm-opt'), ...JVM_OPENS, '-cp', classPath(options, jar), 'tsuwsgi.jvm.Bridge'],
        listenOnStdin: true,
      };
    },
    settings(options) {
      const postBuffering = options.has('post-buffering') ? options.int('post-buffering', 0) : 0;
      return {
        mainClasses: options.all('jvm-main-class'),
        classes: options.all('jvm-class'),
        ringLoad: options.all('ring-load').map(ringScript),
        postBuffering,
      };
    },
  },
});
