/**
 * MongoDB connections of the gridfs action: one MongoClient (the official driver, with its own
 * connection pool) per server/replica/credentials/timeout, created on first use and kept for
 * the life of the worker. uWSGI opens a new connection per request; keeping the client saves
 * the handshake and lets the driver reuse pooled sockets.
 *
 * A client whose server cannot be reached (connection refused, silent, timed out) is closed
 * and forgotten: the next request starts afresh instead of leaving a driver monitor retrying
 * in the background.
 */
import type { MongoClient } from 'mongodb';
import type { GridfsMountpoint } from './mountpoint.ts';

export type MongoDriver = typeof import('mongodb');
let driver: Promise<MongoDriver> | null = null;

/**
 * The driver, imported on the first gridfs request: importing it costs ~130 ms, which every
 * tsuwsgi start would pay (the plugin catalog imports every plugin) whether or not a gridfs
 * rule exists.
 */
export function loadDriver(): Promise<MongoDriver> {
  driver ??= import('mongodb');
  return driver;
}

const clients = new Map<string, MongoClient>();
const keyOf = new WeakMap<MongoClient, string>();

/** The connection string for a mountpoint (credentials are passed as options, never in the URI). */
function uriOf(m: GridfsMountpoint): string {
  const hosts = m.server.split(',').map((h) => h.trim()).join(',');
  return m.replica ? `mongodb://${hosts}/?replicaSet=${encodeURIComponent(m.replica)}` : `mongodb://${hosts}/?directConnection=true`;
}

export function clientFor(mongo: MongoDriver, m: GridfsMountpoint, timeoutMs: number): MongoClient {
  // The db matters only to authenticate (authSource): without credentials every db shares one client.
  const key = `${m.replica ?? ''}/${m.server}/${timeoutMs}/${m.username === null ? '' : `${m.db}/${m.username}:${m.password ?? ''}`}`;
  let client = clients.get(key);
  if (!client) {
    client = new mongo.MongoClient(uriOf(m), {
      // Every wait is bounded by the rule's timeout (uWSGI: the legacy driver's socket timeout).
      connectTimeoutMS: timeoutMs,
      serverSelectionTimeoutMS: timeoutMs,
      socketTimeoutMS: timeoutMs,
      waitQueueTimeoutMS: timeoutMs,
      // Fail fast: a request is answered from one attempt, as uWSGI does.
      retryReads: false,
      appName: 'tsuwsgi-gridfs',
      ...(m.username !== null ? { auth: { username: m.username, password: m.password ?? '' }, authSource: m.db } : {}),
    });
    clients.set(key, client);
    keyOf.set(client, key);
  }
  return client;
}

/** Close and forget a client after a connection failure (not after a mere missing file). */
export function dropClient(client: MongoClient): void {
  const key = keyOf.get(client);
  if (key !== undefined && clients.get(key) === client) clients.delete(key);
  client.close(true).catch(() => undefined);
}
