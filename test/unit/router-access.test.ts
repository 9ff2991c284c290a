/**
 * router_access's host check (plugins/router_access/hosts-access.ts): TCP wrappers'
 * hosts_access(5) rules as libwrap's hosts_ctl applies them with only the client address known.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clientMatches, HostsAccess, parseHostsFile } from '../../plugins/router_access/hosts-access.ts';

describe('client patterns', () => {
  it.each([
    ['ALL', '10.1.2.3', true],
    ['10.1.2.3', '10.1.2.3', true],
    ['10.1.2.3', '10.1.2.4', false],
    ['10.1.', '10.1.200.7', true],
    ['10.1.', '10.10.0.1', false],
    ['10.0.0.0/255.0.0.0', '10.200.1.1', true],
    ['10.0.0.0/255.0.0.0', '11.0.0.1', false],
    ['192.168.4.0/22', '192.168.7.255', true],
    ['192.168.4.0/22', '192.168.8.0', false],
    ['[::1]', '::1', true],
    ['[2001:db8::]/32', '2001:db8:ff::1', true],
    ['[2001:db8::]/32', '2001:db9::1', false],
    ['127.0.0.1', '::ffff:127.0.0.1', true],
    // hosts_ctl gets no host name and no user: these never match, except UNKNOWN (the name is unknown)
    ['LOCAL', '127.0.0.1', false],
    ['KNOWN', '127.0.0.1', false],
    ['PARANOID', '127.0.0.1', false],
    ['.example.com', '127.0.0.1', false],
    ['localhost', '127.0.0.1', false],
    ['@admins', '127.0.0.1', false],
    ['bob@127.0.0.1', '127.0.0.1', false],
    ['ALL@127.0.0.1', '127.0.0.1', true],
    ['UNKNOWN', '127.0.0.1', true],
  ])('%s against %s: %s', (pattern, address, expected) => {
    expect(clientMatches(pattern, address)).toBe(expected);
  });
});

describe('hosts files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'router-access-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files = (allow: string, deny: string) => {
    const a = path.join(dir, `allow-${Math.random()}`);
    const d = path.join(dir, `deny-${Math.random()}`);
    fs.writeFileSync(a, allow);
    fs.writeFileSync(d, deny);
    return { a, d, access: new HostsAccess(a, d) };
  };
  const warnings: string[] = [];
  const warn = (l: string) => warnings.push(l);

  it('hosts.allow grants first, then hosts.deny refuses, else the client is let in', () => {
    const { access } = files('uwsgi: 10.0.0.1\n', 'ALL: 10.0.0.\n');
    expect(access.permits('uwsgi', '10.0.0.1', warn)).toBe(true);
    expect(access.permits('uwsgi', '10.0.0.2', warn)).toBe(false);
    expect(access.permits('uwsgi', '192.0.2.1', warn)).toBe(true);
    // another daemon's allow rule does not apply
    expect(access.permits('other', '10.0.0.1', warn)).toBe(false);
  });

  it('lists take commas and blanks, EXCEPT, comments and continued lines', () => {
    // EXCEPT takes everything after it: "a, b EXCEPT c, d" is (a or b) unless (c or d).
    const { access } = files('# trusted\nsshd, uwsgi : 10.0.0.0/255.255.255.0, \\\n  192.0.2.7 EXCEPT 10.0.0.66, 10.0.0.67\n', 'ALL : ALL\n');
    expect(access.permits('uwsgi', '10.0.0.5', warn)).toBe(true);
    expect(access.permits('uwsgi', '10.0.0.66', warn)).toBe(false);
    expect(access.permits('uwsgi', '10.0.0.67', warn)).toBe(false);
    expect(access.permits('uwsgi', '192.0.2.7', warn)).toBe(true);
    expect(access.permits('uwsgi', '192.0.2.8', warn)).toBe(false);
  });

  it('the PROCESS_OPTIONS verdicts: a final allow/deny option decides, in either file', () => {
    const { access } = files('ALL: 10.0.0.9 : deny\nALL: ALL : allow\n', '');
    expect(access.permits('uwsgi', '10.0.0.9', warn)).toBe(false);
    expect(access.permits('uwsgi', '10.0.0.8', warn)).toBe(true);
  });

  it('missing files have no rules; edits are picked up without a restart', () => {
    const access = new HostsAccess(path.join(dir, 'none.allow'), path.join(dir, 'none.deny'));
    expect(access.permits('uwsgi', '10.0.0.1', warn)).toBe(true);
    const { d, access: edited } = files('', 'uwsgi: 10.0.0.1\n');
    expect(edited.permits('uwsgi', '10.0.0.1', warn)).toBe(false);
    fs.writeFileSync(d, '# opened up again\n');
    fs.utimesSync(d, new Date(), new Date(Date.now() + 5000));
    expect(edited.permits('uwsgi', '10.0.0.1', warn)).toBe(true);
  });

  it('a line without ":" is skipped and reported', () => {
    const lines: string[] = [];
    expect(parseHostsFile('uwsgi 10.0.0.1\nALL: 10.0.0.2\n', 'hosts.deny', (l) => lines.push(l))).toHaveLength(1);
    expect(lines).toEqual(['hosts.deny: line 1 has no ":" between the daemon and client lists: ignored']);
  });

  it('IPv6 clients are written in brackets (their colons are not field separators)', () => {
    const { access } = files('', 'uwsgi: [::1] [2001:db8::]/32\n');
    expect(access.permits('uwsgi', '::1', warn)).toBe(false);
    expect(access.permits('uwsgi', '2001:db8::5', warn)).toBe(false);
    expect(access.permits('uwsgi', '2001:db9::5', warn)).toBe(true);
  });
});
