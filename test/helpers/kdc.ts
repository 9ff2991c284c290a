/**
 * A real MIT Kerberos KDC for tests: Debian's /usr/sbin/krb5kdc run as the current user, with a
 * generated krb5.conf and kdc.conf for the realm TSUWSGI.TEST in a temporary directory, its
 * database made with kdb5_util and filled with kadmin.local, listening on 127.0.0.1:PORT only
 * (UDP and TCP). Every process that talks Kerberos (the server, kinit, curl) gets `env`:
 * KRB5_CONFIG pointing at the generated krb5.conf, so nothing reads /etc/krb5.conf.
 *
 *   const kdc = await startKdc();
 *   kdc.addService('HTTP/localhost', keytab);    // a random key, written to a keytab
 *   kdc.addUser('alice', 'secret');
 *   kdc.kinit('alice', 'secret', ccache);         // a TGT in the file ccache
 *   … env: { ...kdc.env, KRB5_KTNAME: keytab } …
 *   await kdc.stop();
 *
 * A missing Kerberos program fails the test (Debian: krb5-kdc, krb5-admin-server, krb5-user).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startForeign, type ForeignHandle } from './foreign.ts';
import { freePort, requireExecutable, tmpDir } from './server.ts';

export const REALM = 'TSUWSGI.TEST';
export const KRB5KDC = '/usr/sbin/krb5kdc';
export const KDB5_UTIL = '/usr/sbin/kdb5_util';
export const KADMIN_LOCAL = '/usr/sbin/kadmin.local';
export const KINIT = '/usr/bin/kinit';

export interface Kdc {
  readonly port: number;
  /** The temporary directory (keytabs and ccaches may go there; removed by stop()). */
  readonly dir: string;
  /** KRB5_CONFIG and KRB5_KDC_PROFILE for every process of the test. */
  readonly env: Record<string, string>;
  /** `addprinc -randkey PRINCIPAL` and `ktadd -k KEYTAB PRINCIPAL` (a new key version each time). */
  addService(principal: string, keytab: string): void;
  /** `addprinc -pw PASSWORD USER`. */
  addUser(user: string, password: string): void;
  /** `kinit USER` with the password on stdin, the ticket in the file ccache `ccache`. */
  kinit(user: string, password: string, ccache: string): void;
  /** The KDC's log (one line per AS/TGS request). */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * krb5.conf: the realm's KDC at 127.0.0.1:PORT over TCP (no UDP fragments to lose), no DNS
 * (no realm or KDC lookups, no host name canonicalization: `localhost` stays `localhost`).
 */
function krb5Conf(port: number): string {
  return [
    '[libdefaults]',
    `  default_realm = ${REALM}`,
    '  dns_lookup_kdc = false',
    '  dns_lookup_realm = false',
    '  dns_canonicalize_hostname = false',
    '  rdns = false',
    '  udp_preference_limit = 1',
    '[realms]',
    `  ${REALM} = {`,
    `    kdc = 127.0.0.1:${port}`,
    '  }',
    '[domain_realm]',
    `  localhost = ${REALM}`,
    '',
  ].join('\n');
}

function kdcConf(dir: string, port: number): string {
  return [
    '[kdcdefaults]',
    `  kdc_listen = 127.0.0.1:${port}`,
    `  kdc_tcp_listen = 127.0.0.1:${port}`,
    '[realms]',
    `  ${REALM} = {`,
    `    database_name = ${path.join(dir, 'principal')}`,
    `    key_stash_file = ${path.join(dir, 'stash')}`,
    `    acl_file = ${path.join(dir, 'kadm5.acl')}`,
    '  }',
    '[logging]',
    '  kdc = STDERR',
    '  default = STDERR',
    '',
  ].join('\n');
}

export async function startKdc(): Promise<Kdc> {
  for (const [bin, pkg] of [[KRB5KDC, 'krb5-kdc'], [KDB5_UTIL, 'krb5-kdc'], [KADMIN_LOCAL, 'krb5-admin-server'], [KINIT, 'krb5-user']] as const) {
    requireExecutable(bin, `MIT Kerberos ${path.basename(bin)} (Debian package ${pkg})`);
  }
  const dir = tmpDir('tsuwsgi-kdc-');
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'krb5.conf'), krb5Conf(port));
  fs.writeFileSync(path.join(dir, 'kdc.conf'), kdcConf(dir, port));
  fs.writeFileSync(path.join(dir, 'kadm5.acl'), '');
  const env = { KRB5_CONFIG: path.join(dir, 'krb5.conf'), KRB5_KDC_PROFILE: path.join(dir, 'kdc.conf') };
  const run = (cmd: string, args: string[], input?: string): void => {
    try {
      execFileSync(cmd, args, { env: { ...process.env, ...env }, input, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: Buffer; stdout?: Buffer; message: string };
      throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${e.stderr?.toString() || e.stdout?.toString() || e.message}`);
    }
  };
  // kadmin.local reports a failed query on stdout/stderr but exits 0: check what it says.
  const kadmin = (query: string): void => {
    let out: string;
    try {
      out = execFileSync(KADMIN_LOCAL, ['-r', REALM, '-q', query], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`kadmin.local -q "${query}" failed: ${e.stderr?.toString() || e.message}`);
    }
    if (/error|while /i.test(out)) throw new Error(`kadmin.local -q "${query}": ${out}`);
  };
  run(KDB5_UTIL, ['create', '-s', '-r', REALM, '-P', 'master-pw']);
  // -n: stay in the foreground, so the test owns the process and stop() ends it.
  let proc: ForeignHandle;
  try {
    proc = await startForeign(KRB5KDC, ['-n', '-r', REALM], /commencing operation/, { env });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    dir,
    env,
    addService(principal, keytab) {
      kadmin(`addprinc -randkey ${principal}`);
      kadmin(`ktadd -k ${keytab} ${principal}`);
    },
    addUser(user, password) {
      kadmin(`addprinc -pw ${password} ${user}`);
    },
    kinit(user, password, ccache) {
      run(KINIT, ['-c', `FILE:${ccache}`, user], `${password}\n`);
    },
    logs: () => proc.logs(),
    async stop() {
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
