/**
 * A real OpenLDAP server for tests: Debian's /usr/sbin/slapd run as the current user, with a
 * generated slapd.conf (mdb backend, suffix dc=example,dc=org) in a temporary directory, the
 * entries loaded with slapadd before it starts, listening on 127.0.0.1:PORT only. Stopped (and
 * checked gone) by stop(); a missing slapd fails the test.
 *
 *   const ldap = await startSlapd(ldif);
 *   … url=ldap://127.0.0.1:${ldap.port} …
 *   await ldap.stop();
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startForeign, type ForeignHandle } from './foreign.ts';
import { freePort, requireExecutable, tmpDir } from './server.ts';

export const SLAPD = '/usr/sbin/slapd';
export const SLAPADD = '/usr/sbin/slapadd';
export const SUFFIX = 'dc=example,dc=org';

export interface Slapd {
  readonly port: number;
  readonly url: string;
  /** slapd's output (connection and operation lines: it runs with -d stats). */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * slapd.conf: the standard schemas, the mdb backend, `acl` lines as given (default: passwords
 * usable only to bind, everything else readable by anyone).
 */
function config(dir: string, acl: string): string {
  return [
    ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
    `pidfile ${path.join(dir, 'slapd.pid')}`,
    `argsfile ${path.join(dir, 'slapd.args')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'database mdb',
    'maxsize 10485760',
    `suffix "${SUFFIX}"`,
    `rootdn "cn=admin,${SUFFIX}"`,
    'rootpw admin-secret',
    `directory ${path.join(dir, 'db')}`,
    acl,
    '',
  ].join('\n');
}

/** `port`: listen there (to restart a server where its clients expect it); default a free one. */
export async function startSlapd(ldif: string, opts: { acl?: string; port?: number } = {}): Promise<Slapd> {
  requireExecutable(SLAPD, 'OpenLDAP slapd (Debian package slapd)');
  requireExecutable(SLAPADD, 'OpenLDAP slapadd (Debian package slapd)');
  const dir = tmpDir('tsuwsgi-slapd-');
  fs.mkdirSync(path.join(dir, 'db'));
  const conf = path.join(dir, 'slapd.conf');
  fs.writeFileSync(conf, config(dir, opts.acl ?? 'access to attrs=userPassword by anonymous auth by * none\naccess to * by * read'));
  fs.writeFileSync(path.join(dir, 'data.ldif'), ldif);
  try {
    execFileSync(SLAPADD, ['-f', conf, '-l', path.join(dir, 'data.ldif')], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`slapadd could not load the test entries: ${e.stderr?.toString() ?? e.message}`);
  }
  const port = opts.port ?? (await freePort());
  // -d stats: stay in the foreground (so the test owns the process) and log each operation.
  const proc: ForeignHandle = await startForeign(SLAPD, ['-f', conf, '-h', `ldap://127.0.0.1:${port}/`, '-d', 'stats'], /slapd starting/);
  return {
    port,
    url: `ldap://127.0.0.1:${port}`,
    logs: () => proc.logs(),
    async stop() {
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
