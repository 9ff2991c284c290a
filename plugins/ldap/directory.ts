/**
 * The LDAP side of ldapauth (plugins/ldap/index.ts), on the `ldapts` client: find the user's
 * entry, then bind as it with the offered password.
 *
 * uWSGI opens a new connection for every check, binds it as binddn, searches, re-binds it as
 * the user and unbinds: a TCP handshake and four round trips per request. tsuwsgi keeps, per
 * rule and per worker, ONE search connection (bound once as binddn, or anonymous) shared by
 * concurrent requests, and a few idle "bind" connections, each used by one request at a time,
 * only ever for the user's bind: two round trips per request. Sharing is safe because the
 * search connection's identity never changes (no user ever binds on it), and a bind
 * connection's identity is never used for anything. Connections the server dropped are
 * reopened once, transparently; their sockets are unref'd so they never keep a stopping worker
 * alive.
 */
import net from 'node:net';
import { AndFilter, Client, EqualityFilter, ResultCodeError, type ClientOptions, type Filter } from 'ldapts';

export interface DirectoryConfig {
  /** `ldap://host[:port]` or `ldaps://…` (the URL's path, if any, is not used: as libldap). */
  readonly url: string;
  readonly binddn: string | null;
  readonly bindpw: string | null;
  readonly basedn: string;
  /** The rule's filter=, parsed once. */
  readonly filter: Filter;
  /** The attribute holding the login name (attr=, default uid). */
  readonly attr: string;
}

/** Trouble with the server itself (down, silent, refusing our search): not the user's fault. */
export class DirectoryError extends Error {
  constructor(
    message: string,
    readonly timeout: boolean,
  ) {
    super(message);
  }
}

export type Check = { ok: true; dn: string } | { ok: false; reason: 'not-found' } | { ok: false; reason: 'bind'; dn: string; message: string };

/** Idle bind connections kept per rule (more concurrent checks open more, closed after use). */
const MAX_IDLE_BINDERS = 4;

/** Kept connections must not keep a stopping worker alive: their sockets are unref'd. */
const connectUnref = ((...args: Parameters<typeof net.connect>) => net.connect(...args).unref()) as typeof net.connect;

function serverTrouble(err: unknown): DirectoryError {
  const e = err as NodeJS.ErrnoException;
  const timeout = /timeout|timed out/i.test(e?.message ?? '') || e?.code === 'ETIMEDOUT';
  return new DirectoryError(e?.code && !(e.message ?? '').includes(e.code) ? `${e.code} (${e.message})` : (e?.message ?? String(err)), timeout);
}

export class Directory {
  private search: Promise<Client> | null = null;
  private readonly idleBinders: Client[] = [];
  /** The client behind `search`, so a request that saw it fail drops only that one. */
  private searchOwner: Client | null = null;

  constructor(readonly conf: DirectoryConfig) {}

  /** `timeoutMs` (--socket-timeout) bounds the connection and every operation. */
  private options(timeoutMs: number, autoRebind: boolean): ClientOptions {
    return { url: this.conf.url, timeout: timeoutMs, connectTimeout: timeoutMs, autoRebind, createConnection: connectUnref };
  }

  /** The shared search connection, bound as binddn when one is configured. */
  private searchClient(timeoutMs: number): Promise<Client> {
    if (!this.search) {
      const client = new Client(this.options(timeoutMs, true));
      this.searchOwner = client;
      const { binddn, bindpw } = this.conf;
      this.search = (binddn !== null && bindpw !== null ? client.bind(binddn, bindpw) : Promise.resolve()).then(
        () => client,
        (err: unknown) => {
          this.drop(client);
          if (err instanceof ResultCodeError) throw new DirectoryError(`can't bind as user '${binddn}' to '${this.conf.url}': ${err.message}`, false);
          throw serverTrouble(err);
        },
      );
    }
    return this.search;
  }

  private drop(client: Client): void {
    if (this.searchOwner === client) {
      this.search = null;
      this.searchOwner = null;
    }
    client.unbind().catch(() => undefined);
  }

  /** The DN of the entry whose `attr` is exactly `user` (uWSGI compares case-sensitively), or null. */
  async findUser(user: string, timeoutMs: number): Promise<string | null> {
    const filter = new AndFilter({ filters: [new EqualityFilter({ attribute: this.conf.attr, value: user }), this.conf.filter] });
    for (;;) {
      // Only a connection opened by an earlier request may have been dropped by the server.
      const reused = this.search !== null;
      const client = await this.searchClient(timeoutMs);
      try {
        const { searchEntries } = await client.search(this.conf.basedn, { scope: 'sub', filter, attributes: [this.conf.attr] });
        for (const entry of searchEntries) if (this.hasLogin(entry, user)) return entry.dn;
        return null;
      } catch (err) {
        if (err instanceof ResultCodeError) throw new DirectoryError(`search error on '${this.conf.url}': ${err.message}`, false);
        // The server may have dropped an idle connection: one fresh try (not after a timeout:
        // a silent server would make the client wait twice).
        this.drop(client);
        const trouble = serverTrouble(err);
        if (!reused || trouble.timeout) throw trouble;
      }
    }
  }

  private hasLogin(entry: Record<string, unknown>, user: string): boolean {
    const want = this.conf.attr.toLowerCase();
    for (const [key, value] of Object.entries(entry)) {
      if (key.toLowerCase() !== want) continue;
      const values = Array.isArray(value) ? value : [value];
      // uWSGI looks at the first value only; LDAP does not order values, so any of them counts.
      return values.some((v) => String(v) === user);
    }
    return false;
  }

  /** Bind as `dn` with `password` on a bind connection this request has to itself. */
  async bindAs(dn: string, password: string, timeoutMs: number): Promise<{ ok: true } | { ok: false; message: string }> {
    for (;;) {
      const idle = this.idleBinders.pop();
      // A reused connection must not replay an earlier user's bind after a reconnect: no autoRebind.
      const client = idle ?? new Client(this.options(timeoutMs, false));
      try {
        await client.bind(dn, password);
        this.release(client);
        return { ok: true };
      } catch (err) {
        if (err instanceof ResultCodeError) {
          this.release(client);
          return { ok: false, message: err.message };
        }
        client.unbind().catch(() => undefined);
        // An idle connection the server closed meanwhile: try the next one, or a fresh one.
        const trouble = serverTrouble(err);
        if (!idle || trouble.timeout) throw trouble;
      }
    }
  }

  private release(client: Client): void {
    if (this.idleBinders.length < MAX_IDLE_BINDERS) this.idleBinders.push(client);
    else client.unbind().catch(() => undefined);
  }

  /** Search the user, then bind as it. Throws DirectoryError when the server cannot be asked. */
  async check(user: string, password: string, timeoutMs: number): Promise<Check> {
    const dn = await this.findUser(user, timeoutMs);
    if (dn === null) return { ok: false, reason: 'not-found' };
    const r = await this.bindAs(dn, password, timeoutMs);
    return r.ok ? { ok: true, dn } : { ok: false, reason: 'bind', dn, message: r.message };
  }
}
