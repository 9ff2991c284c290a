/**
 * uwsgiconfig.ts — tsuwsgi's build script, after uWSGI's uwsgiconfig.py (spec/core.md §7).
 *
 *   npx tsx uwsgiconfig.ts --build [profile]                 core + embedded plugins + the profile's plugin files
 *   npx tsx uwsgiconfig.ts --plugin plugins/<name> [profile] [name]   one plugin file for a profile's build
 *   npx tsx uwsgiconfig.ts --package [profile]               .deb packages from that build (dpkg-deb)
 *   npx tsx uwsgiconfig.ts --sea [profile]                   the build as a Node single executable (no Node needed)
 *
 * The profile comes from buildconf/<profile>.ini (default: `default`, or UWSGI_PROFILE).
 * A build goes to dist/<profile>/ with the checkout's layout:
 *
 *   bin/<bin_name>               the executable: one CommonJS bundle run by node
 *   bridges/<language>/…         the bridges of the embedded plugins
 *   plugins/<name>_plugin.cjs    plugins built as files (+ <name>_plugin.files: what they need)
 *   lib/plugin-api/…             the typed plugin API, for `tsuwsgi --build-plugin`
 *   node_modules/esbuild …       the bundler `--build-plugin` uses
 *
 * Environment (uWSGI's meaning): UWSGI_PROFILE, UWSGI_EMBED_PLUGINS (added to the
 * profile's embedded plugins), UWSGI_BIN_NAME, UWSGI_EMBED_CONFIG (an ini file baked into
 * the executable, read before the environment and the command line).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from './core/build/bundle.ts';
import { coreAssets, copyAssets, copyTree, pluginAssets } from './buildsys/assets.ts';
import { buildDeb, filesBelow, PLUGIN_DEPENDS, PREFIX } from './buildsys/deb.ts';
import { loadProfile, ProfileError, type Profile } from './buildsys/profiles.ts';
import { TSUWSGI_VERSION } from './core/version.ts';

const REPO = path.dirname(fileURLToPath(import.meta.url));
const BUILDCONF = path.join(REPO, 'buildconf');
const CATALOG = path.join(REPO, 'core', 'plugins', 'catalog.ts');
const PLUGIN_API_ENTRY = path.join(REPO, 'core', 'plugins', 'api.ts');

export function distRoot(profile: string): string {
  return path.join(process.env.TSUWSGI_DIST ?? path.join(REPO, 'dist'), profile);
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The catalog module of a build: only the profile's embedded plugins are compiled in. */
function catalogSource(profile: Profile): string {
  const imports = profile.embeddedPlugins.map((name, i) => `import p${i} from ${JSON.stringify(pluginEntry(name))};`);
  return [
    `import type { PluginSource } from ${JSON.stringify(path.join(REPO, 'core', 'plugins', 'registry.ts'))};`,
    `import type { PluginDescriptor } from ${JSON.stringify(path.join(REPO, 'core', 'plugins', 'api.ts'))};`,
    `import { DEFAULT_PLUGIN_DIRS } from ${JSON.stringify(path.join(REPO, 'core', 'paths.ts'))};`,
    ...imports,
    `const ALL: PluginDescriptor[] = [${profile.embeddedPlugins.map((_n, i) => `p${i}`).join(', ')}];`,
    `export const EMBEDDED_PLUGINS: readonly string[] = ${JSON.stringify(profile.embeddedPlugins)};`,
    'export function defaultPluginSource(): PluginSource {',
    '  return { available: new Map(ALL.map((d) => [d.name, d])), embedded: EMBEDDED_PLUGINS, defaultPluginDirs: DEFAULT_PLUGIN_DIRS };',
    '}',
  ].join('\n');
}

function pluginEntry(name: string): string {
  const file = path.join(REPO, 'plugins', name, 'index.ts');
  if (!fs.existsSync(file)) throw new ProfileError(`no plugin "${name}" in plugins/ (looked for ${file})`);
  return file;
}

/** The typed plugin API and the files it refers to, for third-party plugin builds. */
function copyPluginApi(root: string): void {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) visit(path.resolve(path.dirname(file), m[1] as string));
  };
  visit(PLUGIN_API_ENTRY);
  copyAssets(REPO, [...seen].map((f) => path.relative(REPO, f)), path.join(root, 'lib', 'plugin-api'));
}

/** esbuild, so an installed core can build third-party plugins (`tsuwsgi --build-plugin`). */
function copyBundler(root: string): void {
  const esbuildDir = path.join(REPO, 'node_modules', 'esbuild');
  copyTree(esbuildDir, path.join(root, 'node_modules', 'esbuild'));
  const platform = path.join(REPO, 'node_modules', '@esbuild', `${process.platform}-${process.arch}`);
  if (fs.existsSync(platform)) copyTree(platform, path.join(root, 'node_modules', '@esbuild', `${process.platform}-${process.arch}`));
}

export async function buildCore(profile: Profile): Promise<string> {
  const root = distRoot(profile.name);
  fs.rmSync(path.join(root, 'bin'), { recursive: true, force: true });
  const embeddedConfig = profile.embedConfig ? fs.readFileSync(path.resolve(profile.embedConfig), 'utf8') : null;
  const out = path.join(root, 'bin', profile.binName);
  const result = await bundle({
    entry: path.join(REPO, 'core', 'main.ts'),
    outFile: out,
    moduleRoot: REPO,
    rootFromBundle: '..',
    executable: true,
    virtualModules: { [CATALOG]: { contents: catalogSource(profile), resolveDir: path.dirname(CATALOG) } },
    buildInfo: { profile: profile.name, pluginDir: profile.pluginDir, embeddedConfig },
    external: ['esbuild'],
  });
  // The executable has no extension: this tells node it is CommonJS wherever it is installed.
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'tsuwsgi-build', private: true, type: 'commonjs', version: TSUWSGI_VERSION }, null, 2) + '\n');
  const assets = [...coreAssets(REPO), ...profile.embeddedPlugins.flatMap((p) => pluginAssets(REPO, path.join('plugins', p)))];
  copyAssets(REPO, assets, root);
  copyPluginApi(root);
  copyBundler(root);
  log(`*** tsuwsgi core built: ${path.relative(process.cwd(), out)} (${(result.bytes / 1024).toFixed(0)} KiB, ${result.ms} ms), profile ${profile.name}, embedded plugins: ${profile.embeddedPlugins.join(', ') || 'none'}${embeddedConfig !== null ? `, embedded config ${profile.embedConfig}` : ''} ***`);
  return out;
}

/** `--plugin plugins/<dir> [profile] [name]`: `<name>_plugin.cjs` in the profile's plugins dir. */
export async function buildPluginFile(pluginDir: string, profile: Profile, nameOverride?: string): Promise<string> {
  const dir = path.resolve(REPO, pluginDir);
  const entry = path.join(dir, 'index.ts');
  if (!fs.existsSync(entry)) throw new ProfileError(`${pluginDir} has no index.ts: give an in-tree plugin directory (plugins/<name>); build out-of-tree plugins with tsuwsgi --build-plugin <dir>`);
  const name = nameOverride ?? path.basename(dir);
  const root = distRoot(profile.name);
  const out = path.join(root, 'plugins', `${name}_plugin.cjs`);
  const wrapper = path.join(dir, `.${name}_plugin_entry.ts`);
  const result = await bundle({
    entry: wrapper,
    outFile: out,
    moduleRoot: REPO,
    rootFromBundle: '..',
    virtualModules: {
      [wrapper]: { contents: `export { default, default as ${name}_plugin } from ${JSON.stringify(entry)};`, resolveDir: dir },
    },
  });
  const assets = pluginAssets(REPO, path.relative(REPO, dir));
  copyAssets(REPO, assets, root);
  // What a package of this plugin must carry besides the bundle.
  fs.writeFileSync(path.join(root, 'plugins', `${name}_plugin.files`), assets.join('\n') + (assets.length ? '\n' : ''));
  log(`*** plugin ${name} built: ${path.relative(process.cwd(), out)} (${(result.bytes / 1024).toFixed(0)} KiB, ${result.ms} ms) ***`);
  return out;
}

export async function buildProfile(profile: Profile): Promise<void> {
  await buildCore(profile);
  for (const name of profile.plugins) await buildPluginFile(path.join('plugins', name), profile);
}

/**
 * `--sea [profile]`: the profile's build as a Node single executable application — the
 * node binary with the core bundle injected (postject), so the host needs no Node. It
 * replaces bin/<bin_name> in a copy of the build (dist/<profile>-sea/), whose bridges and
 * plugin files stay beside it. Node 20's SEA is experimental; see docs/build.md.
 */
export async function buildSea(profile: Profile): Promise<string> {
  const { spawnSync } = await import('node:child_process');
  const source = distRoot(profile.name);
  const bundleFile = path.join(source, 'bin', profile.binName);
  await buildProfile(profile);
  const root = `${source}-sea`;
  fs.rmSync(root, { recursive: true, force: true });
  copyTree(source, root);
  const work = fs.mkdtempSync(path.join(root, '.sea-'));
  try {
    // The SEA main must be plain CommonJS: drop the #! line.
    const main = path.join(work, 'main.cjs');
    fs.writeFileSync(main, fs.readFileSync(bundleFile, 'utf8').replace(/^#!.*\n/, ''));
    const config = path.join(work, 'sea.json');
    const blob = path.join(work, 'sea.blob');
    fs.writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true }));
    const prep = spawnSync(process.execPath, ['--experimental-sea-config', config], { encoding: 'utf8' });
    if (prep.status !== 0) throw new ProfileError(`node --experimental-sea-config failed: ${prep.stderr.trim()}`);
    const exe = path.join(root, 'bin', profile.binName);
    fs.copyFileSync(process.execPath, exe);
    fs.chmodSync(exe, 0o755);
    const postject = path.join(REPO, 'node_modules', 'postject', 'dist', 'cli.js');
    const inject = spawnSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { encoding: 'utf8' });
    if (inject.status !== 0) throw new ProfileError(`postject failed: ${inject.stderr.trim() || inject.stdout.trim()}`);
    log(`*** single executable: ${path.relative(process.cwd(), exe)} (${(fs.statSync(exe).size / 1048576).toFixed(0)} MiB, needs no installed node) ***`);
    return exe;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** `--package`: tsuwsgi-core and one tsuwsgi-plugin-<name> per plugin file of the build. */
/** Whether a file is an ELF executable or shared object (compiled for this machine). */
function isElf(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    return fs.readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === '\x7fELF';
  } finally {
    fs.closeSync(fd);
  }
}

export function packageBuild(profile: Profile): string[] {
  const root = distRoot(profile.name);
  const bin = path.join(root, 'bin', profile.binName);
  if (!fs.existsSync(bin)) throw new ProfileError(`nothing to package: build first (tsx uwsgiconfig.ts --build ${profile.name})`);
  const outDir = path.join(root, 'packages');
  fs.mkdirSync(outDir, { recursive: true });
  const pluginFiles = fs.existsSync(path.join(root, 'plugins')) ? fs.readdirSync(path.join(root, 'plugins')).filter((f) => f.endsWith('_plugin.cjs')) : [];
  const pluginOwned = new Set<string>();
  const debs: string[] = [];
  for (const file of pluginFiles) {
    const name = file.replace(/_plugin\.cjs$/, '');
    const list = fs.readFileSync(path.join(root, 'plugins', `${name}_plugin.files`), 'utf8').split('\n').filter(Boolean);
    const files = [`plugins/${file}`, ...list];
    for (const f of files) pluginOwned.add(f);
    debs.push(
      buildDeb(
        {
          // Debian package names allow no "_": router_access → tsuwsgi-plugin-router-access.
          name: `tsuwsgi-plugin-${name.replace(/_/g, '-')}`,
          version: TSUWSGI_VERSION,
          description: `${name} plugin for tsuwsgi`,
          depends: [`tsuwsgi-core (= ${TSUWSGI_VERSION})`, ...(PLUGIN_DEPENDS[name] ? [PLUGIN_DEPENDS[name]] : [])],
          // Compiled code (the cgi plugin's C forker) ties a package to the build machine's architecture.
          architecture: files.some((f) => isElf(path.join(root, f))) ? 'native' : 'all',
          files: files.map((f) => ({ to: path.join(PREFIX, f), from: path.join(root, f) })),
        },
        outDir,
      ),
    );
  }
  const coreFiles = filesBelow(root).filter((f) => !f.startsWith('packages/') && !pluginOwned.has(f) && !f.endsWith('_plugin.files'));
  debs.unshift(
    buildDeb(
      {
        name: 'tsuwsgi-core',
        version: TSUWSGI_VERSION,
        description: `tsuwsgi application server core (profile ${profile.name})`,
        depends: ['nodejs (>= 20)'],
        architecture: 'native',
        files: [
          ...coreFiles.map((f) => ({ to: path.join(PREFIX, f), from: path.join(root, f) })),
          { to: `usr/bin/${profile.binName}`, symlink: `../lib/tsuwsgi/bin/${profile.binName}` },
        ],
      },
      outDir,
    ),
  );
  for (const deb of debs) log(`*** package ${path.relative(process.cwd(), deb)} ***`);
  return debs;
}

const USAGE = `usage:
  tsx uwsgiconfig.ts --build [profile]
  tsx uwsgiconfig.ts --plugin plugins/<name> [profile] [name]
  tsx uwsgiconfig.ts --package [profile]
  tsx uwsgiconfig.ts --sea [profile]
profiles: ${fs.existsSync(BUILDCONF) ? fs.readdirSync(BUILDCONF).filter((f) => f.endsWith('.ini')).map((f) => f.slice(0, -4)).sort().join(', ') : '(none)'}`;

async function cli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const profileName = (p: string | undefined): string => p ?? process.env.UWSGI_PROFILE ?? 'default';
  try {
    switch (command) {
      case '--build': {
        const started = Date.now();
        await buildProfile(loadProfile(BUILDCONF, profileName(rest[0])));
        log(`*** build done in ${((Date.now() - started) / 1000).toFixed(1)} s ***`);
        return 0;
      }
      case '--plugin': {
        if (!rest[0]) throw new ProfileError('--plugin needs a plugin directory: --plugin plugins/<name> [profile] [name]');
        await buildPluginFile(rest[0], loadProfile(BUILDCONF, profileName(rest[1])), rest[2]);
        return 0;
      }
      case '--package':
        packageBuild(loadProfile(BUILDCONF, profileName(rest[0])));
        return 0;
      case '--sea':
        await buildSea(loadProfile(BUILDCONF, profileName(rest[0])));
        return 0;
      default:
        process.stderr.write(`${USAGE}\n`);
        return command === '--help' || command === '-h' ? 0 : 1;
    }
  } catch (err) {
    if (err instanceof ProfileError) {
      process.stderr.write(`uwsgiconfig: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).then((code) => process.exit(code));
}
