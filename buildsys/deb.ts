/**
 * Distribution packages from a modular build (uWSGI is shipped by Debian as uwsgi-core plus
 * one uwsgi-plugin-* package per plugin): `tsuwsgi-core` with the executable, and one
 * `tsuwsgi-plugin-<name>` per plugin file, each depending on tsuwsgi-core (same version)
 * and on the runtime its bridge needs. Built with dpkg-deb; they install side by side:
 *
 *   /usr/lib/tsuwsgi/bin/tsuwsgi            the core (its default plugin dir is ../plugins)
 *   /usr/lib/tsuwsgi/plugins/<n>_plugin.cjs one per plugin package
 *   /usr/lib/tsuwsgi/bridges/<language>/…   with the plugin that runs it
 *   /usr/bin/tsuwsgi -> ../lib/tsuwsgi/bin/tsuwsgi
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const PREFIX = 'usr/lib/tsuwsgi';

/** The Debian packages a plugin's bridge needs at run time. */
export const PLUGIN_DEPENDS: Record<string, string> = {
  python: 'python3',
  psgi: 'perl',
  rack: 'ruby',
  // The build ships the JVM bridge's jar, so a JRE is enough; jwsgi and ring run on the jvm plugin.
  jvm: 'default-jre-headless',
  jwsgi: 'tsuwsgi-plugin-jvm',
  ring: 'tsuwsgi-plugin-jvm, clojure',
  // The xslt plugin's addon (plugins/xslt/native/xslt.c) links libxslt and libxml2.
  xslt: 'libxslt1.1, libxml2',
  // The router_spnego plugin's addon (plugins/router_spnego/native/spnego.c) links MIT krb5's GSS-API.
  router_spnego: 'libgssapi-krb5-2',
};

export interface DebSpec {
  name: string;
  version: string;
  description: string;
  depends: string[];
  /**
   * `all` for scripts only; `native` for a package with compiled code (the core: esbuild's
   * binary and the sendfile addon), which gets the build machine's dpkg architecture.
   */
  architecture: 'all' | 'native';
  /** Files: path below the package root → source file on disk (or a symlink target). */
  files: Array<{ to: string; from?: string; symlink?: string }>;
}

export function buildDeb(spec: DebSpec, outDir: string): string {
  const stage = fs.mkdtempSync(path.join(outDir, `.stage-${spec.name}-`));
  fs.chmodSync(stage, 0o755);
  try {
    for (const f of spec.files) {
      const dest = path.join(stage, f.to);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      if (f.symlink) fs.symlinkSync(f.symlink, dest);
      else if (f.from) {
        fs.copyFileSync(f.from, dest);
        fs.chmodSync(dest, fs.statSync(f.from).mode & 0o777);
      }
    }
    fs.mkdirSync(path.join(stage, 'DEBIAN'));
    const arch = spec.architecture === 'all' ? 'all' : dpkgArchitecture();
    const control = [
      `Package: ${spec.name}`,
      `Version: ${spec.version}`,
      `Architecture: ${arch}`,
      'Maintainer: tsuwsgi developers <tsuwsgi@localhost>',
      `Depends: ${spec.depends.join(', ')}`,
      'Section: httpd',
      'Priority: optional',
      `Description: ${spec.description}`,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(stage, 'DEBIAN', 'control'), control);
    const file = path.join(outDir, `${spec.name}_${spec.version}_${arch}.deb`);
    // gzip: xz would take 20 s for the core package (it carries esbuild's binary).
    const run = spawnSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', stage, file], { encoding: 'utf8' });
    if (run.error) throw new Error(`cannot run dpkg-deb (install the dpkg package): ${run.error.message}`);
    if (run.status !== 0) throw new Error(`dpkg-deb failed for ${spec.name}: ${run.stderr.trim()}`);
    return file;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** The build machine's package architecture (amd64, arm64…), as dpkg names it. */
function dpkgArchitecture(): string {
  const run = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' });
  if (run.error || run.status !== 0) throw new Error(`cannot ask dpkg for the architecture (install the dpkg package): ${run.error?.message ?? run.stderr.trim()}`);
  return run.stdout.trim();
}

/** Every file below dir, as paths relative to it. */
export function filesBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out.push(path.relative(dir, full));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}
