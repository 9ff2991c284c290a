/**
 * Ruby test support: fixture paths and a loud check that the Ruby runtime and the Debian
 * libraries the Rack tests use are installed (a missing runtime fails the suite with the
 * package to install; it never skips).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './server.ts';

export const RB_FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'ruby');
/** Debian's interpreter, the one ruby-rack and ruby-sinatra are installed for. */
export const SYSTEM_RUBY = '/usr/bin/ruby';

/** Absolute path of a Ruby fixture. */
export function rbFixture(name: string): string {
  return path.join(RB_FIXTURES, name);
}

const PACKAGES: Record<string, string> = { rack: 'ruby-rack', 'sinatra/base': 'ruby-sinatra' };

/** Throw (failing the suite) unless /usr/bin/ruby can require each library. */
export function assertRuby(libraries: string[] = ['rack']): void {
  const script = libraries.map((l) => `require ${JSON.stringify(l)}`).join('; ');
  const r = spawnSync(SYSTEM_RUBY, ['-e', script || 'nil'], { encoding: 'utf8', timeout: 30000 });
  if (r.error || r.status !== 0) {
    const pkgs = ['ruby', ...libraries.map((l) => PACKAGES[l] ?? l)].join(' ');
    throw new Error(
      `the Rack tests need ${SYSTEM_RUBY} with ${libraries.join(', ')} (Debian: apt-get install ${pkgs}; see .ci/apt-packages.txt): ` +
        `${r.error ? r.error.message : (r.stderr || '').trim().split('\n')[0]}`,
    );
  }
}
