/**
 * Bundling with esbuild, shared by uwsgiconfig.ts (core and in-tree plugins) and
 * `tsuwsgi --build-plugin` (third-party plugins, from an installed core).
 *
 * Every bundle is CommonJS (plugin files must load synchronously, and a CommonJS core runs
 * as an extensionless executable). A build keeps the checkout's layout below its root, so
 * code that finds its files with `new URL('../../bridges/x/bridge.py', import.meta.url)`
 * keeps working: each of our modules' `import.meta.url` is rewritten to the URL the module
 * would have below the build root, computed at run time from where the bundle is.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Plugin, BuildOptions } from 'esbuild';

export interface BundleRequest {
  /** Entry module (TypeScript or JavaScript). */
  entry: string;
  /** The .cjs (or extensionless executable) to write. */
  outFile: string;
  /**
   * Modules below this directory get their import.meta.url rewritten, relative to it
   * (the checkout for in-tree code, the plugin's directory for a third-party plugin).
   */
  moduleRoot: string;
  /** Where moduleRoot is at run time, relative to the directory of outFile ('..' or './name'). */
  rootFromBundle: string;
  /** A `#!` line and the executable bit (the core executable). */
  executable?: boolean;
  /** Replace these imports by other files (the build's catalog, the plugin API). */
  aliases?: Record<string, string>;
  /** Virtual modules: import path → source text (resolved from moduleRoot). */
  virtualModules?: Record<string, { contents: string; resolveDir: string }>;
  /** Build facts the core reads through core/paths.ts (only for the core bundle). */
  buildInfo?: { profile: string; pluginDir: string | null; embeddedConfig: string | null };
  /** Packages left out of the bundle and required at run time (esbuild itself). */
  external?: string[];
  minify?: boolean;
}

/**
 * The text rewritten. Spelled in pieces so that bundling this very file (the core bundle
 * contains the plugin builder) does not rewrite the needle itself.
 */
const IMPORT_META_URL = ['import', 'meta', 'url'].join('.');

function rewriteImportMetaUrl(moduleRoot: string): Plugin {
  return {
    name: 'tsuwsgi-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.(ts|mts|js|mjs)$/ }, async (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const rel = path.relative(moduleRoot, args.path);
        if (rel.startsWith('..')) return undefined;
        const source = await fs.promises.readFile(args.path, 'utf8');
        if (!source.includes(IMPORT_META_URL)) return undefined;
        const contents = source.split(IMPORT_META_URL).join(`__tsuwsgiModuleUrl(${JSON.stringify(rel.split(path.sep).join('/'))})`);
        return { contents, loader: args.path.endsWith('ts') ? 'ts' : 'js', resolveDir: path.dirname(args.path) };
      });
    },
  };
}

function aliasPlugin(aliases: Record<string, string>, virtualModules: Record<string, { contents: string; resolveDir: string }>): Plugin {
  return {
    name: 'tsuwsgi-aliases',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (Object.hasOwn(virtualModules, args.path)) return { path: args.path, namespace: 'tsuwsgi-virtual' };
        const target = aliases[args.path];
        if (target) return { path: target };
        // Relative imports resolved against the importer, compared by absolute path.
        if (args.path.startsWith('.') && args.resolveDir) {
          const absolute = path.resolve(args.resolveDir, args.path);
          if (aliases[absolute]) return { path: aliases[absolute] };
          if (Object.hasOwn(virtualModules, absolute)) return { path: absolute, namespace: 'tsuwsgi-virtual' };
        }
        return undefined;
      });
      build.onLoad({ filter: /.*/, namespace: 'tsuwsgi-virtual' }, (args) => {
        const mod = virtualModules[args.path] as { contents: string; resolveDir: string };
        return { contents: mod.contents, loader: 'ts', resolveDir: mod.resolveDir };
      });
    },
  };
}

/** The banner: where the bundle is, and the module-URL function the rewrite calls. */
function banner(request: BundleRequest): string {
  const lines = [
    request.executable ? '#!/usr/bin/env node' : '',
    '"use strict";',
    'const __tsuwsgiBundleFile = __filename;',
    `const __tsuwsgiModuleRoot = require("node:url").pathToFileURL(require("node:path").resolve(__dirname, ${JSON.stringify(request.rootFromBundle)}) + "/");`,
    'function __tsuwsgiModuleUrl(rel) { return new URL(rel, __tsuwsgiModuleRoot).href; }',
  ];
  if (request.buildInfo) lines.push(`const __tsuwsgiBuildInfo = ${JSON.stringify(request.buildInfo)};`);
  return lines.filter((l) => l !== '').join('\n');
}

/**
 * Optional native add-ons left out of every bundle: msgpackr loads msgpackr-extract (a
 * prebuilt .node file) only to speed up decoding, which log encoding never does; bundled,
 * its loader would look for the .node next to the bundle and, in a single executable,
 * print Node's "require() only supports built-in modules" warning at every start.
 */
const OPTIONAL_NATIVE_STUBS: Record<string, string> = {
  'msgpackr-extract': 'module.exports = null;',
};

export async function bundle(request: BundleRequest): Promise<{ bytes: number; ms: number }> {
  const started = Date.now();
  const esbuild = await import('esbuild');
  fs.mkdirSync(path.dirname(request.outFile), { recursive: true });
  const options: BuildOptions = {
    entryPoints: [request.entry],
    outfile: request.outFile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    banner: { js: banner(request) },
    plugins: [
      aliasPlugin(request.aliases ?? {}, {
        ...Object.fromEntries(Object.entries(OPTIONAL_NATIVE_STUBS).map(([k, contents]) => [k, { contents, resolveDir: request.moduleRoot }])),
        ...(request.virtualModules ?? {}),
      }),
      rewriteImportMetaUrl(request.moduleRoot),
    ],
    external: request.external ?? [],
    minify: request.minify ?? false,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'silent',
    sourcemap: false,
  };
  const result = await esbuild.build(options);
  for (const warning of result.warnings) {
    // import.meta in third-party CommonJS-incompatible code is the one warning worth seeing.
    if (!/import\.meta/.test(warning.text)) continue;
    process.stderr.write(`[build] warning: ${warning.text} (${warning.location?.file ?? '?'})\n`);
  }
  if (request.executable) fs.chmodSync(request.outFile, 0o755);
  return { bytes: fs.statSync(request.outFile).size, ms: Date.now() - started };
}
