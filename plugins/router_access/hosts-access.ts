/**
 * TCP wrappers' host access control (hosts_access(5)), the check uWSGI's router_access makes
 * through libwrap's hosts_ctl(daemon, STRING_UNKNOWN, address, STRING_UNKNOWN): only the
 * client's address is known, never its host name or user.
 *
 * Access is granted when a rule in hosts.allow matches (daemon, client); otherwise denied when
 * one in hosts.deny matches; otherwise granted. A missing file has no rules. Each rule is
 * `daemon_list : client_list [ : option ... ]`; lists are separated by blanks and/or commas
 * and may use `EXCEPT`; `#` starts a comment line and a trailing backslash continues a line.
 * With libwrap's PROCESS_OPTIONS extension a final `allow` or `deny` option decides instead of
 * the file (so one hosts.allow can say both); other options (shell commands, `spawn`,
 * `twist`…) are not run: the route only answers 403 or continues.
 *
 * Client patterns, as libwrap matches them with an unknown host name:
 *   ALL                         every client
 *   n.n.n.n                     that address (also IPv6, optionally in brackets)
 *   n.n.n.                      addresses starting with this prefix
 *   n.n.n.n/m.m.m.m, a/len      the network (mask or prefix length; IPv6 in brackets)
 *   UNKNOWN                     always: the name is unknown to hosts_ctl
 *   LOCAL, KNOWN, PARANOID, .domain, host names, @netgroups, user@host    never (no name, no user)
 * Daemon patterns: ALL, or the daemon name (`daemon=` of the rule, default "uwsgi").
 */
import fs from 'node:fs';
import net from 'node:net';

interface Rule {
  daemons: string[];
  clients: string[];
  /** PROCESS_OPTIONS: the rule's own verdict, or null for the file's. */
  verdict: 'allow' | 'deny' | null;
}

/** Split a list on blanks and commas (hosts_access(5)). */
function listTokens(text: string): string[] {
  return text.split(/[\s,]+/).filter((t) => t !== '');
}

/** A rule's ":"-separated fields; colons inside [brackets] (IPv6 addresses) do not separate. */
function splitFields(line: string): string[] {
  const fields: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '[') depth++;
    else if (c === ']' && depth > 0) depth--;
    else if (c === ':' && depth === 0) {
      fields.push(line.slice(start, i));
      start = i + 1;
    }
  }
  fields.push(line.slice(start));
  return fields;
}

/** Parse one file's text into rules; malformed lines are skipped and reported through `warn`. */
export function parseHostsFile(text: string, file: string, warn: (line: string) => void): Rule[] {
  const rules: Rule[] = [];
  const joined = text.replace(/\\\r?\n/g, ' ');
  let lineNo = 0;
  for (const raw of joined.split('\n')) {
    lineNo++;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = splitFields(line);
    if (fields.length < 2) {
      warn(`${file}: line ${lineNo} has no ":" between the daemon and client lists: ignored`);
      continue;
    }
    const options = fields.slice(2).map((f) => f.trim().toLowerCase());
    const last = options[options.length - 1];
    rules.push({
      daemons: listTokens(fields[0]!),
      clients: listTokens(fields[1]!),
      verdict: last === 'allow' || last === 'deny' ? last : null,
    });
  }
  return rules;
}

/** `list [EXCEPT list]`: a match of the first part not matched by the EXCEPT part. */
function listMatches(tokens: readonly string[], matches: (token: string) => boolean): boolean {
  const except = tokens.findIndex((t) => t === 'EXCEPT');
  const head = except < 0 ? tokens : tokens.slice(0, except);
  if (!head.some(matches)) return false;
  return except < 0 ? true : !listMatches(tokens.slice(except + 1), matches);
}

/** IPv4 or IPv6 text → bytes (IPv4-mapped IPv6 becomes IPv4), or null. */
function addressBytes(text: string): Buffer | null {
  let t = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(t);
  if (mapped) t = mapped[1]!;
  if (net.isIPv4(t)) return Buffer.from(t.split('.').map(Number));
  if (!net.isIPv6(t)) return null;
  const [left, right] = t.includes('::') ? t.split('::') : [t, null];
  const part = (s: string | null | undefined): number[] => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const l = part(left);
  const r = part(right);
  const groups = right === null ? l : [...l, ...new Array(8 - l.length - r.length).fill(0), ...r];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

function prefixMatch(addr: Buffer, net: Buffer, bits: number): boolean {
  if (addr.length !== net.length || bits < 0 || bits > addr.length * 8) return false;
  for (let i = 0; i < addr.length; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    const mask = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
    if ((addr[i]! & mask) !== (net[i]! & mask)) return false;
  }
  return true;
}

/** Does a client pattern match this address (with no known host name or user)? */
export function clientMatches(pattern: string, address: string): boolean {
  if (pattern === 'ALL' || pattern === 'UNKNOWN') return true;
  if (pattern.includes('@')) {
    // user@host: the user is unknown to hosts_ctl, so only ALL@host can match.
    const at = pattern.lastIndexOf('@');
    if (at === 0) return false; // @netgroup
    return pattern.slice(0, at) === 'ALL' && clientMatches(pattern.slice(at + 1), address);
  }
  const addr = addressBytes(address);
  if (!addr) return false;
  const slash = pattern.indexOf('/');
  if (slash > 0) {
    const network = addressBytes(pattern.slice(0, slash));
    const maskText = pattern.slice(slash + 1);
    if (!network) return false;
    if (/^\d+$/.test(maskText)) return prefixMatch(addr, network, Number(maskText));
    const mask = addressBytes(maskText);
    if (!mask || mask.length !== addr.length) return false;
    for (let i = 0; i < addr.length; i++) if ((addr[i]! & mask[i]!) !== (network[i]! & mask[i]!)) return false;
    return true;
  }
  if (pattern.endsWith('.') && /^[\d.]+$/.test(pattern)) return net.isIPv4(address.replace(/^::ffff:/i, '')) && address.replace(/^::ffff:/i, '').startsWith(pattern);
  const exact = addressBytes(pattern);
  return exact !== null && exact.equals(addr);
}

function daemonMatches(pattern: string, daemon: string): boolean {
  // daemon@host (the server's address) is not known here; ALL and the name are.
  return pattern === 'ALL' || pattern === daemon;
}

function ruleMatches(rule: Rule, daemon: string, address: string): boolean {
  return listMatches(rule.daemons, (p) => daemonMatches(p, daemon)) && listMatches(rule.clients, (p) => clientMatches(p, address));
}

/** A hosts file read again when it changes (libwrap reads it on every check; a stat is cheaper). */
class WatchedRules {
  private key = '';
  private rules: Rule[] = [];
  constructor(readonly file: string) {}

  /** The rules now; `warn` hears about unreadable files and malformed lines when it is read. */
  current(warn: (line: string) => void): Rule[] {
    const st = fs.statSync(this.file, { throwIfNoEntry: false });
    const key = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '';
    if (key !== this.key) {
      this.key = key;
      let text = '';
      try {
        text = st ? fs.readFileSync(this.file, 'utf8') : '';
      } catch (err) {
        warn(`${this.file}: ${(err as Error).message}: read as empty`);
      }
      this.rules = parseHostsFile(text, this.file, warn);
    }
    return this.rules;
  }
}

/** hosts_ctl(): is `address` allowed to reach `daemon`? */
export class HostsAccess {
  private readonly allow: WatchedRules;
  private readonly deny: WatchedRules;

  constructor(allowFile: string, denyFile: string) {
    this.allow = new WatchedRules(allowFile);
    this.deny = new WatchedRules(denyFile);
  }

  permits(daemon: string, address: string, warn: (line: string) => void): boolean {
    for (const rule of this.allow.current(warn)) if (ruleMatches(rule, daemon, address)) return rule.verdict !== 'deny';
    for (const rule of this.deny.current(warn)) if (ruleMatches(rule, daemon, address)) return rule.verdict === 'allow';
    return true;
  }
}
