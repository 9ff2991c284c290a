/**
 * The files a build copies beside its bundles, keeping the checkout's layout below the
 * build root: the bridges a plugin starts (found from the `bridges/<dir>/` paths its
 * sources name), the non-TypeScript files of a plugin's own directory, and the core's
 * helper files (non-TypeScript files under core/).
 */
import fs from 'node:fs';
import path from 'node:path';
import { compileBridgeJar, jarName, jdkTool, sourceHash } from '../plugins/jvm/bridge-jar.ts';
import { ADDON_BUILD_PATH, buildSendfileAddon } from '../core/static/native/build.ts';
import { buildCgiForker, CGI_FORKER_BUILD_PATH } from '../bridges/cgi/native/build.ts';
import { buildXsltAddon, XSLT_ADDON_BUILD_PATH } from '../plugins/xslt/native/build.ts';
import { buildSpnegoAddon, SPNEGO_ADDON_BUILD_PATH } from '../plugins/router_spnego/native/build.ts';

const SKIP = new Set(['__pycache__', 'node_modules', '.git']);

function walk(dir: string, out: string[] = []): string[] {
  if (!fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, out);
    else out.push(full);
  }
  return out;
}

const isSource = (file: string): boolean => /\.(ts|mts|cts)$/.test(file);

/**
 * Build outputs a bridge ships that are not files of the checkout: the JVM bridge's jar,
 * compiled with javac at build time so an installed server needs only a JRE (docs/jvm.md),
 * and the CGI bridge's C forker (bridges/cgi/native/cgi-forker.c).
 */
function generatedAssets(repo: string, bridge: string): string[] {
  if (bridge === 'cgi') return [path.relative(repo, CGI_FORKER_BUILD_PATH)];
  if (bridge !== 'jvm') return [];
  return [path.join('bridges', 'jvm', jarName(sourceHash(path.join(repo, 'bridges', 'jvm'))))];
}

/** Files under bridges/ that only build something: the C forker's source, its build script and the checkout's binary. */
const BRIDGE_BUILD_ONLY = /^bridges\/cgi\/native\//;

/**
 * Plugins' native addons: the directory that only builds one (C source, build script, the
 * checkout's binary) and the addon, shipped at the same place below the build root, where the
 * plugin loads it, compiled fresh by copyAssets (generateAsset).
 */
const PLUGIN_ADDONS: ReadonlyArray<{ sources: RegExp; addon: string; build: (out: string) => void }> = [
  { sources: /^plugins\/xslt\/native\//, addon: XSLT_ADDON_BUILD_PATH, build: buildXsltAddon },
  { sources: /^plugins\/router_spnego\/native\//, addon: SPNEGO_ADDON_BUILD_PATH, build: buildSpnegoAddon },
];

/** Make a generated asset at `to`; false when `rel` is not one. */
function generateAsset(repo: string, rel: string, to: string): boolean {
  const pluginAddon = PLUGIN_ADDONS.find((a) => rel === path.relative(repo, a.addon));
  if (pluginAddon) {
    // Always compiled fresh; a build without the library's headers fails here with what to install.
    pluginAddon.build(to);
    return true;
  }
  if (rel === path.relative(repo, CGI_FORKER_BUILD_PATH)) {
    // Always compiled fresh, like the sendfile addon; a build without a C compiler fails here
    // with what to install.
    buildCgiForker(to);
    return true;
  }
  if (!/^bridges\/jvm\/tsuwsgi-jvm-[0-9a-f]+\.jar$/.test(rel.split(path.sep).join('/'))) return false;
  const javac = jdkTool('java', 'javac');
  if (!javac) throw new Error('building the jvm plugin compiles its Java bridge and needs a JDK (javac): apt-get install default-jdk-headless');
  compileBridgeJar(javac, to, path.join(repo, 'bridges', 'jvm'));
  return true;
}

/** Files (relative to the repo) a plugin needs at run time besides its bundle. */
export function pluginAssets(repo: string, pluginDir: string): string[] {
  const files = walk(path.join(repo, pluginDir));
  const out = new Set<string>();
  for (const a of PLUGIN_ADDONS) if (a.addon.startsWith(path.join(repo, pluginDir) + path.sep)) out.add(path.relative(repo, a.addon));
  for (const file of files) {
    if (!isSource(file)) {
      const rel = path.relative(repo, file);
      if (!PLUGIN_ADDONS.some((a) => a.sources.test(rel.split(path.sep).join('/')))) out.add(rel);
      continue;
    }
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/bridges\/([\w.-]+)\//g)) {
      for (const asset of walk(path.join(repo, 'bridges', m[1] as string))) {
        const rel = path.relative(repo, asset);
        if (!BRIDGE_BUILD_ONLY.test(rel.split(path.sep).join('/'))) out.add(rel);
      }
      for (const asset of generatedAssets(repo, m[1] as string)) out.add(asset);
    }
  }
  return [...out].sort();
}

/** Where the sendfile addon sits below a build root (as in the checkout, where the core looks for it). */
function sendfileAddonAsset(repo: string): string {
  return path.relative(repo, ADDON_BUILD_PATH);
}

/** Files under core/ that only build something (the addon's C source and build output of the checkout). */
const CORE_BUILD_ONLY = /^core\/static\/native\/(?!build\/tsuwsgi_sendfile\.node$)/;

/**
 * The core's own run-time files (helper scripts next to core modules), and the sendfile
 * addon, compiled for the build (copyAssets) whether or not the checkout has one.
 */
export function coreAssets(repo: string): string[] {
  const files = walk(path.join(repo, 'core'))
    .filter((f) => !isSource(f))
    .map((f) => path.relative(repo, f))
    .filter((rel) => !CORE_BUILD_ONLY.test(rel.split(path.sep).join('/')));
  return [...new Set([...files, sendfileAddonAsset(repo)])].sort();
}

export function copyAssets(repo: string, files: readonly string[], root: string): void {
  for (const rel of files) {
    const to = path.join(root, rel);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    if (rel === sendfileAddonAsset(repo)) {
      // Always compiled fresh: the checkout's copy may be from older sources. A build without
      // a C compiler fails here, with what to install (the server itself would only copy).
      buildSendfileAddon(to);
      continue;
    }
    const alwaysBuilt = rel === path.relative(repo, CGI_FORKER_BUILD_PATH) || PLUGIN_ADDONS.some((a) => rel === path.relative(repo, a.addon));
    if ((alwaysBuilt || !fs.existsSync(path.join(repo, rel))) && generateAsset(repo, rel, to)) continue;
    fs.copyFileSync(path.join(repo, rel), to);
    fs.chmodSync(to, fs.statSync(path.join(repo, rel)).mode & 0o777);
  }
}

/** Copy a directory tree (for node_modules/esbuild). */
export function copyTree(from: string, to: string): void {
  for (const file of walk(from)) {
    const dest = path.join(to, path.relative(from, file));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(file, dest);
    fs.chmodSync(dest, fs.statSync(file).mode & 0o777);
  }
}
